"""The conditional spectrogram GAN (experiment=gan): shapes, one adversarial step, data loading,
scores, train -> evaluate end to end, debug=fdr, resume, bad input."""

from __future__ import annotations

import json
import logging
from functools import partial
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import soundfile as sf
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from sepkit.errors import SepkitError
from sepkit.gan.data import CategoryFolders, SpectrogramDataModule, window_starts
from sepkit.gan.features import make_features
from sepkit.gan.model import build_gan
from sepkit.gan.scores import Classifier, Embedded, frechet_distance, generated_scores, mean_pairwise_distance
from sepkit.gan.system import GANSystem
from sepkit.training import train
from tests.conftest import TINY, run_entry

CONF = Path(__file__).resolve().parents[1] / "conf"
GAN_MODELS = sorted(p.stem for p in (CONF / "model" / "gan").glob("*.yaml"))
# A GAN small enough for a CPU test: 32 mels x 64 frames (1 s at 16 kHz), two upsampling stages.
TINY_GAN = [
    "model.n_mels=32",
    "model.max_frames=64",
    "model.generator.channels=[32,16]",
    "model.discriminator.channels=[8,16]",
    "model.griffin_lim_iters=4",
    "scores.classifier.channels=[4,8]",
    "scores.steps=5",
    "scores.n_generated=4",
    "data.batch_size=4",
    "data.samples_per_track=1",
    "trainer.max_epochs=2",
]


def compose_gan(*overrides: str, tmp_path: Path, experiment: str = "gan"):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}", f"paths.root_dir={tmp_path}", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
    return cfg


def data_args(tiny_root: Path, cache_dir: Path) -> list[str]:
    """Overrides pointing a run at the session's tiny generated dataset."""
    return [
        f"paths.cache_dir={cache_dir}",
        f"data.root={tiny_root}",
        f"data.source.generate.tracks={TINY.tracks}",
        f"data.source.generate.seconds={TINY.seconds}",
        f"data.source.generate.seed={TINY.seed}",
    ]


def tiny_gan(categories=("a", "b", "c"), experiment: str = "gan", overrides: tuple[str, ...] = ()):
    cfg = compose_gan(*TINY_GAN, *overrides, tmp_path=Path("/unused"), experiment=experiment)
    return build_gan(OmegaConf.to_container(cfg.model, resolve=True), list(categories))


def bare_trainer(callbacks: list[L.Callback] | None = None) -> L.Trainer:
    """One epoch on the CPU, no validation, logger, checkpoints or progress output."""
    return L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )


def write_tone(path: Path, freq: float, seconds: float = 1.2, rate: int = 22050) -> None:
    t = np.arange(int(seconds * rate)) / rate
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate)


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    """root/<category>/*.wav: three categories of tones (low, mid, noise), five clips each."""
    root = tmp_path / "sounds"
    rng = np.random.default_rng(0)
    (root / "noise").mkdir(parents=True)
    for i in range(5):
        write_tone(root / "low" / f"{i}.wav", 80 + 10 * i)
        write_tone(root / "mid" / f"{i}.wav", 900 + 50 * i)
        sf.write(root / "noise" / f"{i}.wav", (0.1 * rng.standard_normal(20000)).astype(np.float32), 16000)
    return root


# ---- networks ------------------------------------------------------------------------------------
@pytest.mark.parametrize("option", GAN_MODELS)
def test_generator_and_discriminator_shapes_per_config(option: str, tmp_path: Path) -> None:
    cfg = compose_gan(f"model=gan/{option}", tmp_path=tmp_path)
    gan = build_gan(OmegaConf.to_container(cfg.model, resolve=True), ["vocals", "drums", "bass", "other"])
    labels = torch.tensor([0, 3])
    with torch.no_grad():
        spec = gan(gan.noise(2), labels)
        logits = gan.discriminator(spec, labels)
    assert spec.shape == (2, 1, cfg.model.n_mels, cfg.model.max_frames)
    assert logits.shape == (2,) and bool((spec >= 0).all())
    audio = torch.randn(2, gan.segment_samples)
    assert gan.encode(audio).shape == spec.shape  # real and generated spectrograms agree


