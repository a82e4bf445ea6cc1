"""Golden outputs of the inference road (``tests/test_road.py``): a fixed tiny paper U-Net
(``model.ckpt``, its weights stored so no RNG is involved) separating a fixed 20-s 16 kHz signal in
each scenario below. Every 101st sample of each stem is kept, to keep the files small.

``road.npz`` was written with the engine of commit b3c6c5c, before the tiled-apply / audio-module /
streaming split, which resampled to the model's 8192 Hz and back: the model-band road
(``fullband=False``) must still give those stems. ``road_fullband.npz`` was written on purpose when
the engine became full band (issue #25: the masks meet the song at its own rate, so the stems keep
everything above 4 kHz and add up to the input): ``python -m tests.golden.road`` rewrites it, and
only a deliberate change of the full-band road should.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
RATE = 16000
SECONDS = 20.0
EVERY = 101
# name -> (engine keyword arguments, input channels, "memory" = engine.separate | "stream" = a file)
SCENARIOS: dict[str, tuple[dict, int, str]] = {
    "default": ({}, 2, "memory"),
    "overlap_triangular": ({"overlap": 0.5, "window": "triangular", "batch_size": 3}, 2, "memory"),
    "mono_wiener_shifts": ({"wiener_iterations": 1, "shifts": 2}, 1, "memory"),
    "stream_blocks": ({"block_seconds": 7.0}, 2, "stream"),
}


def mixture(channels: int) -> np.ndarray:
    """``(channels, time)`` float32: tones with a melody, a pulse and seeded noise."""
    rng = np.random.default_rng(1234)
    t = np.arange(int(SECONDS * RATE)) / RATE
    melody = 0.3 * np.sin(2 * np.pi * (330 + 40 * np.sin(2 * np.pi * 0.5 * t)) * t)
    pulse = 0.2 * np.sin(2 * np.pi * 80 * t) * (np.sin(2 * np.pi * 2 * t) > 0)
    left = melody + pulse + 0.02 * rng.standard_normal(t.size)
    right = 0.6 * melody + pulse + 0.02 * rng.standard_normal(t.size)
    return np.stack([left, right][:channels]).astype(np.float32)


def write_checkpoint(path: Path) -> None:
    import torch

    from sepkit.checkpoint import separator_checkpoint
    from sepkit.separator import build_separator
    from tests.test_separator import PAPER

    torch.manual_seed(0)
    separator = build_separator(PAPER, ["vocals", "accompaniment"])
    run = {"covers_mixture": True}
    torch.save(separator_checkpoint(separator, run), path)


def separate(scenario: str, tmp: Path, fullband: bool = True) -> dict[str, np.ndarray]:
    """Stems ``{target: (channels, time)}`` of a scenario with the current road (full band or not)."""
    import soundfile as sf
    import torch

    from sepkit.checkpoint import load_separator
    from sepkit.inference import SeparationEngine

    kwargs, channels, how = SCENARIOS[scenario]
    engine = SeparationEngine(load_separator(HERE / "model.ckpt"), device="cpu", fullband=fullband, **kwargs)
    audio = mixture(channels)
    if how == "memory":
        return {t: v.numpy() for t, v in engine.separate(torch.from_numpy(audio), RATE).items()}
    from sepkit.separation import separate_file

    path = tmp / "mix.wav"
    sf.write(path, audio.T, RATE, subtype="FLOAT")
    separate_file(engine, path, tmp, "wav", "FLOAT", overwrite=True)
    return {t: sf.read(tmp / "mix" / f"{t}.wav", dtype="float32", always_2d=True)[0].T for t in engine.targets}


def main() -> None:
    import tempfile

    if not (HERE / "model.ckpt").exists():
        write_checkpoint(HERE / "model.ckpt")
    arrays = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in SCENARIOS:
            for target, stem in separate(name, Path(tmp)).items():
                arrays[f"{name}/{target}"] = stem[:, ::EVERY]
    np.savez_compressed(HERE / "road_fullband.npz", **arrays)
    print(f"wrote {HERE / 'road_fullband.npz'} ({len(arrays)} arrays)")


if __name__ == "__main__":
    main()
