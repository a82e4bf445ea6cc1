"""bf16 against float32 on the CPU: the same recipe, seed and number of steps under ``32-true``,
under ``bf16-mixed`` as this machine runs it, and under ``bf16-mixed`` with oneDNN off (how sepkit
trains bf16 on CPUs with AMX, issue #30), compared by validation SI-SDR (val/si_sdr: mean over
targets of the SI-SDR of the validation segments, in dB) and seconds per step.

    python -m bench.precision [--steps 300] [--experiment stereo_cpu] [--name precision] [OVERRIDE ...]

Writes docs/results/NAME.json and .md (precision unless --name).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from bench.common import nan_if_none
from bench.results import ROOT, write_results
from sepkit.precision import bf16_cpu_path
from sepkit.training import train

MODES = {
    "32-true": ("32-true", True),
    "bf16-mixed": ("bf16-mixed", True),
    "bf16-mixed, oneDNN off (the AMX work-around)": ("bf16-mixed", False),
}


def run(experiment: str, steps: int, precision: str, onednn: bool, out: Path, extra: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"experiment={experiment}",
                f"paths.root_dir={out}",
                f"paths.data_dir={ROOT / 'outputs' / 'data'}",
                f"++trainer.max_steps={steps}",
                "trainer.max_time=null",
                "trainer.max_epochs=-1",
                "trainer.accelerator=cpu",
                f"trainer.precision={precision}",
                "callbacks.early_stopping=null",
                "logger=none",
                *extra,
            ],
        )
    with open_dict(cfg):
        cfg.paths.output_dir = str(out / "run")
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = onednn
    try:
        start = time.perf_counter()
        train(cfg)
        seconds = time.perf_counter() - start
    finally:
        torch.backends.mkldnn.enabled = before
    summary = json.loads((out / "run" / "summary.json").read_text())
    score = nan_if_none(summary["last"].get("val/si_sdr"))  # summary.json writes NaN as null
    return {"val_si_sdr_db": score, "s_per_step": seconds / summary["global_steps"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--experiment", default="stereo_cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--name", default="precision", help="results file docs/results/NAME.*")
    parser.add_argument("overrides", nargs="*", help="extra train.py overrides")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for label, (precision, onednn) in MODES.items():
        with tempfile.TemporaryDirectory() as tmp:
            row = {"precision": label, **run(args.experiment, args.steps, precision, onednn, Path(tmp), args.overrides)}
        row["vs_32_true_db"] = row["val_si_sdr_db"] - (rows[0]["val_si_sdr_db"] if rows else row["val_si_sdr_db"])
        rows.append(row)
        print(json.dumps(row), flush=True)
    command = "python -m bench.precision " + " ".join(
        [f"--steps {args.steps}", f"--experiment {args.experiment}"]
        + ([f"--name {args.name}"] if args.name != "precision" else [])
        + args.overrides
    )
    path = write_results(
        args.name,
        "bf16 against float32 on the CPU",
        f"`experiment={args.experiment}` for {args.steps} steps, seed 42, on the built-in songs "
        f"(data=synthetic unless overridden); val/si_sdr in dB after the last step. bf16 on this CPU "
        f"runs through: {bf16_cpu_path()}.",
        rows,
        ["precision", "val_si_sdr_db", "vs_32_true_db", "s_per_step"],
        command,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
