"""The dataset seam: a *track source* lists tracks, reads spans of their stems and says which stems
make each target.

Everything downstream (the data module, the decode cache, evaluation, the inference engine's
residual rule) sees a dataset only through :class:`TrackSource`. A new layout is one subclass in
this package plus one YAML under ``conf/data/``; README.md "Add a dataset layout" has a ten-line example.

Listing reads file headers only (soundfile), so unreadable files, rate or length mismatches and
clip lengths are known before anything is decoded.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from sepkit.audio import AUDIO_EXTENSIONS, probe
from sepkit.errors import SepkitError

log = logging.getLogger(__name__)

SUBSETS = ("train", "valid", "test")
RESIDUAL_TARGET = "accompaniment"


@dataclass(frozen=True)
class TrackInfo:
    """One track as its file headers describe it.

    Attributes:
        name: unique name (folder or file name without extension).
        subset: the folder's own subset, ``train``, ``valid`` or ``test`` (``train`` when the folder
            has no subsets).
        frames: length in samples at ``sample_rate``.
        sample_rate: rate of its files.
        channels: channels of each stem as read (1 or 2).
        files: the files it is read from (for the cache key and messages).
    """

    name: str
    subset: str
    frames: int
    sample_rate: int
    channels: int
    files: tuple[str, ...]

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


class TrackProblem(Exception):
    """Why one track cannot be used; the track is skipped with a warning naming it."""


def header(path: str | Path) -> sf._SoundFileInfo:
    """A file's header (rate, frames, channels) or a :class:`TrackProblem` naming the file."""
    try:
        return probe(path, downmix=True)  # channels are checked per track, by check_headers
    except SepkitError as err:
        raise TrackProblem(f"{Path(path).name} is unreadable: {err}") from None


def check_headers(infos: dict[str, sf._SoundFileInfo]) -> tuple[int, int, int]:
    """Check that a track's files agree; returns ``(frames, sample_rate, channels)``."""
    rates = {i.samplerate for i in infos.values()}
    if len(rates) > 1:
        raise TrackProblem(
            "files differ in sample rate: " + ", ".join(f"{n} {i.samplerate} Hz" for n, i in infos.items())
        )
    lengths = {i.frames for i in infos.values()}
    if len(lengths) > 1:
        raise TrackProblem("files differ in length: " + ", ".join(f"{n} {i.frames}" for n, i in infos.items()))
    channels = {i.channels for i in infos.values()}
    if max(channels) > 2:
        raise TrackProblem(f"files have {max(channels)} channels; sepkit reads mono or stereo")
    if len(channels) > 1:
        raise TrackProblem("files mix mono and stereo: " + ", ".join(f"{n} {i.channels}" for n, i in infos.items()))
    return lengths.pop(), rates.pop(), channels.pop()


def group_targets(stems: torch.Tensor, groups: Sequence[Sequence[int]]) -> torch.Tensor:
    """Sum ``(stems, channels, time)`` into ``(targets, channels, time)`` by stem-index groups."""
    return torch.stack([stems[list(g)].sum(0) for g in groups])


def read_span(path: str | Path, start: int, frames: int | None) -> np.ndarray:
    """Samples ``[start, start + frames)`` of a file as float32 ``(channels, frames)``."""
    stop = None if frames is None else start + frames
    try:
        data, _ = sf.read(str(path), start=start, stop=stop, dtype="float32", always_2d=True)
    except Exception as err:
        raise SepkitError(f"cannot decode {path}: {str(err).strip() or type(err).__name__}") from None
    return np.ascontiguousarray(data.T)


def find_audio(folder: Path, stem: str) -> Path | None:
    """``folder/stem`` if it names a file, else ``folder/stem.<ext>`` for the first audio extension found."""
    direct = folder / stem
    if direct.suffix.lower() in AUDIO_EXTENSIONS and direct.is_file():
        return direct
    for ext in AUDIO_EXTENSIONS:
        candidate = folder / f"{stem}{ext}"
        if candidate.is_file():
            return candidate
    return None


def subset_folders(root: Path) -> list[tuple[str, Path]]:
    """``(subset, folder)`` pairs: ``root/{train,valid,test}`` when present, else ``root`` as train."""
    found = [(s, root / s) for s in SUBSETS if (root / s).is_dir()]
    return found or [("train", root)]


