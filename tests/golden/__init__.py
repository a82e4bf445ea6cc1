"""Fixtures written by earlier versions of the code (see each module)."""
