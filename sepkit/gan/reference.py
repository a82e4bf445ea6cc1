"""The reference embedding: a classifier trained once on real built-in spectrograms and stored in the
package (``sepkit/gan/reference.pt``), frozen for good.

The run's own scores classifier (:mod:`sepkit.gan.scores`) is trained at the start of every run, so
its Fréchet distance cannot be compared between runs or models. Scores in this embedding can: the
same weights, seed and recipe for everyone, and they never move with training. The file records how
it was made; ``python -m sepkit.gan.reference`` makes it again (same seed, same recipe).

It fits models whose spectrograms it was trained on (the features in the file: 16 kHz, n_fft 1024,
hop 256, 128 mel bands, the same dB normalisation); for other features its scores are left out.
"""

from __future__ import annotations

import argparse
import logging
import platform
import subprocess
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

import torch

from sepkit.gan.scores import Classifier

log = logging.getLogger(__name__)
PATH = Path(__file__).with_name("reference.pt")
# The recipe; changing it means training the file again (python -m sepkit.gan.reference).
RECIPE: dict[str, Any] = {
    "experiment": "gan",
    "data": "synthetic",  # the built-in songs, training split
    "classifier": {"channels": [16, 32, 64, 128], "embed_dim": 32},
    "steps": 400,
    "lr": 1.0e-3,
    "batch_size": 16,
    "seed": 0,
    "threads": 2,
}
FEATURES = ("sample_rate", "n_fft", "hop_length", "n_mels", "db_floor", "db_range")


class ReferenceEmbedding(torch.nn.Module):
    """The stored classifier's embedding ``(batch, 1, mels, frames)`` → ``(batch, embed_dim)``, frozen.

    Args:
        classifier: the trained classifier.
        features: the log-mel settings it was trained on (keys of :data:`FEATURES`).
        info: how it was made (recipe, data, accuracy, commit, versions).
    """

    def __init__(self, classifier: Classifier, features: dict[str, Any], info: dict[str, Any]) -> None:
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)
        self.features = features
        self.info = info

    def train(self, mode: bool = True) -> ReferenceEmbedding:
        """Always in eval mode: the reference never changes, whatever mode its owner is put in."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return self.classifier.embedding(spec).float()

    @torch.no_grad()
    def predict(self, embedding: torch.Tensor) -> torch.Tensor:
        """The stored classifier's category for each of :meth:`forward`'s embeddings ``(batch, dim)``."""
        return self.classifier.head(embedding).argmax(1)

    def fits(self, model_config: dict[str, Any]) -> bool:
        """Whether a GAN with these model settings makes the spectrograms this embedding knows."""
        return all(model_config.get(k) == v for k, v in self.features.items())


@cache
def _stored(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def load_reference(model_config: dict[str, Any], path: Path = PATH) -> ReferenceEmbedding | None:
    """The reference embedding for a GAN with ``model_config``, or ``None`` (with a warning) when
    the file is missing or was made for other spectrograms."""
    if not path.is_file():
        log.warning("no reference embedding at %s: the reference scores are left out", path)
        return None
    stored = _stored(path)
    reference = build(stored)
    if not reference.fits(model_config):
        log.warning(
            "the reference embedding knows spectrograms with %s, not this model's: the reference scores are left out",
            reference.features,
        )
        return None
    return reference


def build(stored: dict[str, Any]) -> ReferenceEmbedding:
    classifier = Classifier(n_classes=len(stored["categories"]), **stored["classifier"])
    classifier.load_state_dict(stored["state_dict"])
    return ReferenceEmbedding(classifier, stored["features"], {k: v for k, v in stored.items() if k != "state_dict"})


def make(out: Path, steps: int | None = None) -> dict[str, Any]:
    """Train the reference classifier by :data:`RECIPE` on the built-in songs and store it at ``out``."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from sepkit.commands import config_dir
    from sepkit.gan.features import LogMel
    from sepkit.gan.scores import embed_windows, fit_classifier

    recipe = {**RECIPE, **({"steps": steps} if steps else {})}
    torch.manual_seed(recipe["seed"])
    torch.set_num_threads(recipe["threads"])
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={recipe['experiment']}", f"data={recipe['data']}"])
    model = OmegaConf.to_container(cfg.model, resolve=True)
    datamodule = instantiate(cfg.spectrograms, batch_size=recipe["batch_size"], num_workers=0)
    datamodule.prepare_data()
    datamodule.setup("fit")
    features = {k: model[k] for k in FEATURES}
    encode = LogMel(**features)
    classifier = Classifier(n_classes=len(datamodule.categories), **recipe["classifier"])
    train_accuracy = fit_classifier(
        classifier, datamodule.loader(datamodule.train_set, shuffle=True), encode, recipe["steps"], recipe["lr"]
    )
    valid = embed_windows(classifier, encode, datamodule.windows("valid"))
    stored = {
        "state_dict": classifier.state_dict(),
        "classifier": recipe["classifier"],
        "categories": datamodule.categories,
        "features": features,
        "max_frames": model["max_frames"],
        "recipe": recipe,
        "command": "python -m sepkit.gan.reference",
        "train_accuracy": train_accuracy,
        "valid_accuracy": float((valid.predicted == valid.labels).float().mean()),
        "valid_windows": len(valid.labels),
        "commit": _commit(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "torch": str(torch.__version__),
        "cpu": platform.processor() or platform.machine(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(stored, out)
    return {k: v for k, v in stored.items() if k != "state_dict"}


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=PATH.parent, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description="Train the GAN's reference embedding again, by its stored recipe.")
    parser.add_argument("--out", type=Path, default=PATH, help=f"where to write it (default: {PATH})")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    info = make(args.out)
    print({k: info[k] for k in ("train_accuracy", "valid_accuracy", "valid_windows", "categories", "commit")})


if __name__ == "__main__":
    main()
