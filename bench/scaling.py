"""Quality against training budget (issue #28): vocals SI-SDR on held-out singers after 10, 30 and 90
minutes of training on a 2-core CPU, for each recipe, two recipes at a time, one core each.

Every point is a ``bench.quality`` entry (``python train.py experiment=bench/<entry>`` with
``trainer.max_time`` = the budget, then ``evaluate.py`` on its best checkpoint, the folder's test
singers), so a point is also a command a user can run. Entries run in pairs at the same time, each
pinned to its own core: the two of a pair shared the machine, and a pair's difference is the
figure to read. Points accumulate in ``--out/points.json`` (a point is replaced only when run
again), so the long budgets can run in another session; every call rewrites
``docs/results/scaling.{json,md,png}`` from all points: a table and quality against minutes on a
log scale (without ``points.json``, as on a fresh clone, the points start from that results file). ::

    python -m bench.scaling --data outputs/mir1k --minutes 10
    python -m bench.scaling --data outputs/mir1k --minutes 30 90 --entries stereo_cpu tfc_tdf_cpu
    python -m bench.scaling --minutes 90 --entries tfc_tdf_cpu openunmix --set openunmix:model.audio_channels=1
    python -m bench.scaling --report        # only rewrite the results from the points so far
    python -m bench.scaling --minutes 10 --entries tfc_tdf_cpu tfc_tdf_cpu_complex --name scaling_complex
                                            # a screen kept apart: outputs/bench/NAME, docs/results/NAME.*
    python -m bench.scaling --adopt outputs/bench/quality_pair   # a bench.quality --jobs 2 --threads 1 pair

``--data`` is a ``stereo_split`` folder with ``train/``, ``valid/`` and ``test/`` (MIR-1K split by
singer: ``python -m bench.finetune --prepare``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.quality import ENTRIES, train_and_evaluate
from bench.results import RESULTS, ROOT, write_results

DEFAULT_ENTRIES = ["stereo_cpu", "tfc_tdf_cpu", "vocals_cpu", "openunmix"]


def point(name: str, minutes: float, pair: list[str], row: dict, made_by: str) -> dict:
    """A bench.quality row as a point of the study (``made_by``: the command that ran it)."""
    return {
        "made_by": made_by,
        "entry": name,
        "minutes": minutes,
        "pair": " + ".join(pair),
        "vocals": round(row["median"]["model"]["vocals"]["si_sdr"], 2),
        "accompaniment": round(row["median"]["model"]["accompaniment"]["si_sdr"], 2),
        "mixture": round(row["median"]["mixture"]["vocals"]["si_sdr"], 2),
        "steps": row["steps"],
        "clips": row["tracks"],
    }


def merge(points: list[dict], new: list[dict]) -> list[dict]:
    """``points`` with ``new`` replacing those of the same entry and budget."""
    keys = {(n["entry"], n["minutes"]) for n in new}
    return [p for p in points if (p["entry"], p["minutes"]) not in keys] + new


def adopt(quality_dir: Path) -> list[dict]:
    """The rows of a ``python -m bench.quality --jobs 2 --threads 1`` run on the same folder (the same
    protocol, run through that command) as points; its entries are taken as one pair."""
    run = json.loads((quality_dir / "quality.json").read_text())
    if run["jobs"] != 2 or run["threads"] != 1 or len(run["rows"]) != 2:
        sys.exit(f"error: {quality_dir} is not a pair run with --jobs 2 --threads 1")
    pair = [row["entry"] for row in run["rows"]]
    made_by = f"python -m bench.quality --jobs 2 --threads 1 --budget {run['budget_s']:g} (adopted: {quality_dir})"
    return [point(row["entry"], run["budget_s"] / 60, pair, row, made_by) for row in run["rows"]]


def stored_points(store: Path, results: Path) -> list[dict]:
    """The points so far: ``store`` (``--out/points.json``), or on a machine without it (a fresh
    clone: outputs/ is not in git) the rows of the committed ``results`` file, so a new point joins
    the table instead of replacing it."""
    if store.is_file():
        return json.loads(store.read_text())
    if results.is_file():
        return json.loads(results.read_text())["rows"]
    return []


def parse_sets(items: list[str], entries: list[str]) -> dict[str, list[str]]:
    """``--set ENTRY:KEY=VALUE`` items as ``{entry: [overrides]}`` (exits with one line if malformed)."""
    sets: dict[str, list[str]] = {}
    for item in items:
        entry, _, override = item.partition(":")
        if entry not in entries or "=" not in override:
            sys.exit(f"error: --set {item!r} must be ENTRY:KEY=VALUE with ENTRY one of --entries")
        sets.setdefault(entry, []).append(override)
    return sets


def run_pair(pair: list[str], minutes: float, opts: argparse.Namespace) -> list[dict]:
    """Train and evaluate the entries of ``pair`` at the same time, one core each."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    quality = argparse.Namespace(
        out=str(Path(opts.out) / f"{minutes:g}min"),
        data=["data=stereo_split", f"data.root={Path(opts.data).resolve()}", "data.split=folder"],
        extra=[],
        eval_extra=[],
        budget=minutes * 60,
        val_every=max(120.0, minutes * 12),  # bench.quality's 2 minutes at 10 minutes; 5 checks at any budget
        seed=opts.seed,
    )

    def one(index: int, name: str) -> dict:
        overrides = ENTRIES[name][1]
        if name.startswith("openunmix"):
            overrides = [*overrides, "model.sample_rate=16000"]  # the folder's rate
        overrides = [*overrides, *opts.sets.get(name, [])]
        print(f"{minutes:g} min: training {name} on core {index}", flush=True)
        row = train_and_evaluate(name, overrides, quality, env, str(index % (os.cpu_count() or 1)))
        found = point(name, minutes, pair, row, "python -m bench.scaling " + " ".join(sys.argv[1:]))
        changed = [f"{entry}: {' '.join(o)}" for entry, o in opts.sets.items() if entry in pair]
        if changed:  # the pair ran with per-entry overrides: say so where the point is read
            found["pair"] += f" ({'; '.join(changed)})"
        if opts.sets.get(name):
            found["overrides"] = opts.sets[name]
        print(f"  {name}: vocals SI-SDR median {found['vocals']:.2f} dB after {row['steps']} steps", flush=True)
        return found

    with ThreadPoolExecutor(max_workers=len(pair)) as pool:
        return list(pool.map(one, range(len(pair)), pair))


