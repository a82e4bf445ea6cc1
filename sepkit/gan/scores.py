"""The GAN's scores, computed here for training (each validation) and evaluation alike.

A small CNN classifier is trained on real training spectrograms and then frozen. Through it:

* **conditional accuracy**: share of generated samples it assigns to the category asked for
  (beside it, its accuracy on held-out real spectrograms: the ceiling);
* **Fréchet distance** between real and generated embeddings (its penultimate layer), per category
  and over all, with the real-vs-real distance (training windows vs the reference windows) as the floor;
* **diversity**: mean pairwise embedding distance of generated samples of a category over that of
  real ones (1 = as varied as real data, near 0 = mode collapse); ``diversity_spec`` is the same
  ratio on the spectrograms themselves (RMS difference).

In the fixed reference embedding (:mod:`sepkit.gan.reference`, the same for every run) when it fits
the model's spectrograms: the **conditional accuracy** ``cond_acc_ref`` of its frozen classifier
(with its accuracy on held-out real spectrograms, ``real_acc_ref``), the **Fréchet distance**
``fd_ref`` (and its real-vs-real floor) and
**precision, recall, density and coverage** of generated against real samples (k nearest neighbours,
Kynkäänniemi et al. 2019, Naeem et al. 2020).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

log = logging.getLogger(__name__)

# Score names (keys of results.json; logged as val/<name> and val/<category>/<name>).
COND_ACC = "cond_acc"
REAL_ACC = "real_acc"
FD = "fd"
FD_FLOOR = "fd_floor"
DIVERSITY = "diversity"
DIVERSITY_SPEC = "diversity_spec"
FD_REF = "fd_ref"
COND_ACC_REF = "cond_acc_ref"
REAL_ACC_REF = "real_acc_ref"
FD_REF_FLOOR = "fd_ref_floor"
PRECISION = "precision"
RECALL = "recall"
DENSITY = "density"
COVERAGE = "coverage"
NEAREST_K = 5  # neighbours that set each sample's manifold radius (Naeem et al. 2020's choice)
SCORE_DEFINITIONS = {
    COND_ACC: "share of generated samples the classifier assigns to the category asked for",
    REAL_ACC: "classifier accuracy on held-out real spectrograms (the ceiling of cond_acc)",
    FD: "Fréchet distance between generated and held-out real spectrograms in the classifier's embedding space",
    FD_FLOOR: "the same distance between real training and held-out real spectrograms (what 'as good as real' reads)",
    DIVERSITY: "mean pairwise embedding distance of generated samples over that of real training samples",
    DIVERSITY_SPEC: "mean pairwise RMS spectrogram difference of generated samples over that of real ones",
    FD_REF: "Fréchet distance between generated and held-out real spectrograms in the fixed reference embedding",
    FD_REF_FLOOR: "the same distance between real training and held-out real spectrograms",
    COND_ACC_REF: "share of generated samples the fixed reference classifier assigns to the category asked for",
    REAL_ACC_REF: "the fixed reference classifier's accuracy on held-out real spectrograms (cond_acc_ref's ceiling)",
    PRECISION: "share of generated samples inside the real samples' k-nearest-neighbour manifold (reference embedding)",
    RECALL: "share of real samples inside the generated samples' k-nearest-neighbour manifold",
    DENSITY: "mean count of real-sample neighbourhoods holding each generated sample, over k (1: like real data)",
    COVERAGE: "share of real samples whose k-nearest-neighbour ball holds at least one generated sample",
}
OVERALL = "all"


class Classifier(nn.Module):
    """Strided Conv2d + BatchNorm + ReLU blocks, global average pooling, an ``embed_dim`` embedding
    (the space of the Fréchet distance), then the category logits.

    Args:
        n_classes: categories.
        channels: output channels of each block (each halves time and frequency).
        embed_dim: embedding dimensions (small: the Fréchet distance estimates a covariance from
            a few dozen samples per category).
    """

    def __init__(self, n_classes: int, channels: Sequence[int] = (16, 32, 64, 64), embed_dim: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for c_out in channels:
            layers += [nn.Conv2d(c_in, c_out, 3, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU()]
            c_in = c_out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.embed = nn.Linear(c_in, embed_dim)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(embed_dim, n_classes))

    def embedding(self, spec: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, mels, frames)`` to ``(batch, embed_dim)``."""
        return self.embed(self.features(spec.float()))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, mels, frames)`` to ``(batch, n_classes)`` logits."""
        return self.head(self.embedding(spec))


def fit_classifier(
    classifier: Classifier,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    encode: Callable[[torch.Tensor], torch.Tensor],
    steps: int,
    lr: float,
    device: torch.device | str = "cpu",
) -> float:
    """Train ``classifier`` on real ``(audio, labels)`` batches (cycled) for ``steps`` Adam steps, then
    freeze it in eval mode. Returns the training accuracy of the last 20 steps."""
    classifier.to(device).train()
    optimizer = torch.optim.Adam(classifier.parameters(), lr=lr)
    hits = total = 0
    for step, (audio, labels) in enumerate(itertools.islice(_cycle(batches), steps)):
        audio, labels = audio.to(device), labels.to(device)
        with torch.no_grad():
            spec = encode(audio)
        logits = classifier(spec)
        loss = nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step >= steps - 20:
            hits += int((logits.argmax(1) == labels).sum())
            total += len(labels)
    classifier.eval().requires_grad_(False)
    return hits / max(total, 1)


def _cycle(batches: Iterable) -> Iterable:
    while True:
        yield from batches


@dataclass
class Embedded:
    """Spectrograms seen through the classifier: embeddings ``(n, embed_dim)``, the labels they
    carry and the classes predicted ``(n,)``, the flattened spectrograms ``(n, mels * frames)``
    for the spectrogram-space diversity, and their embeddings in the reference embedding
    ``(n, ref_dim)`` (``(n, 0)`` without one) with the classes its classifier predicts (-1 without one)."""

    embeddings: torch.Tensor
    labels: torch.Tensor
    predicted: torch.Tensor
    flat: torch.Tensor
    reference: torch.Tensor
    reference_predicted: torch.Tensor | None = None

    FIELDS = ("embeddings", "labels", "predicted", "flat", "reference", "reference_predicted")

    def __post_init__(self) -> None:
        if self.reference_predicted is None:
            self.reference_predicted = torch.full_like(self.labels, -1)

    @classmethod
    def cat(cls, parts: Sequence[Embedded]) -> Embedded:
        return cls(*(torch.cat([getattr(p, f) for p in parts]) for f in cls.FIELDS))

    def of(self, label: int) -> Embedded:
        keep = self.labels == label
        return Embedded(*(getattr(self, f)[keep] for f in self.FIELDS))


@torch.no_grad()
def embed(
    classifier: Classifier, spec: torch.Tensor, labels: torch.Tensor, reference: nn.Module | None = None
) -> Embedded:
    """Embed ``(n, 1, mels, frames)`` spectrograms with ``labels`` ``(n,)`` (results on the CPU),
    also in ``reference`` (:class:`~sepkit.gan.reference.ReferenceEmbedding`) when given."""
    emb = classifier.embedding(spec).float()
    predicted = classifier.head(emb).argmax(1)
    ref = reference(spec) if reference is not None else torch.zeros(len(spec), 0)
    ref_predicted = reference.predict(ref).cpu() if reference is not None else None
    return Embedded(emb.cpu(), labels.cpu(), predicted.cpu(), spec.flatten(1).float().cpu(), ref.cpu(), ref_predicted)


@torch.no_grad()
def embed_windows(
    classifier: Classifier,
    encode: Callable[[torch.Tensor], torch.Tensor],
    windows: Dataset,
    batch_size: int = 32,
    reference: nn.Module | None = None,
) -> Embedded:
    """Real ``(audio, label)`` windows through ``encode`` (audio to spectrogram) and the classifier
    (and ``reference``), on the classifier's device."""
    device = next(classifier.parameters()).device
    loader = DataLoader(windows, batch_size=batch_size)
    return Embedded.cat([embed(classifier, encode(audio.to(device)), labels, reference) for audio, labels in loader])


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to ``(n, d)`` and ``(m, d)`` samples:
    ``|mu_a - mu_b|² + tr(S_a + S_b - 2 (S_a^½ S_b S_a^½)^½)``, in float64 by symmetric eigendecompositions."""
    a, b = a.double(), b.double()
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    vals, vecs = torch.linalg.eigh(cov_a)
    root_a = vecs @ torch.diag(vals.clamp_min(0).sqrt()) @ vecs.T
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp_min(0).sqrt().sum()
    mean_term = (a.mean(0) - b.mean(0)).pow(2).sum()
    return float(mean_term + cov_a.trace() + cov_b.trace() - 2 * cross)


def mean_pairwise_distance(x: torch.Tensor) -> float:
    """Mean Euclidean distance between distinct rows of ``(n, d)``."""
    if len(x) < 2:
        return float("nan")
    dist = torch.cdist(x.double(), x.double())
    return float(dist.sum() / (len(x) * (len(x) - 1)))


def manifold_scores(real: torch.Tensor, fake: torch.Tensor, k: int = NEAREST_K) -> dict[str, float]:
    """Precision and recall (Kynkäänniemi et al. 2019), density and coverage (Naeem et al. 2020) of
    ``fake`` ``(m, d)`` against ``real`` ``(n, d)`` embeddings: each sample's manifold is the ball
    reaching its ``k``-th nearest neighbour in its own set (``k`` capped at the set's size - 1)."""
    if len(real) < 2 or len(fake) < 2:
        return dict.fromkeys((PRECISION, RECALL, DENSITY, COVERAGE), float("nan"))
    real, fake = real.double(), fake.double()
    k_real, k_fake = min(k, len(real) - 1), min(k, len(fake) - 1)
    # k-th neighbour other than itself: the (k + 1)-th smallest distance, the first being 0.
    radius_real = torch.cdist(real, real).kthvalue(k_real + 1, dim=1).values  # (n,)
    radius_fake = torch.cdist(fake, fake).kthvalue(k_fake + 1, dim=1).values  # (m,)
    cross = torch.cdist(real, fake)  # (n, m)
    inside_real = cross < radius_real[:, None]  # generated sample j inside real sample i's ball
    return {
        PRECISION: float(inside_real.any(dim=0).double().mean()),
        RECALL: float((cross < radius_fake[None, :]).any(dim=1).double().mean()),
        DENSITY: float(inside_real.sum(dim=0).double().mean() / k_real),
        COVERAGE: float((cross.min(dim=1).values < radius_real).double().mean()),
    }


def real_scores(train: Embedded, reference: Embedded, categories: Sequence[str]) -> dict[str, dict[str, float]]:
    """Floors and ceilings from real data alone: classifier accuracy on ``reference`` and
    Fréchet distance train vs reference, per category and ``all``."""
    out: dict[str, dict[str, float]] = {}
    for label, name in enumerate(categories):
        ref = reference.of(label)
        out[name] = {
            REAL_ACC: float((ref.predicted == label).float().mean()) if len(ref.labels) else float("nan"),
            FD_FLOOR: frechet_distance(train.of(label).embeddings, ref.embeddings),
        }
        if ref.reference.shape[1]:
            out[name][FD_REF_FLOOR] = frechet_distance(train.of(label).reference, ref.reference)
            out[name][REAL_ACC_REF] = float((ref.reference_predicted == label).float().mean())
    out[OVERALL] = {
        REAL_ACC: float((reference.predicted == reference.labels).float().mean()),
        FD_FLOOR: frechet_distance(train.embeddings, reference.embeddings),
    }
    if reference.reference.shape[1]:
        out[OVERALL][FD_REF_FLOOR] = frechet_distance(train.reference, reference.reference)
        out[OVERALL][REAL_ACC_REF] = float((reference.reference_predicted == reference.labels).float().mean())
    return out


def generated_scores(
    generated: Embedded, reference: Embedded, train: Embedded, categories: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Scores of generated samples, per category and ``all`` (diversity: the mean over categories);
    with reference embeddings also ``fd_ref`` and the manifold scores (:func:`manifold_scores`).

    Args:
        generated: generated samples, labelled with the category asked for.
        reference: held-out real windows (the Fréchet distance is measured to them).
        train: real training windows (the diversity of real data).
        categories: names in label order.
    """
    out: dict[str, dict[str, float]] = {}
    for label, name in enumerate(categories):
        gen, real = generated.of(label), train.of(label)
        out[name] = {
            COND_ACC: float((gen.predicted == label).float().mean()),
            FD: frechet_distance(gen.embeddings, reference.of(label).embeddings),
            DIVERSITY: mean_pairwise_distance(gen.embeddings) / mean_pairwise_distance(real.embeddings),
            DIVERSITY_SPEC: mean_pairwise_distance(gen.flat) / mean_pairwise_distance(real.flat),
        }
    per_category = [out[name] for name in categories]
    out[OVERALL] = {
        COND_ACC: float((generated.predicted == generated.labels).float().mean()),
        FD: frechet_distance(generated.embeddings, reference.embeddings),
        DIVERSITY: float(torch.tensor([s[DIVERSITY] for s in per_category]).nanmean()),
        DIVERSITY_SPEC: float(torch.tensor([s[DIVERSITY_SPEC] for s in per_category]).nanmean()),
    }
    if generated.reference.shape[1] and reference.reference.shape[1]:
        for label, name in enumerate(categories):
            mine = generated.of(label)
            gen, real = mine.reference, reference.of(label).reference
            out[name] |= {
                COND_ACC_REF: float((mine.reference_predicted == label).float().mean()),
                FD_REF: frechet_distance(gen, real),
                **manifold_scores(real, gen),
            }
        out[OVERALL] |= {
            COND_ACC_REF: float((generated.reference_predicted == generated.labels).float().mean()),
            FD_REF: frechet_distance(generated.reference, reference.reference),
            **manifold_scores(reference.reference, generated.reference),
        }
    return out
