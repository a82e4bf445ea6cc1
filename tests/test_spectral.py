import pytest
import torch

from sepkit.spectral import make_stft_pair, num_frames


@pytest.mark.parametrize(("n_fft", "hop"), [(1024, 768), (1024, 256), (4096, 1024), (512, 128)])
@pytest.mark.parametrize("length", [8192, 10007, 44100 + 13, 48332, 1023 * 7 + 700])
def test_round_trip_rmse_below_1e6(n_fft: int, hop: int, length: int) -> None:
    torch.manual_seed(0)
    stft, istft = make_stft_pair(n_fft, hop)
    wav = torch.randn(2, 2, length, dtype=torch.float64) * 0.3
    stft.window = stft.window.double()
    istft.window = istft.window.double()
    spec = stft(wav)
    assert spec.shape == (2, 2, n_fft // 2 + 1, num_frames(length, hop))
    back = istft(spec, length)
    assert back.shape == wav.shape
    assert torch.sqrt(torch.mean((back - wav) ** 2)) < 1e-6


@pytest.mark.parametrize("length", [97536, 48332, 48000, 700])
def test_round_trip_float32_paper_settings(length: int) -> None:
    stft, istft = make_stft_pair(1024, 768)
    wav = torch.randn(1, 2, length) * 0.3
    back = istft(stft(wav), wav.shape[-1])
    assert torch.sqrt(torch.mean((back - wav) ** 2)) < 1e-6
    assert (back - wav).abs().max() < 1e-5  # the tail too, not only on average


def test_bad_hop_is_rejected() -> None:
    with pytest.raises(ValueError, match="hop_length"):
        make_stft_pair(512, 1024)


@pytest.mark.parametrize(("n_fft", "hop"), [(1024, 768), (5544, 4134), (512, 128), (400, 160)])
def test_the_inverse_is_torch_istft(n_fft: int, hop: int) -> None:
    torch.manual_seed(1)
    stft, istft = make_stft_pair(n_fft, hop)
    length = 9 * hop + 77
    spec = stft(torch.randn(3, 2, length))
    spec = spec * torch.rand(spec.shape)  # not a consistent spectrogram: masks applied
    ours = istft(spec, length)
    theirs = torch.istft(spec.reshape(-1, *spec.shape[-2:]), n_fft, hop, window=istft.window, length=length)
    assert ours.shape == (3, 2, length)
    assert (ours.reshape(-1, length) - theirs).abs().max() < 1e-6
    longer = istft(spec, length + 5 * hop)  # past what the frames hold: zeros
    assert (longer[..., :length] - ours).abs().max() < 1e-6
    assert longer[..., istft.hop_length * (spec.shape[-1] - 1) :].abs().max() == 0


def test_the_inverse_passes_torch_istfts_gradients() -> None:
    stft, istft = make_stft_pair(256, 192)
    spec = stft(torch.randn(2, 2000, dtype=torch.float64)).detach()
    window = istft.window.double()
    istft.window = window
    weight = torch.randn(2, 2000, dtype=torch.float64)
    ours = spec.clone().requires_grad_()
    (istft(ours, 2000) * weight).sum().backward()
    theirs = spec.clone().requires_grad_()
    (torch.istft(theirs, 256, 192, window=window, length=2000) * weight).sum().backward()
    assert ours.grad.abs().sum() > 0
    assert (ours.grad - theirs.grad).abs().max() < 1e-9


def test_a_window_that_does_not_overlap_is_refused() -> None:
    stft, istft = make_stft_pair(256, 256)
    with pytest.raises(ValueError, match="overlap"):
        istft(stft(torch.randn(1, 4000)), 4000)
