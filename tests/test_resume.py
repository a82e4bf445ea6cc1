"""Resume: N epochs straight == N/2 epochs, stop, resume for N/2 (weights and metrics)."""

import json

import torch

from tests.conftest import run_entry, tiny_train_args

DETERMINISTIC = ["trainer.deterministic=true", "callbacks.early_stopping=null", "trainer.max_epochs=2"]


def final_weights(run) -> dict[str, torch.Tensor]:
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    return ckpt["state_dict"]


def test_resume_matches_an_unbroken_run(tmp_path, tiny_root, cache_dir) -> None:
    straight = tmp_path / "straight"
    args = tiny_train_args(straight, tiny_root, cache_dir)
    assert run_entry("train.py", *args, *DETERMINISTIC).returncode == 0

    half = tmp_path / "half"
    first = run_entry(
        "train.py", *tiny_train_args(half, tiny_root, cache_dir), *DETERMINISTIC[:2], "trainer.max_epochs=1"
    )
    assert first.returncode == 0, first.stderr[-2000:]
    resumed = tmp_path / "resumed"
    second = run_entry(
        "train.py", *tiny_train_args(resumed, tiny_root, cache_dir), *DETERMINISTIC, f"resume={half / 'run'}"
    )
    assert second.returncode == 0, second.stderr[-2000:]

    a, b = final_weights(straight / "run"), final_weights(resumed / "run")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)
    sa = json.loads((straight / "run" / "summary.json").read_text())
    sb = json.loads((resumed / "run" / "summary.json").read_text())
    assert sa["global_steps"] == sb["global_steps"]
    assert abs(sa["last"]["val/si_sdr"] - sb["last"]["val/si_sdr"]) < 1e-3


def test_resume_errors(tmp_path, tiny_root, cache_dir) -> None:
    args = tiny_train_args(tmp_path, tiny_root, cache_dir)
    for override, needle in [
        (f"resume={tmp_path}/nothing", "no checkpoints/last.ckpt"),
        (f"ckpt_path={tmp_path}/nothing.ckpt", "does not exist"),
    ]:
        result = run_entry("train.py", *args, override)
        assert result.returncode != 0 and needle in result.stderr and "Traceback" not in result.stderr


def test_resume_continues_the_same_wandb_run(tmp_path, tiny_root, cache_dir) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "WANDB_MODE": "offline"}
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first = run_entry("train.py", *tiny_train_args(first_dir, tiny_root, cache_dir), "logger=wandb", env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    second = run_entry(
        "train.py",
        *tiny_train_args(second_dir, tiny_root, cache_dir),
        "logger=wandb",
        "trainer.max_epochs=2",
        f"resume={first_dir / 'run'}",
        env=env,
    )
    assert second.returncode == 0, second.stderr[-2000:]
    run_ids = [
        {p.name.rsplit("-", 1)[1] for p in (d / "run" / "wandb").glob("offline-run-*")} for d in (first_dir, second_dir)
    ]
    assert run_ids[0] and run_ids[0] == run_ids[1]


def test_the_weight_average_is_checkpointed_and_resumed(tmp_path, tiny_root, cache_dir) -> None:
    """callbacks=ema: checkpoints hold the average as the model's weights (what evaluate.py and
    separate.py load) and the raw weights beside it; a resumed run continues both."""
    ema = ["callbacks=ema", "callbacks.ema.decay=0.5"]
    straight = tmp_path / "straight"
    run = run_entry("train.py", *tiny_train_args(straight, tiny_root, cache_dir), *DETERMINISTIC, *ema)
    assert run.returncode == 0, run.stderr[-2000:]
    ckpt = torch.load(straight / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    average, raw = ckpt["state_dict"], ckpt["current_model_state"]
    assert average.keys() == raw.keys()
    assert any(not torch.equal(average[k], raw[k]) for k in average if average[k].is_floating_point())

    half = tmp_path / "half"
    first = run_entry(
        "train.py", *tiny_train_args(half, tiny_root, cache_dir), *DETERMINISTIC[:2], "trainer.max_epochs=1", *ema
    )
    assert first.returncode == 0, first.stderr[-2000:]
    resumed = tmp_path / "resumed"
    args = tiny_train_args(resumed, tiny_root, cache_dir)
    second = run_entry("train.py", *args, *DETERMINISTIC, *ema, f"resume={half / 'run'}")
    assert second.returncode == 0, second.stderr[-2000:]
    again = torch.load(resumed / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    for part in ("state_dict", "current_model_state"):
        for key, value in ckpt[part].items():
            torch.testing.assert_close(again[part][key], value, rtol=1e-5, atol=1e-6, msg=f"{part}: {key}")


def test_the_weight_average_refuses_bad_values(tmp_path, tiny_root, cache_dir) -> None:
    result = run_entry(
        "train.py", *tiny_train_args(tmp_path, tiny_root, cache_dir), "callbacks=ema", "callbacks.ema.decay=1.5"
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr + result.stdout
    assert "callbacks.ema.decay must lie between 0 and 1" in result.stderr


def test_the_weight_average_waits_for_statistics_sized_by_the_first_batch(tmp_path, tiny_root, cache_dir) -> None:
    # unet_stereo's per-bin normalisation is sized by its first batch; an average taken when the fit
    # begins would hold the empty statistics and fail at the first update
    args = [a for a in tiny_train_args(tmp_path, tiny_root, cache_dir) if not a.startswith("model.net")]
    result = run_entry("train.py", *args, "model=unet_stereo", "callbacks=ema", "callbacks.ema.decay=0.5")
    assert result.returncode == 0, result.stderr[-2000:]
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert "averaging_state" in ckpt


def test_the_weight_average_warms_up() -> None:
    from sepkit.callbacks import ema_step

    average, current = torch.zeros(3), torch.ones(3)
    # after one update the decay is 2 / 11, not 0.999: the first weights fade within a short run
    torch.testing.assert_close(ema_step(average, current, 1, decay=0.999, warmup=10), torch.full((3,), 9 / 11))
    # warmed up, the decay is the one asked for
    torch.testing.assert_close(ema_step(average, current, 10**6, decay=0.999, warmup=10), torch.full((3,), 1e-3))
