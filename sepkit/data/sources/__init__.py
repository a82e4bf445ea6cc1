"""Track sources: the one interface through which sepkit reads any dataset layout."""

from sepkit.data.sources.base import TrackInfo, TrackSource

__all__ = ["TrackInfo", "TrackSource"]
