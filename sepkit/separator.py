"""The Separator: the one object users train, save and load.

    song at rate R ─▶ resample to the model's rate ▶ STFT ▶ magnitude* ▶ mask network ▶ masks
         │                                   (batch, targets, channels, freq, frames) at its rate
         └─▶ STFT at R (same frame duration and Hz per bin) ◀── masks placed on its grid, extended
             ▶ × masks (or multichannel Wiener) ▶ iSTFT at R         up to R/2 (sepkit.fullband)

(* or the real and imaginary parts, for a network with ``complex_input``: :meth:`Separator.mask_input`;
masks are complex for a network with ``complex_mask``, and every stage takes them as they are.)
The network sees its low band at its own resolution; the stems come out at the song's rate with
every bin up to its Nyquist (:meth:`Separator.separate_at`), and add up to the song when the targets
cover the mixture. At the model's own rate the two STFTs are one (:meth:`Separator.forward`, what
training runs). It knows nothing about Lightning or datasets. Each stage is a method a subclass may
override. Signals of any length go through :class:`sepkit.inference.SeparationEngine`, which chunks
and overlap-adds around :meth:`Separator.separate_at`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

from sepkit.errors import SepkitError, find_user_error
from sepkit.fullband import BandedExtension, LearnedExtension, interpolate, masks_on_grid, stft_at_rate
from sepkit.models.base import MaskNet
from sepkit.spectral import ISTFT, STFT, make_stft_pair

MASK_EXTENSIONS = ("edge", "mean", "zero", "one", "learned", "banded")


def extend_masks(masks: torch.Tensor, n_freq: int, rule: str) -> torch.Tensor:
    """Give the bins above those the network saw a mask.

    Args:
        masks: ``(..., covered_bins, frames)``.
        n_freq: bins of the full spectrogram.
        rule: ``edge`` repeats the highest covered bin's mask, ``mean`` uses the mean mask over
            the covered bins of each frame (Spleeter's "average"), ``zero`` removes the upper band,
            ``one`` passes it through unchanged. (``learned`` and ``banded`` are the separator's own:
            :class:`sepkit.fullband.LearnedExtension` and :class:`sepkit.fullband.BandedExtension`,
            through :meth:`Separator.extend`.) Complex
            masks extend by their modulus, at most 1: the band above gets real masks (no phase
            turn is known there) that pass at most the mixture.

    Returns:
        ``(..., n_freq, frames)`` masks.
    """
    missing = n_freq - masks.shape[-2]
    if missing <= 0:
        return masks
    source = masks.abs().clamp(max=1.0) if masks.is_complex() else masks
    if rule == "edge":
        fill = source[..., -1:, :]
    elif rule == "mean":
        fill = source.mean(dim=-2, keepdim=True)
    elif rule == "zero":
        fill = torch.zeros_like(source[..., -1:, :])
    elif rule == "one":
        fill = torch.ones_like(source[..., -1:, :])
    else:
        raise ValueError(f"mask_extension must be one of {MASK_EXTENSIONS[:4]} here, got {rule!r}")
    fill = fill.to(masks.dtype).expand(*masks.shape[:-2], missing, masks.shape[-1])
    return torch.cat([masks, fill], dim=-2)


def default_covers_mixture(targets: Sequence[str]) -> bool:
    """Whether targets add up to the mixture when nothing else says so: MUSDB's vocals +
    accompaniment, or its four stems."""
    names = set(targets)
    return {"vocals", "accompaniment"} <= names or {"vocals", "drums", "bass", "other"} <= names


class Separator(nn.Module):
    """Mask-based spectrogram separator around a swappable mask network.

    Args:
        net: factory ``net(n_targets=..., audio_channels=...)`` of a :class:`MaskNet`
            (a Hydra ``_partial_``).
        targets: target names, one mask each.
        sample_rate: rate the network works at; other rates are resampled in and out.
        n_fft: FFT size.
        hop_length: STFT hop.
        max_bins: lowest bins the network sees (the rest get masks by ``mask_extension``).
        patch_frames: frames per network input patch (training segments and inference chunks).
        mask_extension: rule for bins above ``max_bins``, up to the song's Nyquist: a fixed rule of
            :func:`extend_masks`, ``learned`` (:class:`sepkit.fullband.LearnedExtension`, from the
            network's masks) or ``banded`` (:class:`sepkit.fullband.BandedExtension`, which also sees
            the mixture's upper band), trained with the network; worth it when training sees the band
            above, at the song's rate.
        audio_channels: channels the separator is trained on (mono input is duplicated).
        name: variant name, for tables and logs.
    """

    def __init__(
        self,
        net: Callable[..., MaskNet],
        targets: Sequence[str],
        sample_rate: int,
        n_fft: int,
        hop_length: int,
        max_bins: int,
        patch_frames: int,
        mask_extension: str,
        audio_channels: int = 2,
        name: str = "separator",
    ) -> None:
        super().__init__()
        if mask_extension not in MASK_EXTENSIONS:
            raise SepkitError(f"model.mask_extension={mask_extension!r} must be one of {', '.join(MASK_EXTENSIONS)}")
        if not 0 < max_bins <= n_fft // 2 + 1:
            raise SepkitError(f"model.max_bins={max_bins} must be in [1, {n_fft // 2 + 1}] for n_fft={n_fft}")
        self.targets = list(targets)
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.max_bins = max_bins
        self.patch_frames = patch_frames
        self.mask_extension = mask_extension
        self.audio_channels = audio_channels
        self.name = name
        self.stft, self.istft = make_stft_pair(n_fft, hop_length)
        self.net = net(n_targets=len(self.targets), audio_channels=audio_channels)
        if mask_extension in ("learned", "banded") and self.complex_masks:
            raise SepkitError(
                f"model.mask_extension={mask_extension} extends magnitude masks; with model.net.mask=complex use "
                "edge or mean"
            )
        extenders = {"learned": LearnedExtension, "banded": BandedExtension}
        self.extender = (
            extenders[mask_extension](len(self.targets), (max_bins + 0.5) * sample_rate / n_fft)
            if mask_extension in extenders
            else None
        )
        self.config: dict[str, Any] = {}
        # Whether the targets add up to the mixture (set from the training data by train.py). The
        # Wiener stage then shares the mixture among the targets alone; otherwise a residual
        # source takes what the targets leave out.
        self.covers_mixture = default_covers_mixture(self.targets)
        self._stft_at: dict[tuple[int, str], tuple[STFT, ISTFT]] = {}

    @property
    def complex_masks(self) -> bool:
        """Whether the network's masks are complex (they turn each bin's phase as well as scale it)."""
        return bool(getattr(self.net, "complex_mask", False))

    def loss_spectrogram(self, spec: torch.Tensor) -> torch.Tensor:
        """What the training losses compare masked mixtures and targets on: magnitudes, or for
        complex masks the complex spectrograms themselves (so the phase is learnt too)."""
        return spec if self.complex_masks else spec.abs()

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """``(batch, channels, time)`` waveform to complex ``(batch, channels, freq, frames)``."""
        return self.stft(wav)

    def mask_input(self, spec: torch.Tensor) -> torch.Tensor:
        """What the mask stage is fed, from the complex STFT ``(batch, channels, freq, frames)``: the
        magnitude, or for a network with ``complex_input`` the real and imaginary parts as channels:
        ``(batch, 2 * channels, freq, frames)``, the real parts first."""
        if getattr(self.net, "complex_input", False):
            return torch.cat([spec.real, spec.imag], dim=1)
        return spec.abs()

    def estimate_masks(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`mask_input` ``(batch, channels', freq, frames)`` to masks ``(batch, targets, channels,
        freq, frames)``."""
        if self.complex_masks:
            real, imag = self.estimate_mask_parts(x)
            return torch.complex(real, imag)
        return self.extend(self.net(x[..., : self.max_bins, :]), x.shape[-2], self.input_magnitude(x))

    def input_magnitude(self, x: torch.Tensor) -> torch.Tensor:
        """The mixture's magnitude ``(batch, channels, freq, frames)`` from :meth:`mask_input`."""
        if getattr(self.net, "complex_input", False):
            real, imag = x.chunk(2, dim=1)
            return torch.sqrt(real.square() + imag.square())
        return x

    def estimate_mask_parts(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`estimate_masks` as a real tensor (no complex one on the way: what ONNX exports): the
        masks, or complex masks' real and imaginary parts ``(2, batch, targets, channels, freq, frames)``,
        the band above real, by the rule on the modulus (as :func:`extend_masks`)."""
        if not self.complex_masks:
            return self.estimate_masks(x)
        real, imag = self.net.mask_parts(x[..., : self.max_bins, :])
        if x.shape[-2] <= real.shape[-2]:  # every bin seen: nothing to extend
            return torch.stack([real, imag])
        modulus = (real.square() + imag.square()).clamp_min(1e-12).sqrt().clamp(max=1.0)  # as extend_masks
        above = self.extend(modulus, x.shape[-2])[..., real.shape[-2] :, :]
        return torch.stack([torch.cat([real, above], -2), extend_masks(imag, x.shape[-2], "zero")])

    def extension(
        self,
        covered: torch.Tensor,
        magnitude: torch.Tensor | None = None,
        grid: tuple[int, int, int] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The masks of the band above the covered bins ``(batch, targets, channels, covered_bins,
        frames)``: ``(..., knots, frames)`` at the frequencies (Hz) returned with them; one knot just
        above the covered band for a fixed rule, several for ``learned`` and ``banded``.

        Args:
            covered: the network's masks on its own grid.
            magnitude: the mixture's magnitude ``(batch, channels, freq, frames')`` on ``grid``
                (``(rate, n_fft, hop)``, the model's when None): what ``banded`` reads the band
                above from.
        """
        if isinstance(self.extender, BandedExtension):
            if magnitude is None:
                raise ValueError("mask_extension=banded reads the mixture's upper band: give its magnitude")
            rate, n_fft, hop = grid or (self.sample_rate, self.n_fft, self.hop_length)
            levels = self.extender.band_levels(magnitude, rate / n_fft)
            if levels.shape[-1] != covered.shape[-1] or hop * self.sample_rate != self.hop_length * rate:
                times = torch.arange(covered.shape[-1], dtype=torch.float64) * self.hop_length / self.sample_rate
                levels = interpolate(levels, times * rate / hop, -1)
            return self.extender(covered, levels), self.extender.knots_hz
        if self.extender is not None:
            return self.extender(covered), self.extender.knots_hz
        fill = extend_masks(covered, covered.shape[-2] + 1, self.mask_extension)[..., -1:, :]
        return fill, torch.tensor([covered.shape[-2] * self.sample_rate / self.n_fft], dtype=torch.float64)

    def extend(self, covered: torch.Tensor, n_freq: int, magnitude: torch.Tensor | None = None) -> torch.Tensor:
        """Masks of the covered bins ``(..., covered_bins, frames)`` extended to ``n_freq`` bins of
        this separator's own STFT by its ``mask_extension`` (``magnitude``: the mixture's on that
        STFT, which ``banded`` reads)."""
        if self.extender is None:
            return extend_masks(covered, n_freq, self.mask_extension)
        fill, hz = self.extension(covered, magnitude)
        grid = (self.sample_rate, self.n_fft, self.hop_length)
        return masks_on_grid(covered, fill, hz, grid, grid, covered.shape[-1])[..., :n_freq, :]

    def apply_masks(self, masks: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
        """Masked mixture spectrograms ``(batch, targets, channels, freq, frames)``."""
        return masks * spec.unsqueeze(1)

    def wiener(self, masks: torch.Tensor, spec: torch.Tensor, iterations: int) -> torch.Tensor:
        """Multichannel Wiener refinement (``openunmix.filtering.wiener``) of the masked magnitudes:
        complex ``(batch, targets, channels, freq, frames)`` estimates, like :meth:`apply_masks`."""
        from openunmix.filtering import wiener

        magnitudes = masks.abs() * spec.abs().unsqueeze(1)  # a complex mask's modulus
        out = []
        for mags, mix in zip(magnitudes, spec, strict=True):
            targets = mags.permute(3, 2, 1, 0).double()  # (frames, freq, channels, targets)
            mix_ri = torch.view_as_real(mix.permute(2, 1, 0)).double()  # (frames, freq, channels, 2)
            y = wiener(targets, mix_ri, iterations=iterations, residual=not self.covers_mixture)
            y = y[..., : mags.shape[0]]  # (frames, freq, channels, 2, targets), without the residual
            out.append(torch.view_as_complex(y.permute(4, 2, 1, 0, 3).contiguous()).to(spec.dtype))
        return torch.stack(out)

    def decode(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Complex ``(..., freq, frames)`` back to ``(..., length)`` waveforms."""
        return self.istft(spec, length)

    def stft_pair_at(self, rate: int, device: torch.device) -> tuple[STFT, ISTFT]:
        """The STFT pair at ``rate`` with this separator's frame duration and bin spacing."""
        key = (rate, str(device))
        if key not in self._stft_at:
            n_fft, hop = stft_at_rate(self.n_fft, self.hop_length, self.sample_rate, rate)
            self._stft_at[key] = tuple(m.to(device) for m in make_stft_pair(n_fft, hop))
        return self._stft_at[key]

    def masks_at_rate(
        self,
        masks: torch.Tensor,
        rate: int,
        n_frames: int,
        share: bool = False,
        count: int | None = None,
        magnitude: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Masks from :meth:`estimate_masks` on the grid of :meth:`stft_pair_at` ``rate``: the bins the
        network saw interpolated at each bin's frequency and frame's time, the bins above them
        extended by ``mask_extension`` up to ``rate / 2``. ``(batch, targets, channels, freq_at_rate,
        n_frames)``.

        Args:
            masks: ``(batch, targets, channels, freq, frames)`` at the model's rate.
            rate: the song's rate.
            n_frames: frames of the song's STFT.
            share: first :meth:`share_mixture` (on the small model grid: interpolation keeps sums of one).
            count: only the first ``count`` targets.
            magnitude: the song's magnitude on that grid ``(batch, channels, freq_at_rate, n_frames)``
                (what ``banded`` reads the band above from).
        """
        n_fft, hop = stft_at_rate(self.n_fft, self.hop_length, self.sample_rate, rate)
        covered = masks[..., : self.max_bins, :]
        fill, hz = self.extension(covered, magnitude, (rate, n_fft, hop))
        if share:
            joint = self.share_mixture(torch.cat([covered, fill], -2))
            covered, fill = joint[..., : self.max_bins, :], joint[..., self.max_bins :, :]
        if count is not None:
            covered, fill = covered[:, :count], fill[:, :count]
        model_grid = (self.sample_rate, self.n_fft, self.hop_length)
        return masks_on_grid(covered, fill, hz, model_grid, (rate, n_fft, hop), n_frames)

    def share_mixture(self, masks: torch.Tensor) -> torch.Tensor:
        """When the targets cover the mixture, masks scaled to sum to one in every bin (so the
        stems add up to the input; a bin no target claims is shared equally); else unchanged.
        Complex masks, whose sum may pass near zero, get what their sum misses of one in equal
        shares instead (the nearest masks that sum to one)."""
        if not self.covers_mixture:
            return masks
        total = masks.sum(1, keepdim=True)
        if masks.is_complex():
            return masks + (1.0 - total) / masks.shape[1]
        return torch.where(total > 1e-8, masks / total.clamp_min(1e-8), 1.0 / masks.shape[1])

    def separate_at(
        self,
        mixture: torch.Tensor,
        rate: int,
        estimate_masks: Callable[[torch.Tensor], torch.Tensor] | None = None,
        wiener_iterations: int = 0,
    ) -> torch.Tensor:
        """Full-band separation of ``(batch, channels, time)`` at ``rate`` into
        ``(batch, targets, channels, time)`` at ``rate``: the network on the model-rate copy, its
        masks on the song's own STFT (``estimate_masks``: another implementation of that stage,
        e.g. ONNX; :meth:`mask_at_rate`)."""
        from sepkit.audio import resample

        low = mixture if rate == self.sample_rate else resample(mixture, rate, self.sample_rate)
        masks = (estimate_masks or self.estimate_masks)(self.mask_input(self.encode(low)))
        # the song-rate stage one example at a time: its spectrograms are the largest tensors here
        out = mixture.new_empty(mixture.shape[0], len(self.targets), *mixture.shape[1:])
        for i in range(mixture.shape[0]):
            out[i] = self.mask_at_rate(masks[i : i + 1], mixture[i : i + 1], rate, wiener_iterations)[0]
        return out

    def mask_at_rate(
        self, masks: torch.Tensor, mixture: torch.Tensor, rate: int, wiener_iterations: int = 0
    ) -> torch.Tensor:
        """Model-rate ``masks`` applied to ``(batch, channels, time)`` at ``rate``: ``(batch, targets,
        channels, time)``. When the targets cover the mixture the masks share every bin, and with plain
        masking the last stem is the mixture less the others (one inverse STFT fewer, and a sum that
        is the input by construction)."""
        encode, decode = self.stft_pair_at(rate, mixture.device)
        spec = encode(mixture)
        derive_last = self.covers_mixture and not wiener_iterations and len(self.targets) > 1
        count = len(self.targets) - 1 if derive_last else None
        full = self.masks_at_rate(masks, rate, spec.shape[-1], share=True, count=count, magnitude=spec.abs())
        if not wiener_iterations:
            if not derive_last:
                return decode(self.apply_masks(full, spec), mixture.shape[-1])
            out = mixture.new_empty(mixture.shape[0], len(self.targets), *mixture.shape[1:])
            out[:, :-1] = decode(self.apply_masks(full, spec), mixture.shape[-1])
            torch.sub(mixture, out[:, :-1].sum(1), out=out[:, -1])
            return out
        est = self.wiener(full, spec, wiener_iterations)
        if self.covers_mixture:  # Wiener's regularisation leaves a little of the mixture out: share it too
            est = est + full * (spec - est.sum(1))[:, None]
        return decode(est, mixture.shape[-1])

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        """Separate ``(batch, channels, time)`` at :attr:`sample_rate` into ``(batch, targets, channels, time)``."""
        spec = self.encode(mixture)
        masks = self.estimate_masks(self.mask_input(spec))
        return self.decode(self.apply_masks(masks, spec), mixture.shape[-1])

    @torch.no_grad()
    def fit_input_statistics(self, mixtures: Iterable[torch.Tensor]) -> int:
        """Set the network's input scaler from training mixtures, if it has one.

        Args:
            mixtures: ``(channels, time)`` waveforms at :attr:`sample_rate` (the training tracks only).

        Returns:
            How many mixtures were used (0 when the network scales its input otherwise).
        """
        if not getattr(self.net, "uses_input_statistics", False):
            return 0
        total = total_sq = 0.0
        frames = count = 0
        for mix in mixtures:
            feats = self.net.input_features(self.encode(mix.float()).abs()[..., : self.max_bins, :])
            feats = feats.transpose(0, -2).reshape(feats.shape[-2], -1).double()  # (freq, channels * frames)
            total = total + feats.sum(1)
            total_sq = total_sq + feats.square().sum(1)
            frames += feats.shape[1]
            count += 1
        if not count:
            raise SepkitError("input statistics need at least one training track")
        mean = total / frames
        std = (total_sq / frames - mean.square()).clamp_min(0.0).sqrt()
        self.net.set_input_statistics(mean.float(), std.float())
        return count

    def describe(self) -> dict[str, Any]:
        """What a checkpoint needs to rebuild this separator without any config files."""
        from sepkit.checkpoint import SEPARATOR, header

        return {
            **header(SEPARATOR),
            "model": self.config,
            "targets": self.targets,
            "sample_rate": self.sample_rate,
            "stft": {"n_fft": self.n_fft, "hop_length": self.hop_length, "window": "hann"},
            "max_bins": self.max_bins,
            "patch_frames": self.patch_frames,
            "name": self.name,
            "covers_mixture": self.covers_mixture,
            "complex_masks": self.complex_masks,
        }


def build_separator(model_config: dict[str, Any], targets: Sequence[str]) -> Separator:
    """Instantiate a separator from a model config (a ``conf/model/*.yaml`` resolved to a dict)."""
    from hydra.utils import instantiate

    try:
        separator = instantiate(model_config, targets=list(targets), _convert_="all")
    except Exception as exc:
        err = find_user_error(exc)
        if err is None:
            raise
        raise err from None
    separator.config = dict(model_config)
    return separator
