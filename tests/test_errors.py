"""Bad input to train.py: one clear line, non-zero exit, no traceback."""

import pytest

from tests.conftest import run_entry, tiny_train_args


def assert_one_clear_line(result, *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, result.stderr[-2000:]
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_musdb_without_root(tmp_path) -> None:
    result = run_entry("train.py", "data=musdb", f"paths.root_dir={tmp_path}", f"hydra.run.dir={tmp_path}/run")
    assert_one_clear_line(result, "data.root", "sigsep")


def test_root_that_is_not_musdb(tmp_path) -> None:
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "song.mp3").write_bytes(b"x")
    result = run_entry(
        "train.py",
        "data=musdb",
        f"data.root={tmp_path}/stuff",
        f"paths.root_dir={tmp_path}",
        f"hydra.run.dir={tmp_path}/run",
    )
    assert_one_clear_line(result, "train/", "MUSDB18")


def test_missing_root(tmp_path) -> None:
    result = run_entry(
        "train.py",
        "data=musdb",
        f"data.root={tmp_path}/nope",
        f"paths.root_dir={tmp_path}",
        f"hydra.run.dir={tmp_path}/run",
    )
    assert_one_clear_line(result, "does not exist")


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("data.targets=[voice]", "offers vocals"),
        ("data.split_fractions=[0.7,0.3]", "three positive"),
        ("data.n_songs=2", "too few"),
        ("data.split=bogus", "data.split"),
        ("data.split=official", "split=random"),
        ("trainer=gpu", "needs a CUDA GPU"),
        ("model.mask_extension=wrap", "mask_extension"),
        ("seed=abc", "seed='abc' must be an integer"),
        ("optimizer.lr=abc", "optimizer.lr='abc' must be a number above 0"),
    ],
)
def test_bad_values(tmp_path, tiny_root, cache_dir, override: str, needle: str) -> None:
    import torch

    if override == "trainer=gpu" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = run_entry("train.py", *tiny_train_args(tmp_path, tiny_root, cache_dir), override)
    assert_one_clear_line(result, needle)


@pytest.mark.parametrize(
    ("override", "needle"),
    [("data.no_such_key=1", "no_such_key"), ("model=no_such_model", "no_such_model"), ("nonsense", "nonsense")],
)
def test_unknown_config_keys_and_values(tmp_path, override: str, needle: str) -> None:
    result = run_entry("train.py", override, f"paths.root_dir={tmp_path}", f"hydra.run.dir={tmp_path}/run")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert needle in result.stderr


def test_print_config(tmp_path) -> None:
    result = run_entry("train.py", "--cfg", "job", f"paths.root_dir={tmp_path}")
    assert result.returncode == 0
    assert "unet_paper" in result.stdout and "optimized_metric" in result.stdout
