"""Labelled audio for the GAN: every category's clips at 16 kHz mono, cut to one spectrogram's length.

Two ways to get categories, both through the track-source seam (:mod:`sepkit.data.sources`):

* **stem categories**: any :class:`TrackSource` (``data=synthetic``, ``musdb_hq``, ``aligned``, ...);
  each stem of each track is a clip of the category named after the stem (vocals, drums, ...).
  Tracks are split train/valid/test as for separation, so a test song is never trained on.
* **category folders** (:class:`CategoryFolders`, ``data=gan/categories``): ``root/<category>/*.wav``;
  each file is a clip of its folder's category, and each category's files are split at random.

Batches are ``(audio (batch, time), labels (batch,))``; the model turns audio into log-mel spectrograms.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from sepkit.data.cache import TrackCache
from sepkit.data.datamodule import SILENCE_RMS, make_loader
from sepkit.data.sources.base import AUDIO_EXTENSIONS, TrackInfo, TrackProblem, TrackSource, header, read_span
from sepkit.data.split import SPLITS, cap_tracks, folder_split, musdb_validation_names, official_split, random_split
from sepkit.errors import SepkitError

log = logging.getLogger(__name__)


class CategoryFolders(TrackSource):
    """``root/<category>/<clip>.<wav|flac|ogg|mp3>``: one folder per category, each file one clip.

    Each file is a one-stem track named ``<category>/<file stem>``. An empty category folder or an
    unreadable file stops with a message naming it (a silently smaller category would skew the scores).

    Args:
        root: the folder holding one sub-folder per category.
        exclude: glob patterns of clip names (``<category>/<file stem>``) never to use.
    """

    stems = ("audio",)
    hint = "expected <root>/<category>/*.wav (or .flac, .ogg, .mp3): one folder per category"

    def folders(self) -> list[Path]:
        if not self.root.is_dir():
            raise SepkitError(f"data.root={self.root} does not exist. {self.hint}")
        found = sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not found:
            raise SepkitError(f"data.root={self.root} has no category folders. {self.hint}")
        return found

    @property
    def categories(self) -> list[str]:
        """Category names: the folder names, sorted."""
        return [p.name for p in self.folders()]

    @staticmethod
    def category(track: TrackInfo) -> str:
        return track.name.split("/", 1)[0]

    def _list(self) -> Iterator[TrackInfo]:
        for folder in self.folders():
            files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
            if not files:
                raise SepkitError(
                    f"category folder {folder} holds no audio files ({', '.join(AUDIO_EXTENSIONS)}); "
                    "add clips or remove the folder"
                )
            for path in files:
                try:
                    info = header(path)
                except TrackProblem as problem:
                    raise SepkitError(f"{folder.name}/{problem}; fix or remove the file") from None
                if info.channels > 2:
                    raise SepkitError(f"{folder.name}/{path.name} has {info.channels} channels; use mono or stereo")
                name = f"{folder.name}/{path.stem}"
                yield TrackInfo(name, "train", info.frames, info.samplerate, info.channels, (str(path),))

    def read(self, track: TrackInfo, start: int = 0, frames: int | None = None) -> np.ndarray:
        return read_span(track.files[0], start, frames)[None]


@dataclass(frozen=True)
class Clip:
    """One labelled clip: stem ``stem`` of track ``track`` (an index into its split's list)."""

    track: int
    stem: int
    label: int


def window_starts(length: int, size: int) -> list[int]:
    """Starts of non-overlapping windows of ``size`` over ``length`` samples, plus one ending at the
    end when the rest is at least half a window; one (padded) window for a shorter clip."""
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, size))
    if length - (starts[-1] + size) >= size // 2:
        starts.append(length - size)
    return starts


def _crop(audio: np.ndarray, stem: int, start: int, size: int) -> torch.Tensor:
    """``audio[stem, 0, start:start + size]`` as float32, zero-padded to ``size``."""
    wav = torch.from_numpy(np.array(audio[stem, 0, start : start + size], dtype=np.float32))
    return torch.nn.functional.pad(wav, (0, size - wav.shape[-1]))


