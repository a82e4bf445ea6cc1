"""End to end: train.py on generated audio, run-dir contents, checkpoint reload identity."""

import json

import lightning as L
import pytest
import torch

from sepkit import load_separator
from sepkit.inference import SeparationEngine
from sepkit.losses import SpectrogramL1
from sepkit.separator import build_separator
from sepkit.system import SeparationSystem
from tests.conftest import run_entry, tiny_train_args
from tests.test_separator import PAPER


def test_tiny_training_run_writes_everything(tmp_path, tiny_root, cache_dir) -> None:
    result = run_entry("train.py", *tiny_train_args(tmp_path, tiny_root, cache_dir), "trainer.max_epochs=2")
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "run"
    assert (run / "checkpoints" / "best.ckpt").is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert (run / ".hydra" / "config.yaml").is_file()
    assert (run / "train.log").is_file()
    assert (run / "csv" / "metrics.csv").read_text().startswith("epoch")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["global_steps"] == 2 * 4  # 2 epochs x (4 train tracks x 2 samples / batch 2)
    for key in ("val/si_sdr", "val/vocals/si_sdr", "val/vocals/si_sdri", "val/accompaniment/si_sdri", "val/loss"):
        assert isinstance(summary["best"][key], float), key
    assert summary["best_checkpoint"].endswith("best.ckpt")
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == summary["global_steps"]  # current, not the best epoch's copy
    splits = json.loads((run / "splits.json").read_text())
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [4, 1, 1]

    separator = load_separator(run / "checkpoints" / "best.ckpt")
    assert separator.targets == ["vocals", "accompaniment"]
    assert separator.info["sample_rate"] == 8192 and separator.info["stft"]["hop_length"] == 768
    assert separator.info["sepkit_version"]
    out = SeparationEngine(separator).separate(torch.randn(2, 44100), 44100)
    assert out["vocals"].shape == (2, 44100)


def test_a_step_budget_inside_the_first_epoch_ends_cleanly(tmp_path, tiny_root, cache_dir) -> None:
    # 3 steps of a 4-step epoch: the run validates at its last step, so early stopping finds its
    # metric and both checkpoints and the summary are written.
    result = run_entry("train.py", *tiny_train_args(tmp_path, tiny_root, cache_dir), "++trainer.max_steps=3")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["global_steps"] == 3
    assert summary["best"]["step"] == 3 and isinstance(summary["best"]["val/si_sdr"], float)
    for name in ("best.ckpt", "last.ckpt"):
        ckpt = torch.load(run / "checkpoints" / name, map_location="cpu", weights_only=True)
        assert ckpt["global_step"] == 3, name


