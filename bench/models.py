"""Benchmark every U-Net variant on this machine's CPU.

Per variant: parameters, multiply-accumulates per second of stereo audio (torch's FLOP counter / 2),
training step time (batch of 8 stereo 6 s segments: STFT, masks, loss, backward, Adam step) and
inference speed (the engine separating 30 s of 44.1 kHz stereo, chunks and resampling included)
as a real-time factor.

    python bench/models.py [--threads 2] [--out outputs/bench/models.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from torch.utils.flop_counter import FlopCounterMode

from sepkit.commands import config_options
from sepkit.inference import SeparationEngine
from sepkit.losses import SpectrogramL1
from sepkit.separator import build_separator
from sepkit.system import SeparationSystem

CONF = Path(__file__).resolve().parents[1] / "conf"
MODELS = config_options("model")  # every separator in conf/model/


def load_model_config(name: str) -> dict:
    """``name``: a model (``tfc_tdf``), or a recipe's model (``experiment=tfc_tdf_cpu``)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[name if "=" in name else f"model={name}"])
    return OmegaConf.to_container(cfg.model, resolve=True)


def macs_per_second(separator) -> float:
    seconds = separator.patch_frames * separator.hop_length / separator.sample_rate
    spec = torch.randn(1, 2, separator.max_bins, separator.patch_frames, dtype=torch.complex64)
    separator.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        separator.net(separator.mask_input(spec))  # magnitudes, or real and imaginary parts
    return counter.get_total_flops() / 2 / seconds


def train_step_time(separator, steps: int = 3) -> float:
    system = SeparationSystem(separator, SpectrogramL1(), lambda params: torch.optim.Adam(params, lr=1e-4))
    opt = system.configure_optimizers()
    length = int(6.0 * separator.sample_rate)
    mix = torch.randn(8, 2, length) * 0.1
    targets = torch.stack([mix * 0.4, mix * 0.6], dim=1)
    system.train()
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        loss = system._spectral_loss(mix, targets, None, augment=False)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return min(times[1:])


def inference_rtf(separator, seconds: float = 30.0) -> float:
    engine = SeparationEngine(separator, device="cpu")
    audio = torch.randn(2, int(seconds * 44100)) * 0.1
    engine.separate(audio[:, :44100], 44100)  # warm-up
    start = time.perf_counter()
    engine.separate(audio, 44100)
    return seconds / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--out", default="outputs/bench/models.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.models:
        torch.manual_seed(0)
        separator = build_separator(load_model_config(name), ["vocals", "accompaniment"])
        row = {
            "model": name,
            "params_M": sum(p.numel() for p in separator.parameters()) / 1e6,
            "GMACs_per_audio_s": macs_per_second(separator) / 1e9,
            "train_step_s": train_step_time(separator),
            "inference_x_realtime": inference_rtf(separator),
        }
        rows.append(row)
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"threads": args.threads, "device": "cpu", "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
