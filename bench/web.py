"""The web page's speed beside separate.py's: one 20-second 44.1 kHz stereo song through
``WebSeparator`` (what the page runs for an upload: checks, separation, stems, figure), warm, and
the same file through ``separate_file`` (separate.py's own function) in the same process.

    python -m bench.web [--seconds 20] [--runs 3] [--model unet_paper]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.inference import make_track


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default="unet_paper")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from sepkit.checkpoint import load_separator
    from sepkit.inference import SeparationEngine
    from sepkit.separation import separate_file
    from sepkit.web import WebSeparator

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "bench.peers", "--child", "prepare", args.model, tmp]
        prep = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        ckpt = json.loads(prep.strip().splitlines()[-1])["ckpt"]
        song = Path(tmp) / "song.wav"
        make_track(song, args.seconds / 60)
        engine = SeparationEngine(load_separator(ckpt))
        web = WebSeparator(engine, Path(tmp) / "web", plot=True)
        rows = {"page": [], "page_realtime": [], "separate_file": []}
        for _ in range(args.runs + 1):  # the first run warms up (matplotlib, kernels)
            result = web(song, "song.wav")
            rows["page"].append(result["elapsed"])
            rows["page_realtime"].append(result["realtime"])
            start = time.perf_counter()
            separate_file(engine, song, Path(tmp) / "cli", "wav", "PCM_16", overwrite=True)
            rows["separate_file"].append(time.perf_counter() - start)
        first = {k: round(v[0], 3) for k, v in rows.items()}
        warm = {k: round(statistics.median(v[1:]), 3) for k, v in rows.items()}
        print(json.dumps({"model": args.model, "seconds": args.seconds, "first": first, "warm_median": warm}))


if __name__ == "__main__":
    main()
