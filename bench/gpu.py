"""GPU training throughput: every model variant and precision, plus the candidate speed-ups, each a
real ``train.py`` run on the built-in data, read back from its ``summary.json`` (the Throughput
callback: steps/s and samples/s over step + loader time, the loader's share, peak GPU memory).

    python -m bench.gpu [--epochs 3] [--models unet_paper ...] [--out outputs/bench/gpu.json]

Needs a CUDA GPU. The built-in data is generated on first use under ``--root``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from bench.common import nan_if_none
from sepkit.commands import config_options

MODELS = config_options("model")  # every separator in conf/model/
PRECISIONS = ["32-true", "16-mixed", "bf16-mixed"]
# Candidate wins, tried on the paper U-Net at 16-mixed (name -> extra overrides).
# The rows above use the defaults (data.num_workers: half the cores up to 8 when CUDA is present).
VARIANTS = {
    "workers=0": ["data.num_workers=0"],
    "workers=4": ["data.num_workers=4"],
    "cudnn.benchmark": ["+trainer.benchmark=true"],
    "batch=32": ["data.batch_size=32"],
}


def run(root: Path, name: str, overrides: list[str], epochs: int) -> dict:
    out = root / "runs" / name.replace("/", "_").replace("=", "-").replace("+", "_")
    cmd = [
        sys.executable,
        "train.py",
        "trainer=gpu",
        "logger=none",
        "callbacks.media=null",
        f"trainer.max_epochs={epochs}",
        f"paths.root_dir={root}",
        f"hydra.run.dir={out}",
        *overrides,
    ]
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        return {"run": name, "error": result.stderr.strip().splitlines()[-1:]}
    summary = json.loads((out / "summary.json").read_text())
    return {
        "run": name,
        "wall_s": round(wall, 1),
        "steps": summary["global_steps"],
        "val_si_sdr": round(nan_if_none(summary["best"].get("val/si_sdr")), 2),
        **summary["throughput"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=MODELS)
    parser.add_argument("--precisions", nargs="*", default=PRECISIONS)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--root", default="outputs/bench/gpu")
    parser.add_argument("--out", default="outputs/bench/gpu.json")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench.gpu needs a CUDA GPU")
    root = Path(args.root).resolve()
    rows = []
    for model in args.models:
        for precision in args.precisions:
            rows.append(
                run(root, f"{model}/{precision}", [f"model={model}", f"trainer.precision={precision}"], args.epochs)
            )
            print(json.dumps(rows[-1]), flush=True)
    for name in args.variants:
        overrides = ["model=unet_paper", "trainer.precision=16-mixed", *VARIANTS[name]]
        rows.append(run(root, f"unet_paper/16-mixed/{name}", overrides, args.epochs))
        print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"gpu": torch.cuda.get_device_name(), "epochs": args.epochs, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
