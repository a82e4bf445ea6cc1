"""The GAN's fixed reference embedding (sepkit/gan/reference.py) and the manifold scores measured in
it (precision, recall, density, coverage)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from sepkit.gan.reference import PATH, load_reference
from sepkit.gan.scores import Classifier, embed, generated_scores, manifold_scores, real_scores
from sepkit.gan.system import GANSystem

CONF = Path(__file__).resolve().parents[1] / "conf"


def model_config(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=gan", *overrides])
    return OmegaConf.to_container(cfg.model, resolve=True)


def test_the_stored_reference_says_how_it_was_made_and_fits_the_gan_recipes() -> None:
    stored = torch.load(PATH, map_location="cpu", weights_only=True)
    assert {"seed", "steps", "lr", "data", "classifier"} <= set(stored["recipe"])
    assert stored["command"] == "python -m sepkit.gan.reference"
    assert stored["valid_accuracy"] > 0.9 and stored["categories"] == ["vocals", "drums", "bass", "other"]
    for experiment in ("gan", "gan_baseline"):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("train", overrides=[f"experiment={experiment}"])
        assert load_reference(OmegaConf.to_container(cfg.model, resolve=True)) is not None


def test_other_spectrograms_get_no_reference_scores(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sepkit.gan.reference"):
        assert load_reference(model_config("model.n_mels=64")) is None
    assert "reference scores are left out" in caplog.text


def test_the_reference_is_frozen_deterministic_and_outside_the_trained_system() -> None:
    reference = load_reference(model_config())
    reference.train()  # whatever its owner asks, it stays in eval mode
    assert not reference.classifier.training and not any(p.requires_grad for p in reference.parameters())
    gen = torch.Generator().manual_seed(0)
    real = torch.rand(24, 1, 128, 512, generator=gen)
    fake = (real + 0.2 * torch.rand(24, 1, 128, 512, generator=gen)).clamp(0, 1)
    labels = torch.arange(24) % 4
    first = torch.load(PATH, map_location="cpu", weights_only=True)["state_dict"]
    classifier = Classifier(4, channels=(4,), embed_dim=4).eval()

    def scores() -> dict:
        gen_e, real_e = embed(classifier, fake, labels, reference), embed(classifier, real, labels, reference)
        return generated_scores(gen_e, real_e, real_e, "abcd") | {"floor": real_scores(real_e, real_e, "abcd")}

    once, again = scores(), scores()
    assert once == again and once["all"]["fd_ref"] > 0 and abs(once["floor"]["all"]["fd_ref_floor"]) < 1e-6
    assert all(torch.equal(v, first[k]) for k, v in reference.classifier.state_dict().items())

    system = GANSystem.__new__(GANSystem)  # only its module bookkeeping: the reference is no submodule
    torch.nn.Module.__init__(system)
    system._reference = [reference]
    assert not list(system.state_dict()) and system.reference is reference


def test_manifold_scores_on_real_against_real_collapsed_and_noise() -> None:
    gen = torch.Generator().manual_seed(0)
    real, other_real = torch.randn(300, 8, generator=gen), torch.randn(300, 8, generator=gen)
    same = manifold_scores(real, other_real)
    assert same["precision"] > 0.9 and same["recall"] > 0.9 and same["coverage"] > 0.9
    assert 0.8 < same["density"] < 1.2
    noise = 10.0 + torch.randn(300, 8, generator=gen)  # far from every real sample
    far = manifold_scores(real, noise)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    collapsed = manifold_scores(real, 0.01 * torch.randn(300, 8, generator=gen))  # all at the centre
    assert collapsed["precision"] > 0.9 and collapsed["recall"] < 0.1 and collapsed["coverage"] < 0.2


def test_the_reference_classifier_judges_the_category_asked_for() -> None:
    """cond_acc_ref: the share of samples the frozen reference classifier puts in the category they were
    asked for (a judge that is the same for every run, unlike the run's own classifier)."""
    reference = load_reference(model_config())
    classifier = Classifier(4, channels=(4,), embed_dim=4).eval()
    spec = torch.rand(16, 1, 128, 512, generator=torch.Generator().manual_seed(1))
    predicted = reference.classifier(spec).argmax(1)
    asked = torch.arange(16) % 4
    generated = embed(classifier, spec, asked, reference)
    assert torch.equal(generated.reference_predicted, predicted)
    real = embed(classifier, spec, predicted, reference)  # labelled as the judge sees them
    scores = generated_scores(generated, real, real, "abcd")
    assert scores["all"]["cond_acc_ref"] == pytest.approx(float((predicted == asked).float().mean()))
    for label, name in enumerate("abcd"):
        mine = asked == label
        assert scores[name]["cond_acc_ref"] == pytest.approx(float((predicted[mine] == label).float().mean()))
    assert real_scores(real, real, "abcd")["all"]["real_acc_ref"] == 1.0
    without = embed(classifier, spec, asked)  # no reference: no such score
    assert (without.reference_predicted == -1).all() and "cond_acc_ref" not in generated_scores(
        without, without, without, "abcd"
    )["all"]
