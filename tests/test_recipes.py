"""Recipe options: the statistics input scaler, the Open-Unmix peer, the CPU recipe overlay and the
equal-budget quality benchmark."""

import json
import subprocess
import sys

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from sepkit.data.sources.base import group_targets
from sepkit.errors import SepkitError
from sepkit.separator import build_separator
from tests.conftest import ROOT, TINY_RUN, run_entry, tiny_train_args
from tests.test_config import make_cfg


def stats_of(separator, mixtures) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bin mean and deviation of the log magnitude, computed directly."""
    feats = torch.cat(
        [torch.log(separator.encode(m).abs()[..., : separator.max_bins, :] + 1e-4).flatten(-3, -3) for m in mixtures],
        dim=-1,
    )
    feats = feats.transpose(0, 1).reshape(separator.max_bins, -1).double()
    return feats.mean(1), feats.std(1, unbiased=False)


def test_input_statistics_come_from_the_training_tracks_only(tmp_path, tiny_root, cache_dir) -> None:
    cfg = make_cfg(
        f"data.root={tiny_root}",
        f"paths.cache_dir={cache_dir}",
        *[o for o in TINY_RUN if o.startswith("data.source")],
        "model.net.input_scaling=log_stats",
        "model.net.channels=[4,8,8,8,8,8]",
        tmp_path=tmp_path,
    )
    dm = instantiate(cfg.data)
    dm.prepare_data()
    separator = build_separator(OmegaConf.to_container(cfg.model, resolve=True), dm.targets)
    assert separator.fit_input_statistics(dm.train_mixtures()) == len(dm.tracks["train"]) == 4

    def mixtures(split: str) -> list[torch.Tensor]:
        audio = dm.cache.load(dm.source, dm.tracks[split])
        return [group_targets(torch.from_numpy(a), dm.groups).sum(0) for a in audio]

    mean, std = stats_of(separator, mixtures("train"))
    torch.testing.assert_close(-separator.net.input_shift.detach().double(), mean, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(1 / separator.net.input_scale.detach().double(), std, rtol=1e-3, atol=1e-4)
    with_test, _ = stats_of(separator, mixtures("train") + mixtures("test"))
    assert (with_test - mean).abs().max() > 1e-2  # the test track would have moved them


def test_scaled_inputs_need_their_statistics() -> None:
    cfg = {
        "_target_": "sepkit.separator.Separator",
        "sample_rate": 8192,
        "n_fft": 1024,
        "hop_length": 768,
        "max_bins": 512,
        "patch_frames": 16,
        "mask_extension": "edge",
        "net": {"_target_": "sepkit.models.unet_paper.PaperUNet", "_partial_": True, "channels": [4] * 6},
    }
    with pytest.raises(SepkitError, match="input_scaling='std' must be one of"):
        build_separator({**cfg, "net": {**cfg["net"], "input_scaling": "std"}}, ["vocals", "accompaniment"])
    separator = build_separator({**cfg, "net": {**cfg["net"], "input_scaling": "stats"}}, ["vocals", "accompaniment"])
    with pytest.raises(SepkitError, match="train.py sets them"):
        separator(torch.randn(1, 2, 8192))
    separator.fit_input_statistics([torch.randn(2, 8192 * 3)])
    assert separator(torch.randn(1, 2, 8192)).shape == (1, 2, 2, 8192)


SMALL = "model.net.channels=[4,8,8,8,8,8]"


@pytest.mark.parametrize(
    "overrides",
    [
        [SMALL, "model.net.input_scaling=log_stats"],
        ["model=openunmix", "loss=spec_mse", "model.sample_rate=8192", "model.net.hidden_size=16"],
        ["experiment=vocals_cpu", SMALL],
        ["experiment=stereo_cpu"],
        [SMALL, "model.net.mask_activation=relu"],
    ],
    ids=["log_stats", "openunmix", "vocals_cpu", "stereo_cpu", "relu_masks"],
)
def test_recipe_options_train_a_few_steps(overrides, tmp_path, tiny_root, cache_dir) -> None:
    args = [a for a in tiny_train_args(tmp_path, tiny_root, cache_dir) if not a.startswith("model.net.channels")]
    result = run_entry("train.py", *args, *overrides, "++trainer.max_steps=2")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["global_steps"] == 2 and "val/si_sdr" in summary["best"]


def paper_net(tmp_path, *overrides: str):
    """The composed unet_paper mask network at small widths, as train.py would build it."""
    cfg = make_cfg("model=unet_paper", SMALL, *overrides, tmp_path=tmp_path)
    torch.manual_seed(0)
    return build_separator(OmegaConf.to_container(cfg.model, resolve=True), ["vocals", "accompaniment"]).net


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "softplus"])
def test_mask_activation_bounds_the_masks_or_not(activation, tmp_path) -> None:
    overrides = [] if activation == "sigmoid" else [f"model.net.mask_activation={activation}"]
    net = paper_net(tmp_path, *overrides).eval()
    assert type(net.head[-1]).__name__.lower() == activation  # sigmoid by default: the paper unchanged
    net.head[0].bias.data.fill_(3.0)  # a head that asks for more than the mixture in every bin
    masks = net(torch.rand(2, 1, 64, 64))
    assert masks.shape == (2, 2, 1, 64, 64) and masks.min() >= 0.0
    assert (masks.max() <= 1.0) == (activation == "sigmoid")


def test_unknown_mask_activation_fails_clearly(tmp_path) -> None:
    with pytest.raises(SepkitError, match="mask_activation='tanh' must be one of sigmoid, relu, softplus"):
        paper_net(tmp_path, "model.net.mask_activation=tanh")


@pytest.mark.parametrize("variant", ["paper", "simple", "stereo"])
def test_tuned_seed_variants_keep_their_architecture(variant, tmp_path) -> None:
    """bench.quality's <variant>_tuned entries change training only: the same parameters, shape for shape."""
    from bench.quality import ENTRIES

    def shapes(cfg) -> dict[str, tuple[int, ...]]:
        net = build_separator(OmegaConf.to_container(cfg.model, resolve=True), ["vocals", "accompaniment"]).net
        skip = ("input_shift", "input_scale")  # the per-bin scaler a log_stats input adds, not the network
        return {k: tuple(v.shape) for k, v in net.state_dict().items() if not k.endswith(skip)}

    plain, tuned = (make_cfg(*ENTRIES[name][1], tmp_path=tmp_path) for name in (variant, f"{variant}_tuned"))
    assert shapes(tuned) == shapes(plain)
    # the recipe's training changes: MSE on magnitudes, lr 2e-3, warm-up + cosine over the budget
    assert tuned.loss._target_ == make_cfg("loss=spec_mse", tmp_path=tmp_path).loss._target_
    assert tuned.optimizer.lr == 2e-3 and tuned.scheduler.scheduler._target_.endswith("BudgetCosine")
    assert (tuned.loss, tuned.optimizer.lr) != (plain.loss, plain.optimizer.lr)


