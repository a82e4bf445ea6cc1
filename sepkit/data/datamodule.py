"""The separation LightningDataModule: splits, training segments with augmentation, fixed
validation segments, over any :class:`~sepkit.data.sources.TrackSource`.

Batches are ``(mixture (batch, channels, time), targets (batch, targets, channels, time),
lengths (batch,))`` at the model's sample rate, with ``mixture == targets.sum(1)``. ``lengths``
counts the real samples of each example: clips shorter than a segment are zero-padded at the end
and the loss leaves the padding out.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from sepkit.data.augment import FrequencyMask, Repitch, SourceAugment
from sepkit.data.cache import TrackCache
from sepkit.data.sources.base import TrackInfo, TrackSource, group_targets
from sepkit.data.split import SPLITS, cap_tracks, folder_split, musdb_validation_names, official_split, random_split
from sepkit.errors import SepkitError

log = logging.getLogger(__name__)

SILENCE_RMS = 10 ** (-50 / 20)
SPLIT_KINDS = ("random", "folder", "official")


def _span(audio: np.ndarray, stems: slice | int, offset: int, segment: int) -> torch.Tensor:
    """``audio[stems, :, offset:offset + segment]`` as a tensor, zero-padded to ``segment``."""
    clip = torch.from_numpy(np.array(audio[stems, ..., offset : offset + segment]))
    return torch.nn.functional.pad(clip, (0, segment - clip.shape[-1]))


def make_loader(dataset: Dataset, batch_size: int, num_workers: int, shuffle: bool) -> DataLoader:
    """The DataLoader of every sepkit data module: persistent workers, pinned memory with CUDA, and
    training batches (``shuffle``) that drop a ragged last batch."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
        drop_last=shuffle and len(dataset) > batch_size,
    )


class TrainSegments(Dataset):
    """Random segments of random tracks; ``samples_per_track`` items per track and epoch.

    With ``remix`` each stem comes from an independently drawn track and offset. With ``repitch``
    each stem plays at its own random speed when remixed, the whole example at one speed otherwise
    (a song's stems stay in time with each other). Tracks shorter than ``segment`` are used whole,
    zero-padded at the end.
    """

    def __init__(
        self,
        audio: list[np.ndarray],
        groups: Sequence[Sequence[int]],
        segment: int,
        samples_per_track: int,
        augment: SourceAugment | None,
        remix: bool,
        repitch: Repitch | None = None,
    ) -> None:
        self.audio = audio
        self.groups = [tuple(g) for g in groups]
        self.segment = segment
        self.samples_per_track = samples_per_track
        self.augment = augment
        self.remix = remix
        self.repitch = repitch
        self.n_stems = audio[0].shape[0]

    def __len__(self) -> int:
        return len(self.audio) * self.samples_per_track

    def _offset(self, track: int, span: int) -> int:
        return int(torch.randint(0, max(1, self.audio[track].shape[-1] - span + 1), ()).item())

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        track = index // self.samples_per_track
        picks = torch.randint(0, len(self.audio), (self.n_stems,)).tolist() if self.remix else [track] * self.n_stems
        speeds = [Fraction(1)] * self.n_stems
        if self.repitch is not None:
            speeds = [self.repitch.draw() for _ in picks] if self.remix else [self.repitch.draw()] * self.n_stems
        spans = [Repitch.span(self.segment, speed) for speed in speeds]
        if self.remix:
            offsets = [self._offset(t, span) for t, span in zip(picks, spans, strict=True)]
        else:
            offsets = [self._offset(track, spans[0])] * self.n_stems
        stems = torch.stack(
            [
                Repitch.apply(_span(self.audio[t], s, offset, span), speed, self.segment)
                for s, (t, offset, span, speed) in enumerate(zip(picks, offsets, spans, speeds, strict=True))
            ]
        )
        # real samples: what the track held from the offset, at the stem's speed
        length = max(
            min(self.segment, math.ceil(min(self.audio[t].shape[-1] - offset, span) / speed))
            for t, offset, span, speed in zip(picks, offsets, spans, speeds, strict=True)
        )
        if self.augment is not None:
            stems = self.augment(stems)
        targets = group_targets(stems, self.groups)
        return targets.sum(0), targets, length


class FixedSegments(Dataset):
    """Deterministic consecutive segments of each track (a short track gives one, padded), skipping
    those where a target is silent (SI-SDR is undefined against a silent reference)."""

    def __init__(self, audio: list[np.ndarray], groups: Sequence[Sequence[int]], segment: int, per_track: int) -> None:
        self.audio = audio
        self.groups = [tuple(g) for g in groups]
        self.segment = segment
        self.index: list[tuple[int, int]] = []
        for t, track in enumerate(audio):
            kept = 0
            for offset in range(0, max(1, track.shape[-1] - segment + 1), segment):
                if kept == per_track:
                    break
                grouped = group_targets(_span(track, slice(None), offset, segment), self.groups)
                real = min(segment, track.shape[-1])
                if grouped.pow(2).mean(dim=(1, 2)).mul(segment / real).sqrt().min() > SILENCE_RMS:
                    self.index.append((t, offset))
                    kept += 1

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        t, offset = self.index[index]
        targets = group_targets(_span(self.audio[t], slice(None), offset, self.segment), self.groups)
        return targets.sum(0), targets, min(self.segment, self.audio[t].shape[-1] - offset)


