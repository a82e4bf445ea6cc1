"""Train / valid / test track lists."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sepkit.data.sources.base import TrackInfo
from sepkit.errors import SepkitError

SPLITS = ("train", "valid", "test")


def cap_tracks(tracks: Sequence[TrackInfo], n_songs: int | None, seed: int) -> list[TrackInfo]:
    """Keep ``n_songs`` tracks, drawn deterministically from ``seed`` (all when None)."""
    tracks = sorted(tracks, key=lambda t: (t.subset, t.name))
    if n_songs is None or n_songs >= len(tracks):
        return tracks
    if n_songs < 1:
        raise SepkitError(f"data.n_songs={n_songs} must be at least 1 (or null for all tracks)")
    keep = np.random.default_rng(seed).permutation(len(tracks))[:n_songs]
    return [tracks[i] for i in sorted(keep)]


def random_split(
    tracks: Sequence[TrackInfo], seed: int, fractions: Sequence[float] = (0.7, 0.15, 0.15)
) -> dict[str, list[TrackInfo]]:
    """Deterministic split of all tracks by ``fractions``; every split gets at least one track."""
    if len(fractions) != 3 or any(f <= 0 for f in fractions):
        raise SepkitError(f"data.split_fractions={list(fractions)} must be three positive numbers (train, valid, test)")
    if len(tracks) < 3:
        raise SepkitError(
            f"{len(tracks)} track(s) is too few for a train/valid/test split: raise data.n_songs "
            "or add tracks (3 is the minimum)"
        )
    total = float(sum(fractions))
    n = len(tracks)
    n_valid = max(1, round(n * fractions[1] / total))
    n_test = max(1, round(n * fractions[2] / total))
    n_train = n - n_valid - n_test
    if n_train < 1:
        raise SepkitError(f"{n} tracks leave none for training with data.split_fractions={list(fractions)}")
    ordered = sorted(tracks, key=lambda t: (t.subset, t.name))
    order = np.random.default_rng(seed).permutation(n)
    picked = [ordered[i] for i in order]
    return {
        "train": sorted(picked[:n_train], key=lambda t: t.name),
        "valid": sorted(picked[n_train : n_train + n_valid], key=lambda t: t.name),
        "test": sorted(picked[n_train + n_valid :], key=lambda t: t.name),
    }


def folder_split(
    tracks: Sequence[TrackInfo], seed: int, fractions: Sequence[float] = (0.7, 0.15, 0.15)
) -> dict[str, list[TrackInfo]]:
    """The folder's own split: test = its ``test/`` subset; valid = its ``valid/`` subset if it has
    one, else a deterministic ``valid / (train + valid)`` share of ``train/`` drawn from ``seed``."""
    if len(fractions) != 3 or any(f <= 0 for f in fractions):
        raise SepkitError(f"data.split_fractions={list(fractions)} must be three positive numbers (train, valid, test)")
    by_subset = {s: sorted((t for t in tracks if t.subset == s), key=lambda t: t.name) for s in SPLITS}
    if not by_subset["test"]:
        raise SepkitError(
            "data.split=folder needs a test/ folder inside data.root (the held-out set); "
            "use data.split=random for a folder without one"
        )
    train, valid = by_subset["train"], by_subset["valid"]
    if not valid:
        n_valid = max(1, round(len(train) * fractions[1] / (fractions[0] + fractions[1])))
        if len(train) - n_valid < 1:
            raise SepkitError(f"data.split=folder: train/ has {len(train)} track(s), too few to carve a valid set")
        pick = set(np.random.default_rng(seed).permutation(len(train))[:n_valid].tolist())
        valid = [t for i, t in enumerate(train) if i in pick]
        train = [t for i, t in enumerate(train) if i not in pick]
    if not train:
        raise SepkitError("data.split=folder: train/ holds no tracks")
    return {"train": train, "valid": valid, "test": by_subset["test"]}


def official_split(tracks: Sequence[TrackInfo], validation_names: Sequence[str]) -> dict[str, list[TrackInfo]]:
    """MUSDB18's own split: train subset minus musdb's validation list / that list / test subset."""
    valid_set = set(validation_names)
    split = {
        "train": [t for t in tracks if t.subset == "train" and t.name not in valid_set],
        "valid": [t for t in tracks if t.subset == "train" and t.name in valid_set],
        "test": [t for t in tracks if t.subset == "test"],
    }
    empty = [k for k, v in split.items() if not v]
    if empty:
        raise SepkitError(
            f"data.split=official leaves {'/'.join(empty)} empty: it needs MUSDB18's own track names "
            "(musdb's validation list); use data.split=random for other folders"
        )
    return split


def musdb_validation_names() -> list[str]:
    """musdb's list of the 14 validation tracks of MUSDB18's train subset."""
    from pathlib import Path

    import musdb
    import yaml

    setup = yaml.safe_load((Path(musdb.__file__).parent / "configs" / "mus.yaml").read_text())
    return list(setup["validation_tracks"])
