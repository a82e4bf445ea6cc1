"""Fine-tuning the bundled model on your own data, against the bundled model alone and against the
same recipe trained from scratch for the same time (issue #31).

Three rows, all scored by ``evaluate.py`` on the test clips of a ``stereo_split`` folder (MIR-1K
here: left music, right voice, 16 kHz; ``test/`` = singers Ani, bobon, fdps, heycat, ``valid/`` =
stool, tammy, titon, ``train/`` = the others; abjones and amy are never used):

* ``bundled``: ``sepkit/models/bundled.ckpt`` as shipped (trained on the built-in songs only);
* ``fine-tuned``: ``train.py experiment=builtin init=bundled`` on the folder for ``--minutes``;
* ``from scratch``: ``train.py experiment=builtin`` on the folder for the same wall-clock time.

Both training runs use the same recipe, seed, data and ``trainer.max_time`` (validation included),
one after the other on an otherwise idle machine. Scores are medians over the test clips of the
vocals and accompaniment SI-SDR (dB) of the best checkpoint (best on ``valid/``). ::

    python -m bench.finetune --prepare /path/to/MIR-1K/Wavfile --data outputs/mir1k [--minutes 5]
    python -m bench.finetune --minutes 2 --train-clips 40 --name finetune_small   # a small folder of your own

``--train-clips N`` trains both runs on N training clips drawn at random (seed 0) instead of all of
them, the case of a user with a small folder; ``valid/`` and ``test/`` stay whole.

Writes docs/results/<name>.json and .md (``finetune`` unless ``--name``).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path

from bench.common import run_logged
from bench.results import ROOT, write_results


def evaluate(ckpt: str, data: Path, out: Path) -> dict:
    """Median SI-SDR per stem of ``ckpt`` on ``data/test``, with the mixture's (doing nothing)."""
    cmd = [sys.executable, "evaluate.py", f"ckpt={ckpt}", "data=stereo_split", f"data.root={data}"]
    cmd += ["split=official", "eval.museval=false", f"hydra.run.dir={out}"]
    run_logged(cmd, out.with_suffix(".log"))
    results = json.loads((out / "results.json").read_text())
    median = results["median"]
    return {
        "vocals": median["model"]["vocals"]["si_sdr"],
        "accompaniment": median["model"]["accompaniment"]["si_sdr"],
        "mixture vocals": median["mixture"]["vocals"]["si_sdr"],
        "clips": len(results["tracks"]),
    }


def train(name: str, extra: list[str], data: Path, minutes: float, work: Path) -> tuple[Path, dict]:
    run = work / name
    shutil.rmtree(run, ignore_errors=True)
    budget = f"00:00:{int(minutes):02d}:{int(round(minutes % 1 * 60)):02d}"
    cmd = [sys.executable, "train.py", "experiment=builtin", "seed=0", *extra]
    cmd += ["data=stereo_split", f"data.root={data}", "data.split=folder", f"trainer.max_time={budget}"]
    cmd += ["logger=csv", f"hydra.run.dir={run}"]
    start = time.perf_counter()
    run_logged(cmd, work / f"{name}.train.log")
    summary = json.loads((run / "summary.json").read_text())
    return run / "checkpoints" / "best.ckpt", {
        "train_seconds": round(time.perf_counter() - start, 1),
        "steps": summary.get("global_steps"),
        "best_step": summary.get("best", {}).get("step"),
        "best val/vocals/si_sdr": summary.get("best", {}).get("val/vocals/si_sdr"),
    }


TEST_SINGERS = ("Ani", "bobon", "fdps", "heycat")
VALID_SINGERS = ("stool", "tammy", "titon")
RESERVED = ("abjones", "amy")  # an independent check's: never trained, tuned or evaluated on here


