"""Side by side with Open-Unmix: whole-process wall time, separation time and peak memory for
one 44.1 kHz stereo wav, each run in a fresh process on the same file in the same session.

* ``sepkit/<model>/<backend>``: an untrained separator (speed does not depend on the weights)
  streamed through ``separate_file`` as separate.py does, with the torch or onnxruntime backend;
* ``openunmix``: an umxhq-sized ``openunmix.model.OpenUnmix`` (vocals, 2049 bins, hidden 512)
  inside ``openunmix.model.Separator`` with the residual as accompaniment and no Wiener
  iterations, over the whole file at once (its own usage), both stems written as wav.

    python -m bench.peers [--minutes 3] [--models unet_paper ...] [--runs 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.inference import RATE, make_track


def child_sepkit(model: str, backend: str, onnx: str | None, path: Path, out: Path, threads: int) -> dict:
    import torch

    from bench.models import load_model_config
    from sepkit.inference import SeparationEngine
    from sepkit.separation import separate_file
    from sepkit.separator import build_separator

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    separator = build_separator(load_model_config(model), ["vocals", "accompaniment"])
    engine = SeparationEngine(separator, device="cpu", backend=backend, onnx=onnx)
    start = time.perf_counter()
    separate_file(engine, path, out, "wav", "PCM_16", overwrite=True)
    return {"separation_s": time.perf_counter() - start}


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


def peak_rss_mb() -> float:
    """This process's peak resident memory since its exec (ru_maxrss would include the parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(args: list[str]) -> dict:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "bench.peers", *args], capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(result.stderr[-2000:])
    row = json.loads(result.stdout.strip().splitlines()[-1])
    row["process_s"] = time.perf_counter() - start
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--models", nargs="+", default=["unet_paper", "unet_simple", "unet_stereo", "unet_classic"])
    parser.add_argument("--backends", nargs="+", default=["torch", "onnxruntime"])
    parser.add_argument("--runs", type=int, default=3, help="runs per entry; the median is reported")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="outputs/bench/peers.json")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, track, out, *rest = args.child
        if kind == "openunmix":
            row = child_openunmix(Path(track), Path(out), args.threads)
        else:
            backend, onnx = rest
            row = child_sepkit(kind, backend, onnx if onnx != "-" else None, Path(track), Path(out), args.threads)
        row["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(row))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        track = Path(tmp) / "song.wav"
        make_track(track, args.minutes)
        entries = [("openunmix", ["openunmix", str(track), tmp])]
        for model in args.models:
            for backend in args.backends:
                onnx = "-"
                if backend == "onnxruntime":
                    onnx = export_untrained(model, Path(tmp))
                entries.append((f"sepkit/{model}/{backend}", [model, str(track), tmp, backend, onnx]))
        for name, child_args in entries:
            runs = [run_child(["--threads", str(args.threads), "--child", *child_args]) for _ in range(args.runs)]
            row = {"name": name, **{k: statistics.median(r[k] for r in runs) for k in runs[0]}}
            row["separation_x_realtime"] = args.minutes * 60 / row["separation_s"]
            rows.append(row)
            print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    peer = rows[0]["process_s"]
    for row in rows:
        row["process_vs_openunmix"] = row["process_s"] / peer
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"minutes": args.minutes, "threads": args.threads, "rows": rows}, indent=2))
    print(f"wrote {out}")


def export_untrained(model: str, folder: Path) -> str:
    import torch

    from bench.models import load_model_config
    from sepkit.export import export_onnx
    from sepkit.separator import build_separator

    torch.manual_seed(0)
    separator = build_separator(load_model_config(model), ["vocals", "accompaniment"]).eval()
    return str(export_onnx(separator, folder / f"{model}.onnx", overwrite=True))


if __name__ == "__main__":
    main()
