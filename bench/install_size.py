"""Disk size of a sepkit install: the core against each extra and ``[all]`` (issue #31).

Sizes are the installed files of every distribution an install pulls in, walked from sepkit's own
requirements through the installed packages' metadata (markers evaluated for this machine), so it
reads the environment it runs in (``make install`` holds everything) instead of installing anything.
Two columns: as installed here (torch from PyPI, which brings its CUDA libraries: ``nvidia-*``,
``triton`` and ``torch/lib/*cuda*``), and without those libraries (an estimate of a CPU-only torch).

    python -m bench.install_size

Writes docs/results/install_size.json and .md.
"""

from __future__ import annotations

import re
from importlib import metadata

from packaging.markers import default_environment
from packaging.requirements import Requirement

from bench.results import write_results

CUDA = re.compile(r"^(nvidia-.*|triton|cuda-.*)$")  # distributions that only serve CUDA
CUDA_FILES = re.compile(r"(cuda|nvshmem|cudnn|nccl)")  # torch's own CUDA libraries (torch/lib/libtorch_cuda.so ...)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requires(dist: metadata.Distribution, extras: set[str]) -> list[Requirement]:
    out = []
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({**default_environment(), "extra": e}) for e in extras | {""}):
            out.append(req)
    return out


def closure(extras: set[str]) -> set[str]:
    """Canonical names of every distribution ``sepkit[extras]`` installs (sepkit itself left out)."""
    seen: set[str] = set()
    todo: list[tuple[str, set[str]]] = [("sepkit", extras)]
    expanded: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, wanted = todo.pop()
        key = (_canonical(name), frozenset(wanted))
        if key in expanded:
            continue
        expanded.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # e.g. a requirement for another platform
        if _canonical(name) != "sepkit":
            seen.add(_canonical(name))
        for req in _requires(dist, wanted):
            todo.append((req.name, set(req.extras)))
    return seen


def size_mb(names: set[str], cpu_only: bool = False) -> float:
    total = 0
    for dist in metadata.distributions():
        if _canonical(dist.metadata["Name"]) in names:
            for file in dist.files or []:
                path = file.locate()
                if cpu_only and CUDA_FILES.search(path.name):
                    continue
                if path.is_file():
                    total += path.stat().st_size
    return total / 1e6


def main() -> None:
    extras = [e for e in metadata.metadata("sepkit").get_all("Provides-Extra") or [] if e not in ("all", "dev")]
    cases = {"core": set(), **{f"core + [{e}]": {e} for e in extras}, "[all]": {"all"}}
    rows = []
    for label, wanted in cases.items():
        names = closure(wanted)
        cpu = {n for n in names if not CUDA.match(n)}
        rows.append(
            {
                "install": label,
                "packages": len(names),
                "MB": size_mb(names),
                "MB, CPU-only torch": size_mb(cpu, cpu_only=True),
            }
        )
    full, core = rows[-1], rows[0]
    for row in rows:
        row["of [all]"] = f"{row['MB'] / full['MB']:.0%}"
        row["of [all], CPU-only torch"] = f"{row['MB, CPU-only torch'] / full['MB, CPU-only torch']:.0%}"
    path = write_results(
        "install_size",
        "Install size: the core against the extras",
        "Megabytes on disk of the installed files of every package `pip install sepkit[...]` pulls in "
        "(sepkit itself left out), read from this environment's package metadata. `MB` is with torch from "
        "PyPI as installed here (its CUDA libraries, nvidia-* and triton, included); `CPU-only torch` "
        "leaves those out and torch's own CUDA libraries (torch/lib/*cuda*, *nvshmem*), an estimate of a CPU "
        "build of torch (download.pytorch.org's CPU wheels could not be installed here to measure one). The core is "
        f"{1 - core['MB'] / full['MB']:.0%} smaller than [all] here, "
        f"{1 - core['MB, CPU-only torch'] / full['MB, CPU-only torch']:.0%} smaller with a CPU-only torch.",
        rows,
        ["install", "packages", "MB", "of [all]", "MB, CPU-only torch", "of [all], CPU-only torch"],
        "python -m bench.install_size",
    )
    print(path.read_text())


if __name__ == "__main__":
    main()
