"""The MUSDB LightningDataModule: splits, training segments with augmentation, fixed validation segments.

Batches are ``(mixture (batch, channels, time), targets (batch, targets, channels, time))`` at the
model's sample rate, with ``mixture == targets.sum(1)``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from sepkit.data.augment import FrequencyMask, SourceAugment
from sepkit.data.split import SPLITS, cap_tracks, musdb_validation_names, official_split, random_split
from sepkit.data.synthetic import SyntheticConfig, ensure_dataset
from sepkit.data.tracks import MUSDB_HINT, SOURCES, TrackCache, TrackRef, find_tracks
from sepkit.errors import SepkitError

log = logging.getLogger(__name__)

# What each target is made of, by source index in ``SOURCES``.
TARGET_SOURCES = {
    "vocals": (0,),
    "drums": (1,),
    "bass": (2,),
    "other": (3,),
    "accompaniment": (1, 2, 3),
}
SILENCE_RMS = 10 ** (-50 / 20)


def group_targets(sources: torch.Tensor, targets: Sequence[str]) -> torch.Tensor:
    """Sum ``(sources, channels, time)`` into ``(targets, channels, time)``."""
    return torch.stack([sources[list(TARGET_SOURCES[t])].sum(0) for t in targets])


class TrainSegments(Dataset):
    """Random segments of random tracks; ``samples_per_track`` items per track and epoch.

    With ``remix`` each source comes from an independently drawn track and offset.
    """

    def __init__(
        self,
        audio: list[np.ndarray],
        targets: Sequence[str],
        segment: int,
        samples_per_track: int,
        augment: SourceAugment | None,
        remix: bool,
    ) -> None:
        self.audio = audio
        self.targets = list(targets)
        self.segment = segment
        self.samples_per_track = samples_per_track
        self.augment = augment
        self.remix = remix

    def __len__(self) -> int:
        return len(self.audio) * self.samples_per_track

    def _clip(self, track: int, source: int) -> torch.Tensor:
        length = self.audio[track].shape[-1]
        offset = int(torch.randint(0, length - self.segment + 1, ()).item())
        return torch.from_numpy(np.array(self.audio[track][source, :, offset : offset + self.segment]))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        track = index // self.samples_per_track
        if self.remix:
            picks = torch.randint(0, len(self.audio), (len(SOURCES),)).tolist()
            sources = torch.stack([self._clip(t, s) for s, t in enumerate(picks)])
        else:
            length = self.audio[track].shape[-1]
            offset = int(torch.randint(0, length - self.segment + 1, ()).item())
            sources = torch.from_numpy(np.array(self.audio[track][:, :, offset : offset + self.segment]))
        if self.augment is not None:
            sources = self.augment(sources)
        targets = group_targets(sources, self.targets)
        return targets.sum(0), targets


class FixedSegments(Dataset):
    """Deterministic consecutive segments of each track, skipping those where a target is silent
    (SI-SDR is undefined against a silent reference)."""

    def __init__(self, audio: list[np.ndarray], targets: Sequence[str], segment: int, per_track: int) -> None:
        self.audio = audio
        self.targets = list(targets)
        self.segment = segment
        self.index: list[tuple[int, int]] = []
        for t, track in enumerate(audio):
            kept = 0
            for offset in range(0, track.shape[-1] - segment + 1, segment):
                if kept == per_track:
                    break
                grouped = group_targets(torch.from_numpy(np.array(track[:, :, offset : offset + segment])), targets)
                if grouped.pow(2).mean(dim=(1, 2)).sqrt().min() > SILENCE_RMS:
                    self.index.append((t, offset))
                    kept += 1

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        t, offset = self.index[index]
        sources = torch.from_numpy(np.array(self.audio[t][:, :, offset : offset + self.segment]))
        targets = group_targets(sources, self.targets)
        return targets.sum(0), targets


class MUSDBDataModule(L.LightningDataModule):
    """MUSDB18 / MUSDB18-HQ (or the built-in synthetic set in the same layout).

    Args:
        root: folder with ``train/`` and ``test/``.
        sample_rate: the model's rate; tracks are resampled to it.
        targets: ``[vocals, accompaniment]`` or any of vocals/drums/bass/other.
        is_wav: True for MUSDB18-HQ wav folders, False for stem.mp4, None to detect.
        split: ``random`` (deterministic fractions from ``split_seed``) or ``official``.
        split_seed: seed of the random split and of the ``n_songs`` draw.
        split_fractions: train/valid/test fractions of the random split.
        n_songs: use at most this many tracks (None: all).
        segment_seconds: length of training segments.
        samples_per_track: training segments per track and epoch.
        val_segment_seconds: length of the fixed validation segments.
        val_segments_per_track: validation segments per track.
        batch_size: training and validation batch size.
        num_workers: DataLoader workers.
        cache_dir: where decoded, resampled tracks are cached.
        augment: ``gain``, ``channel_swap``, ``sign_flip``, ``remix`` and ``freq_mask``
            (``{max_width, count}`` or null) switches.
        generate: parameters of the built-in synthetic dataset, generated into ``root`` on first
            use (None for a real dataset).
    """

    def __init__(
        self,
        root: str,
        sample_rate: int,
        targets: Sequence[str],
        is_wav: bool | None,
        split: str,
        split_seed: int,
        split_fractions: Sequence[float],
        n_songs: int | None,
        segment_seconds: float,
        samples_per_track: int,
        val_segment_seconds: float,
        val_segments_per_track: int,
        batch_size: int,
        num_workers: int,
        cache_dir: str,
        augment: dict,
        generate: dict | None = None,
    ) -> None:
        super().__init__()
        if root is None or str(root).strip() in ("", "None", "???"):
            raise SepkitError(f"data=musdb needs data.root=DIR. {MUSDB_HINT}")
        unknown = [t for t in targets if t not in TARGET_SOURCES]
        if unknown or not targets:
            raise SepkitError(f"data.targets={list(targets)}: each must be one of {', '.join(TARGET_SOURCES)}")
        if split not in ("random", "official"):
            raise SepkitError(f"data.split={split!r} must be 'random' or 'official'")
        for name, value in [("segment_seconds", segment_seconds), ("val_segment_seconds", val_segment_seconds)]:
            if value <= 0:
                raise SepkitError(f"data.{name}={value} must be positive")
        for name, value in [
            ("samples_per_track", samples_per_track),
            ("val_segments_per_track", val_segments_per_track),
            ("batch_size", batch_size),
        ]:
            if value < 1:
                raise SepkitError(f"data.{name}={value} must be at least 1")
        self.root = Path(root)
        self.sample_rate = sample_rate
        self.targets = list(targets)
        self.is_wav = is_wav
        self.split = split
        self.split_seed = split_seed
        self.split_fractions = list(split_fractions)
        self.n_songs = n_songs
        self.segment = int(round(segment_seconds * sample_rate))
        self.samples_per_track = samples_per_track
        self.val_segment = int(round(val_segment_seconds * sample_rate))
        self.val_segments_per_track = val_segments_per_track
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.cache = TrackCache(cache_dir, sample_rate)
        augment = dict(augment)
        self.remix = bool(augment.pop("remix", False))
        freq_mask = augment.pop("freq_mask", None)
        self.spec_augment = FrequencyMask(**freq_mask) if freq_mask else None
        self.source_augment = SourceAugment(**augment)
        self.generate = SyntheticConfig(**generate) if generate else None
        self.tracks: dict[str, list[TrackRef]] = {}
        self.audio: dict[str, list[np.ndarray]] = {}

    def prepare_data(self) -> None:
        """Generate the synthetic set if needed and fill the decode cache (runs once per node)."""
        if self.generate is not None:
            ensure_dataset(self.root, self.generate)
        self._load_splits()

    def _load_splits(self) -> None:
        if self.tracks:
            return
        tracks = cap_tracks(find_tracks(self.root, self.is_wav), self.n_songs, self.split_seed)
        if self.split == "random":
            self.tracks = random_split(tracks, self.split_seed, self.split_fractions)
        else:
            self.tracks = official_split(tracks, musdb_validation_names())
        for name in ("train", "valid"):  # the test split is evaluate.py's, on full tracks
            self.audio[name] = self.cache.load(self.tracks[name])
        for name in ("train", "valid"):
            idx = min(range(len(self.audio[name])), key=lambda i: self.audio[name][i].shape[-1])
            short = self.audio[name][idx]
            seg = self.segment if name == "train" else self.val_segment
            if short.shape[-1] < seg:
                track = self.tracks[name][idx].name
                raise SepkitError(
                    f"data.{'segment_seconds' if name == 'train' else 'val_segment_seconds'}="
                    f"{seg / self.sample_rate:g} is longer than {name} track {track!r} "
                    f"({short.shape[-1] / self.sample_rate:.1f} s); use shorter segments"
                )

    def setup(self, stage: str | None = None) -> None:
        self._load_splits()
        self.train_set = TrainSegments(
            self.audio["train"],
            self.targets,
            self.segment,
            self.samples_per_track,
            self.source_augment,
            self.remix,
        )
        self.valid_set = FixedSegments(self.audio["valid"], self.targets, self.val_segment, self.val_segments_per_track)
        if len(self.valid_set) == 0:
            raise SepkitError(
                "no validation segment has every target audible; lower data.val_segment_seconds or add tracks"
            )

    def write_splits(self, path: str | Path) -> None:
        """Write the track lists of each split as JSON."""
        self._load_splits()
        lists = {name: [t.name for t in self.tracks[name]] for name in SPLITS}
        Path(path).write_text(json.dumps({"split": self.split, "seed": self.split_seed, **lists}, indent=2))

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            drop_last=shuffle,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.valid_set, shuffle=False)
