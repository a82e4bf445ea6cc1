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
