"""Every config group option composes and instantiates."""

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from sepkit.metrics import VAL_SI_SDR
from sepkit.separator import build_separator
from sepkit.training import check_accelerator, instantiate_group

CONF = Path(__file__).resolve().parents[1] / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml") if not p.stem.startswith("_"))


def make_cfg(*overrides: str, tmp_path: Path):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"paths.root_dir={tmp_path}", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
    return cfg


@pytest.mark.parametrize("option", options("data"))
def test_data_options(option: str, tmp_path: Path, tiny_root: Path) -> None:
    cfg = make_cfg(f"data={option}", f"data.root={tiny_root}", tmp_path=tmp_path)
    dm = instantiate(cfg.data)
    assert dm.targets == ["vocals", "accompaniment"] and dm.root == tiny_root
    assert dm.sample_rate == cfg.model.sample_rate


@pytest.mark.parametrize("option", options("model"))
def test_model_options(option: str, tmp_path: Path) -> None:
    cfg = make_cfg(f"model={option}", tmp_path=tmp_path)
    sep = build_separator(OmegaConf.to_container(cfg.model, resolve=True), ["vocals", "accompaniment"]).eval()
    out = sep(torch.randn(1, 2, cfg.model.sample_rate))
    assert out.shape == (1, 2, 2, cfg.model.sample_rate)


@pytest.mark.parametrize("option", options("trainer"))
def test_trainer_options(option: str, tmp_path: Path) -> None:
    cfg = make_cfg(f"trainer={option}", tmp_path=tmp_path)
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        with pytest.raises(Exception, match="needs a CUDA GPU"):
            check_accelerator(cfg.trainer)
        return
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    assert trainer.max_epochs == cfg.trainer.max_epochs


@pytest.mark.parametrize("option", options("logger"))
def test_logger_options(option: str, tmp_path: Path) -> None:
    cfg = make_cfg(f"logger={option}", tmp_path=tmp_path)
    loggers = instantiate_group(cfg.logger)
    assert len(loggers) == {"none": 0, "many": 3}.get(option, 1)


@pytest.mark.parametrize("option", options("callbacks"))
def test_callback_options(option: str, tmp_path: Path) -> None:
    cfg = make_cfg(f"callbacks={option}", tmp_path=tmp_path)
    callbacks = instantiate_group(cfg.callbacks)
    assert callbacks
    assert cfg.callbacks.model_checkpoint.monitor == VAL_SI_SDR == cfg.optimized_metric


@pytest.mark.parametrize("option", options("optimizer"))
def test_optimizer_options(option: str, tmp_path: Path) -> None:
    cfg = make_cfg(f"optimizer={option}", tmp_path=tmp_path)
    opt = instantiate(cfg.optimizer)(params=[torch.nn.Parameter(torch.zeros(2))])
    assert isinstance(opt, torch.optim.Optimizer)


@pytest.mark.parametrize("option", options("scheduler"))
def test_scheduler_options(option: str, tmp_path: Path) -> None:
    budget = ["++trainer.max_steps=100"] if option == "budget_cosine" else []
    cfg = make_cfg(f"scheduler={option}", *budget, tmp_path=tmp_path)
    if not cfg.scheduler:
        assert option == "none"
        return
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    sched = instantiate(cfg.scheduler)["scheduler"](optimizer=opt)
    assert sched.optimizer is opt


@pytest.mark.parametrize("option", options("loss"))
def test_loss_options(option: str, tmp_path: Path) -> None:
    cfg = make_cfg(f"loss={option}", tmp_path=tmp_path)
    loss = instantiate(cfg.loss)
    mix = torch.rand(2, 2, 8, 5)
    targets = torch.stack([mix * 0.3, mix * 0.7], dim=1)
    perfect = torch.stack([torch.full_like(mix, 0.3), torch.full_like(mix, 0.7)], dim=1)
    # every loss is lowest at the perfect masks (0 for the distances; spec_snr's floor is negative)
    best = loss(perfect, mix, targets)
    assert best < loss(1 - perfect, mix, targets) and best < loss(perfect * 1.1, mix, targets)
    assert option == "spec_snr" or best < 1e-6


@pytest.mark.parametrize(
    "overlay", [("experiment", o) for o in options("experiment")] + [("debug", o) for o in options("debug")]
)
def test_overlays_compose(overlay: tuple[str, str], tmp_path: Path) -> None:
    group, option = overlay
    cfg = make_cfg(f"{group}={option}", "data.root=/somewhere", tmp_path=tmp_path)
    assert cfg.model.name
    if group == "debug":
        assert cfg.trainer.accelerator == "cpu" and not cfg.logger and cfg.data.num_workers == 0


def test_paths_are_all_under_root(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path=tmp_path)
    for key in ("log_dir", "data_dir", "cache_dir"):
        assert str(cfg.paths[key]).startswith(str(tmp_path))
    assert cfg.data.root.startswith(str(tmp_path))
