"""Every U-Net variant: shapes on odd sizes, mask range, gradients, skips, reload, learning."""

import math

import numpy as np
import pytest
import torch

from sepkit.data.cache import TrackCache
from sepkit.data.sources.musdb import musdb_hq
from sepkit.errors import SepkitError
from sepkit.losses import SpectrogramL1
from sepkit.models.base import MaskNet
from sepkit.models.unet_classic import ClassicUNet
from sepkit.models.unet_paper import PaperUNet
from sepkit.models.unet_simple import SimpleUNet
from sepkit.models.unet_stereo import StereoUNet
from sepkit.spectral import make_stft_pair

# Narrow versions of each variant keep the tests fast; the structure is the real one.
VARIANTS = {
    "unet_paper": lambda n, c: PaperUNet(n, c, channels=[4, 8, 8, 16, 16, 16]),
    "unet_simple": lambda n, c: SimpleUNet(n, c, channels=[4, 8, 8, 16]),
    "unet_stereo": lambda n, c: StereoUNet(n, c, base_channels=4),
    "unet_classic": lambda n, c: ClassicUNet(n, c, features=[4, 8, 8, 16]),
}


def make(name: str, n_targets: int = 2, channels: int = 2) -> MaskNet:
    torch.manual_seed(0)
    return VARIANTS[name](n_targets, channels)


def train_briefly(net: MaskNet, shape=(2, 2, 33, 17)) -> None:
    """One optimisation step so BatchNorm / FrequencyNorm statistics exist."""
    net.train()
    net(torch.rand(*shape)).mean().backward()


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize(("n_freq", "n_frames"), [(512, 128), (513, 37), (100, 65), (7, 3)])
def test_shape_and_range_on_odd_sizes(name: str, n_freq: int, n_frames: int) -> None:
    net = make(name)
    masks = net(torch.rand(3, 2, n_freq, n_frames))
    assert masks.shape == (3, 2, 2, n_freq, n_frames)
    assert masks.min() >= 0 and masks.max() <= 1


@pytest.mark.parametrize("name", ["unet_paper", "unet_simple", "unet_classic"])
def test_mono_variants_take_any_channel_count(name: str) -> None:
    net = make(name, n_targets=1, channels=1).eval()
    x = torch.rand(2, 1, 40, 20)
    single = net(x)
    assert single.shape == (2, 1, 1, 40, 20)
    stereo = net(x.expand(2, 2, 40, 20))
    torch.testing.assert_close(stereo[:, :, 0], single[:, :, 0])  # channels are independent items


def test_stereo_variant_gives_four_masks_from_one_image() -> None:
    net = StereoUNet(2, 2)
    assert net.out_channels == 4 and net.in_channels == 2
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in net.modules()) == 2  # two downsampling levels
    with pytest.raises(ValueError, match="expects 2 channels"):
        net(torch.rand(1, 1, 16, 16))


def test_channels_last_is_the_same_math_in_another_layout() -> None:
    """The stereo U-Net runs channels-last by default (faster on CPU); masks and gradients match NCHW."""
    nets = {flag: StereoUNet(2, 2, channels_last=flag) for flag in (True, False)}
    nets[False].load_state_dict(nets[True].state_dict())
    seen = []
    nets[True].encoder[0].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    x = torch.rand(2, 2, 40, 24)
    masks = {flag: net(x) for flag, net in nets.items()}
    assert seen[0].is_contiguous(memory_format=torch.channels_last) and not seen[0].is_contiguous()
    torch.testing.assert_close(masks[True], masks[False])
    for out in masks.values():
        out.square().mean().backward()
    torch.testing.assert_close(nets[True].head[0].weight.grad, nets[False].head[0].weight.grad)


def test_bottleneck_dilations_widen_the_field_with_the_same_weights() -> None:
    """Dilated bottleneck convs (same parameters) let the mask of a high bin see far lower bins."""
    lowest = {}
    for d in ((1, 1), (4, 8)):
        torch.manual_seed(0)
        net = StereoUNet(2, 2, bottleneck_dilations=d).eval()
        x = torch.rand(1, 2, 128, 8, requires_grad=True)
        net(x)[..., 100, :].sum().backward()  # the masks of bin 100
        lowest[d] = int((x.grad.abs().amax(dim=(0, 1, 3)) > 0).nonzero().min())  # lowest bin it depends on
    assert lowest[(4, 8)] < 40 < 60 < lowest[(1, 1)], lowest
    with pytest.raises(SepkitError, match="bottleneck_dilations"):
        StereoUNet(2, 2, bottleneck_dilations=(0, 1))


@pytest.mark.parametrize("name", VARIANTS)
def test_gradients_reach_every_parameter(name: str) -> None:
    net = make(name)
    net(torch.rand(2, 2, 64, 32)).mean().backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", VARIANTS)
def test_skip_connections_matter(name: str) -> None:
    """Perturbing only the shallowest skip (the deep path untouched) changes the masks."""
    net = make(name)
    train_briefly(net)
    net.eval()
    x = torch.rand(1, 2, 33, 32)
    base = net(x)
    handle = net.decoder[-1].register_forward_pre_hook(lambda module, args: (args[0], args[1] + 1.0))
    perturbed = net(x)
    handle.remove()
    assert not torch.allclose(base, perturbed)
    torch.testing.assert_close(net(x), base)


@pytest.mark.parametrize("name", VARIANTS)
def test_reload_identity(name: str) -> None:
    net = make(name)
    train_briefly(net)
    net.eval()
    fresh = make(name)
    fresh.load_state_dict(net.state_dict())
    fresh.eval()
    x = torch.rand(2, 2, 33, 17)
    assert torch.equal(net(x), fresh(x))


@pytest.mark.parametrize("name", VARIANTS)
def test_a_few_steps_on_built_in_data_lower_the_loss(name: str, tiny_root, cache_dir) -> None:
    torch.manual_seed(0)
    source = musdb_hq(tiny_root)
    (audio,) = TrackCache(cache_dir, 8192).load(source, source.tracks()[:1])
    sources = torch.from_numpy(np.array(audio[:, :, : 4 * 8192])).reshape(4, 2, 4, 8192).permute(2, 0, 1, 3)
    targets = torch.stack([sources[:, 0], sources[:, 1:].sum(1)], dim=1)  # vocals, accompaniment
    stft, _ = make_stft_pair(1024, 768)
    mix_mag = stft(targets.sum(1)).abs()[..., :256, :]
    target_mag = stft(targets).abs()[..., :256, :]
    net = make(name)
    loss_fn = SpectrogramL1()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss = loss_fn(net(mix_mag), mix_mag, target_mag)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses[::5]


def test_speed_benchmark_times_a_training_step() -> None:
    """`make bench` starts with bench.models: its step must follow the system's loss signature."""
    from bench.models import load_model_config, train_step_time
    from sepkit.separator import build_separator

    separator = build_separator(load_model_config("unet_stereo"), ["vocals", "accompaniment"])
    before = [p.detach().clone() for p in separator.parameters()]
    seconds = train_step_time(separator, steps=1)
    assert seconds > 0 and math.isfinite(seconds)
    assert any(not torch.equal(a, b) for a, b in zip(before, separator.parameters(), strict=True))  # it trained
