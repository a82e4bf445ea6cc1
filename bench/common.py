"""What the benchmarks share: running an entry point as its own process (logged, or timed with its
peak memory) and a long generated test track."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
RATE = 44100


def run_logged(cmd: list[str], log: Path, env: dict[str, str] | None = None, cores: str | None = None) -> None:
    """Run ``cmd`` from the repository root with its output in ``log`` (pinned to ``cores`` if given);
    on failure stop with its last lines."""
    log.parent.mkdir(parents=True, exist_ok=True)
    pin = ["taskset", "-c", cores] if cores and shutil.which("taskset") else []
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    with log.open("w") as out:
        code = subprocess.call([*pin, *cmd], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    if code:
        tail = log.read_text().strip().splitlines()[-15:]
        sys.exit(f"{' '.join(cmd[:3])} failed (exit {code}); last lines of {log}:\n" + "\n".join(tail))


def timed(cmd: list[str], threads: int | None = None) -> tuple[str, float, float]:
    """Run ``cmd``; returns its output, wall seconds and peak RSS in MB (this parent stays small,
    so the child's ru_maxrss is its own)."""
    start = time.perf_counter()
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(output[-2000:])
    return output, seconds, usage.ru_maxrss / 1024


def make_track(path: Path, minutes: float) -> None:
    """Write a long stereo 16-bit test signal block by block (tones + noise; content does not matter)."""
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", RATE, 2, subtype="PCM_16") as f:
        for start in range(0, int(minutes * 60 * RATE), 30 * RATE):
            t = (start + np.arange(30 * RATE)) / RATE
            block = 0.2 * np.sin(2 * np.pi * 220 * t)[:, None] + 0.05 * rng.standard_normal((len(t), 2))
            f.write(block[: int(minutes * 60 * RATE) - start])


def nan_if_none(value: float | None) -> float:
    """A score read from ``summary.json``, where NaN is written as null."""
    return float("nan") if value is None else float(value)