class RandomCrops(Dataset):
    """``per_clip`` random windows of every clip per epoch (a shorter clip whole, padded)."""

    def __init__(self, audio: list[np.ndarray], clips: Sequence[Clip], size: int, per_clip: int) -> None:
        self.audio, self.clips, self.size, self.per_clip = audio, list(clips), size, per_clip

    def __len__(self) -> int:
        return len(self.clips) * self.per_clip

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        clip = self.clips[index // self.per_clip]
        audio = self.audio[clip.track]
        start = int(torch.randint(0, max(1, audio.shape[-1] - self.size + 1), ()).item())
        return _crop(audio, clip.stem, start, self.size), clip.label


class FixedWindows(Dataset):
    """Deterministic windows of every clip (:func:`window_starts`), leaving out silent ones
    (RMS below -50 dBFS): the real spectrograms the scores compare against."""

    def __init__(self, audio: list[np.ndarray], clips: Sequence[Clip], size: int) -> None:
        self.audio, self.size = audio, size
        self.index: list[tuple[Clip, int]] = []
        for clip in clips:
            track = audio[clip.track]
            for start in window_starts(track.shape[-1], size):
                wav = _crop(track, clip.stem, start, size)
                real = min(size, track.shape[-1] - start)
                if wav.pow(2).sum().div(real).sqrt() > SILENCE_RMS:
                    self.index.append((clip, start))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        clip, start = self.index[index]
        return _crop(self.audio[clip.track], clip.stem, start, self.size), clip.label

    @property
    def labels(self) -> torch.Tensor:
        return torch.tensor([clip.label for clip, _ in self.index])


class SpectrogramDataModule(L.LightningDataModule):
    """Labelled clips from a track source: random windows for training, fixed windows for scores.

    Args:
        source: a :class:`TrackSource` or a factory called with ``root`` and ``exclude`` (the
            ``data.source`` of any ``conf/data`` option); a :class:`CategoryFolders` gives folder
            categories, any other source stem categories.
        root: the dataset folder.
        exclude: glob patterns of track (or clip) names never used.
        categories: the categories to use (null: every stem of the source, or every folder).
        fraction: share of each category's clips kept in every split, drawn from ``split_seed``.
        split: ``random``, ``folder`` or ``official`` for stem categories (as for separation);
            category folders split each category's files at random.
        split_seed: seed of the split and of the ``fraction`` draw.
        split_fractions: train/valid/test fractions.
        n_songs: cap on the tracks used (on the files per category, for category folders).
        sample_rate: rate clips are resampled to (the model's).
        max_frames: frames of one spectrogram; with ``hop_length`` it sets the window length.
        hop_length: the model's mel hop.
        samples_per_clip: random training windows per clip and epoch.
        batch_size: batch size.
        num_workers: DataLoader workers.
        cache_dir: where decoded, resampled tracks are cached (shared with separation runs).
    """

    def __init__(
        self,
        source: TrackSource | Callable[..., TrackSource],
        root: str | None,
        exclude: Sequence[str],
        categories: Sequence[str] | None,
        fraction: float,
        split: str,
        split_seed: int,
        split_fractions: Sequence[float],
        n_songs: int | None,
        sample_rate: int,
        max_frames: int,
        hop_length: int,
        samples_per_clip: int,
        batch_size: int,
        num_workers: int,
        cache_dir: str,
    ) -> None:
        super().__init__()
        if not 0 < fraction <= 1:
            raise SepkitError(f"spectrograms.fraction={fraction} must be in (0, 1]")
        for name, value in (("data.samples_per_track", samples_per_clip), ("data.batch_size", batch_size)):
            if value < 1:
                raise SepkitError(f"{name}={value} must be at least 1")
        if not isinstance(source, TrackSource):
            source = source(root=root, exclude=list(exclude or ()))
        self.source = source
        self.folders = isinstance(source, CategoryFolders)
        self.requested = list(categories) if categories else None
        self.fraction = fraction
        self.split = split
        self.split_seed = split_seed
        self.split_fractions = list(split_fractions)
        self.n_songs = n_songs
        self.sample_rate = sample_rate
        self.size = (max_frames - 1) * hop_length
        self.samples_per_clip = samples_per_clip
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.cache = TrackCache(cache_dir, sample_rate, channels=1)
        self.categories: list[str] = []
        self.tracks: dict[str, list[TrackInfo]] = {}
        self.clips: dict[str, list[Clip]] = {}
        self.audio: dict[str, list[np.ndarray]] = {}

    @property
    def root(self) -> Path:
        return self.source.root

    def prepare_data(self) -> None:
        """Generate the dataset if the source makes one, list and split it, decode train and valid."""
        self.source.prepare()
        self._load()

    def setup(self, stage: str | None = None) -> None:
        self._load()
        self.train_set = RandomCrops(self.audio["train"], self.clips["train"], self.size, self.samples_per_clip)
        self.valid_set = self.windows("valid")
        if len(self.valid_set) == 0:
            raise SepkitError("every validation window is silent; add clips or raise spectrograms.fraction")

    def _choose_categories(self) -> list[str]:
        offered = self.source.categories if self.folders else list(self.source.stems)
        chosen = self.requested or offered
        unknown = [c for c in chosen if c not in offered]
        if unknown:
            raise SepkitError(f"spectrograms.categories={chosen}: {self.source} offers {', '.join(offered)}")
        if len(chosen) < 2:
            raise SepkitError(f"a conditional GAN needs at least 2 categories; {self.source} offers {offered}")
        return chosen

    def _split_tracks(self) -> dict[str, list[TrackInfo]]:
        tracks = self.source.tracks()
        if not self.folders:
            tracks = cap_tracks(tracks, self.n_songs, self.split_seed)
            if self.split == "random":
                return random_split(tracks, self.split_seed, self.split_fractions)
            if self.split == "folder":
                return folder_split(tracks, self.split_seed, self.split_fractions)
            if self.split == "official":
                return official_split(tracks, musdb_validation_names())
            raise SepkitError(f"data.split={self.split!r} must be one of random, folder, official")
        if self.split != "random":
            raise SepkitError(f"data.split={self.split}: category folders split each category's files at random")
        out: dict[str, list[TrackInfo]] = {name: [] for name in SPLITS}
        for category in self.categories:
            own = [t for t in tracks if CategoryFolders.category(t) == category]
            own = cap_tracks(own, self.n_songs, self.split_seed)
            if len(own) < 3:
                raise SepkitError(
                    f"category {category!r} has {len(own)} file(s) in {self.root}; a train/valid/test split needs 3"
                )
            for name, part in random_split(own, self.split_seed, self.split_fractions).items():
                out[name] += part
        return out

    def _clips(self, tracks: list[TrackInfo]) -> list[Clip]:
        if self.folders:
            clips = [
                Clip(i, 0, self.categories.index(CategoryFolders.category(t)))
                for i, t in enumerate(tracks)
                if CategoryFolders.category(t) in self.categories
            ]
        else:
            clips = [
                Clip(i, self.source.stems.index(c), label)
                for i in range(len(tracks))
                for label, c in enumerate(self.categories)
            ]
        if self.fraction == 1:
            return clips
        rng = np.random.default_rng(self.split_seed)
        kept = []
        for label in range(len(self.categories)):
            own = [c for c in clips if c.label == label]
            keep = max(1, round(self.fraction * len(own))) if own else 0
            kept += [own[i] for i in sorted(rng.permutation(len(own))[:keep])]
        return kept

    def _load(self) -> None:
        if self.tracks:
            return
        self.categories = self._choose_categories()
        self.tracks = self._split_tracks()
        self.clips = {name: self._clips(tracks) for name, tracks in self.tracks.items()}
        counts = {name: len(clips) for name, clips in self.clips.items()}
        log.info("categories %s; clips per split %s", self.categories, counts)
        for name in ("train", "valid"):  # the test split is evaluate.py's
            self.audio[name] = self.cache.load(self.source, self.tracks[name])

    def windows(self, split: str) -> FixedWindows:
        """The fixed windows of a split (decodes the test split on first use)."""
        self._load()
        if split not in self.audio:
            self.audio[split] = self.cache.load(self.source, self.tracks[split])
        return FixedWindows(self.audio[split], self.clips[split], self.size)

    def write_splits(self, path: str | Path) -> None:
        """Write the track lists of each split as JSON."""
        self._load()
        lists = {name: [t.name for t in self.tracks[name]] for name in SPLITS}
        Path(path).write_text(json.dumps({"split": self.split, "seed": self.split_seed, **lists}, indent=2))

    def loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        return make_loader(dataset, self.batch_size, self.num_workers, shuffle)

    def train_dataloader(self) -> DataLoader:
        return self.loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader(self.valid_set, shuffle=False)