class TrackSource(ABC):
    """A dataset as sepkit sees it.

    Subclasses set :attr:`stems` (the names of what :meth:`read` returns, in order) and implement
    :meth:`_list` and :meth:`read`; they may override :meth:`read_mixture` (when the dataset
    ships a real mixture), :meth:`prepare` (e.g. generate files) and :attr:`target_stems`.

    Args:
        root: the dataset folder.
        exclude: glob patterns of track names never to use (e.g. reserved singers ``[abjones_*]``).
    """

    stems: tuple[str, ...] = ()
    #: what to tell a user whose folder is not of this kind
    hint: str = ""

    def __init__(self, root: str | Path, exclude: Sequence[str] = ()) -> None:
        if root is None or str(root).strip() in ("", "None", "???"):
            raise SepkitError(f"data.root is not set: pass data.root=DIR. {self.hint}".strip())
        self.root = Path(root)
        self.exclude = tuple(exclude or ())
        self._tracks: list[TrackInfo] | None = None

    # ---- what subclasses provide -------------------------------------------------------------
    @abstractmethod
    def _list(self) -> Iterable[TrackInfo | tuple[str, str]]:
        """Yield each track's :class:`TrackInfo`, or ``(name, why)`` for an unusable one."""

    @abstractmethod
    def read(self, track: TrackInfo, start: int = 0, frames: int | None = None) -> np.ndarray:
        """Stems of ``track`` at its own rate: float32 ``(len(stems), channels, frames)``."""

    def prepare(self) -> None:
        """Make the dataset exist (the built-in generator overrides this); runs once per node."""
        return None

    def read_mixture(self, track: TrackInfo, start: int = 0, frames: int | None = None) -> np.ndarray:
        """The mixture ``(channels, frames)``; the sum of the stems unless the dataset ships one."""
        return self.read(track, start, frames).sum(0)

    def read_track(self, track: TrackInfo) -> tuple[np.ndarray, np.ndarray]:
        """A whole track's ``(stems, mixture)``; sources that read the mixture file for their
        stems too (a residual stem) override this to read each file once."""
        return self.read(track), self.read_mixture(track)

    @property
    def target_stems(self) -> dict[str, tuple[str, ...]]:
        """Target name → the stems summed to make it: every stem, plus ``accompaniment`` (every stem
        but vocals) when there is a vocals stem and no accompaniment stem."""
        targets = {s: (s,) for s in self.stems}
        if "vocals" in self.stems and RESIDUAL_TARGET not in targets and len(self.stems) > 1:
            targets[RESIDUAL_TARGET] = tuple(s for s in self.stems if s != "vocals")
        return targets

    # ---- shared behaviour --------------------------------------------------------------------
    def signature(self) -> str:
        """What besides the files decides the decoded audio (part of the cache key)."""
        return f"{type(self).__name__}|{','.join(self.stems)}"

    def tracks(self) -> list[TrackInfo]:
        """Every usable track, sorted by subset and name (listed once, from headers only).

        Unusable tracks are skipped with a warning naming them; excluded names are dropped.
        """
        if self._tracks is not None:
            return self._tracks
        if self.root.is_file():
            raise SepkitError(f"data.root={self.root} is a file: pass the dataset's folder. {self.hint}".strip())
        if not self.root.is_dir():
            raise SepkitError(f"data.root={self.root} does not exist. {self.hint}".strip())
        tracks, skipped, excluded = [], 0, 0
        for item in self._list():
            if isinstance(item, tuple):
                log.warning("skipping track %r: %s", *item)
                skipped += 1
            elif any(fnmatch.fnmatch(item.name, p) for p in self.exclude):
                excluded += 1
            else:
                tracks.append(item)
        keys = [(t.subset, t.name) for t in tracks]
        if len(set(keys)) != len(keys):
            subset, name = sorted({k for k in keys if keys.count(k) > 1})[0]
            raise SepkitError(f"{self.root} has several {subset} tracks named {name!r}; rename one of them")
        if not tracks:
            why = " (see the warnings above)" if skipped else ""
            raise SepkitError(f"data.root={self.root} holds no usable tracks{why}. {self.hint}".strip())
        if excluded:
            log.info("excluded %d track(s) matching %s", excluded, list(self.exclude))
        self._tracks = sorted(tracks, key=lambda t: (SUBSETS.index(t.subset), t.name))
        return self._tracks

    def stem_groups(self, targets: Sequence[str]) -> list[tuple[int, ...]]:
        """For each target, the indices into :attr:`stems` summed to make it."""
        available = self.target_stems
        unknown = [t for t in targets if t not in available]
        if unknown or not targets:
            raise SepkitError(
                f"data.targets={list(targets)}: {type(self).__name__} at {self.root} offers {', '.join(available)}"
            )
        return [tuple(self.stems.index(s) for s in available[t]) for t in targets]

    def covers_mixture(self, targets: Sequence[str]) -> bool:
        """Whether the targets add up to the whole mixture (else a residual holds the rest)."""
        return {i for g in self.stem_groups(targets) for i in g} == set(range(len(self.stems)))

    def cache_key(self, track: TrackInfo, sample_rate: int) -> str:
        """Identity of a track's decoded audio: files (path, size, mtime), stems and rate."""
        stamp = [self.signature(), str(sample_rate), track.name]
        for f in track.files:
            st = os.stat(f)
            stamp += [str(Path(f).resolve()), str(st.st_size), str(st.st_mtime_ns)]
        return hashlib.sha1("|".join(stamp).encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"
