"""The life cycle of a generated dataset: written once, described by a manifest, regenerated when its
parameters change, never over files it did not write, one writer at a time.

The two generators beside this module plug into it through a :class:`Generator`: the simple songs of
:mod:`sepkit.data.synthetic` (``data=synthetic``) and the realistic ones of :mod:`sepkit.data.realistic`
(``data=synthetic_real``, the built-in songs). Both write the MUSDB18-HQ folder layout
(``{train,test}/<track>/{vocals,drums,bass,other,mixture}.wav``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from filelock import FileLock, Timeout

from sepkit.data.pool import worker_pool
from sepkit.errors import SepkitError

log = logging.getLogger(__name__)

STEMS = ("vocals", "drums", "bass", "other")
MANIFEST = "sepkit_synthetic.json"
SUBSETS = ("train", "test")


@dataclass(frozen=True)
class Generator:
    """What makes a generated dataset: ``write(folder, seed, cfg)`` renders a track, ``names(cfg)`` lists
    ``(subset, name)`` of the tracks, ``version`` goes into the manifest.

    ``cfg`` is the generator's own frozen dataclass; it has at least ``tracks``, ``seconds``, ``seed``
    and ``sample_rate``, and every field goes into the manifest.
    """

    write: Callable[[Path, int, Any], None]
    names: Callable[[Any], list[tuple[str, str]]]
    version: int | str


def write_stems(folder: Path, stems: dict[str, np.ndarray], sample_rate: int) -> None:
    """Write ``{name: (time, 2)}`` stems and their sum as 16-bit wav, the mixture exactly the sum of the files."""
    peak = np.abs(sum(stems.values())).max()
    loudest = max(np.abs(audio).max() for audio in stems.values())  # a stem may peak above the sum
    scale = min(0.89 / max(peak, 1e-9), 0.99 / max(loudest, 1e-9))
    folder.mkdir(parents=True)
    quantised = {name: np.round(audio * scale * 32767).astype(np.int32) for name, audio in stems.items()}
    for name, pcm in quantised.items():
        sf.write(folder / f"{name}.wav", pcm.astype(np.int16), sample_rate, subtype="PCM_16")
    mixture = sum(quantised.values())
    sf.write(folder / "mixture.wav", np.clip(mixture, -32768, 32767).astype(np.int16), sample_rate, "PCM_16")


def _manifest(gen: Generator, cfg: Any) -> dict:
    return json.loads(json.dumps({"generator_version": gen.version, **asdict(cfg)}))  # tuples as the file has them


def generate(root: str | Path, cfg: Any, gen: Generator, workers: int | None = None) -> Path:
    """Write the dataset into ``root`` (which must not exist) and a manifest describing it.

    The songs are written into ``<root>.partial`` and renamed when all are there, so an interrupted
    run never leaves a folder that looks finished. ``workers`` processes (default: one per core).
    """
    root = Path(root)
    tmp = root.with_name(root.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    jobs = [(tmp / subset / name, cfg.seed * 100_003 + i, cfg) for i, (subset, name) in enumerate(gen.names(cfg))]
    workers = max(1, min(len(jobs), workers or os.cpu_count() or 1))
    log.info("generating %d songs of %g s into %s (%d processes, once)", len(jobs), cfg.seconds, root, workers)
    if workers == 1:
        for job in jobs:
            gen.write(*job)
    else:
        with worker_pool(workers) as pool:
            list(pool.map(gen.write, *zip(*jobs, strict=True)))
    (tmp / MANIFEST).write_text(json.dumps(_manifest(gen, cfg), indent=2))
    tmp.rename(root)
    return root


@contextmanager
def exclusive(root: Path) -> Iterator[None]:
    """Hold a lock file beside ``root`` while one process (or thread) checks or writes the dataset.

    Runs started together (a parallel sweep, two benchmarks, test workers) then generate it once: the
    others wait and find it made.
    """
    root.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(root.parent / f".{root.name}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("waiting for another run that is generating %s", root)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def ensure_dataset(root: str | Path, cfg: Any, gen: Generator, workers: int | None = None) -> Path:
    """Generate the dataset on first use; regenerate it when its parameters changed.

    Only a folder this generator wrote (it holds the manifest) is ever replaced; any other non-empty
    folder, or files added to a generated one, are left alone and reported. Concurrent calls for the
    same ``root`` take turns (:func:`exclusive`).
    """
    root = Path(root)
    with exclusive(root):
        manifest = root / MANIFEST
        if manifest.exists():
            old = json.loads(manifest.read_text())
            if old == _manifest(gen, cfg):
                return root
            _check_only_ours(root, gen, type(cfg), old)
            shutil.rmtree(root)
        elif root.exists() and any(root.iterdir()):
            raise SepkitError(
                f"{root} is not empty and was not made by sepkit's generator; "
                "point paths.data_dir (or data.root) at an empty or new folder"
            )
        elif root.exists():
            root.rmdir()
        return generate(root, cfg, gen, workers)


def _check_only_ours(root: Path, gen: Generator, config: type, manifest: dict) -> None:
    """Refuse to regenerate ``root`` if it holds anything but what the manifest's generator wrote."""
    fields = config.__dataclass_fields__
    ours = {MANIFEST, *SUBSETS} | {
        f"{sub}/{name}" for sub, name in gen.names(config(**{k: v for k, v in manifest.items() if k in fields}))
    }
    found = {p.name for p in root.iterdir()} | {
        f"{s}/{p.name}" for s in SUBSETS if (root / s).is_dir() for p in (root / s).iterdir()
    }
    if found - ours:
        raise SepkitError(
            f"{root} holds files the generator did not write ({sorted(found - ours)[0]}); "
            "move them away or choose another data.root before the dataset is regenerated"
        )


def command(
    argv: list[str] | None, description: str, config: type, ensure: Callable[[Path, Any, int | None], Path]
) -> None:
    """The generators' command line (``python -m sepkit.data.synthetic|realistic --out DIR ...``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", required=True, help="folder to create (must not exist or be empty)")
    parser.add_argument("--tracks", type=int, default=config.tracks)
    parser.add_argument("--seconds", type=float, default=config.seconds)
    parser.add_argument("--seed", type=int, default=config.seed)
    parser.add_argument("--sample-rate", type=int, default=config.sample_rate)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    args = parser.parse_args(argv)
    if args.tracks < 1 or args.seconds <= 0 or args.sample_rate < 8000:
        parser.error("--tracks must be >= 1, --seconds > 0 and --sample-rate >= 8000")
    try:
        cfg = config(tracks=args.tracks, seconds=args.seconds, seed=args.seed, sample_rate=args.sample_rate)
        root = ensure(Path(args.out), cfg, args.workers)
    except SepkitError as err:
        raise SystemExit(f"error: {err}") from None
    print(f"wrote {cfg.tracks} tracks of {cfg.seconds:g} s to {root}")
