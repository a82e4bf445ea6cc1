"""The GAN's losses, regularisers, augmentation and minibatch standard deviation (sepkit/gan/losses.py,
augment.py, networks.py) on cases whose answer is known."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sepkit.errors import SepkitError
from sepkit.gan.augment import DiffAugment
from sepkit.gan.losses import Hinge, NonSaturating, feature_matching, mode_seeking, r1_penalty
from sepkit.gan.networks import group_std


def test_the_non_saturating_loss_is_binary_cross_entropy() -> None:
    real, fake = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 0.2, 1.0])
    bce = nn.BCEWithLogitsLoss()
    loss = NonSaturating()
    expected_d = bce(real, torch.ones(3)) + bce(fake, torch.zeros(3))
    assert torch.allclose(loss.discriminator(real, fake), expected_d)
    assert torch.allclose(loss.generator(fake), bce(fake, torch.ones(3)))


def test_the_hinge_loss_stops_at_its_margin() -> None:
    loss = Hinge()
    assert loss.discriminator(torch.tensor([2.0, 1.0]), torch.tensor([-1.0, -5.0])) == 0.0  # beyond the margin
    assert loss.discriminator(torch.zeros(2), torch.zeros(2)) == 2.0
    assert loss.generator(torch.tensor([1.0, 3.0])) == -2.0


def test_r1_is_the_squared_gradient_norm_on_real_samples() -> None:
    w = torch.tensor([1.0, -2.0, 3.0])
    real = torch.randn(4, 3, requires_grad=True)
    logits = real @ w  # gradient w for every sample
    assert torch.allclose(r1_penalty(logits, real), w.pow(2).sum())


def test_mode_seeking_punishes_the_same_output_for_different_noise() -> None:
    noise = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    same = torch.ones(8, 1, 4, 4)
    varied = torch.randn(8, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    assert mode_seeking(same, noise) > 1e4 > 10 > mode_seeking(varied, noise)


def test_feature_matching_compares_each_categorys_mean_with_its_own_real_mean() -> None:
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(12, 6, generator=gen) * 5.0
    labels = torch.arange(3).repeat(4)
    real[labels == 1] += 20.0  # category 1 sits apart from the others
    assert feature_matching(real.clone(), real, labels, labels) == 0.0
    swapped = torch.tensor([1, 0, 2]).repeat(4)  # categories 0 and 1 generated with each other's features
    wrong = feature_matching(real.clone(), real, swapped, labels)
    assert wrong > 1.0
    # In units of the real features' spread: the same on another scale.
    assert torch.allclose(feature_matching(real * 10, real * 10, swapped, labels), wrong)
    within = [3, 4, 5, 0, 1, 2, 9, 10, 11, 6, 7, 8]  # each category's samples in another order: the same means
    assert torch.allclose(feature_matching(real[within], real, labels, labels), torch.tensor(0.0), atol=1e-6)
    assert feature_matching(real[torch.randperm(12, generator=gen)], real, labels, labels) > 0.0
    partial = feature_matching(real[:3], real, labels[:3], labels)  # one generated sample per category
    assert torch.isfinite(partial) and partial > 0.0
    fake = real.clone().requires_grad_(True)
    feature_matching(fake + 1.0, real, labels, labels).backward()
    assert fake.grad is not None and (fake.grad > 0).all()  # pulled back towards the real means


def test_diff_augment_keeps_spectrograms_spectrograms_and_passes_gradients() -> None:
    torch.manual_seed(0)
    spec = torch.rand(6, 1, 8, 40) + 0.1  # every bin sounding
    spec[:, :, :2] = 0.0  # two silent bands
    shifted = DiffAugment(level=0.0, shift=0.25, cutout=0.0)(spec)
    for before, after in zip(spec, shifted, strict=True):  # a circular shift in time: the same frames
        assert any(torch.equal(torch.roll(before, k, dims=-1), after) for k in range(-10, 11))
    cut = DiffAugment(level=0.0, shift=0.0, cutout=0.25)(spec)
    silenced = (cut == 0).all(dim=2).squeeze(1) & (spec != 0).any(dim=2).squeeze(1)  # (batch, frames)
    assert silenced.sum(dim=1).tolist() == [10] * 6  # a quarter of 40 frames, in each sample
    levelled = DiffAugment(level=0.1, shift=0.0, cutout=0.0)(spec)
    assert torch.equal(levelled[:, :, :2], spec[:, :, :2])  # silence stays silence
    offsets = (levelled - spec)[:, :, 2:].flatten(1)
    assert (offsets.abs() <= 0.1 + 1e-6).all() and torch.allclose(offsets.std(dim=1), torch.zeros(6), atol=1e-6)

    spec.requires_grad_(True)
    DiffAugment()(spec).sum().backward()
    assert spec.grad is not None and spec.grad.abs().sum() > 0


def test_diff_augment_strength_scales_its_transforms_up_to_their_limits() -> None:
    torch.manual_seed(0)
    spec = torch.rand(6, 1, 8, 40) + 0.1
    augment = DiffAugment(level=0.0, shift=0.0, cutout=0.25)
    augment.strength = 2.0
    cut = augment(spec)
    assert ((cut == 0).all(dim=2).squeeze(1).sum(dim=1) == 20).all()  # half the frames at twice the strength
    augment.strength = 10.0
    assert augment.scaled("cutout") == 0.75 and ((augment(spec) == 0).all(dim=2).squeeze(1).sum(dim=1) == 30).all()
    augment.strength = 0.0
    assert torch.equal(augment(spec), spec)  # none at all


def test_group_std_sees_a_collapsed_group_and_keeps_groups_apart() -> None:
    maps = torch.randn(8, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    maps[:4] = maps[0]  # the first group of four: one sample four times
    std = group_std(maps, 4)
    assert std.shape == (8, 1)
    assert (std[:4] < 1e-3).all() and (std[4:] > 0.5).all()
    assert torch.equal(std[4], std[7])  # one value per group
    assert group_std(maps[:6], 4).unique().numel() == 1  # 6 does not divide into fours: one group


def test_conditional_batch_norm_lets_each_label_shape_every_layer() -> None:
    from sepkit.gan.networks import Generator

    torch.manual_seed(0)
    g = Generator(8, 3, 16, 32, channels=(8, 4), conditional_norm=True).eval()
    noise, zero, one = torch.randn(2, 8), torch.tensor([0, 0]), torch.tensor([1, 1])
    with torch.no_grad():
        before_zero, before_one = g(noise, zero), g(noise, one)
        g.norms[1].scale.weight[1] *= 3.0  # the second layer's scale for label 1 only
        assert torch.equal(g(noise, zero), before_zero)
        assert not torch.allclose(g(noise, one), before_one)
    assert Generator(8, 3, 16, 32, channels=(8, 4)).norms[0].__class__.__name__ == "BatchNorm2d"


def test_the_auxiliary_head_classifies_what_the_discriminator_just_saw() -> None:
    from sepkit.gan.networks import Discriminator

    d = Discriminator(3, channels=(4, 8), auxiliary=True, minibatch_std=2)
    spec = torch.rand(4, 1, 16, 32)
    logits = d(spec, torch.tensor([0, 1, 2, 0]))
    assert logits.shape == (4,) and d.classify().shape == (4, 3)
    d(spec[:2], torch.tensor([0, 1]))
    assert d.classify().shape == (2, 3)  # the latest input's
    twin = Discriminator(3, channels=(4, 8), auxiliary=True, twin=True)
    twin(spec, torch.tensor([0, 1, 2, 0]))
    assert twin.classify(twin=True).shape == (4, 3)
    assert not torch.equal(twin.classify(twin=True), twin.classify())  # two heads of their own
    plain = Discriminator(3, channels=(4, 8))
    plain(spec, torch.tensor([0, 1, 2, 0]))
    with pytest.raises(RuntimeError, match="auxiliary=True"):
        plain.classify()


def test_a_discriminator_pooling_over_time_only_tells_where_in_frequency_energy_lies() -> None:
    from sepkit.gan.networks import Discriminator

    torch.manual_seed(0)
    low, high = torch.zeros(2, 1, 32, 16), torch.zeros(2, 1, 32, 16)
    low[:, :, 8:10], high[:, :, 16:18] = 1.0, 1.0  # one line, 8 bands apart (a multiple of the stride, 4)
    labels = torch.tensor([0, 1])
    both = Discriminator(3, channels=(4, 8), spectral_norm=False, pool="all")
    rows = Discriminator(3, channels=(4, 8), spectral_norm=False, pool="time", n_mels=32)
    with torch.no_grad():
        # Averaged over time and frequency, the line reads the same in either band; with the
        # frequency rows kept, the heads see which band it is in.
        assert torch.allclose(both(low, labels), both(high, labels), atol=1e-6)
        assert not torch.allclose(rows(low, labels), rows(high, labels), atol=1e-3)
    with pytest.raises(SepkitError, match="n_mels"):
        Discriminator(3, channels=(4, 8), pool="time")
    with pytest.raises(SepkitError, match="pool"):
        Discriminator(3, channels=(4, 8), pool="freq")


@pytest.mark.parametrize("upsample", ["transposed", "nearest"])
def test_each_generator_layer_doubles_the_size(upsample: str) -> None:
    from sepkit.gan.networks import Generator

    g = Generator(8, 3, 16, 32, channels=(8, 4), upsample=upsample)
    out = g(torch.randn(2, 8), torch.tensor([0, 2]))
    assert out.shape == (2, 1, 16, 32) and (out >= 0).all()
    out.sum().backward()
    assert all(p.grad is not None for p in g.parameters())
    with pytest.raises(SepkitError, match="upsample"):
        Generator(8, 3, 16, 32, channels=(8, 4), upsample="bilinear")


def test_nearest_upsampling_draws_no_checkerboard_on_a_flat_input() -> None:
    from sepkit.gan.networks import _nearest, _transposed

    torch.manual_seed(0)
    flat = torch.ones(1, 4, 4, 4)
    with torch.no_grad():
        transposed = _transposed(4, 1)(flat)[0, 0, 1:-1, 1:-1]  # away from the zero padding
        nearest = _nearest(4, 1)(flat)[0, 0, 1:-1, 1:-1]
    # A transposed convolution gives neighbouring bins different taps (a 2x2 pattern); upsampling
    # then convolving gives every bin the same sum.
    assert transposed.std() > 1e-3
    assert nearest.std() < 1e-6
