"""Real-time factor and peak memory of ``python separate.py`` for 3- and 20-minute tracks.

Each measurement runs separate.py itself, as a fresh process, on a generated 44.1 kHz stereo 16-bit
wav (both stems written as 16-bit wav), and reports the real-time factor separate.py prints, the
whole process's wall time and its peak resident memory. The checkpoint is an untrained separator
(speed and memory do not depend on the weights). Memory flat in track length means the 20-minute
row's peak equals the 3-minute row's. Each length runs both roads of the engine, alternating:
full band (the default: masks at the song's rate) and the model's band (``engine.fullband=false``:
resampled to the model's rate and back), so their ratio is a same-time pair.

    python -m bench.inference [--model unet_paper] [--minutes 3 20] [--runs 3] [--device cpu|cuda]
    python -m bench.inference --model experiment=tfc_tdf_cpu     # a recipe's model

Writes docs/results/inference.json and .md (inference_<model>.* for another model, e.g.
``--model bundled --sepkit``: the model and the command a user gets).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path

from bench.common import make_track, timed
from bench.results import write_results

# road -> (the command, engine.fullband)
ROADS = {"full band": ("separate.py", "true"), "model band": ("separate.py", "false")}
SEPKIT = {"sepkit separate, full band": ("sepkit", "true")}


def separate_once(
    ckpt: str, track: Path, out: Path, threads: int, device: str, fullband: str = "true", entry: str = "separate.py"
) -> dict:
    start = [str(Path(sys.executable).parent / "sepkit"), "separate"] if entry == "sepkit" else [sys.executable, entry]
    cmd = [*start, f"ckpt={ckpt}", f"input={track}", f"output={out}", "overwrite=true"]
    cmd += [f"engine.device={device}", f"hydra.run.dir={out}/hydra", f"engine.fullband={fullband}"]
    output, wall, rss = timed(cmd, threads)
    rtf = float(re.search(r"\(([\d.]+)x real time\)", output).group(1))
    return {"rtf": rtf, "process_s": wall, "peak_rss_mb": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default="unet_paper", help="a model name or experiment=RECIPE (untrained), or bundled"
    )
    parser.add_argument("--sepkit", action="store_true", help="also time the sepkit command (full band)")
    parser.add_argument("--minutes", type=float, nargs="*", default=[3.0, 20.0])
    parser.add_argument("--runs", type=int, default=3, help="runs per length; the median is reported")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.model == "bundled":
            ckpt = "bundled"
        else:
            prep, _, _ = timed([sys.executable, "-m", "bench.peers", "--child", "prepare", args.model, tmp])
            ckpt = json.loads(prep.strip().splitlines()[-1])["ckpt"]
        roads = {**ROADS, **(SEPKIT if args.sepkit else {})}
        for minutes in args.minutes:
            track = Path(tmp) / f"track_{minutes:g}min.wav"
            make_track(track, minutes)
            runs: dict[str, list[dict]] = {road: [] for road in roads}
            for _ in range(args.runs):
                for road, (entry, flag) in roads.items():
                    runs[road].append(separate_once(ckpt, track, Path(tmp), args.threads, args.device, flag, entry))
            for road, measured in runs.items():
                row = {"model": args.model, "road": road, "minutes": minutes, "device": args.device}
                row.update({k: statistics.median(r[k] for r in measured) for k in measured[0]})
                rows.append(row)
                print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
            track.unlink()
    command = f"python -m bench.inference --model {args.model} --minutes {' '.join(f'{m:g}' for m in args.minutes)}"
    command += " --sepkit" if args.sepkit else ""
    path = write_results(
        "inference" if args.model == "unet_paper" else f"inference_{args.model.split('=')[-1]}",
        "separate.py on long files: speed and memory",
        "`separate.py` (and the `sepkit separate` command where named) as a fresh process on a generated "
        f"44.1 kHz stereo wav, {args.threads} threads, median of "
        f"{args.runs} runs per road (alternating): rtf = seconds of audio per second of separation as separate.py "
        "prints it, process_s = the whole process's wall time, peak_rss_mb = its peak resident memory.",
        rows,
        ["model", "road", "minutes", "device", "rtf", "process_s", "peak_rss_mb"],
        command + f" --runs {args.runs} --threads {args.threads} --device {args.device}",
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
