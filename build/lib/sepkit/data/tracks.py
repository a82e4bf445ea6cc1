"""Finding, checking and decoding MUSDB tracks.

Tracks are read through the ``musdb`` package (MUSDB18 ``.stem.mp4`` via stempeg/ffmpeg, or
MUSDB18-HQ wav folders). Each track's four sources are decoded once, resampled with torchaudio to
the model's rate and cached as ``.npy`` files that training memory-maps, so a training sample never
decodes a whole track.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from sepkit.errors import SepkitError

log = logging.getLogger(__name__)

SOURCES = ("vocals", "drums", "bass", "other")
SUBSETS = ("train", "test")
WAV_FILES = ("mixture", *SOURCES)
MUSDB_HINT = (
    "MUSDB18 comes from https://sigsep.github.io/datasets/musdb.html (stem.mp4) or MUSDB18-HQ from "
    "https://zenodo.org/records/3338373 (wav); point data.root at the folder holding train/ and test/"
)


@dataclass(frozen=True)
class TrackRef:
    """A checked track: its musdb name, subset and where it lives."""

    name: str
    subset: str
    path: Path
    is_wav: bool


def detect_format(root: Path) -> bool:
    """Return ``is_wav`` for a MUSDB-shaped ``root``, raising a clear error if it is not one."""
    if not root.is_dir():
        raise SepkitError(f"data.root={root} does not exist. {MUSDB_HINT}")
    subsets = [root / s for s in SUBSETS if (root / s).is_dir()]
    if not subsets:
        raise SepkitError(
            f"data.root={root} has neither train/ nor test/ inside, so it is not MUSDB-shaped. {MUSDB_HINT}"
        )
    stems = [p for s in subsets for p in s.glob("*.stem.mp4")]
    folders = [p for s in subsets for p in s.iterdir() if p.is_dir()]
    if stems:
        return False
    if any((f / "mixture.wav").exists() for f in folders):
        return True
    raise SepkitError(
        f"data.root={root} has no tracks: expected train/<Artist - Title>.stem.mp4 files (MUSDB18) or "
        f"train/<Artist - Title>/{{mixture,vocals,drums,bass,other}}.wav folders (MUSDB18-HQ). {MUSDB_HINT}"
    )


def _check_wav_track(folder: Path) -> str | None:
    """Return why a wav track folder is unusable, or None if it is fine."""
    missing = [f"{n}.wav" for n in WAV_FILES if not (folder / f"{n}.wav").exists()]
    if missing:
        return f"missing {', '.join(missing)}"
    infos = {}
    for n in WAV_FILES:
        try:
            infos[n] = sf.info(str(folder / f"{n}.wav"))
        except Exception as err:  # soundfile raises several types for corrupt files
            return f"{n}.wav is unreadable ({err})"
    rates = {i.samplerate for i in infos.values()}
    if len(rates) > 1:
        return "stems differ in sample rate: " + ", ".join(f"{n} {i.samplerate} Hz" for n, i in infos.items())
    lengths = {i.frames for i in infos.values()}
    if len(lengths) > 1:
        return "stems differ in length: " + ", ".join(f"{n} {i.frames}" for n, i in infos.items())
    if any(i.channels > 2 for i in infos.values()):
        return "stems have more than 2 channels"
    return None


def find_tracks(root: str | Path, is_wav: bool | None = None) -> list[TrackRef]:
    """List the usable tracks of a MUSDB-shaped folder.

    Tracks whose stems are missing, unreadable, or differ in length or sample rate are skipped with
    a warning naming the track, so one broken folder does not stop a study.
    """
    root = Path(root)
    if is_wav is None:
        is_wav = detect_format(root)
    elif not root.is_dir():
        raise SepkitError(f"data.root={root} does not exist. {MUSDB_HINT}")
    tracks = []
    for subset in SUBSETS:
        sub = root / subset
        if not sub.is_dir():
            continue
        if is_wav:
            for folder in sorted(p for p in sub.iterdir() if p.is_dir()):
                problem = _check_wav_track(folder)
                if problem:
                    log.warning("skipping track %r: %s", folder.name, problem)
                    continue
                tracks.append(TrackRef(folder.name, subset, folder, True))
        else:
            for path in sorted(sub.glob("*.stem.mp4")):
                tracks.append(TrackRef(path.name[: -len(".stem.mp4")], subset, path, False))
    if not tracks:
        raise SepkitError(f"data.root={root} holds no usable tracks (see the warnings above). {MUSDB_HINT}")
    return tracks


def open_musdb(tracks: list[TrackRef]) -> dict[TrackRef, object]:
    """Open tracks through musdb's own reader, one ``musdb.DB`` per root and subset."""
    import musdb

    opened = {}
    groups = {(t.path.parent.parent, t.subset, t.is_wav) for t in tracks}
    for root, subset, is_wav in groups:
        by_name = {mt.name: mt for mt in musdb.DB(root=str(root), subsets=subset, is_wav=is_wav).tracks}
        for t in tracks:
            if (t.path.parent.parent, t.subset, t.is_wav) == (root, subset, is_wav):
                if t.name not in by_name:
                    raise SepkitError(f"musdb could not open track {t.name!r} in {t.path.parent}")
                opened[t] = by_name[t.name]
    return opened


