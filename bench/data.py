"""Real-data speed: listing a folder, decoding it into the cache, evaluation against separation
alone, and data-loader workers during training.

Generates a folder like a real singing-voice set (``--clips`` clips of ``--seconds`` s, 44.1 kHz
stereo 16-bit wav, mixture + vocals per clip, 825/175 train/test split for 1,000 clips) under
``outputs/bench/data`` once, then measures, each in this process on this machine:

* listing: ``AlignedSource.tracks()`` over every clip (headers only);
* decoding: ``TrackCache.load`` of every clip at 8192 Hz (the paper U-Net) into an empty cache,
  and the same for a FLAC copy of ``--flac-clips`` clips;
* evaluation: ``evaluate()`` (SI-SDR/uSDR/MSE/MAE, mixture and oracle rows, no museval) on the
  test clips, against reading the same clips and separating them with the engine alone; once
  with an empty baseline cache and once more with the mixture/oracle rows cached;
* training: seconds per training step of the paper U-Net with ``num_workers`` 0, 1 and 2.

    python -m bench.data [--clips 1000] [--seconds 8] [--out outputs/bench/data.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

RATE = 44100
PARTS = ("decoding", "evaluation", "training")
STEMS = {"vocals": "vocals"}


def _write_clip(args: tuple[Path, int, float, str]) -> None:
    folder, seed, seconds, fmt = args
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    f0 = rng.uniform(150, 500)
    voice = 0.2 * np.sin(2 * np.pi * f0 * t * (1 + 0.01 * np.sin(2 * np.pi * 5 * t)))
    voice *= (np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t) > -0.3).astype(float)
    backing = 0.1 * rng.standard_normal(n) + 0.15 * np.sin(2 * np.pi * f0 / 2 * t)
    vocals = np.stack([voice, 0.8 * voice], axis=1)
    mixture = vocals + np.stack([backing, backing[::-1]], axis=1)
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / f"vocals.{fmt}", vocals, RATE, subtype="PCM_16")
    sf.write(folder / f"mixture.{fmt}", mixture, RATE, subtype="PCM_16")


def make_folder(root: Path, clips: int, seconds: float, fmt: str) -> Path:
    """``root/{train,test}/clip_XXXX/{mixture,vocals}.<fmt>``, 17.5 % of clips in test/ (kept between runs)."""
    stamp = root / "bench.json"
    spec = {"clips": clips, "seconds": seconds, "format": fmt}
    if stamp.exists() and json.loads(stamp.read_text()) == spec:
        return root
    shutil.rmtree(root, ignore_errors=True)
    n_test = round(clips * 0.175)
    jobs = [(root / ("test" if i < n_test else "train") / f"clip_{i:04d}", i, seconds, fmt) for i in range(clips)]
    with ProcessPoolExecutor() as pool:
        list(pool.map(_write_clip, jobs, chunksize=16))
    stamp.write_text(json.dumps(spec))
    return root


def source_for(root: Path):
    from sepkit.data.sources.aligned import AlignedSource

    return AlignedSource(root, stems=STEMS, mixture="mixture", residual="accompaniment")


def bench_listing_and_decoding(root: Path, rate: int) -> dict[str, float]:
    from sepkit.data.cache import TrackCache

    start = time.perf_counter()
    tracks = source_for(root).tracks()
    listed = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        TrackCache(cache, rate, 2).load(source_for(root), tracks)
        decoded = time.perf_counter() - start
    return {
        "tracks": len(tracks),
        "list_s": round(listed, 2),
        "decode_s": round(decoded, 2),
        "decode_clips_per_min": round(60 * len(tracks) / decoded),
    }


def save_checkpoint(path: Path, root: Path, model: str = "unet_paper") -> None:
    """An untrained paper U-Net saved as train.py would (speed does not depend on the weights)."""
    from omegaconf import OmegaConf

    from bench.models import load_model_config
    from sepkit.checkpoint import separator_checkpoint
    from sepkit.separator import build_separator

    separator = build_separator(load_model_config(model), ["vocals", "accompaniment"])
    source = OmegaConf.to_container(OmegaConf.load(Path("conf/data/aligned.yaml")).source)
    run = {"data": {"source": source}, "data_root": str(root.resolve()), "covers_mixture": True}
    torch.save(separator_checkpoint(separator, run), path)


def bench_evaluation(root: Path, tmp: Path) -> dict[str, float]:
    from hydra import compose, initialize_config_dir

    from sepkit.checkpoint import load_separator
    from sepkit.evaluation import evaluate
    from sepkit.inference import SeparationEngine

    ckpt = tmp / "model.ckpt"
    save_checkpoint(ckpt, root)
    test = [t for t in source_for(root).tracks() if t.subset == "test"]
    engine = SeparationEngine(load_separator(ckpt), device="cpu")
    start = time.perf_counter()
    for track in test:
        audio, rate = sf.read(track.files[-1], dtype="float32", always_2d=True)
        engine.separate(torch.from_numpy(audio.T.copy()), rate)
    separate_s = time.perf_counter() - start
    overrides = [f"ckpt={ckpt}", "split=official", "eval.museval=false", f"paths.root_dir={tmp}"]
    with initialize_config_dir(config_dir=str(Path("conf").resolve()), version_base="1.3"):
        cfg = compose("evaluate", overrides=overrides)
    timings = []
    for run in ("cold", "warm"):  # warm: the mixture/oracle rows come from the baseline cache
        cfg.paths.output_dir = str(tmp / f"eval-{run}")
        start = time.perf_counter()
        evaluate(cfg)
        timings.append(time.perf_counter() - start)
    return {
        "clips": len(test),
        "separate_only_s": round(separate_s, 2),
        "evaluate_s": round(timings[0], 2),
        "evaluate_over_separate": round(timings[0] / separate_s, 2),
        "evaluate_cached_baselines_s": round(timings[1], 2),
        "evaluate_cached_over_separate": round(timings[1] / separate_s, 2),
    }


def bench_training_workers(root: Path, tmp: Path, steps: int) -> list[dict[str, float]]:
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from sepkit.separator import build_separator
    from sepkit.system import SeparationSystem

    rows = []
    for workers in (0, 1, 2):
        overrides = ["data=aligned", f"data.root={root}", f"data.num_workers={workers}", f"paths.root_dir={tmp}"]
        with initialize_config_dir(config_dir=str(Path("conf").resolve()), version_base="1.3"):
            cfg = compose("train", overrides=overrides)
        dm = instantiate(cfg.data)
        dm.prepare_data()
        dm.setup("fit")
        torch.manual_seed(0)
        separator = build_separator(OmegaConf.to_container(cfg.model, resolve=True), dm.targets)
        system = SeparationSystem(separator, instantiate(cfg.loss), instantiate(cfg.optimizer))
        optimizer = system.configure_optimizers()
        loader = iter(dm.train_dataloader())
        waited = 0.0
        start = time.perf_counter()
        for _ in range(steps):
            t0 = time.perf_counter()
            batch = next(loader)
            waited += time.perf_counter() - t0
            loss = system._spectral_loss(*batch, augment=True)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        total = time.perf_counter() - start
        rows.append(
            {
                "num_workers": workers,
                "s_per_step": round(total / steps, 3),
                "loader_wait_share": round(waited / total, 3),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
        del loader
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1000)
    parser.add_argument("--flac-clips", type=int, default=250)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--steps", type=int, default=20, help="training steps per num_workers setting")
    parser.add_argument("--data-dir", default="outputs/bench/data")
    parser.add_argument("--out", default="outputs/bench/data.json")
    parser.add_argument(
        "--parts", nargs="+", default=list(PARTS), choices=PARTS, help="what to measure (default: everything)"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2: the 2-core machines of the README)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = Path(args.data_dir)
    wav = make_folder(base / "wav", args.clips, args.seconds, "wav")
    flac = make_folder(base / "flac", args.flac_clips, args.seconds, "flac")
    results: dict[str, object] = {"clips": args.clips, "seconds": args.seconds, "threads": torch.get_num_threads()}
    if "decoding" in args.parts:
        for name, root in (("wav", wav), ("flac", flac)):
            results[name] = bench_listing_and_decoding(root, 8192)
            print(name, json.dumps(results[name]), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if "evaluation" in args.parts:
            results["evaluation"] = bench_evaluation(wav, Path(tmp))
            print("evaluation", json.dumps(results["evaluation"]), flush=True)
        if "training" in args.parts:
            results["training"] = bench_training_workers(wav, Path(tmp), args.steps)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
