"""Shared fixtures: a tiny generated MUSDB-shaped dataset and a runner for the entry points."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sepkit.data.synthetic import SyntheticConfig, ensure_dataset

ROOT = Path(__file__).resolve().parents[1]
TINY = SyntheticConfig(tracks=6, seconds=8.0, seed=3)
# Overrides that point a run at the tiny dataset and keep it fast.
TINY_RUN = [
    f"data.source.generate.tracks={TINY.tracks}",
    f"data.source.generate.seconds={TINY.seconds}",
    f"data.source.generate.seed={TINY.seed}",
    "data.segment_seconds=2.0",
    "data.val_segment_seconds=2.0",
    "data.samples_per_track=2",
    "data.val_segments_per_track=1",
    "data.batch_size=2",
    "trainer.max_epochs=1",
    "trainer.num_sanity_val_steps=0",
    "model.net.channels=[4,8,16,16,16,16]",
]


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated dataset shared by the whole session (read-only for tests)."""
    return ensure_dataset(tmp_path_factory.mktemp("data") / "synthetic", TINY)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def run_entry(
    script: str, *overrides: str, cwd: Path = ROOT, timeout: int = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run an entry point (e.g. ``train.py``) as a user would, capturing its output."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / script), *overrides],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def tiny_train_args(tmp_path: Path, tiny_root: Path, cache_dir: Path) -> list[str]:
    """Overrides for a fast run on the tiny dataset with every output under ``tmp_path``."""
    return [
        f"paths.root_dir={tmp_path}",
        f"paths.cache_dir={cache_dir}",
        f"data.root={tiny_root}",
        f"hydra.run.dir={tmp_path}/run",
        *TINY_RUN,
    ]


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory, tiny_root: Path, cache_dir: Path) -> Path:
    """A checkpoint from a one-epoch run on the tiny dataset."""
    tmp = tmp_path_factory.mktemp("trained")
    result = run_entry("train.py", *tiny_train_args(tmp, tiny_root, cache_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp / "run" / "checkpoints" / "best.ckpt"
