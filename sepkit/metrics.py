"""Metric names (defined once here) and the SI-SDR used by training, evaluation and benchmarks."""

from __future__ import annotations

from functools import lru_cache

import torch
from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio

TRAIN_LOSS = "train/loss"
VAL_LOSS = "val/loss"
VAL_SI_SDR = "val/si_sdr"
SI_SDR = "si_sdr"
SI_SDRI = "si_sdri"


def metric_key(stage: str, target: str, metric: str) -> str:
    """Per-target key such as ``val/vocals/si_sdr``."""
    return f"{stage}/{target}/{metric}"


def si_sdr(estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """SI-SDR in dB over the last axis (zero-mean, torchmetrics), one value per leading index."""
    return scale_invariant_signal_distortion_ratio(estimate, reference, zero_mean=True)


# Full-track evaluation metrics: key -> what it is (written into results.json).
EVAL_METRICS = {
    "si_sdr": "scale-invariant SDR in dB over the whole track, mean over channels (torchmetrics, zero-mean)",
    "museval_sdr": "BSSEval v4 SDR in dB, median over 1 s frames (museval, SiSEC 2018 tables)",
    "museval_sir": "BSSEval v4 SIR in dB, median over 1 s frames (museval)",
    "museval_sar": "BSSEval v4 SAR in dB, median over 1 s frames (museval)",
    "usdr": "utterance SDR in dB over the whole track, 10 log10(sum ref^2 / sum (ref - est)^2) (MDX 'new SDR')",
    "mse": "mean squared waveform error",
    "mae": "mean absolute waveform error",
    "mel_l1": "L1 distance of log-mel spectrograms (128 mels, n_fft 2048, hop 512)",
    "sum_error_db": "the stems' sum against the mixture: error energy over mixture energy in dB (one per track)",
}


def usdr(estimate: torch.Tensor, reference: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """MDX-style SDR over whole signals: one value per leading index of ``(..., channels, time)``."""
    num = reference.square().sum(dim=(-2, -1)).double() + eps
    den = (reference - estimate).square().sum(dim=(-2, -1)).double() + eps
    return 10 * torch.log10(num / den)


@lru_cache(maxsize=4)
def _mel(sample_rate: int) -> torch.nn.Module:
    import torchaudio

    return torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=2048, hop_length=512, n_mels=128)


def mel_l1(estimate: torch.Tensor, reference: torch.Tensor, sample_rate: int) -> float:
    """L1 distance between log-mel spectrograms of ``(channels, time)`` signals."""
    mel = _mel(sample_rate).to(estimate.device)
    return float(torch.mean(torch.abs(torch.log(mel(estimate) + 1e-5) - torch.log(mel(reference) + 1e-5))))


def museval_medians(estimates: torch.Tensor, references: torch.Tensor, sample_rate: int) -> dict[str, list[float]]:
    """BSSEval v4 SDR/SIR/SAR medians over 1 s frames for ``(targets, channels, time)`` tensors."""
    import museval
    import numpy as np

    ref = references.permute(0, 2, 1).double().numpy()
    est = estimates.permute(0, 2, 1).double().numpy()
    sdr, _isr, sir, sar = museval.evaluate(ref, est, win=sample_rate, hop=sample_rate)
    with np.errstate(all="ignore"):
        return {
            "museval_sdr": [float(np.nanmedian(v)) for v in sdr],
            "museval_sir": [float(np.nanmedian(v)) for v in sir],
            "museval_sar": [float(np.nanmedian(v)) for v in sar],
        }


def band_keys(cutoff: float) -> dict[str, str]:
    """Names and definitions of the band metrics for a cutoff in Hz (``si_sdr_lo8k`` ... for 8000)."""
    k = f"{cutoff / 1000:g}k"
    return {
        f"si_sdr_lo{k}": f"SI-SDR in dB of the band below {cutoff:g} Hz (both signals band-limited by FFT)",
        f"si_sdr_hi{k}": f"SI-SDR in dB of the band above {cutoff:g} Hz (both signals band-limited by FFT)",
        f"energy_hi{k}": f"the stem's energy above {cutoff:g} Hz against its reference's, in dB (0: as much)",
    }


def split_band(x: torch.Tensor, sample_rate: int, cutoff: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(..., time)`` into the parts below and above ``cutoff`` Hz (an ideal filter over the whole signal)."""
    spectrum = torch.fft.rfft(x.double(), dim=-1)
    above = torch.fft.rfftfreq(x.shape[-1], 1 / sample_rate) >= cutoff
    high = torch.fft.irfft(spectrum * above.to(spectrum.device), n=x.shape[-1], dim=-1)
    return (x.double() - high).to(x.dtype), high.to(x.dtype)


def band_metrics(
    estimates: torch.Tensor, references: torch.Tensor, sample_rate: int, cutoffs: list[float]
) -> list[dict[str, float]]:
    """Per target of ``(targets, channels, time)``: SI-SDR below and above each cutoff and the
    energy above it against the reference's (NaN where the reference has none there: less than
    -50 dB of its whole energy)."""
    rows: list[dict[str, float]] = [{} for _ in range(references.shape[0])]
    for cutoff in cutoffs:
        lo_key, hi_key, energy_key = band_keys(cutoff)
        est_lo, est_hi = split_band(estimates, sample_rate, cutoff)
        ref_lo, ref_hi = split_band(references, sample_rate, cutoff)
        ref_energy = ref_hi.double().square().sum(dim=(-2, -1))
        lo, hi = si_sdr(est_lo, ref_lo).mean(-1), si_sdr(est_hi, ref_hi).mean(-1)
        energy = 10 * torch.log10(est_hi.double().square().sum(dim=(-2, -1)) / ref_energy)
        for j, row in enumerate(rows):
            audible = float(ref_energy[j]) > 1e-5 * float(references[j].double().square().sum() + 1e-20)
            row[lo_key] = float(lo[j])
            row[hi_key] = float(hi[j]) if audible else float("nan")
            row[energy_key] = float(energy[j]) if audible else float("nan")
    return rows


def sum_error_db(estimates: torch.Tensor, mixture: torch.Tensor) -> float:
    """How far the stems' sum is from the mixture: error energy over mixture energy, in dB."""
    error = (estimates.double().sum(0) - mixture.double()).square().sum()
    return float(10 * torch.log10(error / mixture.double().square().sum().clamp_min(1e-20) + 1e-30))


def track_metrics(
    estimates: torch.Tensor,
    references: torch.Tensor,
    sample_rate: int,
    with_museval: bool = True,
    with_mel: bool = True,
    bands: tuple[float, ...] = (),
) -> list[dict[str, float]]:
    """The metrics of :data:`EVAL_METRICS` per target of ``(targets, channels, time)`` tensors
    (museval and log-mel L1 only when asked: each costs more than separating the audio), and the
    :func:`band_metrics` of each cutoff in ``bands``."""
    bss = museval_medians(estimates, references, sample_rate) if with_museval else {}
    error = estimates - references
    columns = {
        "si_sdr": si_sdr(estimates, references).mean(-1),  # (targets, channels) -> per target
        "usdr": usdr(estimates, references),
        "mse": error.square().mean(dim=(-2, -1)),
        "mae": error.abs().mean(dim=(-2, -1)),
    }
    rows = [{k: float(v[j]) for k, v in columns.items()} for j in range(references.shape[0])]
    for j, row in enumerate(rows):
        if with_mel:
            row["mel_l1"] = mel_l1(estimates[j], references[j], sample_rate)
        row.update({k: v[j] for k, v in bss.items()})
    if bands:
        for row, extra in zip(rows, band_metrics(estimates, references, sample_rate, list(bands)), strict=True):
            row.update(extra)
    return rows
