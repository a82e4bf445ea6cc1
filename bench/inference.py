"""Real-time factor and peak memory of streaming separation for 3- and 20-minute tracks.

Each measurement runs in a fresh process that separates a generated 44.1 kHz stereo 16-bit wav
file (separate.py's streaming path, writing both stems) and reports its peak resident memory.
The model is an untrained separator built from its config (speed and memory do not depend on
the weights).

    python -m bench.inference [--model unet_paper] [--minutes 3 20] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 44100


def make_track(path: Path, minutes: float) -> None:
    """Write a long stereo test signal block by block (tones + noise; content does not matter)."""
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", RATE, 2, subtype="PCM_16") as f:
        for start in range(0, int(minutes * 60 * RATE), 30 * RATE):
            t = (start + np.arange(30 * RATE)) / RATE
            block = 0.2 * np.sin(2 * np.pi * 220 * t)[:, None] + 0.05 * rng.standard_normal((len(t), 2))
            f.write(block[: int(minutes * 60 * RATE) - start])


def child(model: str, path: str, out: str, threads: int, device: str) -> None:
    import torch

    from bench.models import load_model_config
    from sepkit.inference import SeparationEngine
    from sepkit.separation import separate_file
    from sepkit.separator import build_separator

    torch.set_num_threads(threads)
    separator = build_separator(load_model_config(model), ["vocals", "accompaniment"])
    engine = SeparationEngine(separator, device=device)
    start = time.perf_counter()
    rtf = separate_file(engine, Path(path), Path(out), "wav", "PCM_16", overwrite=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row = {"device": device, "rtf": rtf, "seconds": time.perf_counter() - start, "peak_rss_mb": peak_mb}
    if device == "cuda":
        row["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        row["gpu"] = torch.cuda.get_device_name()
    print(json.dumps(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="unet_paper")
    parser.add_argument("--minutes", type=float, nargs="*", default=[3.0, 20.0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--out", default="outputs/bench/inference.json")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.model, args.child[0], args.child[1], args.threads, args.device)
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            track = Path(tmp) / f"track_{minutes:g}min.wav"
            make_track(track, minutes)
            cmd = [sys.executable, "-m", "bench.inference", "--model", args.model, "--threads", str(args.threads)]
            cmd += ["--device", args.device]
            result = subprocess.run([*cmd, "--child", str(track), tmp], capture_output=True, text=True, check=True)
            row = {"model": args.model, "minutes": minutes, **json.loads(result.stdout.strip().splitlines()[-1])}
            rows.append(row)
            print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