class SeparationDataModule(L.LightningDataModule):
    """Training and validation data from a track source.

    Args:
        source: the folder's layout: a :class:`TrackSource`, or a factory called with ``root`` and
            ``exclude`` (what ``conf/data/<source>.yaml`` gives as a ``_partial_``).
        root: the dataset folder.
        exclude: glob patterns of track names never used.
        sample_rate: the model's rate; tracks are resampled to it.
        targets: target names the source offers (e.g. ``[vocals, accompaniment]``).
        channels: channels the model is fed (mono tracks are duplicated, stereo averaged).
        split: ``random`` (fractions of all tracks from ``split_seed``), ``folder`` (test = the
            folder's ``test/``, valid = its ``valid/`` or a share of ``train/``) or ``official``
            (MUSDB18's own lists).
        split_seed: seed of the random split and of the ``n_songs`` draw.
        split_fractions: train/valid/test fractions.
        n_songs: use at most this many tracks (None: all).
        segment_seconds: length of training segments (shorter clips are padded).
        samples_per_track: training segments per track and epoch.
        val_segment_seconds: length of the fixed validation segments.
        val_segments_per_track: validation segments per track.
        batch_size: training and validation batch size.
        num_workers: DataLoader workers.
        cache_dir: where decoded, resampled tracks are cached.
        augment: ``gain``, ``channel_swap``, ``sign_flip``, ``treble``, ``remix``, ``repitch``
            (``[low, high]`` semitones or null: :class:`~sepkit.data.augment.Repitch`) and
            ``freq_mask`` (``{max_width, count}`` or null) switches.
    """

    def __init__(
        self,
        source: TrackSource | Callable[..., TrackSource],
        root: str | None,
        exclude: Sequence[str],
        sample_rate: int,
        targets: Sequence[str],
        channels: int,
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
    ) -> None:
        super().__init__()
        if split not in SPLIT_KINDS:
            raise SepkitError(f"data.split={split!r} must be one of {', '.join(SPLIT_KINDS)}")
        if channels not in (1, 2):
            raise SepkitError(f"data.channels={channels} must be 1 or 2")
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
        if num_workers < 0:
            raise SepkitError(f"data.num_workers={num_workers} must be 0 or more")
        if not isinstance(source, TrackSource):
            source = source(root=root, exclude=list(exclude or ()))
        self.source = source
        self.targets = list(targets)
        self.groups = source.stem_groups(self.targets)
        self.sample_rate = sample_rate
        self.channels = channels
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
        self.cache = TrackCache(cache_dir, sample_rate, channels)
        augment = dict(augment)
        self.remix = bool(augment.pop("remix", False))
        freq_mask = augment.pop("freq_mask", None)
        self.spec_augment = FrequencyMask(**freq_mask) if freq_mask else None
        repitch = augment.pop("repitch", None)
        self.repitch = Repitch(repitch) if repitch else None
        self.source_augment = SourceAugment(**augment, sample_rate=sample_rate)
        self.tracks: dict[str, list[TrackInfo]] = {}
        self.audio: dict[str, list[np.ndarray]] = {}

    @property
    def root(self) -> Path:
        return self.source.root

    @property
    def covers_mixture(self) -> bool:
        """Whether the targets add up to the mixture (else inference adds a residual)."""
        return self.source.covers_mixture(self.targets)

    def prepare_data(self) -> None:
        """Generate the dataset if the source makes one, and fill the decode cache (once per node)."""
        self.source.prepare()
        self._load_splits()

    def _split(self) -> dict[str, list[TrackInfo]]:
        tracks = cap_tracks(self.source.tracks(), self.n_songs, self.split_seed)
        if self.split == "random":
            return random_split(tracks, self.split_seed, self.split_fractions)
        if self.split == "folder":
            return folder_split(tracks, self.split_seed, self.split_fractions)
        return official_split(tracks, musdb_validation_names())

    def _load_splits(self) -> None:
        if self.tracks:
            return
        self.tracks = self._split()
        for name, segment in (("train", self.segment), ("valid", self.val_segment)):
            short = [t for t in self.tracks[name] if t.frames * self.sample_rate < segment * t.sample_rate]
            if short:
                log.info(
                    "%d of %d %s track(s) are shorter than a %.1f-s segment (shortest %r, %.1f s): "
                    "they are zero-padded and the padding is left out of the loss",
                    len(short),
                    len(self.tracks[name]),
                    name,
                    segment / self.sample_rate,
                    min(short, key=lambda t: t.frames / t.sample_rate).name,
                    min(t.seconds for t in short),
                )
        for name in ("train", "valid"):  # the test split is evaluate.py's, on full tracks
            self.audio[name] = self.cache.load(self.source, self.tracks[name])

    def train_mixtures(self) -> Iterator[torch.Tensor]:
        """The training tracks' mixtures ``(channels, time)`` at the model rate (never valid or test)."""
        self._load_splits()
        for audio in self.audio["train"]:
            yield group_targets(torch.from_numpy(audio), self.groups).sum(0)

    def setup(self, stage: str | None = None) -> None:
        self._load_splits()
        self.train_set = TrainSegments(
            self.audio["train"],
            self.groups,
            self.segment,
            self.samples_per_track,
            self.source_augment,
            self.remix,
            self.repitch,
        )
        self.valid_set = FixedSegments(self.audio["valid"], self.groups, self.val_segment, self.val_segments_per_track)
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
        return make_loader(dataset, self.batch_size, self.num_workers, shuffle)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.valid_set, shuffle=False)