def test_every_quality_entry_is_an_overlay_train_py_composes(tmp_path) -> None:
    from bench.quality import DEFAULT_ENTRIES, ENTRIES

    assert set(DEFAULT_ENTRIES) <= set(ENTRIES) and len(ENTRIES) >= 14
    for name, (what, overrides) in ENTRIES.items():
        assert overrides == [f"experiment=bench/{name}"] and what and not what.startswith("@")
        make_cfg(*overrides, tmp_path=tmp_path)  # composes
    openunmix = make_cfg(*ENTRIES["openunmix"][1], tmp_path=tmp_path)
    assert openunmix.model.name == "openunmix" and openunmix.data.batch_size == 16


def test_make_train_trains_the_builtin_experiment(tmp_path) -> None:
    """`make train` = the stereo CPU recipe on the realistic built-in songs, within a time budget."""
    assert "EXPERIMENT ?= builtin" in (ROOT / "Makefile").read_text()
    cfg = make_cfg("experiment=builtin", tmp_path=tmp_path)
    stereo_cpu = make_cfg("experiment=stereo_cpu", tmp_path=tmp_path)
    assert cfg.data.source._target_.endswith("SyntheticRealSource")
    for group in ("model", "loss", "optimizer"):
        ours, recipe = (OmegaConf.to_container(c[group], resolve=True) for c in (cfg, stereo_cpu))
        assert ours == recipe, group
    assert cfg.scheduler.scheduler._target_ == stereo_cpu.scheduler.scheduler._target_  # its budget: 7 min
    assert cfg.model.audio_channels == 2 and cfg.data.source.generate.reverb == 0.3
    assert cfg.trainer.max_time == "00:00:07:00" and cfg.trainer.max_epochs == -1


