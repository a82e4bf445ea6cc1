"""Open-Unmix (Stöter et al., JOSS 2019) from the ``openunmix`` package as a sepkit mask network.

One ``openunmix.model.OpenUnmix`` per target (BLSTM over frames, its own per-bin input scaler and
output scaling); its output is a non-negative mask times the mixture magnitude, so the mask is that
output over the input. With ``residual`` the last target gets no network: its mask is one minus
the others', i.e. its estimate is the mixture minus the other estimates (Open-Unmix's
``residual=True``). Used by ``model=openunmix`` and by ``bench.quality`` as the peer.
"""

from __future__ import annotations

import torch
from torch import nn

from sepkit.models.base import MaskNet


class OpenUnmixNet(MaskNet):
    """Open-Unmix mask network.

    Args:
        n_targets: targets of the separator.
        audio_channels: channels the networks see jointly.
        n_bins: frequency bins of the input (the separator's ``max_bins``).
        hidden_size: LSTM width.
        nb_layers: LSTM layers.
        unidirectional: a causal (one-way) LSTM.
        max_bin: bins the networks look at (Open-Unmix's bandwidth); the rest are still masked.
        residual: the last target is the mixture minus the others.
    """

    onnx_unsupported = "the exported LSTM keeps the batch size it was traced with, so the file fails on any other batch"

    def __init__(
        self,
        n_targets: int,
        audio_channels: int = 2,
        n_bins: int = 2049,
        hidden_size: int = 512,
        nb_layers: int = 3,
        unidirectional: bool = False,
        max_bin: int | None = None,
        residual: bool = True,
    ) -> None:
        from openunmix.model import OpenUnmix

        super().__init__(n_targets, audio_channels, fold_channels=False, multiple=1)
        self.residual = residual and n_targets > 1
        self.nets = nn.ModuleList(
            OpenUnmix(
                nb_bins=n_bins,
                nb_channels=audio_channels,
                hidden_size=hidden_size,
                nb_layers=nb_layers,
                unidirectional=unidirectional,
                max_bin=max_bin,
            )
            for _ in range(n_targets - self.residual)
        )

    @property
    def uses_input_statistics(self) -> bool:
        return True

    def input_features(self, mag: torch.Tensor) -> torch.Tensor:
        return mag

    def set_input_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Open-Unmix's scaler: shift by minus the mean, scale by one over the deviation (floored
        at 1e-4 of its maximum, as its training script does)."""
        std = std.clamp_min(1e-4 * float(std.max()) + 1e-8)
        for net in self.nets:
            net.input_mean.data = -mean[: net.nb_bins].float()
            net.input_scale.data = 1.0 / std[: net.nb_bins].float()

    def normalize(self, mag: torch.Tensor) -> torch.Tensor:
        return mag  # each network scales its own input

    def body(self, x: torch.Tensor) -> torch.Tensor:
        floor = x.clamp_min(1e-8)
        masks = [net(x) / floor for net in self.nets]
        if self.residual:
            masks.append(1.0 - torch.stack(masks).sum(0))
        return torch.cat(masks, dim=1)
