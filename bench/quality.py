"""Quality at an equal budget: Open-Unmix and sepkit recipes trained for the same wall-clock time on
the same training tracks, evaluated by sepkit's evaluator on the same test tracks.

Every entry is ``python train.py experiment=bench/<entry>`` (one overlay per entry in
``conf/experiment/bench/``, so any entry also trains on its own) with the data overrides and
``trainer.max_time`` = the budget (validation included), then ``python evaluate.py`` on its best
checkpoint (the checkpoint's test split, museval off). The Open-Unmix entry is the ``openunmix``
package's network (``model=openunmix``: vocals network, accompaniment = mixture minus vocals, no
Wiener) trained with its own recipe: MSE on magnitudes, Adam 1e-3 with weight decay 1e-5, batches
of 16 six-second excerpts, per-bin input scaler from the training mixtures. The
mixture (doing nothing) and ideal-ratio-mask rows come from the evaluations themselves.

    python -m bench.quality                                  # built-in data, 10 min per entry
    python -m bench.quality --budget 60 --entries openunmix vocals_cpu
    python -m bench.quality --data data=stereo_split data.root=/data/MIR-1K data.split=folder \\
        --out outputs/bench/quality_mir1k                    # your own folder (any data= source)

Runs go to ``--out/<entry>``; the table is printed and written to ``--out/quality.md`` and
``--out/quality.json``. Figures depend on the machine: compare entries of the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import run_logged
from sepkit.commands import config_dir, config_options

ROOT = Path(__file__).resolve().parents[1]
BENCH_GROUP = "experiment/bench"


def entries() -> dict[str, tuple[str, list[str]]]:
    """name -> (what it is, train.py overrides): one overlay per entry in conf/experiment/bench/, so
    ``python train.py experiment=bench/<name>`` trains any entry on its own; what it is = the
    overlay's first comment line."""
    found = {}
    for name in config_options(BENCH_GROUP):
        lines = (Path(config_dir(), BENCH_GROUP, f"{name}.yaml")).read_text().splitlines()
        what = next(line[1:].strip() for line in lines if line.startswith("#") and "@package" not in line)
        found[name] = (what, [f"experiment=bench/{name}"])
    return found


ENTRIES = entries()
DEFAULT_ENTRIES = ["openunmix", "paper", "vocals_cpu", "stereo_cpu"]


def budget_string(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"00:{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def train_and_evaluate(
    name: str, overrides: list[str], opts: argparse.Namespace, env: dict[str, str], cores: str | None = None
) -> dict:
    out = Path(opts.out).resolve() / name
    out.mkdir(parents=True, exist_ok=True)
    train_args = [
        "train.py",
        *opts.data,
        *overrides,
        *opts.extra,
        f"++trainer.max_time={budget_string(opts.budget)}",
        "trainer.max_epochs=-1",
        f"++trainer.val_check_interval={budget_string(opts.val_every)}",
        "trainer.check_val_every_n_epoch=null",
        # Lightning 2.6 reads trainer.val_check_interval (absent with a time-based interval) unless told:
        "++callbacks.early_stopping.check_on_train_epoch_end=false",
        "++callbacks.model_checkpoint.save_on_train_epoch_end=false",
        "++callbacks.last_checkpoint.save_on_train_epoch_end=false",
        "logger=csv",
        "callbacks.rich_progress_bar=null",
        "callbacks.rich_model_summary=null",
        f"seed={opts.seed}",
        f"hydra.run.dir={out / 'train'}",
    ]
    start = time.perf_counter()
    run_logged([sys.executable, *train_args], out / "train.log", env, cores)
    train_s = time.perf_counter() - start
    summary = json.loads((out / "train" / "summary.json").read_text())
    ckpt = summary["best_checkpoint"] or summary["last_checkpoint"]
    evaluate = ["evaluate.py", f"ckpt={ckpt}", "eval.museval=false", f"hydra.run.dir={out / 'eval'}", *opts.eval_extra]
    run_logged([sys.executable, *evaluate], out / "eval.log", env, cores)
    results = json.loads((out / "eval" / "results.json").read_text())
    steps = summary["global_steps"]
    return {
        "entry": name,
        "what": ENTRIES.get(name, (name, []))[0],
        "overrides": overrides,
        "model": results["model"],
        "sample_rate": results["sample_rate"],
        "tracks": len(results["tracks"]),
        "median": results["median"],
        "mean": results["mean"],
        "steps": steps,
        "train_wall_s": round(train_s, 1),
        "s_per_step": round(1.0 / summary["throughput"]["steps_per_s"], 3)
        if summary.get("throughput", {}).get("steps_per_s")
        else None,
    }