def test_tiny_config_shapes_and_size_check() -> None:
    gan = tiny_gan()
    assert gan(gan.noise(3), torch.tensor([0, 1, 2])).shape == (3, 1, 32, 64)
    cfg = compose_gan(*TINY_GAN, "model.max_frames=62", tmp_path=Path("/unused"))
    with pytest.raises(SepkitError, match="multiples of 4"):
        build_gan(OmegaConf.to_container(cfg.model, resolve=True), ["a", "b"])


def test_log_mel_round_trip_through_griffin_lim() -> None:
    """Spectrogram -> audio (inverse mel, Griffin-Lim) -> spectrogram keeps a tone over noise: where
    the tone is, the round trip is within 3 dB, while dropping the tone would be off by over 20 dB."""
    encoder, decoder = make_features(16000, 1024, 256, 64, -60.0, 100.0, griffin_lim_iters=32)
    noise = 0.02 * torch.randn(1, 32000, generator=torch.Generator().manual_seed(0))
    wav = 0.3 * torch.sin(2 * torch.pi * 440 * torch.arange(32000) / 16000)[None] + noise
    spec, without_tone = encoder(wav), encoder(noise)
    again = encoder(decoder(spec))
    assert again.shape == spec.shape == (1, 1, 64, 126)
    tone = (spec - without_tone) > 0.1
    assert (spec - again).abs().mean() < 0.05 and (spec - again)[tone].abs().mean() < 0.03
    assert (spec - without_tone)[tone].abs().mean() > 0.2


# ---- one adversarial step ------------------------------------------------------------------------
@pytest.mark.parametrize("experiment", ["gan_baseline", "gan"])
def test_one_step_updates_both_networks_and_the_discriminator_step_leaves_the_generator_alone(experiment: str) -> None:
    gan = tiny_gan(experiment=experiment)
    options = {"auxiliary": 1.0} if experiment == "gan" else {}  # the discriminator's head needs its loss
    seen: dict[str, list] = {}

    def on_d_step(opt, args, kwargs) -> None:
        seen["g_grads_at_d_step"] = [p.grad for p in gan.generator.parameters()]
        seen["d_grads_at_d_step"] = [p.grad.clone() for p in gan.discriminator.parameters()]

    def on_g_step(opt, args, kwargs) -> None:
        seen["g_grads_at_g_step"] = [p.grad for p in gan.generator.parameters()]
        seen["d_grads_at_g_step"] = [p.grad.clone() for p in gan.discriminator.parameters()]

    class Hooked(GANSystem):
        def configure_optimizers(self):
            opt_g, opt_d = super().configure_optimizers()
            opt_d.register_step_pre_hook(on_d_step)
            opt_g.register_step_pre_hook(on_g_step)
            return [opt_g, opt_d]

    system = Hooked(
        gan, Classifier(3, channels=(4,), embed_dim=4), optimizer=partial(torch.optim.Adam, lr=1e-2), **options
    )
    g_before = {k: v.clone() for k, v in gan.generator.state_dict().items()}
    d_before = {k: v.clone() for k, v in gan.discriminator.state_dict().items()}
    classifier_before = {k: v.clone() for k, v in system.classifier.state_dict().items()}
    audio = torch.randn(4, gan.segment_samples) * 0.1
    loader = torch.utils.data.DataLoader(list(zip(audio, torch.tensor([0, 1, 2, 0]), strict=True)), batch_size=4)
    trainer = bare_trainer()
    trainer.fit(system, train_dataloaders=loader)

    assert trainer.global_step == 2  # one discriminator and one generator step
    assert all(g is None for g in seen["g_grads_at_d_step"])  # the D step saw detached fakes only
    assert all(g is not None for g in seen["g_grads_at_g_step"])
    assert seen["g_grads_at_g_step"][0].abs().sum() > 0
    for at_d, at_g in zip(seen["d_grads_at_d_step"], seen["d_grads_at_g_step"], strict=True):
        assert torch.equal(at_d, at_g)  # the G step added no gradient to the discriminator

    def changed(before: dict, module: torch.nn.Module) -> list[str]:
        return [k for k, v in module.state_dict().items() if not torch.equal(v, before[k])]

    assert "project.weight" in changed(g_before, gan.generator)
    assert any(k.startswith("features.0.") for k in changed(d_before, gan.discriminator))
    assert not changed(classifier_before, system.classifier)  # the scores' classifier stays frozen


