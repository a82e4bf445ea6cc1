"""``aligned``: one folder per track with a mixture file and one file per stem (MUSDB18-HQ is one)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from sepkit.data.sources.base import (
    TrackInfo,
    TrackProblem,
    TrackSource,
    check_headers,
    find_audio,
    header,
    read_span,
    subset_folders,
)
from sepkit.errors import SepkitError


class AlignedSource(TrackSource):
    """Track folders ``root/[train|valid|test/]<track>/`` holding one audio file per stem.

    Args:
        root: the dataset folder; with ``train/``, ``valid/``, ``test/`` inside, those are the
            subsets, else every folder in ``root`` is a training track.
        stems: stem name → file name in the track folder (a list means file name == stem name). A
            name without extension matches ``.wav``, ``.flac``, ``.ogg`` or ``.mp3``.
        mixture: file name of the mixture, or null (the mixture is then the sum of the stems).
        residual: stem computed as mixture − the other stems (e.g. ``accompaniment`` for folders of
            mixture + vocals); needs ``mixture``; null for none.
        exclude: glob patterns of track names never to use.
    """

    hint = "expected <root>/[train|test/]<track>/ folders holding one audio file per stem (see data.stems)"

    def __init__(
        self,
        root: str | Path,
        stems: Mapping[str, str] | Sequence[str],
        mixture: str | None = None,
        residual: str | None = None,
        exclude: Sequence[str] = (),
    ) -> None:
        super().__init__(root, exclude)
        files = dict(stems) if isinstance(stems, Mapping) else {s: s for s in stems}
        if not files:
            raise SepkitError("data.stems is empty: name at least one stem file (e.g. {vocals: vocals.wav})")
        if residual and not mixture:
            raise SepkitError(f"data.residual={residual} is mixture minus the stems, so it needs data.mixture=FILE")
        if residual in files:
            raise SepkitError(f"data.residual={residual} is also a stem file; choose another name or residual=null")
        self.files = files
        self.mixture = mixture
        self.residual = residual
        self.stems = (*files, residual) if residual else tuple(files)

    def signature(self) -> str:
        return f"{super().signature()}|{sorted(self.files.items())}|{self.mixture}|{self.residual}"

    def _track(self, name: str, subset: str, folder: Path) -> TrackInfo:
        wanted = dict(self.files)
        if self.mixture:
            wanted["mixture"] = self.mixture
        paths = {stem: find_audio(folder, file) for stem, file in wanted.items()}
        missing = [wanted[s] for s, p in paths.items() if p is None]
        if missing:
            raise TrackProblem(f"missing {', '.join(missing)}")
        frames, rate, channels = check_headers({p.name: header(p) for p in paths.values()})
        order = [paths[s] for s in self.files] + ([paths["mixture"]] if self.mixture else [])
        return TrackInfo(name, subset, frames, rate, channels, tuple(str(p) for p in order))

    def _list(self) -> Iterator[TrackInfo | tuple[str, str]]:
        for subset, base in subset_folders(self.root):
            for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
                if base == self.root and folder.name in ("train", "valid", "test"):
                    continue
                try:
                    yield self._track(folder.name, subset, folder)
                except TrackProblem as problem:
                    yield folder.name, str(problem)

    def read(self, track: TrackInfo, start: int = 0, frames: int | None = None) -> np.ndarray:
        given = [read_span(f, start, frames) for f in track.files[: len(self.files)]]
        if self.residual:
            mixture = read_span(track.files[-1], start, frames)
            given.append(mixture - np.sum(given, axis=0))
        return np.stack(given)

    def read_track(self, track: TrackInfo) -> tuple[np.ndarray, np.ndarray]:
        if not self.mixture:
            stems = self.read(track)
            return stems, stems.sum(0)
        given = [read_span(f, 0, None) for f in track.files[: len(self.files)]]
        mixture = read_span(track.files[-1], 0, None)
        if self.residual:
            given.append(mixture - np.sum(given, axis=0))
        return np.stack(given), mixture

    def read_mixture(self, track: TrackInfo, start: int = 0, frames: int | None = None) -> np.ndarray:
        if self.mixture:
            return read_span(track.files[-1], start, frames)
        return super().read_mixture(track, start, frames)
