"""Side by side with Open-Unmix: whole-process wall time, separation time and peak memory for
one 44.1 kHz stereo wav, each run in a fresh process on the same file in the same session.

* ``sepkit/<model>/<backend>``: ``python separate.py ckpt=... input=...`` itself, on a checkpoint
  of an untrained separator (speed does not depend on the weights), with the torch or onnxruntime
  backend (the ONNX file exported beside the checkpoint beforehand); the separation time is the
  real-time factor separate.py prints;
* ``openunmix``: an umxhq-sized ``openunmix.model.OpenUnmix`` (vocals, 2049 bins, hidden 512)
  inside ``openunmix.model.Separator`` with the residual as accompaniment and no Wiener
  iterations, over the whole file at once (its own usage), both stems written as wav.

    python -m bench.peers [--minutes 3] [--models unet_paper ...] [--runs 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from bench.common import RATE, make_track, timed
from sepkit.commands import config_options


def prepare_sepkit(model: str, folder: Path) -> dict:
    """Child: an untrained checkpoint of ``model`` and its ONNX export beside it (``onnx`` false
    where sepkit refuses to export the model, e.g. Open-Unmix's LSTM)."""
    from bench.data import save_checkpoint
    from sepkit.checkpoint import load_separator
    from sepkit.errors import SepkitError
    from sepkit.export import export_onnx

    ckpt = folder / f"{model.split('=')[-1]}.ckpt"  # a model, or experiment=RECIPE
    save_checkpoint(ckpt, folder, model)
    try:
        export_onnx(load_separator(ckpt), ckpt.with_suffix(".onnx"), overwrite=True)
    except SepkitError as error:
        print(f"{model}: no ONNX backend ({error})", file=sys.stderr)
        return {"ckpt": str(ckpt), "onnx": False}
    return {"ckpt": str(ckpt), "onnx": True}


def child_openunmix(path: Path, out: Path, threads: int) -> dict:
    import soundfile as sf
    import torch
    from openunmix.model import OpenUnmix, Separator

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = OpenUnmix(nb_bins=2049, nb_channels=2, hidden_size=512, max_bin=1487)
    separator = Separator({"vocals": net}, niter=0, residual=True, sample_rate=RATE, n_fft=4096, n_hop=1024).eval()
    start = time.perf_counter()
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    with torch.inference_mode():
        estimates = separator(torch.from_numpy(audio.T.copy())[None])[0]
    dest = out / path.stem
    dest.mkdir(parents=True, exist_ok=True)
    for name, est in zip(("vocals", "accompaniment"), estimates, strict=True):
        sf.write(dest / f"{name}.wav", est.clamp(-1, 1).numpy().T, rate, subtype="PCM_16")
    return {"separation_s": time.perf_counter() - start}


def run_sepkit(ckpt: str, track: Path, out: Path, backend: str, threads: int, seconds: float) -> dict:
    cmd = [sys.executable, "separate.py", f"ckpt={ckpt}", f"input={track}", f"output={out}", "overwrite=true"]
    cmd += [f"engine.backend={backend}", f"hydra.run.dir={out}/hydra"]
    output, wall, rss = timed(cmd, threads)  # torch takes its thread count from OMP_NUM_THREADS
    rtf = float(re.search(r"\(([\d.]+)x real time\)", output).group(1))
    return {"separation_s": seconds / rtf, "process_s": wall, "peak_rss_mb": rss}


def run_openunmix(track: Path, out: Path, threads: int) -> dict:
    cmd = [sys.executable, "-m", "bench.peers", "--threads", str(threads), "--child", "openunmix", str(track), str(out)]
    output, wall, rss = timed(cmd)
    return {**json.loads(output.strip().splitlines()[-1]), "process_s": wall, "peak_rss_mb": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--models", nargs="+", default=config_options("model"))
    parser.add_argument("--backends", nargs="+", default=["torch", "onnxruntime"])
    parser.add_argument("--runs", type=int, default=3, help="runs per entry; the median is reported")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="outputs/bench/peers.json")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "openunmix":
            row = child_openunmix(Path(rest[0]), Path(rest[1]), args.threads)
        else:
            row = prepare_sepkit(rest[0], Path(rest[1]))
        print(json.dumps(row))
        return
    rows = []
    seconds = args.minutes * 60
    with tempfile.TemporaryDirectory() as tmp:
        track = Path(tmp) / "song.wav"
        make_track(track, args.minutes)
        entries = [("openunmix", partial(run_openunmix, track, Path(tmp), args.threads))]
        for model in args.models:
            prep, _, _ = timed([sys.executable, "-m", "bench.peers", "--child", "prepare", model, tmp])
            prepared = json.loads(prep.strip().splitlines()[-1])
            ckpt = prepared["ckpt"]
            for backend in args.backends:
                if backend == "onnxruntime" and not prepared["onnx"]:
                    continue  # the model has no ONNX export: its torch row only
                run = partial(run_sepkit, ckpt, track, Path(tmp), backend, args.threads, seconds)
                entries.append((f"sepkit/{model}/{backend}", run))
        for name, run in entries:
            runs = [run() for _ in range(args.runs)]
            row = {"name": name, **{k: statistics.median(r[k] for r in runs) for k in runs[0]}}
            row["separation_x_realtime"] = seconds / row["separation_s"]
            rows.append(row)
            print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    peer = rows[0]["process_s"]
    for row in rows:
        row["process_vs_openunmix"] = row["process_s"] / peer
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"minutes": args.minutes, "threads": args.threads, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
