"""``stereo_split``: one file per clip whose channels are the sources (MIR-1K: left accompaniment,
right voice); the mixture is their sum."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from sepkit.data.sources.base import (
    AUDIO_EXTENSIONS,
    TrackInfo,
    TrackProblem,
    TrackSource,
    header,
    read_span,
    subset_folders,
)
from sepkit.errors import SepkitError


class StereoSplitSource(TrackSource):
    """Audio files ``root/[train|valid|test/]<clip>.<wav|flac|ogg|mp3>``, each channel one source.

    Args:
        root: the dataset folder (with ``train/``, ``valid/``, ``test/`` inside, those are the subsets).
        channels: stem name → channel index (0 = left), e.g. ``{accompaniment: 0, vocals: 1}``.
        exclude: glob patterns of clip names never to use.

    Every stem is mono, so tracks have one channel.
    """

    hint = "expected <root>/[train|test/]<clip>.wav files whose channels are the sources (see data.source.channels)"

    def __init__(self, root: str | Path, channels: Mapping[str, int], exclude: Sequence[str] = ()) -> None:
        super().__init__(root, exclude)
        channels = dict(channels)
        if not channels or any(not isinstance(c, int) or c < 0 for c in channels.values()):
            raise SepkitError(f"data.channels={channels} must map stem names to channel indices >= 0")
        self.channel_map = channels
        self.stems = tuple(channels)

    def signature(self) -> str:
        return f"{super().signature()}|{sorted(self.channel_map.items())}"

    def _track(self, path: Path, subset: str) -> TrackInfo:
        info = header(path)
        need = max(self.channel_map.values()) + 1
        if info.channels < need:
            raise TrackProblem(f"has {info.channels} channel(s), data.channels needs {need}")
        return TrackInfo(path.stem, subset, info.frames, info.samplerate, 1, (str(path),))

    def _list(self) -> Iterator[TrackInfo | tuple[str, str]]:
        for subset, folder in subset_folders(self.root):
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() not in AUDIO_EXTENSIONS or path.name.startswith("."):
                    continue
                try:
                    yield self._track(path, subset)
                except TrackProblem as problem:
                    yield path.stem, str(problem)

    def read(self, track: TrackInfo, start: int = 0, frames: int | None = None) -> np.ndarray:
        audio = read_span(track.files[0], start, frames)
        return np.ascontiguousarray(audio[list(self.channel_map.values())][:, None, :])
