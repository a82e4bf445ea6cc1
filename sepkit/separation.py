"""``separate_files(cfg)``: turn audio files into stems with the inference engine.

Files are streamed (:func:`stream_file`): read, separated and written piece by piece, so memory
does not grow with a file's length, and each piece's stems are written by a second thread while
the next piece is separated.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from sepkit.audio import AUDIO_EXTENSIONS, OUTPUT_FORMATS, probe, read, resample
from sepkit.checkpoint import default_onnx_path, load_separator
from sepkit.errors import SepkitError
from sepkit.inference import SeparationEngine

log = logging.getLogger(__name__)
SUBTYPES = {
    ("wav", 16): "PCM_16",
    ("wav", 24): "PCM_24",
    ("wav", 32): "FLOAT",
    ("flac", 16): "PCM_16",
    ("flac", 24): "PCM_24",
}


def output_subtype(fmt: str, bit_depth: int) -> str | None:
    """soundfile subtype for ``format`` and ``bit_depth`` (None: the format's own, for mp3)."""
    if fmt not in OUTPUT_FORMATS:
        raise SepkitError(f"format={fmt!r} must be one of {', '.join(OUTPUT_FORMATS)}")
    if fmt == "mp3":
        return "MPEG_LAYER_III"
    if (fmt, bit_depth) not in SUBTYPES:
        depths = sorted(d for f, d in SUBTYPES if f == fmt)
        raise SepkitError(f"bit_depth={bit_depth} is not available for {fmt}; use one of {depths}")
    return SUBTYPES[(fmt, bit_depth)]


def collect_inputs(path: str | Path) -> list[Path]:
    """The audio files named by ``input``: one file, or a folder's audio files (sorted)."""
    path = Path(path)
    if not path.exists():
        raise SepkitError(f"input {path} does not exist")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
    if not files:
        raise SepkitError(f"input folder {path} holds no audio files ({', '.join(AUDIO_EXTENSIONS)})")
    stems = [p.stem for p in files]
    clashes = sorted({s for s in stems if stems.count(s) > 1})
    if clashes:
        raise SepkitError(
            f"{path} has several files named {clashes[0]!r} (e.g. .wav and .mp3): their stems would collide"
        )
    return files


def check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".sepkit-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise SepkitError(f"cannot write to output folder {folder} ({err.strerror or err})") from None


class StemWriter:
    """Writes one file per target under temporary names; ``commit`` renames them into place, so a
    failed separation leaves nothing half-written."""

    def __init__(self, paths: dict[str, Path], rate: int, channels: int, fmt: str, subtype: str | None) -> None:
        self.paths = paths
        self.tmp = {t: p.with_name(f".{p.stem}.partial{p.suffix}") for t, p in paths.items()}
        self.files: dict[str, sf.SoundFile] = {}
        try:
            for t, p in self.tmp.items():
                self.files[t] = sf.SoundFile(str(p), "w", rate, channels, subtype=subtype, format=OUTPUT_FORMATS[fmt])
        except BaseException:
            self.close(commit=False)
            raise

    def write(self, block: dict[str, np.ndarray]) -> None:
        for t, f in self.files.items():  # clipped into one C-ordered copy, the layout soundfile writes
            f.write(np.clip(block[t], -1.0, 1.0, out=np.empty(block[t].shape, np.float32)))

    def close(self, commit: bool) -> None:
        for f in self.files.values():
            f.close()
        for t, tmp in self.tmp.items():
            if commit:
                tmp.replace(self.paths[t])
            else:
                tmp.unlink(missing_ok=True)


def stream_file(engine: SeparationEngine, path: str | Path) -> Iterator[dict[str, np.ndarray]]:
    """Separate a file as it is read: yields ``{target: (time, channels)}`` stems in order.

    The file is read ``engine.block_seconds`` at a time into one :class:`SeparationStream`, so
    memory does not grow with the file's length, and the stems equal separating the whole file at
    once (the stream resamples and tiles exactly; there are no block seams).
    """
    info = probe(path, engine.downmix)
    rate, total = info.samplerate, info.frames
    stream = engine.stream(rate, info.channels, total)
    block = max(int(engine.block_seconds * rate), 1)
    for pos in range(0, total, block):
        audio, _ = read(path, pos, min(block, total - pos))
        est = stream.push(audio.to(engine.device), last=pos + block >= total).cpu()
        if est.shape[-1]:
            yield {t: est[i].numpy().T for i, t in enumerate(engine.targets)}


def separate_file(
    engine: SeparationEngine,
    path: Path,
    out_dir: Path,
    fmt: str,
    subtype: str | None,
    overwrite: bool,
    progress: Callable[[float], None] | None = None,
) -> float | None:
    """Separate one file into ``out_dir/<stem>/<target>.<fmt>``; returns the real-time factor
    (None when skipped because the outputs exist). ``progress`` gets the fraction done per block."""
    dest = out_dir / path.stem
    outputs = {t: dest / f"{t}.{fmt}" for t in engine.targets}
    if any(p.resolve() == path.resolve() for p in outputs.values()):
        raise SepkitError("an output would overwrite the input; choose another output folder")
    existing = [p for p in outputs.values() if p.exists()]
    if existing and not overwrite:
        if len(existing) == len(outputs):
            log.info("skipping %s: outputs exist in %s (overwrite=true to redo)", path.name, dest)
            return None
        raise SepkitError(f"{existing[0]} already exists (but not every stem does); overwrite=true replaces it")
    info = probe(path, engine.downmix)
    channels = 1 if info.channels > 2 else info.channels
    if dest.exists() and not dest.is_dir():
        raise SepkitError(f"{dest} exists and is not a folder")
    dest.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    writer = None
    try:
        writer = StemWriter(outputs, info.samplerate, channels, fmt, subtype)
        with ThreadPoolExecutor(max_workers=1) as pool:  # writes block k while block k + 1 is separated
            pending = None
            done = 0
            for block in stream_file(engine, path):
                if pending is not None:
                    pending.result()
                pending = pool.submit(writer.write, block)
                done += len(next(iter(block.values())))
                if progress is not None:
                    progress(done / info.frames)
            if pending is not None:
                pending.result()
    except sf.LibsndfileError as err:  # truncated / corrupt data, or an unwritable output
        if writer is not None:
            writer.close(commit=False)
        raise SepkitError(f"audio I/O failed ({str(err).splitlines()[0]})") from None
    except BaseException:
        if writer is not None:
            writer.close(commit=False)
        raise
    writer.close(commit=True)
    return info.frames / info.samplerate / (time.perf_counter() - start)


def plot_file(
    engine: SeparationEngine, path: Path, dest: Path, seconds: float = 30.0, title: str | None = None
) -> Path:
    """Mixture spectrogram, predicted vocal mask and estimated vocals spectrogram of the first
    ``seconds`` of a file, at the model's rate and STFT."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sep = engine.separator
    rate = probe(path, downmix=True).samplerate
    audio, _ = read(path, 0, int(seconds * rate))
    audio = resample(audio.mean(0, keepdim=True), rate, sep.sample_rate).expand(sep.audio_channels, -1)
    with torch.no_grad():
        spec = sep.encode(audio.unsqueeze(0).to(engine.device))
        masks = sep.estimate_masks(sep.mask_input(spec))[0, 0, 0].abs().cpu()  # a complex mask's modulus
    mag = spec.abs()[0, 0].cpu()
    panels = [
        ("mixture (dB)", 20 * torch.log10(mag + 1e-6)),
        (f"{sep.targets[0]} mask", masks),
        (f"estimated {sep.targets[0]} (dB)", 20 * torch.log10(masks * mag + 1e-6)),
    ]
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    extent = [0, mag.shape[-1] * sep.hop_length / sep.sample_rate, 0, sep.sample_rate / 2000]
    for ax, (label, image) in zip(axes, panels, strict=True):
        vmin = 0.0 if "mask" in label else float(image.max()) - 80
        ax.imshow(image.numpy(), origin="lower", aspect="auto", extent=extent, vmin=vmin, cmap="magma")
        ax.set_title(label)
        ax.set_ylabel("kHz")
    axes[-1].set_xlabel("seconds")
    fig.suptitle(f"{title or path.name} ({sep.name})")
    fig.tight_layout()
    out = dest / "separation.png"
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def separate_files(cfg: DictConfig) -> int:
    """Separate ``cfg.input`` (file or folder) into ``cfg.output``; returns the number of failures of a
    folder (a single file's failure is raised)."""
    subtype = output_subtype(cfg.format, int(cfg.bit_depth))
    if not cfg.input:
        raise SepkitError("pass input=FILE_OR_DIR, the audio to separate (wav, flac, ogg or mp3), or serve=true")
    inputs = collect_inputs(cfg.input)
    if cfg.plot:  # before any file is separated, not after the first
        from sepkit.extras import require

        require("matplotlib", "separation.png (plot=true)", extra="plots")
    separator = load_separator(cfg.ckpt)
    engine = SeparationEngine(separator, **OmegaConf.to_container(cfg.engine, resolve=True))
    out_dir = Path(cfg.output)
    check_writable(out_dir)
    console = Console(stderr=True)
    failed = 0
    for i, path in enumerate(inputs, 1):
        console.print(f"[{i}/{len(inputs)}] {path.name}", markup=False)
        try:
            rtf = separate_file(engine, path, out_dir, cfg.format, subtype, bool(cfg.overwrite))
            if cfg.plot and rtf is not None:
                plot_file(engine, path, out_dir / path.stem)
        except SepkitError as err:
            if len(inputs) == 1:
                raise SepkitError(f"{path}: {err}") from None
            failed += 1
            print(f"error: {path}: {err}", flush=True, file=sys.stderr)
            continue
        if rtf is not None:
            console.print(f"  wrote {out_dir / path.stem}/  ({rtf:.1f}x real time)", markup=False)
    return failed


def export_checkpoint(cfg: DictConfig) -> Path:
    """``export=onnx``: write the checkpoint's mask network as ONNX with a JSON sidecar."""
    if cfg.export != "onnx":
        raise SepkitError(f"export={cfg.export!r}: the one export format is onnx")
    from sepkit.export import export_onnx

    separator = load_separator(cfg.ckpt)
    path = Path(cfg.export_path) if cfg.export_path else default_onnx_path(cfg.ckpt)
    if path.is_dir():
        raise SepkitError(f"export_path={path} is a folder: name the file to write, e.g. export_path={path}/model.onnx")
    export_onnx(separator, path, overwrite=bool(cfg.overwrite))
    print(f"wrote {path} and {path.with_suffix('.json')}; run it with engine.backend=onnxruntime", flush=True)
    return path