def test_reloaded_model_gives_identical_output(tmp_path) -> None:
    torch.manual_seed(0)
    separator = build_separator(PAPER, ["vocals", "accompaniment"])
    system = SeparationSystem(separator, SpectrogramL1(), lambda params: torch.optim.Adam(params, lr=1e-2))
    mix = torch.randn(4, 2, 8192)
    targets = torch.stack([mix * 0.25, mix * 0.75], dim=1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(mix, targets), batch_size=2)
    trainer = L.Trainer(
        max_steps=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(system, loader)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    separator.eval()
    reloaded = load_separator(path)
    x = torch.randn(1, 2, 12345)
    with torch.no_grad():
        assert torch.equal(separator(x), reloaded(x))


@pytest.mark.slow
def test_default_run_reaches_5_db(tmp_path) -> None:
    """The README claim: `python train.py` (built-in data, paper U-Net) reaches val/vocals/si_sdri >= 5 dB."""
    result = run_entry("train.py", f"paths.root_dir={tmp_path}", f"hydra.run.dir={tmp_path}/run", timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["best"]["val/vocals/si_sdri"] >= 5.0


def _independent_hq_folder(root):
    """A MUSDB18-HQ-shaped folder written here, not by sepkit's generator: noise/tone stems at 22.05 kHz."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    rate = 22050
    for subset, n in (("train", 3), ("test", 1)):
        for i in range(n):
            folder = root / subset / f"Band {subset} {i} - Song"
            folder.mkdir(parents=True)
            t = np.arange(rate * 6) / rate
            stems = {
                "vocals": 0.3 * np.sin(2 * np.pi * (300 + 20 * np.sin(2 * np.pi * 5 * t)) * t),
                "drums": 0.1 * rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 2 * t) > 0.9),
                "bass": 0.3 * np.sin(2 * np.pi * 55 * t),
                "other": 0.2 * np.sin(2 * np.pi * 440 * t),
            }
            stereo = {k: np.stack([v, 0.8 * v], axis=1) for k, v in stems.items()}
            for name, audio in stereo.items():
                sf.write(folder / f"{name}.wav", audio, rate)
            sf.write(folder / "mixture.wav", sum(stereo.values()), rate)


def test_train_on_an_independent_musdb_hq_folder(tmp_path, cache_dir) -> None:
    _independent_hq_folder(tmp_path / "hq")
    args = [
        a for a in tiny_train_args(tmp_path, tmp_path / "hq", cache_dir) if not a.startswith("data.source.generate")
    ]
    result = run_entry("train.py", "data=musdb", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    splits = json.loads((tmp_path / "run" / "splits.json").read_text())
    assert sum(len(splits[s]) for s in ("train", "valid", "test")) == 4


def test_train_on_a_stem_mp4_folder(tmp_path, cache_dir) -> None:
    import shutil
    from pathlib import Path

    stempeg = pytest.importorskip("stempeg")
    example = Path(stempeg.example_stem_path())
    for subset, names in (("train", ["A - One", "B - Two"]), ("test", ["C - Three"])):
        (tmp_path / "mp4" / subset).mkdir(parents=True)
        for name in names:
            shutil.copy(example, tmp_path / "mp4" / subset / f"{name}.stem.mp4")
    args = [
        a for a in tiny_train_args(tmp_path, tmp_path / "mp4", cache_dir) if not a.startswith("data.source.generate")
    ]
    result = run_entry("train.py", "data=musdb", *args, "data.segment_seconds=1.0", "data.val_segment_seconds=1.0")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "checkpoints" / "best.ckpt").is_file()


@pytest.mark.parametrize("extension", [None, "banded"])
def test_fine_tuning_starts_from_a_checkpoints_weights(
    tmp_path, tiny_root, cache_dir, tiny_ckpt, extension: str | None
) -> None:
    """The checkpoint's model and weights; another mask_extension may be asked for (it starts afresh)."""
    args = [*tiny_train_args(tmp_path, tiny_root, cache_dir), "++trainer.max_steps=1", "logger=none"]
    args = [a for a in args if not a.startswith("model.net")]  # the checkpoint brings its model
    hop = torch.load(tiny_ckpt, map_location="cpu", weights_only=True)["sepkit"]["model"]["hop_length"]
    # a model key that agrees with the checkpoint's is accepted (only the keys given are compared)
    given = [f"model.mask_extension={extension}", "data.sample_rate=44100"] if extension else []
    args += given or [f"model.hop_length={hop}"]
    result = run_entry("train.py", *args, f"init={tiny_ckpt}", "optimizer.lr=1e-6")
    assert result.returncode == 0, result.stderr[-3000:]
    tuned = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert tuned["sepkit"]["model"]["mask_extension"] == (extension or "edge")
    start = torch.load(tiny_ckpt, map_location="cpu", weights_only=True)
    assert tuned["global_step"] == 1 and tuned["optimizer_states"]  # a fresh run of its own
    for key, value in start["state_dict"].items():
        if "running_" in key or "num_batches" in key:  # BatchNorm statistics move with any step
            continue
        assert torch.allclose(tuned["state_dict"][key].float(), value.float(), atol=1e-4), key  # one tiny step away


def test_fine_tuning_refuses_what_does_not_fit(tmp_path, tiny_root, cache_dir, tiny_ckpt) -> None:
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from sepkit.errors import SepkitError
    from sepkit.training import train
    from tests.conftest import ROOT, TINY_RUN

    # model settings on the command line that differ from the checkpoint's (seen through Hydra)
    args = [*tiny_train_args(tmp_path, tiny_root, cache_dir), "logger=none"]
    result = run_entry("train.py", *args, f"init={tiny_ckpt}", "model=unet_simple")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "its model differs from this run's in" in result.stderr.strip().splitlines()[-1]
    hop = torch.load(tiny_ckpt, map_location="cpu", weights_only=True)["sepkit"]["model"]["hop_length"]
    args = [a for a in args if not a.startswith("model.net")]
    result = run_entry("train.py", *args, f"init={tiny_ckpt}", f"model.hop_length={2 * hop}")
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].endswith(
        "its model differs from this run's in hop_length; leave model settings out of the command line to "
        "fine-tune the checkpoint's own model (model.mask_extension may differ)"
    )
    for extra, needle in (
        ([f"init={tiny_ckpt}", "data.targets=[vocals,drums,bass,other]"], "init_new_targets=true"),
        ([f"init={tiny_ckpt}", f"resume={tmp_path}"], "give one"),
        ([f"init={tmp_path}/missing.ckpt"], "does not exist"),
    ):
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            overrides = [f"paths.root_dir={tmp_path}", f"paths.cache_dir={cache_dir}", f"data.root={tiny_root}"]
            cfg = compose("train", overrides=[*overrides, *TINY_RUN, "logger=none", *extra])
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / "run")
        with pytest.raises(SepkitError, match=needle):
            train(cfg)