# ---- data ----------------------------------------------------------------------------------------
def test_stem_categories_from_a_track_source(tmp_path: Path, tiny_root: Path, cache_dir: Path) -> None:
    cfg = compose_gan(*TINY_GAN, f"data.root={tiny_root}", f"paths.cache_dir={cache_dir}", tmp_path=tmp_path)
    dm: SpectrogramDataModule = instantiate(cfg.spectrograms)
    dm.setup()
    assert dm.categories == ["vocals", "drums", "bass", "other"]
    split_names = [{t.name for t in dm.tracks[s]} for s in ("train", "valid", "test")]
    assert not (split_names[0] & split_names[2])  # a test song is never a training song
    assert len(dm.clips["train"]) == 4 * len(dm.tracks["train"])
    audio, labels = next(iter(dm.train_dataloader()))
    assert audio.shape == (4, (64 - 1) * 256) and labels.dtype == torch.int64
    windows = dm.windows("valid")
    assert len(windows) > 0 and set(windows.labels.tolist()) <= {0, 1, 2, 3}

    pick = instantiate(cfg.spectrograms, categories=["bass", "drums"], fraction=0.5)
    pick.setup()
    assert pick.categories == ["bass", "drums"]
    assert len(pick.clips["train"]) == 2 * round(0.5 * len(pick.tracks["train"]))
    assert {c.stem for c in pick.clips["train"]} == {2, 1}  # bass and drums stems of the source


def test_category_folders_load(folders: Path, tmp_path: Path) -> None:
    cfg = compose_gan(
        *TINY_GAN, "data=gan/categories", f"data.root={folders}", f"paths.cache_dir={tmp_path / 'c'}", tmp_path=tmp_path
    )
    dm: SpectrogramDataModule = instantiate(cfg.spectrograms)
    dm.setup()
    assert dm.categories == ["low", "mid", "noise"]
    for split, per_category in (("train", 3), ("valid", 1), ("test", 1)):
        labels = [c.label for c in dm.clips[split]]
        assert [labels.count(i) for i in range(3)] == [per_category] * 3, split
    audio, labels = next(iter(dm.train_dataloader()))
    assert audio.shape == (4, 63 * 256)
    # a 1.2 s, 22.05 kHz tone arrives resampled to 16 kHz, its level kept
    wav, label = dm.windows("test")[0]
    assert label == 0 and 0.15 < float(wav[:16000].pow(2).mean().sqrt()) < 0.25


def test_window_starts() -> None:
    assert window_starts(100, 40) == [0, 40, 60]
    assert window_starts(90, 40) == [0, 40]  # a 10-sample rest is under half a window
    assert window_starts(30, 40) == [0]


