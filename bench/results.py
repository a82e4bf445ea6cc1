"""Benchmark results that regenerate themselves: each bench writes ``docs/results/<name>.json`` and
``<name>.md``, stamped with the commit, date, CPU, cores, GPU and torch version that made them, so
prose links to a file instead of re-typing a figure."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from sepkit.precision import bf16_cpu_path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="ignore").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def stamp() -> dict[str, Any]:
    """Where and with what a result was made."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
        commit += "+changes" if dirty.strip() else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "commit": commit,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "bf16": bf16_cpu_path(),  # which kernels run bf16 here: results under bf16-mixed depend on it
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
    }


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    def cell(value: Any) -> str:
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_results(
    name: str, title: str, what: str, rows: list[dict[str, Any]], columns: list[str], command: str, **extra: Any
) -> Path:
    """Write ``docs/results/<name>.json`` and ``.md`` (the table, what it measures, the command, the stamp)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    info = stamp()
    payload = {"name": name, "what": what, "command": command, **info, **extra, "rows": rows}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    made = ", ".join(f"{k} {v}" for k, v in info.items() if v is not None)
    md = f"# {title}\n\n{what}\n\n{markdown_table(rows, columns)}\n\nMade by `{command}` ({made}).\n"
    path = RESULTS / f"{name}.md"
    path.write_text(md)
    return path