def test_builtin_tfc_is_the_long_tfc_recipe_on_the_builtin_songs(tmp_path) -> None:
    """`experiment=builtin_tfc` = `tfc_tdf_cpu_long` on the realistic built-in songs, 10 minutes."""
    cfg = make_cfg("experiment=builtin_tfc", tmp_path=tmp_path)
    long = make_cfg("experiment=tfc_tdf_cpu_long", tmp_path=tmp_path)
    builtin = make_cfg("experiment=builtin", tmp_path=tmp_path)
    for group in ("model", "loss", "optimizer"):
        ours, recipe = (OmegaConf.to_container(c[group], resolve=True) for c in (cfg, long))
        assert ours == recipe, group
    assert cfg.model.net.mask == "complex"
    assert OmegaConf.to_container(cfg.data.source, resolve=True) == OmegaConf.to_container(
        builtin.data.source, resolve=True
    )
    assert cfg.trainer.max_time == "00:00:10:00" and cfg.trainer.max_epochs == -1


@pytest.mark.slow  # several train.py + evaluate.py processes; `make test-slow`
def test_quality_benchmark_runs_end_to_end(tmp_path, tiny_root, cache_dir) -> None:
    out = tmp_path / "quality"
    data = [f"paths.root_dir={tmp_path}", f"paths.cache_dir={cache_dir}", f"data.root={tiny_root}"]
    data += [o for o in TINY_RUN if o.startswith("data.")]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.quality",
            "--budget",
            "120",
            "--val-every",
            "60",
            "--entries",
            "openunmix",
            "paper",
            "--openunmix-rate",
            "8192",
            "--data",
            *data,
            "--extra",
            "++trainer.max_steps=2",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = json.loads((out / "quality.json").read_text())["rows"]
    assert [r["entry"] for r in rows] == ["openunmix", "paper"]
    assert all(r["steps"] == 2 and r["tracks"] == 1 for r in rows)
    table = (out / "quality.md").read_text()
    assert "unprocessed mixture" in table and "ideal ratio mask" in table and "| openunmix:" in table


def test_budget_cosine_follows_the_budget_that_ends_first() -> None:
    from sepkit.schedules import BudgetCosine, parse_duration

    assert parse_duration("00:01:02:03") == 3723.0 and parse_duration({"minutes": 2}) == 120.0
    with pytest.raises(SepkitError, match="needs a budget"):
        BudgetCosine(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0))
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = BudgetCosine(opt, max_steps=100, max_time="00:10:00:00", warmup=0.1, final=0.0)
    rates = []
    for _ in range(100):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates[0] < 0.05 and abs(max(rates) - 1.0) < 0.02 and rates.index(max(rates)) == 10
    assert all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False)) and rates[-1] < 0.01
    # a time budget already spent: straight to the end of the schedule
    timed = BudgetCosine(opt, max_time="00:00:00:01", warmup=0.0, final=0.2)
    timed.start -= 5
    assert timed.factor(1) == pytest.approx(0.2)


def test_plateau_scheduler_waits_for_its_metric(tmp_path) -> None:
    # with time-based validation an epoch can end before any val/loss exists: the plateau
    # scheduler must then keep the rate instead of stopping the run
    from sepkit.losses import SpectrogramL1
    from sepkit.system import SeparationSystem
    from tests.test_separator import PAPER

    cfg = make_cfg("scheduler=plateau", tmp_path=tmp_path)
    system = SeparationSystem(
        build_separator(PAPER, ["vocals", "accompaniment"]),
        SpectrogramL1(),
        instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler),
    )
    assert system.configure_optimizers()["lr_scheduler"]["strict"] is False