def test_bad_category_folders_fail_with_one_line(folders: Path, tmp_path: Path, cache_dir: Path) -> None:
    (folders / "silence").mkdir()
    result = run_entry(
        "train.py", "experiment=gan", "data=gan/categories", f"data.root={folders}", f"paths.root_dir={tmp_path}"
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr + result.stdout
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith("error: category folder") and "silence" in lines[0], lines

    (folders / "silence").rmdir()
    (folders / "mid" / "broken.wav").write_bytes(b"RIFF not really a wave file")
    with pytest.raises(SepkitError, match=r"mid/broken.wav is unreadable"):
        CategoryFolders(folders).tracks()


# ---- scores --------------------------------------------------------------------------------------
def test_frechet_distance_matches_the_closed_form() -> None:
    scipy_linalg = pytest.importorskip("scipy.linalg")
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(300, 5, generator=gen) @ torch.randn(5, 5, generator=gen)
    b = torch.randn(200, 5, generator=gen) * 2 + 1
    ca, cb = np.cov(a.numpy().T), np.cov(b.numpy().T)
    mean = ((a.mean(0) - b.mean(0)) ** 2).sum().item()
    expected = mean + np.trace(ca + cb - 2 * scipy_linalg.sqrtm(ca @ cb).real)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_scores_catch_wrong_labels_and_mode_collapse() -> None:
    gen = torch.Generator().manual_seed(1)
    centres = torch.tensor([[3.0, 0.0], [0.0, 3.0]])
    labels = torch.tensor([0, 1]).repeat_interleave(50)

    def embedded(points, predicted):
        return Embedded(points, labels, predicted, points, torch.zeros(len(points), 0))

    def around_centres(spread: float) -> torch.Tensor:
        return centres[labels] + spread * torch.randn(100, 2, generator=gen)

    real, held_out = embedded(around_centres(1.0), labels), embedded(around_centres(1.0), labels)
    good = generated_scores(embedded(around_centres(1.0), labels), held_out, real, "ab")
    collapsed = generated_scores(embedded(around_centres(0.01), 1 - labels), held_out, real, "ab")
    assert good["all"]["cond_acc"] == 1.0 and collapsed["all"]["cond_acc"] == 0.0
    assert 0.8 < good["a"]["diversity"] < 1.2 and collapsed["a"]["diversity"] < 0.05
    assert good["all"]["fd"] < 0.3 < collapsed["all"]["fd"]
    assert mean_pairwise_distance(torch.zeros(4, 3)) == 0.0


# ---- end to end ----------------------------------------------------------------------------------
def train_in_process(out: Path, tiny_root: Path, cache_dir: Path, *overrides: str, experiment: str = "gan") -> dict:
    """``sepkit.training.train`` (which hands over to the GAN's ``train_fn``) on the tiny data; the summary."""
    cfg = compose_gan(*data_args(tiny_root, cache_dir), *TINY_GAN, *overrides, tmp_path=out, experiment=experiment)
    train(cfg)
    return json.loads((out / "run" / "summary.json").read_text())


def test_train_writes_a_checkpoint_that_evaluate_turns_into_samples_and_scores(
    tmp_path: Path, tiny_root: Path, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = tmp_path / "first"
    with caplog.at_level(logging.INFO, logger="sepkit.gan.training"):
        summary = train_in_process(first, tiny_root, cache_dir)
    assert "scores classifier: training accuracy" in caplog.text
    run = first / "run"
    assert summary["optimized_metric"] == "val/fd_mean" and summary["best"]["val/fd_mean"] >= 0
    assert summary["epochs"] == 2 and summary["best_checkpoint"] == str(run / "checkpoints" / "best.ckpt")
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == ["epoch_000.png", "epoch_001.png"]
    metrics = (run / "csv" / "metrics.csv").read_text()
    assert "val/drums/fd" in metrics and "val/fd_floor" in metrics and "train/d_loss" in metrics

    ev = run_entry(
        "evaluate.py",
        f"ckpt={run / 'checkpoints' / 'best.ckpt'}",
        f"paths.root_dir={tmp_path}",
        f"hydra.run.dir={tmp_path}/eval",
        "+eval.n_samples=6",
    )
    assert ev.returncode == 0, ev.stderr[-3000:]
    out = tmp_path / "eval"
    results = json.loads((out / "results.json").read_text())
    assert results["categories"] == ["vocals", "drums", "bass", "other"] and results["counts"]["generated"] == 6
    assert all(n > 0 for n in results["counts"]["test_windows"].values())
    confusion = results["generated_classified_as"]
    assert [sum(row.values()) for row in confusion.values()] == [6] * 4
    assert results["scores"]["drums"]["cond_acc"] == confusion["drums"]["drums"] / 6
    assert results["reference_embedding"] is None and results["generated_classified_as_reference"] is None  # tiny mels
    for category in [*results["categories"], "all"]:
        values = results["scores"][category]
        assert 0 <= values["cond_acc"] <= 1 and 0 <= values["real_acc"] <= 1
        assert values["fd"] >= 0 and values["fd_floor"] >= 0 and values["diversity"] > 0
    for category in results["categories"]:
        wavs = sorted((out / "samples" / category).glob("*.wav"))
        assert len(wavs) == 4
        audio, rate = sf.read(wavs[0])
        assert rate == 16000 and len(audio) == 63 * 256 and np.isfinite(audio).all()
    assert (out / "samples.png").stat().st_size > 5000
    assert "cond_acc" in ev.stdout and "fd_floor" in ev.stdout

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sepkit.gan.training"):
        again = train_in_process(
            tmp_path / "resumed", tiny_root, cache_dir, "trainer.max_epochs=3", f"resume={run}", "logger=tensorboard"
        )
    assert again["epochs"] == 3 and again["global_steps"] == summary["global_steps"] * 3 // 2
    assert "scores classifier" not in caplog.text  # the classifier came back from the checkpoint
    events = list((tmp_path / "resumed" / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and max(e.stat().st_size for e in events) > 20_000  # the sample grid and audio, not just scalars


def test_debug_fdr_runs_with_experiment_gan_in_mixed_precision(tmp_path: Path, tiny_root: Path, cache_dir: Path):
    summary = train_in_process(tmp_path, tiny_root, cache_dir, "debug=fdr", "trainer.precision=bf16-mixed")
    assert summary["global_steps"] == 2  # one batch: one discriminator and one generator step
    assert "val/cond_acc" in summary["last"]


@pytest.mark.parametrize("option", ["synthetic", "musdb_hq", "aligned", "stereo_split", "gan/categories"])
def test_every_data_option_feeds_the_gan(option: str, tmp_path: Path) -> None:
    cfg = compose_gan(f"data={option}", "data.root=/somewhere", tmp_path=tmp_path)
    resolved = OmegaConf.to_container(cfg, resolve=True)  # what the loggers receive
    assert resolved["spectrograms"]["root"] == "/somewhere" and resolved["model"]["sample_rate"] == 16000
    assert cfg.callbacks.model_checkpoint.monitor == "val/fd_mean" and cfg.callbacks.model_checkpoint.mode == "min"


# ---- the improved recipe's pieces ----------------------------------------------------------------
def test_the_moving_average_follows_the_generator_and_makes_the_samples() -> None:
    gan = tiny_gan()  # experiment=gan keeps a moving average (model.ema_decay)
    ema = gan.generator_ema
    assert ema is not None and gan.sampler is gan.generator  # nothing averaged yet
    assert not any(p.requires_grad for p in ema.parameters())
    start = gan.generator.project.weight.detach().clone()
    gan.update_average()  # the first update copies
    assert torch.equal(ema.module.project.weight, start) and gan.sampler is ema.module
    with torch.no_grad():
        gan.generator.project.weight.add_(1.0)
    gan.update_average()  # second: warmed-up decay min(0.995, 2 / 11)
    assert torch.allclose(ema.module.project.weight, start + 1.0 - 2 / 11, atol=1e-6)
    for _ in range(2500):
        gan.update_average()
    assert torch.allclose(ema.module.project.weight, gan.generator.project.weight, atol=1e-4)

    gan.eval()
    with torch.no_grad():
        gan.generator.project.weight.mul_(-3.0)  # the trained generator now draws something else
        noise = torch.randn(2, gan.latent_dim, generator=torch.Generator().manual_seed(5))
        labels = torch.tensor([0, 2])
        from_average = ema.module(noise, labels)
        assert not torch.allclose(from_average, gan(noise, labels))
    assert torch.equal(gan.sample(labels, seed=5), from_average)  # samples come from the average


def test_the_moving_averages_warm_up_can_be_shortened() -> None:
    from sepkit.gan.model import warmed_ema

    one, zero = torch.ones(1), torch.zeros(1)
    # TensorFlow's rule (warm-up 10): after 100 updates the decay is 101 / 110, not 0.99
    assert float(warmed_ema(0.99)(one, zero, torch.tensor(100))) == pytest.approx(101 / 110)
    assert float(warmed_ema(0.99, warmup=1)(one, zero, torch.tensor(100))) == pytest.approx(0.99)
    with pytest.raises(SepkitError, match="ema_warmup"):
        cfg = compose_gan(*TINY_GAN, "model.ema_warmup=0.5", tmp_path=Path("/unused"))
        build_gan(OmegaConf.to_container(cfg.model, resolve=True), ["a", "b"])


def test_standing_statistics_are_the_moving_averages_own() -> None:
    gan = tiny_gan()
    gan.update_average()
    with torch.no_grad():  # the average's weights now differ from those its averaged statistics came from
        for p in gan.generator_ema.module.parameters():
            p.mul_(1.5)
    module = gan.generator_ema.module
    norm = next(m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d))
    averaged = norm.running_mean.clone()
    gan.eval()
    gan.refresh_statistics(batches=0)  # off: nothing changes
    assert torch.equal(norm.running_mean, averaged)

    # one batch: normalising by the stored statistics draws what the batch's own statistics draw
    stream = torch.Generator().manual_seed(3)
    labels = (torch.arange(24) % 3)[torch.randperm(24, generator=stream)]
    noise = torch.randn(24, gan.latent_dim, generator=stream)
    with torch.no_grad():
        before = module(noise, labels)
        module.train()
        own = module(noise, labels)
        module.eval()
    gan.refresh_statistics(batches=1, batch_size=24, seed=3)
    assert not module.training and norm.momentum == 0.1  # modes and momenta as they were
    first = [b.clone() for b in module.buffers()]
    with torch.no_grad():
        stored = module(noise, labels)
    assert (before - own).abs().max() > 0.1  # the averaged statistics did not fit these weights
    assert (stored - own).abs().max() < 0.01  # the refreshed ones do (up to the unbiased variance)

    gan.refresh_statistics(batches=1, batch_size=24, seed=3)  # deterministic
    assert all(torch.equal(a, b) for a, b in zip(first, module.buffers(), strict=True))


def test_an_improved_step_trains_with_its_own_rates_regularisers_and_average() -> None:
    from sepkit.gan.augment import DiffAugment
    from sepkit.gan.losses import Hinge

    gan = tiny_gan()
    system = GANSystem(
        gan,
        Classifier(3, channels=(4,), embed_dim=4),
        optimizer=partial(torch.optim.Adam, lr=1e-3, betas=(0.0, 0.9)),
        loss=Hinge(),
        d_lr=4e-3,
        augment=DiffAugment(),
        r1_gamma=1.0,
        r1_every=1,
        mode_seeking=1.0,
        feature_matching=1.0,
        auxiliary=1.0,
    )
    head_before = gan.discriminator.classifier.weight.detach().clone()
    audio = torch.randn(8, gan.segment_samples) * 0.1
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    loader = torch.utils.data.DataLoader(list(zip(audio, labels, strict=True)), batch_size=4)
    trainer = bare_trainer()
    trainer.fit(system, train_dataloaders=loader)
    opt_g, opt_d = trainer.optimizers
    assert opt_g.param_groups[0]["lr"] == 1e-3 and opt_d.param_groups[0]["lr"] == 4e-3
    assert trainer.global_step == 4 and int(gan.generator_ema.n_averaged) == 2
    metrics = trainer.callback_metrics
    logged = ("train/d_loss", "train/g_loss", "train/r1", "train/feature_matching")
    assert all(torch.isfinite(metrics[k]) for k in logged)
    assert float(metrics["train/feature_matching"]) > 0
    assert float(metrics["train/r1"]) > 0
    assert not torch.equal(gan.discriminator.classifier.weight, head_before)  # the auxiliary head learnt


def test_an_adaptive_augmentation_strength_follows_how_surely_reals_are_called_real() -> None:
    """ADA's rule on the strength: a discriminator sure of the training windows (r_t above the target)
    gets stronger augmentation step by step, one unsure of them weaker, within 0 and 4; a run logs
    r_t and the strength at every step and checkpoints the strength."""
    from sepkit.errors import SepkitError
    from sepkit.gan.augment import DiffAugment
    from sepkit.gan.losses import Hinge

    classifier = Classifier(3, channels=(4,), embed_dim=4)
    system = GANSystem(tiny_gan(), classifier, torch.optim.Adam, augment=DiffAugment(), adaptive=0.6)
    system.adapt(0.9)
    assert system.augment.strength == pytest.approx(1.01)
    system.adapt(0.6)  # at the target: down
    system.adapt(-0.5)
    assert system.augment.strength == pytest.approx(0.99)
    for r_t in [1.0] * 400 + [-1.0] * 500:
        system.adapt(r_t)
        assert 0.0 <= system.augment.strength <= 4.0
    assert system.augment.strength == 0.0

    audio = torch.randn(16, tiny_gan().segment_samples, generator=torch.Generator().manual_seed(0)) * 0.1
    labels = torch.tensor([0, 1, 2, 0] * 4)
    augment = DiffAugment()
    system = GANSystem(
        tiny_gan(),
        classifier,
        partial(torch.optim.Adam, lr=1e-3),
        loss=Hinge(),
        augment=augment,
        adaptive=0.6,
        adaptive_speed=0.1,
    )
    trainer = bare_trainer()
    trainer.fit(system, train_dataloaders=torch.utils.data.DataLoader(list(zip(audio, labels, strict=True)), 4))
    metrics = trainer.callback_metrics
    assert -1 <= float(metrics["train/r_t"]) <= 1
    assert float(metrics["train/augment_strength"]) == pytest.approx(augment.strength)
    assert round((augment.strength - 1.0) / 0.1) % 2 == 0 and abs(augment.strength - 1.0) <= 0.4 + 1e-6  # 4 steps
    checkpoint = {}
    system.on_save_checkpoint(checkpoint)
    assert checkpoint["sepkit"]["augment_strength"] == augment.strength
    with pytest.raises(SepkitError, match="adversarial.adaptive"):
        GANSystem(tiny_gan(), classifier, torch.optim.Adam, adaptive=0.6)  # nothing to adapt


def one_hinge_step(gan, **adversarial) -> tuple[GANSystem, float]:
    """One training step of ``gan`` (seeded) with the hinge loss and these GANSystem settings, on
    four fixed noise clips of categories 0, 1, 2, 0: the system and its generator loss."""
    from sepkit.gan.losses import Hinge

    audio = torch.randn(4, gan.segment_samples, generator=torch.Generator().manual_seed(0)) * 0.1
    labels = torch.tensor([0, 1, 2, 0])
    system = GANSystem(
        gan,
        Classifier(3, channels=(4,), embed_dim=4),
        optimizer=partial(torch.optim.Adam, lr=1e-3),
        loss=Hinge(),
        **adversarial,
    )
    trainer = bare_trainer()
    trainer.fit(
        system, train_dataloaders=torch.utils.data.DataLoader(list(zip(audio, labels, strict=True)), batch_size=4)
    )
    return system, float(trainer.callback_metrics["train/g_loss"])


def test_the_generator_can_weigh_the_auxiliary_term_apart_from_the_discriminator() -> None:
    losses = {}
    for weight in (None, 0.0):
        torch.manual_seed(0)
        system, losses[weight] = one_hinge_step(tiny_gan(), auxiliary=1.0, auxiliary_generator=weight)
        assert system.auxiliary_generator == (1.0 if weight is None else 0.0)
    # The same step (same seed, same discriminator update); only the generator's cross-entropy differs.
    assert losses[None] > losses[0.0] + 0.1


def test_the_twin_head_learns_generated_samples_and_the_generator_plays_against_it() -> None:
    losses, twin_moved = {}, {}
    for twin in (0.0, 1.0):
        torch.manual_seed(0)
        gan = tiny_gan(overrides=("model.discriminator.twin=true",))
        before = [p.detach().clone() for p in gan.discriminator.twin.parameters()]
        _, losses[twin] = one_hinge_step(gan, auxiliary=1.0, auxiliary_generator=0.5, twin=twin)
        after = list(gan.discriminator.twin.parameters())
        twin_moved[twin] = any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    # Trained only with the term on: the head learns the generated samples' categories.
    assert twin_moved == {0.0: False, 1.0: True}
    # The generator's loss subtracts the twin's cross-entropy (about log 3 for an untrained head) at
    # half the weight: the same adversarial and auxiliary parts otherwise.
    assert losses[0.0] - losses[1.0] == pytest.approx(0.5 * np.log(3), abs=0.25)


def test_the_twin_term_needs_both_heads() -> None:
    kwargs = dict(classifier=Classifier(3, channels=(4,), embed_dim=4), optimizer=partial(torch.optim.Adam, lr=1e-3))
    with pytest.raises(SepkitError, match="adversarial.feature_matching=-1"):
        GANSystem(tiny_gan(), feature_matching=-1.0, **kwargs)
    with pytest.raises(SepkitError, match="model.discriminator.twin=true"):
        GANSystem(tiny_gan(), auxiliary=1.0, twin=1.0, **kwargs)
    with pytest.raises(SepkitError, match="adversarial.auxiliary > 0"):
        GANSystem(tiny_gan(overrides=("model.discriminator.twin=true",)), auxiliary=0.0, twin=1.0, **kwargs)


def test_the_checkpoint_score_averages_each_categorys_own_distance() -> None:
    from sepkit.gan.system import intra_fd

    scores = {"a": {"fd": 2.0, "fd_ref": 10.0}, "b": {"fd": 4.0, "fd_ref": 30.0}, "all": {"fd": 1.0, "fd_ref": 5.0}}
    assert intra_fd(scores, ["a", "b"]) == 20.0  # the reference embedding's, per category, not the pooled 5
    assert intra_fd({c: {"fd": v["fd"]} for c, v in scores.items()}, ["a", "b"]) == 3.0  # no reference: the run's
    scores["b"]["fd_ref"] = float("nan")  # too few real windows of b to estimate its covariance
    assert intra_fd(scores, ["a", "b"]) == 10.0
    scores["a"]["fd_ref"] = float("nan")
    assert intra_fd(scores, ["a", "b"]) == 5.0  # none: the pooled distance


def test_the_rates_and_the_generators_auxiliary_pull_fall_linearly_over_the_last_share_of_the_run() -> None:
    gan = tiny_gan()
    system = GANSystem(
        gan,
        Classifier(3, channels=(4,), embed_dim=4),
        optimizer=partial(torch.optim.Adam, lr=1e-3),
        d_lr=2e-3,
        lr_decay=0.5,
        auxiliary=1.0,
        auxiliary_decay=0.75,
    )
    seen: list[tuple[float, float]] = []
    pulls: list[float] = []

    class Rates(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
            seen.append(tuple(o.param_groups[0]["lr"] for o in trainer.optimizers))
            pulls.append(module.generator_auxiliary_factor(batch_idx))

    audio = torch.randn(8, gan.segment_samples) * 0.1
    loader = torch.utils.data.DataLoader(list(zip(audio, torch.tensor([0, 1, 2, 0] * 2), strict=True)), batch_size=2)
    trainer = bare_trainer(callbacks=[Rates()])
    trainer.fit(system, train_dataloaders=loader)
    # 4 steps, the last half decaying: full rates for steps 0-2, then half, each rate its own.
    assert seen == [(1e-3, 2e-3)] * 3 + [(5e-4, 1e-3)]
    # the pull over the last three quarters: from step 1, 3/3, 2/3, 1/3 of the weight
    assert pulls == pytest.approx([1.0, 1.0, 2 / 3, 1 / 3])
    for key in ("lr_decay", "auxiliary_decay"):
        with pytest.raises(SepkitError, match=key):
            GANSystem(gan, Classifier(3, channels=(4,), embed_dim=4), optimizer=torch.optim.Adam, **{key: 1.5})


def test_the_baseline_configuration_still_composes_and_trains(tmp_path: Path, tiny_root: Path, cache_dir: Path) -> None:
    summary = train_in_process(tmp_path, tiny_root, cache_dir, "trainer.max_epochs=1", experiment="gan_baseline")
    assert summary["optimized_metric"] == "val/fd" and summary["epochs"] == 1 and summary["best"]["val/fd"] >= 0
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    assert not any("generator_ema" in k for k in ckpt["state_dict"])  # the baseline keeps no average
    assert ckpt["sepkit"]["run"]["adversarial"]["loss"]["_target_"] == "sepkit.gan.losses.NonSaturating"
