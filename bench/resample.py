"""Resampling as the engine does it: 3 minutes of stereo from 44.1 kHz to the paper U-Net's 8192 Hz
and back (two targets), by torchaudio's direct route, by sepkit's route through intermediate rates
in one piece, and by that route in pieces (``sepkit.audio.resample``); with the largest difference
of each to the direct route.

    python -m bench.resample [--seconds 180] [--threads 2] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torchaudio

from sepkit.audio import resample, resample_route, resample_step


def chain(x: torch.Tensor, orig: int, new: int, piece: int | None) -> torch.Tensor:
    route = resample_route(orig, new)
    for a, b in zip(route[:-1], route[1:], strict=True):
        x = resample_step(x, a, b, piece) if piece else resample(x, a, b)
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    stereo = torch.randn(2, int(args.seconds * 44100)) * 0.1
    stems = torch.randn(2, 2, int(args.seconds * 8192)) * 0.1
    ways = {
        "torchaudio direct": lambda x, a, b: torchaudio.functional.resample(x, a, b),
        "route, one piece": lambda x, a, b: chain(x, a, b, piece=1 << 40),
        "route, pieces (sepkit)": resample,
    }
    reference = {"in": ways["torchaudio direct"](stereo, 44100, 8192), "out": None}
    reference["out"] = ways["torchaudio direct"](stems, 8192, 44100)
    for name, fn in ways.items():
        times = {"in": [], "out": []}
        for _ in range(args.rounds):
            for way, (x, a, b) in {"in": (stereo, 44100, 8192), "out": (stems, 8192, 44100)}.items():
                start = time.perf_counter()
                y = fn(x, a, b)
                times[way].append(time.perf_counter() - start)
        diff = max(
            float((fn(x, a, b) - reference[w]).abs().max())
            for w, (x, a, b) in {"in": (stereo, 44100, 8192), "out": (stems, 8192, 44100)}.items()
        )
        row = {"way": name, "in_s": round(min(times["in"]), 3), "out_s": round(min(times["out"]), 3)}
        print(json.dumps({**row, "max_diff_to_direct": round(diff, 6), "threads": args.threads}), flush=True)
        del y


if __name__ == "__main__":
    main()
