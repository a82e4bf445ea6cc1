"""Decode once: each track's stems, resampled to the model's rate, cached as ``.npy`` files that
training memory-maps, so a training sample never decodes audio.

Tracks are decoded in worker processes (one per core) with a progress bar; the cache key covers
the track's files (path, size, modification time), the source's stem layout, the rate and the
channel count, so an edited file, another layout or another model rate decodes afresh.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from sepkit.audio import check_finite, resample_np, to_channels
from sepkit.data.pool import worker_pool
from sepkit.data.sources.base import TrackInfo, TrackSource
from sepkit.errors import SepkitError

log = logging.getLogger(__name__)


def decode_track(source: TrackSource, track: TrackInfo, sample_rate: int, channels: int) -> np.ndarray:
    """A track's stems at ``sample_rate``: float32 ``(stems, channels, time)``; a track holding NaN or
    infinite samples is refused by name (in training it would only show as a NaN loss)."""
    audio = to_channels(source.read(track), channels)
    try:
        check_finite(torch.from_numpy(audio))
    except SepkitError as err:
        raise SepkitError(
            f"track {track.name!r} ({', '.join(track.files) or source.root}): {err}: "
            "fix or remove it, or leave it out with data.exclude=[NAME]"
        ) from None
    return resample_np(audio, track.sample_rate, sample_rate).astype(np.float32, copy=False)


def _store(source: TrackSource, track: TrackInfo, sample_rate: int, channels: int, path: Path) -> None:
    audio = decode_track(source, track, sample_rate, channels)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, audio)
    tmp.replace(path)


def _store_many(jobs: list[tuple]) -> int:
    for job in jobs:
        _store(*job)
    return len(jobs)


class TrackCache:
    """Decoded tracks on disk, memory-mapped on read.

    Args:
        cache_dir: folder of the ``.npy`` files.
        sample_rate: rate tracks are resampled to.
        channels: channels tracks are converted to (mono duplicated, stereo averaged).
        workers: decoding processes (None: one per core).
    """

    def __init__(self, cache_dir: str | Path, sample_rate: int, channels: int = 2, workers: int | None = None) -> None:
        self.dir = Path(cache_dir)
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.workers = workers or os.cpu_count() or 1

    def path(self, source: TrackSource, track: TrackInfo) -> Path:
        return self.dir / f"{source.cache_key(track, self.sample_rate)}-{self.channels}ch.npy"

    def load(self, source: TrackSource, tracks: list[TrackInfo]) -> list[np.ndarray]:
        """Each track's stems ``(stems, channels, time)``, decoding the uncached ones first."""
        paths = [self.path(source, t) for t in tracks]
        jobs = [(source, t, self.sample_rate, self.channels, p) for t, p in zip(tracks, paths, strict=True)]
        missing = [j for j in jobs if not j[-1].exists()]
        if missing:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._decode(missing)
        return [np.load(p, mmap_mode="r") for p in paths]

    def _decode(self, jobs: list[tuple]) -> None:
        log.info("decoding %d track(s) at %d Hz into %s", len(jobs), self.sample_rate, self.dir)
        workers = min(self.workers, len(jobs))
        if workers <= 1:
            _store_many(jobs)
            return
        # small batches keep the progress bar moving and the pool busy to the end
        size = max(1, min(16, len(jobs) // (4 * workers)))
        batches = [jobs[i : i + size] for i in range(0, len(jobs), size)]
        columns = (TextColumn("decoding"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with (
            Progress(*columns, console=Console(stderr=True), transient=True) as bar,
            worker_pool(workers) as pool,
        ):
            task = bar.add_task("decode", total=len(jobs))
            for done in pool.map(_store_many, batches):
                bar.advance(task, done)
