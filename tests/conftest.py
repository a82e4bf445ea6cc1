"""Shared fixtures: a tiny generated MUSDB-shaped dataset and a runner for the entry points."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import runpy
import shutil
import subprocess
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from sepkit.data.synthetic import SyntheticConfig, ensure_dataset

ROOT = Path(__file__).resolve().parents[1]

# pytest-xdist (make test runs one worker per core): the workers share the cores, so each one's torch
# (and each process a test starts) gets its share of threads instead of all of them.
if (_workers := int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))) > 1:
    import torch

    _threads = max(1, (os.cpu_count() or 1) // _workers)
    os.environ["OMP_NUM_THREADS"] = str(_threads)
    torch.set_num_threads(_threads)
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


# Zoo models too large to run in the tests at their configured size, and overrides that narrow
# them (the structure stays the real one).
NARROW = {
    "tfc_tdf": [
        *("model.net.channels=8", "model.net.growth=8", "model.net.levels=1", "model.patch_frames=64"),
        *("model.n_fft=1024", "model.hop_length=256", "model.max_bins=512"),  # smaller images
    ]
}
# Variants of a zoo model that change what its masks are, tested beside the zoo: name -> (model, overrides)
MASK_VARIANTS = {"tfc_tdf:complex": ("tfc_tdf", ["model.net.mask=complex"])}


def model_overrides(name: str) -> list[str]:
    """Hydra overrides that build zoo model (or mask variant) ``name`` at the tests' size."""
    model, extra = MASK_VARIANTS.get(name, (name, []))
    return [f"model={model}", *NARROW.get(model, []), *extra]


def train_shrunk_recipe(experiment: str, overrides: list[str], root: Path, data_root: Path, cache: Path):
    """Train ``experiment=EXPERIMENT`` (a GPU recipe) for one short epoch on the CPU, on the tiny dataset
    at 2-s segments, narrowed by ``overrides``; returns the separator of its last checkpoint."""
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from sepkit.checkpoint import load_separator
    from sepkit.training import train

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"experiment={experiment}",
                *overrides,
                "trainer=cpu",
                "data=synthetic",
                f"data.root={data_root}",
                f"data.source.generate.tracks={TINY.tracks}",
                f"data.source.generate.seconds={TINY.seconds}",
                f"data.source.generate.seed={TINY.seed}",
                "data.split=random",
                "data.segment_seconds=2.0",
                "data.val_segment_seconds=2.0",
                "data.samples_per_track=1",
                "data.batch_size=2",
                "trainer.max_epochs=1",
                "trainer.precision=32-true",
                f"paths.root_dir={root}",
                f"paths.cache_dir={cache}",
                "logger=none",
            ],
        )
    with open_dict(cfg):
        cfg.paths.output_dir = str(root / "run")
    train(cfg)
    return load_separator(root / "run" / "checkpoints" / "last.ckpt")


def shared_dir(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """``name`` in a folder every pytest-xdist worker of this run shares (the session's own without
    xdist): what is made there once (under a lock) serves all workers."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared" / name


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated dataset shared by the whole run (read-only for tests); generated once, under its lock."""
    return ensure_dataset(shared_dir(tmp_path_factory, "synthetic"), TINY)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def run_entry(
    script: str,
    *overrides: str,
    cwd: Path = ROOT,
    timeout: int = 600,
    env: dict[str, str] | None = None,
    isolated: bool = False,
) -> subprocess.CompletedProcess:
    """Run an entry point (e.g. ``train.py``) as a user would, capturing its output and exit code.

    By default in this process (``python train.py ...`` through :func:`runpy.run_path`, with its
    argv, folder and environment): the same code path without three seconds of imports per run.
    ``isolated=True`` (or ``SEPKIT_TEST_SUBPROCESS=1`` for the whole suite) starts a fresh Python
    instead, for what a process must show on its own: its imports, its exit on a signal, DDP workers.
    In-process runs set ``WANDB_CONSOLE=off`` (W&B's console capture and this one's do not mix).
    """
    env = {"PYTHONWARNINGS": "ignore", "HYDRA_FULL_ERROR": "0", **(env or {})}
    if isolated or os.environ.get("SEPKIT_TEST_SUBPROCESS") == "1":
        return subprocess.run(
            [sys.executable, str(ROOT / script), *overrides],
            cwd=cwd,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    # W&B's console capture would fight the in-process capture of stdout and stderr (it hangs)
    argv = [str(ROOT / script), *overrides]
    return _run_in_process(
        lambda: runpy.run_path(argv[0], run_name="__main__"), argv, cwd, {"WANDB_CONSOLE": "off", **env}
    )


def run_sepkit_command(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """``sepkit ARGS...`` in this process (the console script's function with its argv)."""
    from sepkit.commands import main

    return _run_in_process(main, ["sepkit", *args], cwd, {"PYTHONWARNINGS": "ignore", "HYDRA_FULL_ERROR": "0"})


def _run_in_process(
    run: Callable[[], object], argv: list[str], cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess:
    import torch

    out, err, code = io.StringIO(), io.StringIO(), 0
    saved_env, saved_argv, saved_cwd = dict(os.environ), sys.argv, os.getcwd()
    root = logging.getLogger()
    saved_logging = (
        list(root.handlers),
        root.level,
        {n: lg.disabled for n, lg in logging.Logger.manager.loggerDict.items() if isinstance(lg, logging.Logger)},
    )
    saved_torch = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(), torch.backends.mkldnn.enabled)
    os.environ.update(env)
    sys.argv = list(argv)
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                run()
            except SystemExit as exc:  # as the interpreter would exit
                if isinstance(exc.code, str):
                    print(exc.code, file=sys.stderr)
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            except Exception:  # uncaught: a traceback and exit status 1, as python prints it
                traceback.print_exc()
                code = 1
    finally:
        if (wandb := sys.modules.get("wandb")) is not None and wandb.run is not None:
            wandb.finish()  # as the process's exit would: the next run starts its own
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
        root.handlers[:] = saved_logging[0]
        root.setLevel(saved_logging[1])
        for name, disabled in saved_logging[2].items():
            logging.getLogger(name).disabled = disabled
        torch.set_num_threads(saved_torch[0])
        torch.use_deterministic_algorithms(saved_torch[1])
        torch.backends.mkldnn.enabled = saved_torch[2]
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


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
    """A checkpoint from a one-epoch run on the tiny dataset (read-only for tests), trained once per run."""
    from filelock import FileLock

    tmp = shared_dir(tmp_path_factory, "trained")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    ckpt = tmp / "run" / "checkpoints" / "best.ckpt"
    with FileLock(f"{tmp}.lock"):
        if not (tmp / "run" / "summary.json").is_file():
            shutil.rmtree(tmp, ignore_errors=True)
            result = run_entry("train.py", *tiny_train_args(tmp, tiny_root, cache_dir))
            assert result.returncode == 0, result.stderr[-3000:]
    return ckpt
