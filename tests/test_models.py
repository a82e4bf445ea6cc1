import pytest
import torch

from sepkit.models.unet_paper import PaperUNet

SMALL = {"channels": [4, 8, 8, 16, 16, 16]}


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize(("n_freq", "n_frames"), [(512, 128), (513, 37), (100, 65), (7, 3)])
def test_paper_unet_shape_and_range_on_odd_sizes(channels: int, n_freq: int, n_frames: int) -> None:
    net = PaperUNet(n_targets=2, audio_channels=channels, **SMALL).eval()
    masks = net(torch.rand(3, channels, n_freq, n_frames))
    assert masks.shape == (3, 2, channels, n_freq, n_frames)
    assert masks.min() >= 0 and masks.max() <= 1


def test_paper_unet_is_the_paper_architecture() -> None:
    net = PaperUNet(n_targets=1, audio_channels=1)
    convs = [m for m in net.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 128, 256, 512]
    assert all(c.kernel_size == (5, 5) and c.stride == (2, 2) for c in convs)
    deconvs = [m for m in net.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [d.out_channels for d in deconvs] == [256, 128, 64, 32, 16, 1]
    dropouts = [m for m in net.decoder.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(dropouts) == 3 and all(d.p == 0.5 for d in dropouts)
    # the 512 x 128 paper patch reaches an 8 x 2 bottleneck
    x = torch.rand(1, 1, 512, 128)
    for stage in net.encoder:
        x = stage(x)
    assert x.shape == (1, 512, 8, 2)


def test_gradients_reach_every_parameter() -> None:
    net = PaperUNet(n_targets=2, audio_channels=2, **SMALL)
    net(torch.rand(2, 2, 64, 64)).mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_skip_connections_matter() -> None:
    torch.manual_seed(0)
    net = PaperUNet(n_targets=1, audio_channels=1, **SMALL).eval()
    x = torch.rand(1, 1, 64, 64)
    skips: list[torch.Tensor] = []
    h = x
    for stage in net.encoder:
        h = stage(h)
        skips.append(h)
    base = net.head(_decode(net, skips))
    perturbed = [s.clone() for s in skips]
    perturbed[0] = perturbed[0] + 1.0  # the shallowest skip only reaches the output through the skip path
    assert not torch.allclose(base, net.head(_decode(net, perturbed)))


def _decode(net: PaperUNet, skips: list[torch.Tensor]) -> torch.Tensor:
    skips = list(skips)
    h = net.bottleneck(skips.pop())
    for stage in net.decoder:
        h = stage(h, skips.pop())
    return h