def prepare(wavfile: Path, data: Path) -> None:
    """Link MIR-1K's ``Wavfile/<singer>_<song>_<n>.wav`` clips into ``data/{train,valid,test}`` by singer."""
    clips = sorted(wavfile.glob("*.wav"))
    if not clips:
        raise SystemExit(f"--prepare {wavfile} holds no MIR-1K .wav clips")
    for clip in clips:
        singer = clip.name.split("_")[0]
        if singer in RESERVED:
            continue
        subset = "test" if singer in TEST_SINGERS else "valid" if singer in VALID_SINGERS else "train"
        (data / subset).mkdir(parents=True, exist_ok=True)
        link = data / subset / clip.name
        if not link.exists():
            link.symlink_to(clip.resolve())


def subsample(data: Path, clips: int, work: Path) -> Path:
    """A ``stereo_split`` folder of links: ``clips`` training clips of ``data`` drawn at random (seed 0),
    its ``valid/`` and ``test/`` whole."""
    train = sorted((data / "train").glob("*.wav"))
    if not 0 < clips <= len(train):
        raise SystemExit(f"--train-clips {clips}: {data / 'train'} holds {len(train)} clips")
    folder = work / f"data_{clips}"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "train").mkdir(parents=True)
    for clip in random.Random(0).sample(train, clips):
        (folder / "train" / clip.name).symlink_to(clip.resolve())
    for subset in ("valid", "test"):
        (folder / subset).symlink_to((data / subset).resolve(), target_is_directory=True)
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "outputs" / "mir1k", help="stereo_split folder")
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget of each run")
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "bench" / "finetune")
    parser.add_argument("--prepare", type=Path, help="MIR-1K's Wavfile/ folder: link its clips into --data first")
    parser.add_argument("--train-clips", type=int, help="train on this many training clips (drawn at random)")
    parser.add_argument("--name", default="finetune", help="results file name under docs/results/")
    args = parser.parse_args(argv)
    if args.prepare:
        prepare(args.prepare, args.data)
    data = args.data.resolve()
    if not all((data / s).is_dir() for s in ("train", "valid", "test")):
        raise SystemExit(f"--data {data} needs train/, valid/ and test/ folders of stereo clips")
    n_train = len(list((data / "train").glob("*.wav")))
    if args.train_clips:
        data, n_train = subsample(data, args.train_clips, args.work), args.train_clips
    rows = [{"model": "bundled (built-in songs only)", **evaluate("bundled", data, args.work / "eval_bundled")}]
    for name, label, extra in (
        ("finetune", f"bundled, fine-tuned {args.minutes:g} min", ["init=bundled"]),
        ("scratch", f"from scratch, {args.minutes:g} min", []),
    ):
        ckpt, info = train(name, extra, data, args.minutes, args.work)
        rows.append({"model": label, **evaluate(str(ckpt), data, args.work / f"eval_{name}"), **info})
        print(json.dumps(rows[-1]), flush=True)
    small = f" --train-clips {args.train_clips}" if args.train_clips else ""
    named = f" --name {args.name}" if args.name != "finetune" else ""
    path = write_results(
        args.name,
        "Fine-tuning the bundled model on real singing",
        "Median SI-SDR (dB) over the MIR-1K test clips (singers Ani, bobon, fdps, heycat; 16 kHz, left "
        "music, right voice) of the bundled model as shipped, of the bundled model fine-tuned on the "
        f"other MIR-1K singers ({n_train} training clips; abjones and amy never used) and of the same "
        "recipe (experiment=builtin, seed 0) trained from scratch on them for the same wall-clock time, "
        "best checkpoint on valid/. `mixture vocals` is doing nothing (the mixture as the vocals estimate).",
        rows,
        ["model", "vocals", "accompaniment", "mixture vocals", "clips", "steps", "best_step", "train_seconds"],
        f"python -m bench.finetune --minutes {args.minutes:g}{small}{named}",
        minutes=args.minutes,
        train_clips=n_train,
    )
    print(path.read_text())


if __name__ == "__main__":
    main()
