"""Hydra callback that summarises a multirun: ``sweep_summary.csv`` and a rich table."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

SHOWN = ("val/si_sdr", "val/vocals/si_sdr", "val/vocals/si_sdri")


def collect(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per job of a sweep dir: its swept overrides, best metrics and best checkpoint."""
    rows = []
    for summary_path in sorted(
        sweep_dir.glob("*/summary.json"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0
    ):
        job = summary_path.parent
        summary = json.loads(summary_path.read_text())
        overrides_file = job / ".hydra" / "overrides.yaml"
        overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.exists() else []
        row = {"job": job.name, "overrides": list(overrides or [])}
        row.update({k: v for k, v in summary.get("best", {}).items() if k.startswith("val/")})
        row.update({"epochs": summary.get("epochs"), "checkpoint": summary.get("best_checkpoint")})
        row["failed"] = summary.get("failed") or ""
        rows.append(row)
    # show only the overrides that differ between jobs (the swept ones)
    parsed = [dict(o.split("=", 1) for o in row["overrides"] if "=" in o) for row in rows]
    varying = [k for k in dict.fromkeys(k for p in parsed for k in p) if len({p.get(k) for p in parsed}) > 1]
    for row, p in zip(rows, parsed, strict=True):
        row["overrides"] = " ".join(f"{k}={p[k]}" for k in varying if k in p)
    return rows


def write_summary(sweep_dir: Path, console: Console | None = None) -> Path | None:
    rows = collect(sweep_dir)
    if not rows:
        return None
    fields = list(dict.fromkeys(k for row in rows for k in row))
    out = sweep_dir / "sweep_summary.csv"
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    table = Table(title=f"sweep summary ({len(rows)} runs) -> {out}")
    for col in ("job", "overrides", *SHOWN, "checkpoint"):
        table.add_column(col, overflow="fold")
    for row in rows:
        cells = [row.get(c) for c in ("job", "overrides", *SHOWN, "checkpoint")]
        table.add_row(*(f"{c:.2f}" if isinstance(c, float) else str(c) for c in cells))
    (console or Console(width=160)).print(table)
    return out


def record_failure(cfg: DictConfig, why: str) -> None:
    """A sweep job that stopped on a user error: ``summary.json`` says so (written here when the job
    stopped before its run could write one)."""
    out = Path(cfg.paths.output_dir)
    path = out / "summary.json"
    if not path.is_file():
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"best": {}, "failed": why}, indent=2))


class SweepSummary(Callback):
    """Writes the summary when a multirun ends; exits with status 2 when a job failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        write_summary(sweep_dir)
        failed = [row["job"] for row in collect(sweep_dir) if row.get("failed")]
        if failed:
            table = sweep_dir / "sweep_summary.csv"
            print(f"error: job(s) {', '.join(failed)} of the sweep failed: see {table}", file=sys.stderr)
            raise SystemExit(2)
