"""Datasets: the built-in synthetic MUSDB generator, MUSDB track handling and the DataModule."""