def decode_sources(track: TrackRef, mt, sample_rate: int) -> np.ndarray:
    """Decode a track's four sources at ``sample_rate``: float32 ``(sources, 2, time)``.

    Args:
        track: the checked track.
        mt: its ``musdb.MultiTrack``.
        sample_rate: rate to resample to.

    Mono sources are duplicated to stereo.
    """
    rates = {mt.rate} if not track.is_wav else {sf.info(str(track.path / f"{s}.wav")).samplerate for s in SOURCES}
    if len(rates) != 1:
        raise SepkitError(f"track {track.name!r}: stems differ in sample rate ({sorted(rates)})")
    rate = int(rates.pop())
    audio = []
    for name in SOURCES:
        x = np.asarray(mt.sources[name].audio, dtype=np.float32).T  # (channels, time)
        if x.shape[0] == 1:
            x = np.repeat(x, 2, axis=0)
        audio.append(x)
    lengths = {a.shape[1] for a in audio}
    if len(lengths) != 1:
        raise SepkitError(f"track {track.name!r}: stems differ in length ({sorted(lengths)} samples)")
    stacked = torch.from_numpy(np.ascontiguousarray(np.stack(audio)))
    if rate != sample_rate:
        stacked = AF.resample(stacked, rate, sample_rate)
    return stacked.numpy().astype(np.float32, copy=False)


class TrackCache:
    """Decoded, resampled sources on disk, memory-mapped on read.

    The cache key covers the file's path, size and modification time and the sample rate, so an
    edited track or another model rate decodes afresh.
    """

    def __init__(self, cache_dir: str | Path, sample_rate: int) -> None:
        self.dir = Path(cache_dir)
        self.sample_rate = sample_rate

    def _key(self, track: TrackRef) -> str:
        files = [track.path / f"{s}.wav" for s in SOURCES] if track.is_wav else [track.path]
        stamp = [str(track.path.resolve()), str(self.sample_rate)]
        for f in files:
            st = f.stat()
            stamp += [str(st.st_size), str(st.st_mtime_ns)]
        return hashlib.sha1("|".join(stamp).encode()).hexdigest()[:16]

    def path(self, track: TrackRef) -> Path:
        return self.dir / f"{self._key(track)}.npy"

    def _store(self, track: TrackRef, mt) -> None:
        audio = decode_sources(track, mt, self.sample_rate)
        tmp = self.path(track).with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp.npy")
        np.save(tmp, audio)
        tmp.replace(self.path(track))

    def load(self, tracks: list[TrackRef]) -> list[np.ndarray]:
        """Return each track's sources ``(sources, 2, time)``, decoding the uncached ones first."""
        missing = [t for t in tracks if not self.path(t).exists()]
        if missing:
            self.dir.mkdir(parents=True, exist_ok=True)
            opened = open_musdb(missing)
            log.info("decoding %d track(s) at %d Hz into %s", len(missing), self.sample_rate, self.dir)
            # ffmpeg runs in subprocesses, so threads decode tracks in parallel
            with ThreadPoolExecutor(max_workers=4) as pool:
                list(pool.map(lambda t: self._store(t, opened[t]), missing))
        return [np.load(self.path(t), mmap_mode="r") for t in tracks]


def read_track(track: TrackRef) -> tuple[np.ndarray, np.ndarray, int]:
    """A whole track at its own rate: mixture ``(2, time)``, sources ``(4, 2, time)``, rate."""
    mt = open_musdb([track])[track]
    rate = int(mt.rate)
    sources = decode_sources(track, mt, rate)
    mixture = np.asarray(mt.audio, dtype=np.float32).T
    if mixture.shape[0] == 1:
        mixture = np.repeat(mixture, 2, axis=0)
    length = min(mixture.shape[-1], sources.shape[-1])  # stem.mp4 streams can differ by a frame
    return mixture[:, :length], sources[..., :length], rate