def table(rows: list[dict], target: str) -> str:
    lines = [
        f"| entry | {target} SI-SDR median (dB) | mean (dB) | steps | s/step |",
        "|---|---|---|---|---|",
    ]
    first = rows[0]
    lines.append(
        f"| unprocessed mixture | {first['median']['mixture'][target]['si_sdr']:.2f} "
        f"| {first['mean']['mixture'][target]['si_sdr']:.2f} | | |"
    )
    seen = set()
    for row in rows:
        m, mean = row["median"]["model"][target]["si_sdr"], row["mean"]["model"][target]["si_sdr"]
        per_step = f"{row['s_per_step']:.3f}" if row["s_per_step"] else ""
        lines.append(f"| {row['entry']}: {row['what']} | {m:.2f} | {mean:.2f} | {row['steps']} | {per_step} |")
    for row in rows:
        key = (row["model"], row["sample_rate"])
        if key in seen:
            continue
        seen.add(key)
        lines.append(
            f"| ideal ratio mask at {row['model']}'s STFT ({row['sample_rate']} Hz) "
            f"| {row['median']['oracle'][target]['si_sdr']:.2f} | {row['mean']['oracle'][target]['si_sdr']:.2f} | | |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", nargs="+", default=DEFAULT_ENTRIES, help=f"of {', '.join(ENTRIES)}")
    parser.add_argument("--budget", type=float, default=600.0, help="training seconds per entry")
    parser.add_argument("--val-every", type=float, default=120.0, help="seconds between validations")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--jobs", type=int, default=1, help="entries trained at once, each pinned to its own --threads cores"
    )
    parser.add_argument("--data", nargs="*", default=[], help="train.py data overrides (default: built-in data)")
    parser.add_argument("--extra", nargs="*", default=[], help="overrides added to every entry")
    parser.add_argument("--eval-extra", nargs="*", default=[], help="evaluate.py overrides")
    parser.add_argument("--openunmix-rate", type=int, default=44100, help="Open-Unmix's sample rate")
    parser.add_argument("--target", default="vocals")
    parser.add_argument("--out", default="outputs/bench/quality")
    opts = parser.parse_args()
    unknown = [e for e in opts.entries if e not in ENTRIES]
    if unknown:
        sys.exit(f"unknown entries {unknown}; choose from {', '.join(ENTRIES)}")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(opts.threads),
        "MKL_NUM_THREADS": str(opts.threads),
        "PYTHONWARNINGS": "ignore",
        "HYDRA_FULL_ERROR": "0",
    }

    def entry(index: int, name: str) -> dict:
        overrides = ENTRIES[name][1]
        if name.startswith("openunmix"):
            overrides = [*overrides, f"model.sample_rate={opts.openunmix_rate}"]
        cores = None
        if opts.jobs > 1:
            first = index % opts.jobs * opts.threads % (os.cpu_count() or 1)
            cores = ",".join(str(first + i) for i in range(opts.threads))
        print(f"{name}: training {opts.budget:.0f} s" + (f" on cores {cores}" if cores else ""), flush=True)
        row = train_and_evaluate(name, overrides, opts, env, cores)
        print(
            f"  {name}: {opts.target} SI-SDR median {row['median']['model'][opts.target]['si_sdr']:.2f} dB "
            f"after {row['steps']} steps",
            flush=True,
        )
        return row

    with ThreadPoolExecutor(max_workers=opts.jobs) as pool:
        rows = list(pool.map(entry, range(len(opts.entries)), opts.entries))
    text = table(rows, opts.target)
    print(text)
    out = Path(opts.out)
    (out / "quality.md").write_text(text + "\n")
    meta = {"budget_s": opts.budget, "threads": opts.threads, "jobs": opts.jobs, "data": opts.data}
    (out / "quality.json").write_text(json.dumps({**meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
