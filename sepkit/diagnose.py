"""Where a checkpoint's validation error lies: fit, generalisation, or the band it does not see.

Scores a checkpoint with the training log's validation metric (mean SI-SDR and SI-SDRi of each
target over the fixed validation segments, ``data.val_segment_seconds`` long) on the run's own
validation songs and on fixed segments of its *training* songs (as many per song), then swaps
parts of the model's masks for ideal ratio masks (each target's magnitude over the sum of the
targets' magnitudes, from the references) on the validation segments:

* ``model``: the checkpoint as trained (the figure in its log);
* ``model + Wiener``: one multichannel Wiener iteration after the masks (``engine.wiener_iterations=1``);
* ``model below, ideal above``: the model's masks on the bins it sees, ideal ones above;
* ``ideal below, model rule above``: ideal masks on the seen bins and the model's rule
  (``model.mask_extension``) above: what a perfect network of this shape could reach;
* ``ideal everywhere``: the ratio-mask ceiling of the STFT.

Train close to valid means the model underfits (more steps or capacity would help, more songs
would not); train well above valid means it overfits the training songs. The swaps say how much
of the gap to the ceiling lies in the seen band and how much above it. ::

    sepkit diagnose ckpt=outputs/train/<run>/checkpoints/best.ckpt
    sepkit diagnose ckpt=CKPT threads=2

The table is printed and written, with every figure, to ``diagnose.json`` in the run folder
(``outputs/diagnose/<time>/``). The checkpoint must come from ``train.py`` on a track source (it
stores the data config and the split lists); the data are read from where it was trained.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from sepkit.checkpoint import load_separator
from sepkit.data.datamodule import FixedSegments
from sepkit.errors import SepkitError
from sepkit.evaluation import ratio_masks
from sepkit.metrics import si_sdr

log = logging.getLogger(__name__)


def _datamodule(separator):
    """The run's data module, rebuilt from the config stored in the checkpoint, with its splits."""
    run = separator.info.get("run", {})
    data = dict(run.get("data") or {})
    if not data.get("_target_") or not run.get("splits"):
        raise SepkitError(f"{separator.checkpoint_path} does not store its data config; train it with train.py")
    data.update(root=run.get("data_root", data.get("root")), num_workers=0)
    datamodule = instantiate(data)
    datamodule.prepare_data()
    for name in ("train", "valid"):
        got = [t.name for t in datamodule.tracks[name]]
        if got != run["splits"][name]:
            raise SepkitError(f"the {name} split rebuilt from {data['root']} differs from the checkpoint's")
    return datamodule


def score(separator, segments: FixedSegments, swaps: bool) -> dict[str, dict[str, float]]:
    """Mean SI-SDR and SI-SDRi per target of each mask variant over ``segments`` (and channels)."""
    seen = separator.max_bins
    sums: dict[str, list[torch.Tensor]] = {}
    mixture_scores = []
    with torch.no_grad():
        for index in range(len(segments)):
            mixture, references, _ = segments[index]
            spec = separator.encode(mixture[None])
            masks = separator.net(separator.mask_input(spec)[..., :seen, :])
            full = separator.extend(masks, spec.shape[-2])
            variants = {"model": separator.apply_masks(full, spec)}
            if swaps:
                ideal = ratio_masks(separator, references).to(masks.dtype)  # complex for complex masks
                variants["model + Wiener"] = separator.wiener(full, spec, 1)
                variants["model below, ideal above"] = separator.apply_masks(
                    torch.cat([masks, ideal[..., seen:, :]], -2), spec
                )
                variants["ideal below, model rule above"] = separator.apply_masks(
                    separator.extend(ideal[..., :seen, :], spec.shape[-2]), spec
                )
                variants["ideal everywhere"] = separator.apply_masks(ideal, spec)
            for name, estimate in variants.items():
                waveforms = separator.decode(estimate, mixture.shape[-1])[0]
                sums.setdefault(name, []).append(si_sdr(waveforms, references))  # (targets, channels)
            mixture_scores.append(si_sdr(mixture.expand_as(references), references))
    mix = torch.stack(mixture_scores).mean(dim=(0, 2))
    table = {}
    for name, values in sums.items():
        est = torch.stack(values).mean(dim=(0, 2))
        table[name] = {
            f"{target}/{key}": round(float(value), 3)
            for j, target in enumerate(separator.targets)
            for key, value in (("si_sdr", est[j]), ("si_sdri", est[j] - mix[j]))
        }
    return table


def diagnose(cfg: DictConfig) -> dict:
    """The ``sepkit diagnose`` entry: score ``cfg.ckpt`` and write ``diagnose.json`` into the run folder."""
    torch.set_num_threads(cfg.threads)
    separator = load_separator(cfg.ckpt)
    datamodule = _datamodule(separator)
    per_track = datamodule.val_segments_per_track
    valid = FixedSegments(datamodule.audio["valid"], datamodule.groups, datamodule.val_segment, per_track)
    train = FixedSegments(datamodule.audio["train"], datamodule.groups, datamodule.val_segment, per_track)
    results = {
        "checkpoint": str(cfg.ckpt),
        "segments": {"valid": len(valid), "train": len(train)},
        "valid": score(separator, valid, swaps=True),
        "train": score(separator, train, swaps=False)["model"],
    }
    target = separator.targets[0]
    seconds = datamodule.val_segment / datamodule.sample_rate
    lines = [
        f"{cfg.ckpt}: {target} mean over fixed {seconds:.1f}-s segments",
        f"| masks | {target} SI-SDR | {target} SI-SDRi |",
        "|---|---|---|",
    ]
    rows = [(f"model, training songs ({len(train)} segments)", results["train"])]
    rows += [(f"{name} ({len(valid)} validation segments)", row) for name, row in results["valid"].items()]
    lines += [f"| {name} | {row[f'{target}/si_sdr']:.2f} | {row[f'{target}/si_sdri']:.2f} |" for name, row in rows]
    print("\n".join(lines))
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "diagnose.json").write_text(json.dumps(results, indent=2))
    log.info("figures written to %s", out / "diagnose.json")
    return results
