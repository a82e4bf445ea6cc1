"""Real-time factor and peak memory of ``python separate.py`` for 3- and 20-minute tracks.

Each measurement runs separate.py itself, as a fresh process, on a generated 44.1 kHz stereo 16-bit
wav (both stems written as 16-bit wav), and reports the real-time factor separate.py prints, the
whole process's wall time and its peak resident memory. The checkpoint is an untrained separator
(speed and memory do not depend on the weights). Memory flat in track length means the 20-minute
row's peak equals the 3-minute row's.

    python -m bench.inference [--model unet_paper] [--minutes 3 20] [--runs 3] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
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


def separate_once(ckpt: str, track: Path, out: Path, threads: int, device: str) -> dict:
    from bench.peers import timed

    cmd = [sys.executable, "separate.py", f"ckpt={ckpt}", f"input={track}", f"output={out}", "overwrite=true"]
    cmd += [f"engine.device={device}", f"hydra.run.dir={out}/hydra"]
    output, wall, rss = timed(cmd, threads)
    rtf = float(re.search(r"\(([\d.]+)x real time\)", output).group(1))
    return {"rtf": rtf, "process_s": wall, "peak_rss_mb": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="unet_paper")
    parser.add_argument("--minutes", type=float, nargs="*", default=[3.0, 20.0])
    parser.add_argument("--runs", type=int, default=3, help="runs per length; the median is reported")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--out", default="outputs/bench/inference.json")
    args = parser.parse_args()
    from bench.peers import timed

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        prep, _, _ = timed([sys.executable, "-m", "bench.peers", "--child", "prepare", args.model, tmp])
        ckpt = json.loads(prep.strip().splitlines()[-1])["ckpt"]
        for minutes in args.minutes:
            track = Path(tmp) / f"track_{minutes:g}min.wav"
            make_track(track, minutes)
            runs = [separate_once(ckpt, track, Path(tmp), args.threads, args.device) for _ in range(args.runs)]
            row = {"model": args.model, "minutes": minutes, "device": args.device, "threads": args.threads}
            row.update({k: statistics.median(r[k] for r in runs) for k in runs[0]})
            rows.append(row)
            track.unlink()
            print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