def label(point: dict) -> str:
    """The entry, with the overrides it ran with (``--set``)."""
    return " ".join([point["entry"], *point.get("overrides", [])])


def report(points: list[dict], command: str, name: str = "scaling") -> Path:
    """Rewrite docs/results/<name>.{json,md,png} from all points."""
    rows = sorted(points, key=lambda p: (p["minutes"], p["entry"]))
    what = (
        "Vocals SI-SDR median (dB) of each recipe's best checkpoint on the MIR-1K test singers (Ani, bobon, "
        "fdps, heycat; 16 kHz clips), after the given minutes of training on the other singers; the two "
        "recipes of a pair trained at the same time on one core each of a 2-core CPU. Compare within a pair. "
        "The points were made by: " + "; ".join(f"`{c}`" for c in sorted({p.get("made_by", "?") for p in rows}))
    )
    columns = ["minutes", "entry", "vocals", "accompaniment", "mixture", "steps", "pair", "clips"]
    path = write_results(name, "Quality against training budget (bench.scaling)", what, rows, columns, command)
    try:
        import matplotlib
        import matplotlib.ticker

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figure (pip install 'sepkit[plots]')", file=sys.stderr)
        return path
    fig, ax = plt.subplots(figsize=(6, 4))
    for line in sorted({label(p) for p in rows}):  # an entry with overrides is a line of its own
        mine = [p for p in rows if label(p) == line]
        ax.plot([p["minutes"] for p in mine], [p["vocals"] for p in mine], "o-", label=line)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks(sorted({p["minutes"] for p in rows}), [f"{m:g}" for m in sorted({p["minutes"] for p in rows})])
    ax.set_xlabel("training minutes (2-core CPU, one core per recipe)")
    ax.set_ylabel("vocals SI-SDR median (dB)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}.png", dpi=120)
    with path.open("a") as md:
        md.write(f"\n![vocals SI-SDR against training minutes]({name}.png)\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT / "outputs" / "mir1k"), help="stereo_split folder")
    parser.add_argument("--minutes", type=float, nargs="+", default=[10.0, 30.0, 90.0])
    parser.add_argument("--entries", nargs="+", default=DEFAULT_ENTRIES, help="bench.quality entries, run in pairs")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--set",
        dest="sets",
        metavar="ENTRY:OVERRIDE",
        action="append",
        default=[],
        help="a config override for one entry, e.g. openunmix:model.audio_channels=1 (repeatable)",
    )
    parser.add_argument("--out", default=None, help="folder of the points (default outputs/bench/NAME)")
    parser.add_argument(
        "--name", default="scaling", help="results file docs/results/NAME.*; another (with --out) keeps a screen apart"
    )
    parser.add_argument("--report", action="store_true", help="only rewrite the results from the points so far")
    parser.add_argument("--adopt", type=Path, nargs="*", default=[], help="bench.quality pair runs to take as points")
    opts = parser.parse_args()
    unknown = [e for e in opts.entries if e not in ENTRIES]
    if unknown:
        sys.exit(f"error: unknown entries {unknown}; choose from {', '.join(ENTRIES)}")
    opts.sets = parse_sets(opts.sets, opts.entries)
    opts.out = opts.out or str(ROOT / "outputs" / "bench" / opts.name)
    store = Path(opts.out) / "points.json"
    points = stored_points(store, RESULTS / f"{opts.name}.json")
    for folder in opts.adopt:
        points = merge(points, adopt(folder))
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text(json.dumps(points, indent=2))
    if not opts.report and not opts.adopt:
        for minutes in opts.minutes:
            for i in range(0, len(opts.entries), 2):
                pair = opts.entries[i : i + 2]
                points = merge(points, run_pair(pair, minutes, opts))
                store.write_text(json.dumps(points, indent=2))
    print(report(points, "python -m bench.scaling " + " ".join(sys.argv[1:]), opts.name))


if __name__ == "__main__":
    main()
