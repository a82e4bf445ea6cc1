"""What the bundled model (``sepkit/models/bundled.ckpt``) gave when it was made: its stems of a
fixed 10-s 44.1 kHz stereo mixture (every 101st sample) and the checkpoint's SHA-256.
``tests/test_bundled.py`` checks that the shipped file still loads and still separates as recorded,
so a change of the model code that breaks it is seen. ``make bundled`` rewrites this record.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
RECORD = HERE / "bundled.npz"
RATE = 44100
EVERY = 101


def mixture() -> np.ndarray:
    """``(2, time)`` float32: a melody, a bass pulse, a hi-hat-like noise burst pattern."""
    rng = np.random.default_rng(7)
    t = np.arange(10 * RATE) / RATE
    melody = 0.25 * np.sin(2 * np.pi * (440 + 30 * np.sin(2 * np.pi * 0.3 * t)) * t)
    bass = 0.3 * np.sin(2 * np.pi * 55 * t) * (np.sin(2 * np.pi * 1.5 * t) > 0)
    hats = 0.05 * rng.standard_normal(t.size) * (np.mod(t, 0.25) < 0.03)
    return np.stack([melody + bass + hats, 0.8 * melody + bass + hats]).astype(np.float32)


def separate() -> dict[str, np.ndarray]:
    import torch

    from sepkit.checkpoint import load_separator
    from sepkit.inference import SeparationEngine

    engine = SeparationEngine(load_separator("bundled"), device="cpu")
    return {t: v.numpy() for t, v in engine.separate(torch.from_numpy(mixture()), RATE).items()}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    from sepkit.checkpoint import BUNDLED

    arrays = {target: stem[:, ::EVERY] for target, stem in separate().items()}
    np.savez_compressed(RECORD, sha256=np.array(sha256(BUNDLED)), **arrays)
    print(f"wrote {RECORD}")


if __name__ == "__main__":
    main()