@pytest.mark.parametrize("net", ["stereo", "stats"])
def test_fine_tuning_keeps_the_checkpoints_input_statistics(net: str) -> None:
    """Statistics a network sizes on its first batch (unet_stereo's per-bin norm, input_scaling=stats)
    start empty in a new separator: fine-tuning loads them, it does not start them afresh."""
    from omegaconf import OmegaConf

    from sepkit.checkpoint import separator_checkpoint
    from sepkit.separator import build_separator
    from sepkit.training import start_from
    from tests.test_separator import PAPER

    if net == "stereo":
        model = {**PAPER, "net": {"_target_": "sepkit.models.unet_stereo.StereoUNet", "_partial_": True}}
    else:
        model = {**PAPER, "net": {**PAPER["net"], "input_scaling": "stats"}}
    torch.manual_seed(0)
    trained = build_separator(model, ["vocals", "accompaniment"])
    if net == "stereo":
        trained.train()(torch.rand(2, 2, 8192))  # one batch sizes the norm's statistics
    else:
        trained.net.set_input_statistics(torch.rand(512), torch.rand(512) + 0.5)
    fresh = build_separator(model, ["vocals", "accompaniment"])
    start_from(fresh, separator_checkpoint(trained, {}), OmegaConf.create({"init": "x.ckpt"}))
    ours, theirs = fresh.state_dict(), trained.state_dict()
    statistics = [k for k in theirs if "input_norm" in k or "input_s" in k]
    assert statistics and all(torch.equal(ours[k], theirs[k]) for k in theirs)


class Interrupt(L.Callback):
    """Interrupts a run after its second step as Ctrl-C (``how=int``) or a scheduler's SIGTERM does."""

    def __init__(self, how: str) -> None:
        self.how = how

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == 2:
            if self.how == "int":
                raise KeyboardInterrupt
            trainer._signal_connector.received_sigterm = True  # what Lightning's SIGTERM handler sets


