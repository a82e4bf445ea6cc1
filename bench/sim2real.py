"""Built-in data that teaches real music: generation speed, disk size, and sim-to-real transfer.

* ``speed``: render ``--speed-tracks`` songs of 20 s with each generator (``synthetic`` and
  ``synthetic_real``) in one process; seconds of audio per second of wall time and MB of wav
  (4 stems + mixture) per minute of audio.
* ``transfer``: for each variant, ``train.py`` on generated songs only with a step budget
  (``++trainer.max_steps``), then ``evaluate.py`` of its best checkpoint on real singing: the
  MIR-1K clips of ``--real`` (a ``stereo_split`` folder, ``test/`` subset: singers Ani, bobon, fdps
  and heycat here; abjones and amy are never used). Reports the vocals SI-SDR median on the real
  clips of the best checkpoint (on the variant's own validation split) and of the last one, and
  the best vocals SI-SDRi on the own validation split.
* The variants beside ``synthetic`` and ``synthetic_real`` leave one ingredient out of
  ``synthetic_real`` (an ablation): each is a set of ``data.source.generate.*`` overrides and
  gets its own data folder.

Runs every command under ``nice`` with one torch thread, so a job on the other core does not
distort the step-budgeted comparison. ::

    python -m bench.sim2real --parts speed
    python -m bench.sim2real --parts transfer --steps 384 --variants synthetic,synthetic_real
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.common import run_logged

ROOT = Path(__file__).resolve().parents[1]
REAL = "data.source.generate"
VARIANTS: dict[str, list[str]] = {
    "synthetic": ["data=synthetic"],
    "synthetic_real": ["data=synthetic_real"],
    "builtin": ["experiment=builtin"],  # what make train trains: the CPU recipe on synthetic_real
    "no_samples": ["data=synthetic_real", f"{REAL}.instruments=additive"],
    "no_phonemes": ["data=synthetic_real", f"{REAL}.phonemes=formant"],
    "no_reverb": ["data=synthetic_real", f"{REAL}.reverb=0"],
    "full_reverb": ["data=synthetic_real", f"{REAL}.reverb=1"],  # the default before 2026-11-23's ablation
    "no_compression": ["data=synthetic_real", f"{REAL}.compression=false", f"{REAL}.eq=false"],
    "no_variety": ["data=synthetic_real", f"{REAL}.variety=false"],
}


def _run(cmd: list[str], log: Path) -> None:
    """One thread per process under nice: a job on the other core does not distort the comparison."""
    run_logged(["nice", "-n", "19", *cmd], log, {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})


def speed(tracks: int, seconds: float) -> dict:
    """Seconds of audio per second of wall and MB per minute for both generators (one process)."""
    from sepkit.data.realistic.generator import RealisticConfig, ensure
    from sepkit.data.synthetic import SyntheticConfig, ensure_dataset

    out = {}
    with tempfile.TemporaryDirectory(prefix="sepkit-sim2real-") as tmp:
        for name, make in (
            ("synthetic", lambda root: ensure_dataset(root, SyntheticConfig(tracks=tracks, seconds=seconds), None, 1)),
            ("synthetic_real", lambda root: ensure(root, RealisticConfig(tracks=tracks, seconds=seconds), 1)),
        ):
            start = time.perf_counter()
            root = make(Path(tmp) / name)
            wall = time.perf_counter() - start
            size = sum(p.stat().st_size for p in root.rglob("*.wav"))
            minutes = tracks * seconds / 60
            out[name] = {
                "audio_seconds_per_wall_second": round(tracks * seconds / wall, 2),
                "wall_seconds": round(wall, 1),
                "mb_per_minute": round(size / 1e6 / minutes, 1),
            }
            print(name, out[name], flush=True)
            shutil.rmtree(root)
    return out


def transfer(variant: str, steps: int, real: Path, work: Path, extra: list[str]) -> dict:
    """Train ``variant`` for ``steps`` steps, evaluate it on the real clips; the two medians."""
    overrides = VARIANTS[variant]
    if any(o.startswith(REAL) for o in overrides):  # an ablation's songs get a folder of their own
        overrides = [*overrides, f"data.root=${{paths.data_dir}}/sim2real_{variant}"]
    if variant != "synthetic":  # every other variant renders synthetic_real songs
        overrides = [*overrides, "data.source.workers=1"]  # one core: the songs do not depend on it
    run = work / variant
    shutil.rmtree(run, ignore_errors=True)
    start = time.perf_counter()
    train = [*overrides, f"++trainer.max_steps={steps}", "trainer.max_epochs=1000", *extra]
    _run([sys.executable, "train.py", *train, f"hydra.run.dir={run / 'train'}"], run / "train.log")
    trained = time.perf_counter() - start
    summary = json.loads((run / "train" / "summary.json").read_text())
    medians = {}
    for which in ("best", "last"):  # best on the generated validation split, and the end of the budget
        ckpt = run / "train" / "checkpoints" / f"{which}.ckpt"
        evaluate = [f"ckpt={ckpt}", "data=stereo_split", f"data.root={real}", "split=official", "eval.museval=false"]
        _run([sys.executable, "evaluate.py", *evaluate, f"hydra.run.dir={run / which}"], run / f"eval_{which}.log")
        results = json.loads((run / which / "results.json").read_text())
        medians[which] = results["median"]
    median = medians["best"]
    row = {
        "variant": variant,
        "overrides": train,
        "best_step": summary["best"].get("step"),
        "val_vocals_si_sdri": summary["best"].get("val/vocals/si_sdri"),
        "real_vocals_si_sdr": median["model"]["vocals"]["si_sdr"],
        "real_vocals_si_sdr_last": medians["last"]["model"]["vocals"]["si_sdr"],
        "real_mixture_si_sdr": median["mixture"]["vocals"]["si_sdr"],
        "real_oracle_si_sdr": median["oracle"]["vocals"]["si_sdr"],
        "real_tracks": len(results["tracks"]),
        "wall_seconds": round(time.perf_counter() - start, 1),
        "train_seconds_incl_generation": round(trained, 1),
    }
    print(json.dumps(row), flush=True)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="speed,transfer")
    parser.add_argument("--speed-tracks", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--steps", type=int, default=384, help="training steps per variant (make train: 12 x 32)")
    parser.add_argument("--variants", default="synthetic,synthetic_real")
    parser.add_argument(
        "--real", type=Path, default=ROOT / "outputs/mir1k/split", help="stereo_split folder with test/"
    )
    parser.add_argument("--work", type=Path, default=ROOT / "outputs/bench/sim2real")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs/bench/sim2real.json")
    parser.add_argument("extra", nargs="*", help="more train.py overrides for every variant")
    args = parser.parse_args(argv)
    os.nice(19)
    report = json.loads(args.out.read_text()) if args.out.exists() else {}
    parts = args.parts.split(",")
    if "speed" in parts:
        report["speed"] = speed(args.speed_tracks, args.seconds)
    if "transfer" in parts:
        if not (args.real / "test").is_dir():
            raise SystemExit(f"--real {args.real} has no test/ folder of stereo clips (left music, right voice)")
        rows = report.setdefault("transfer", {})
        for variant in args.variants.split(","):
            rows[f"{variant}@{args.steps}"] = transfer(variant, args.steps, args.real, args.work, args.extra)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    for key, row in report.get("transfer", {}).items():
        print(
            f"{key:32s} real {row['real_vocals_si_sdr']:6.2f} dB   own val SI-SDRi {row['val_vocals_si_sdri']:6.2f} dB"
        )


if __name__ == "__main__":
    main()
