"""The GAN's ablation: the baseline (experiment=gan_baseline), the improved recipe (experiment=gan),
and the improved recipe with one of its choices taken back (or one more added), each trained on the
built-in songs and scored by evaluate.py on the test split.

Each row: conditional accuracy overall and of the weakest category, the spread (max - min) of the
last 10 validations' conditional accuracy, diversity in the run's classifier's embedding and on the
spectrograms (share of real data's), the Fréchet distance in the fixed reference embedding, precision
and recall there, and the training time. Writes docs/results/gan_ablation.{md,json} (or --name).

    python -m bench.gan_ablation [--rows baseline gan ...] [--epochs N] [--jobs 2 --threads 1]
        [--out outputs/bench/gan_ablation] [--name gan_ablation] [--report | --rescore]

``--rescore`` evaluates the kept rows' best checkpoints again (scores added since they ran, e.g.
``cond_acc_ref``), without training.

Rows are kept in ``<out>/rows.json`` across invocations, so rows can run in separate sessions; the
results file lists every row kept there.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import run_logged
from bench.results import write_results

TAKE_BACK = ["experiment=gan"]
ROWS: dict[str, tuple[str, list[str]]] = {
    "baseline": ("the design notes' GAN: experiment=gan_baseline", ["experiment=gan_baseline"]),
    "gan": ("the improved recipe: experiment=gan", ["experiment=gan"]),
    "slow_rates": (
        "experiment=gan with its first rates: generator 2e-4, discriminator 4e-4, Adam betas (0.5, 0.999)",
        [*TAKE_BACK, "optimizer.lr=2e-4", "adversarial.d_lr=4e-4", "optimizer.betas=[0.5,0.999]"],
    ),
    "no_lr_decay": ("experiment=gan with constant rates", [*TAKE_BACK, "adversarial.lr_decay=0"]),
    "bce_one_rate": (
        "experiment=gan with the baseline's BCE loss and one learning rate",
        [*TAKE_BACK, "adversarial.loss._target_=sepkit.gan.losses.NonSaturating", "adversarial.d_lr=null"],
    ),
    "no_auxiliary": (
        "experiment=gan without the auxiliary classifier",
        [*TAKE_BACK, "model.discriminator.auxiliary=false", "adversarial.auxiliary=0"],
    ),
    "full_auxiliary_generator": (
        "experiment=gan with the generator pulled by the auxiliary head as hard as the discriminator learns it",
        [*TAKE_BACK, "adversarial.auxiliary_generator=1.0"],
    ),
    "no_conditional_norm": (
        "experiment=gan with plain BatchNorm in the generator",
        [*TAKE_BACK, "model.generator.conditional_norm=false"],
    ),
    "no_augment": ("experiment=gan without DiffAugment", [*TAKE_BACK, "adversarial.augment=null"]),
    "no_minibatch_std": (
        "experiment=gan without the minibatch std",
        [*TAKE_BACK, "model.discriminator.minibatch_std=0"],
    ),
    "no_ema": ("experiment=gan sampling from the trained generator", [*TAKE_BACK, "model.ema_decay=null"]),
    "plus_mode_seeking": (
        "experiment=gan plus the mode-seeking term (weight 0.1)",
        [*TAKE_BACK, "adversarial.mode_seeking=0.1"],
    ),
    "plus_r1": ("experiment=gan plus the R1 penalty (gamma 1, every 16 steps)", [*TAKE_BACK, "adversarial.r1_gamma=1"]),
    "plus_feature_matching": (
        "experiment=gan plus per-category feature matching in the generator's loss (weight 0.1)",
        [*TAKE_BACK, "adversarial.feature_matching=0.1"],
    ),
    "plus_nearest": (
        "experiment=gan with nearest-neighbour upsampling and 3x3 convolutions in the generator",
        [*TAKE_BACK, "model.generator.upsample=nearest"],
    ),
    "plus_time_pool": (
        "experiment=gan with a discriminator that keeps the frequency rows (pools over time only)",
        [*TAKE_BACK, "model.discriminator.pool=time"],
    ),
    "plus_deep_discriminator": (
        "experiment=gan with a fifth discriminator layer (128 channels): features see 94 of 128 mel bands and 1.5 s",
        [*TAKE_BACK, "model.discriminator.channels=[16,32,64,128,128]"],
    ),
    "wide_generator": (
        "experiment=gan with the baseline's generator widths",
        [*TAKE_BACK, "model.generator.channels=[256,128,64,32]"],
    ),
    "plus_twin": (
        "experiment=gan plus TAC-GAN's twin classifier, played against by the generator at its auxiliary weight",
        [*TAKE_BACK, "model.discriminator.twin=true", "adversarial.twin=1.0"],
    ),
    "twin_full_auxiliary": (
        "experiment=gan plus the twin classifier, the generator pulled by both heads as hard as they learn",
        [*TAKE_BACK, "model.discriminator.twin=true", "adversarial.twin=1.0", "adversarial.auxiliary_generator=1.0"],
    ),
}
COLUMNS = [
    "row",
    "cond_acc",
    "weakest",
    "cond_acc_ref",
    "weakest_ref",
    "spread_last10",
    "spread_ref_last10",
    "diversity",
    "diversity_spec",
    "fd_ref",
    "precision",
    "recall",
    "fd",
    "epoch",
    "epochs",
    "train_min",
]


def last_spread(metrics: Path, key: str = "val/cond_acc", last: int = 10) -> float:
    """Max - min of the last ``last`` validations' ``key`` in a run's metrics.csv."""
    with metrics.open() as f:
        values = [float(r[key]) for r in csv.DictReader(f) if r.get(key)]  # none: a run from before the key
    tail = values[-last:]
    return max(tail) - min(tail) if tail else float("nan")


def run_row(name: str, opts: argparse.Namespace, cores: str | None) -> dict:
    _, overrides = ROWS[name]
    run_dir = Path(opts.out) / name
    budget = [f"trainer.max_epochs={opts.epochs}"] if opts.epochs else []
    train = [sys.executable, "train.py", *overrides, *budget, f"seed={opts.seed}", f"hydra.run.dir={run_dir}"]
    train += ["callbacks.rich_progress_bar=null", *opts.extra]
    run_logged(train, run_dir.with_suffix(".train.log"), thread_env(opts.threads), cores)
    return score_row(name, run_dir, overrides + budget, opts.threads, cores)


def thread_env(threads: int) -> dict[str, str]:
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "HYDRA_FULL_ERROR": "0"}


def score_row(name: str, run_dir: Path, overrides: list[str], threads: int, cores: str | None) -> dict:
    """Evaluate a trained row's best checkpoint (evaluate.py, the test split) and read its run."""
    what = ROWS[name][0]
    env = thread_env(threads)
    summary = json.loads((run_dir / "summary.json").read_text())
    evaluate = [sys.executable, "evaluate.py", f"ckpt={summary['best_checkpoint']}", f"hydra.run.dir={run_dir}/eval"]
    run_logged(evaluate, run_dir.with_suffix(".eval.log"), env, cores)
    results = json.loads((run_dir / "eval" / "results.json").read_text())
    scores = results["scores"]
    overall = scores["all"]
    row = {
        "row": name,
        "what": what,
        "overrides": overrides,
        "run_dir": str(run_dir),
        "cond_acc": overall["cond_acc"],
        "weakest": min(scores[c]["cond_acc"] for c in results["categories"]),
        "cond_acc_ref": overall.get("cond_acc_ref", float("nan")),
        "weakest_ref": min(scores[c].get("cond_acc_ref", float("nan")) for c in results["categories"]),
        "spread_last10": last_spread(run_dir / "csv" / "metrics.csv"),
        "spread_ref_last10": last_spread(run_dir / "csv" / "metrics.csv", "val/cond_acc_ref"),
        **{k: overall.get(k, float("nan")) for k in ("diversity", "diversity_spec", "fd_ref", "precision", "recall")},
        **{k: overall.get(k, float("nan")) for k in ("density", "coverage", "fd", "fd_ref_floor")},
        "per_category": scores,
        "epoch": results["epoch"],
        "epochs": summary["epochs"],
        "train_min": summary["wall_time_s"] / 60,
    }
    print(f"{name}: " + ", ".join(f"{c} {row[c]:.3f}" for c in COLUMNS[1:] if isinstance(row[c], float)), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="*", default=list(ROWS), help=f"of {', '.join(ROWS)}")
    parser.add_argument("--epochs", type=int, default=None, help="trainer.max_epochs for every row (default: its own)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=1, help="rows at once, each pinned to its own --threads cores")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--extra", nargs="*", default=[], help="overrides added to every row")
    parser.add_argument("--out", default="outputs/bench/gan_ablation", help="runs and the rows kept so far")
    parser.add_argument("--name", default="gan_ablation", help="results file name under docs/results/")
    parser.add_argument("--title", default="GAN ablation", help="the results file's title")
    parser.add_argument("--report", action="store_true", help="only write the results file from the rows kept")
    parser.add_argument("--rescore", action="store_true", help="evaluate the kept rows' checkpoints again (--rows)")
    opts = parser.parse_args()
    unknown = [r for r in opts.rows if r not in ROWS]
    if unknown:
        sys.exit(f"unknown rows {unknown}; choose from {', '.join(ROWS)}")

    def row(index: int, name: str) -> dict:
        cores = None
        if opts.jobs > 1:
            first = index % opts.jobs * opts.threads % (os.cpu_count() or 1)
            cores = ",".join(str(first + i) for i in range(opts.threads))
        return run_row(name, opts, cores)

    # Rows accumulate across invocations (a row is replaced when run again), each kept as soon as it
    # is done, so long rows can run apart and a stopped invocation keeps what it finished.
    kept = Path(opts.out) / "rows.json"
    rows: list[dict] = json.loads(kept.read_text()) if kept.is_file() else []
    command = "python -m bench.gan_ablation " + " ".join(sys.argv[1:])
    lock = threading.Lock()

    def keep(index: int, name: str) -> None:
        done = row(index, name) | {"command": command, "threads": opts.threads, "jobs": opts.jobs}
        with lock:
            rows[:] = [r for r in rows if r["row"] != name] + [done]
            rows.sort(key=lambda r: list(ROWS).index(r["row"]))
            kept.write_text(json.dumps(rows, indent=2))

    if opts.rescore:
        for old in [r for r in rows if r["row"] in opts.rows]:
            run_dir = Path(old.get("run_dir", Path(opts.out) / old["row"]))
            new = score_row(old["row"], run_dir, old["overrides"], opts.threads, None)
            old.update({k: v for k, v in new.items() if k not in ("overrides", "run_dir")} | {"run_dir": str(run_dir)})
            kept.write_text(json.dumps(rows, indent=2))
    elif not opts.report:
        with ThreadPoolExecutor(max_workers=opts.jobs) as pool:
            list(pool.map(keep, range(len(opts.rows)), opts.rows))
    if not rows:
        sys.exit(f"no rows kept in {kept}: run some first")
    what = (
        "The conditional spectrogram GAN on the built-in songs, each row trained for its own epochs (the "
        "`epochs` column; the best checkpoint's in `epoch`), on the threads its command says, seed "
        f"{opts.seed}; scores from evaluate.py on the test split "
        "(64 generated per category). cond_acc: share classified as the category asked for (weakest: the "
        "lowest category's); cond_acc_ref, weakest_ref: the same judged by the fixed reference classifier "
        "(sepkit/gan/reference.py, the same for every row); spread_last10: max - min of the last 10 "
        "validations' cond_acc (all of them when there are fewer), spread_ref_last10 the same of "
        "cond_acc_ref; diversity and "
        "diversity_spec: pairwise distances over real data's, in the run's classifier's embedding and on the "
        "spectrograms; fd_ref, precision, recall: in the fixed reference embedding (sepkit/gan/reference.py); "
        "fd: in the run's own classifier's (not comparable across rows); epoch: of the best checkpoint."
    )
    commands = sorted({r["command"] for r in rows})
    path = write_results(opts.name, opts.title, what, rows, COLUMNS, " ; ".join(commands))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