@pytest.mark.parametrize(("how", "by"), [("int", "Ctrl-C"), ("term", "SIGTERM")])
def test_an_interrupted_run_fails_and_says_how_to_resume(tmp_path, tiny_root, cache_dir, how, by) -> None:
    args = [*tiny_train_args(tmp_path, tiny_root, cache_dir), "logger=none", "trainer.max_epochs=3"]
    result = run_entry(
        "train.py", *args, f"+callbacks.interrupt._target_={__name__}.Interrupt", f"+callbacks.interrupt.how={how}"
    )
    line = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2 and line.startswith(f"error: training interrupted by {by} at step 2"), result.stderr[
        -2000:
    ]
    assert f"resume={tmp_path / 'run'}" in line
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["global_steps"] == 2


def test_a_run_into_the_folder_of_another_is_refused(tmp_path, tiny_root, cache_dir) -> None:
    """hydra.run.dir at an earlier run (or two runs started in the same second) would overwrite its
    checkpoints, summary and metrics without a word."""
    args = [*tiny_train_args(tmp_path, tiny_root, cache_dir), "logger=none", "++trainer.max_steps=1"]
    assert run_entry("train.py", *args).returncode == 0
    summary = (tmp_path / "run" / "summary.json").read_bytes()
    best = (tmp_path / "run" / "checkpoints" / "best.ckpt").read_bytes()
    result = run_entry("train.py", *args, "seed=2")
    line = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2 and "already holds a run" in line and f"resume={tmp_path / 'run'}" in line
    assert (tmp_path / "run" / "summary.json").read_bytes() == summary
    assert (tmp_path / "run" / "checkpoints" / "best.ckpt").read_bytes() == best


def test_a_run_stopped_at_an_epoch_end_resumes_with_early_stopping(tmp_path, tiny_root, cache_dir) -> None:
    """Resumed at an epoch's end, no validation has run yet in the new process: early stopping
    waits for the next one (it raised "val/si_sdr is not available")."""
    first = [*tiny_train_args(tmp_path, tiny_root, cache_dir), "logger=none"]  # 4 steps an epoch
    assert run_entry("train.py", *first, "++trainer.max_steps=4", "trainer.max_epochs=2").returncode == 0
    again = [a.replace(f"{tmp_path}/run", f"{tmp_path}/again") for a in first]
    resume = [f"resume={tmp_path / 'run'}", "++trainer.max_steps=8", "trainer.max_epochs=3"]
    result = run_entry("train.py", *again, *resume)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "again" / "summary.json").read_text())["global_steps"] == 8


def test_a_resumed_run_continues_the_checkpoints_model() -> None:
    """resume=RUN without model settings: the checkpoint's model, not the default's (it was a
    traceback of size mismatches)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from sepkit.checkpoint import CHECKPOINT_KEY
    from sepkit.training import adopt_model
    from tests.conftest import ROOT

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train")
        simple = OmegaConf.to_container(compose("train", overrides=["model=unet_simple"]).model, resolve=True)
    assert cfg.model.name != "unet_simple"
    adopt_model(cfg, {CHECKPOINT_KEY: {"model": simple}}, "resume=RUN")
    assert OmegaConf.to_container(cfg.model, resolve=True) == simple


def test_early_stopping_says_so(tmp_path, tiny_root, cache_dir) -> None:
    args = [*tiny_train_args(tmp_path, tiny_root, cache_dir), "logger=none", "trainer.max_epochs=5"]
    stop = ["callbacks.early_stopping.patience=1", "callbacks.early_stopping.min_delta=1000"]  # never improves
    result = run_entry("train.py", *args, *stop)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stopped_early"] == "epoch 1: val/si_sdr did not improve for 1 validations"
    assert "stopped early at epoch 1" in result.stdout + result.stderr


def test_the_summary_is_strict_json() -> None:
    from sepkit.training import strict_json

    assert strict_json({"best": {"a": float("nan"), "b": 1.5, "c": [float("inf"), 2]}, "n": 3}) == {
        "best": {"a": None, "b": 1.5, "c": [None, 2]},
        "n": 3,
    }
