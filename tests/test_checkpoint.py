"""Checkpoints: every loader checks the kind and format with one line, saves are atomic."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from sepkit.checkpoint import CHECKPOINT_KEY, FORMAT, GAN, SEPARATOR, load_separator, read_checkpoint
from sepkit.cli import run_guarded
from sepkit.errors import SepkitError
from sepkit.gan.evaluation import load_gan
from sepkit.separation import export_checkpoint, separate_files
from sepkit.web import serve
from tests.conftest import ROOT, run_entry, tiny_train_args
from tests.test_gan import TINY_GAN, compose_gan, tiny_gan


@pytest.fixture(scope="module")
def gan_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained GAN saved as train.py saves one (the ``sepkit`` section and the state dict)."""
    gan = tiny_gan(["vocals", "drums"])
    classifier_cfg = OmegaConf.to_container(compose_gan(*TINY_GAN, tmp_path=Path("/unused")).scores.classifier)
    classifier = instantiate(classifier_cfg, n_classes=2)
    path = tmp_path_factory.mktemp("gan") / "gan.ckpt"
    state = {
        f"{name}.{k}": v for name, m in (("gan", gan), ("classifier", classifier)) for k, v in m.state_dict().items()
    }
    run = {"classifier": classifier_cfg}
    torch.save({CHECKPOINT_KEY: {**gan.describe(), "run": run}, "state_dict": state}, path)
    return path


def bad_variants(tiny_ckpt: Path, gan_ckpt: Path, tmp: Path) -> dict[str, tuple[Path, str]]:
    """Checkpoints no separator loader may take, with a word its one line must hold."""
    ckpt = torch.load(tiny_ckpt, map_location="cpu", weights_only=True)
    data = tiny_ckpt.read_bytes()
    out = {"gan": (gan_ckpt, "GAN checkpoint: score it with evaluate.py")}
    out["missing"] = (tmp / "nope.ckpt", "does not exist")
    (tmp / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    out["truncated"] = (tmp / "truncated.ckpt", "truncated")
    (tmp / "empty.ckpt").write_bytes(b"")
    out["empty"] = (tmp / "empty.ckpt", "empty (0 bytes)")
    (tmp / "text.ckpt").write_text("not a checkpoint")
    out["text"] = (tmp / "text.ckpt", "corrupt")
    newer = {**ckpt, CHECKPOINT_KEY: {**ckpt[CHECKPOINT_KEY], "format": FORMAT + 1, "sepkit_version": "9.0"}}
    torch.save(newer, tmp / "newer.ckpt")
    out["newer"] = (tmp / "newer.ckpt", "upgrade sepkit")
    lightning_only = {k: v for k, v in ckpt.items() if k != CHECKPOINT_KEY}
    torch.save(lightning_only, tmp / "plain.ckpt")
    out["plain"] = (tmp / "plain.ckpt", "not a sepkit checkpoint")
    wrong = {**ckpt, "state_dict": {k: v[..., :1] if v.dim() else v for k, v in ckpt["state_dict"].items()}}
    torch.save(wrong, tmp / "wrong_weights.ckpt")
    out["wrong_weights"] = (tmp / "wrong_weights.ckpt", "cannot be rebuilt")
    unknown = {**ckpt, CHECKPOINT_KEY: {**ckpt[CHECKPOINT_KEY], "kind": "diffusion"}}
    torch.save(unknown, tmp / "unknown.ckpt")
    out["unknown"] = (tmp / "unknown.ckpt", "does not know")
    return out


def test_every_checkpoint_says_what_it_holds(tiny_ckpt: Path, gan_ckpt: Path) -> None:
    assert read_checkpoint(tiny_ckpt)[CHECKPOINT_KEY]["kind"] == SEPARATOR
    info = read_checkpoint(gan_ckpt)[CHECKPOINT_KEY]
    assert info["kind"] == GAN and info["format"] == FORMAT and info["sepkit_version"]
    with pytest.raises(SepkitError, match="is a separator checkpoint: use it with separate.py"):
        load_gan(tiny_ckpt)
    gan, _, _ = load_gan(gan_ckpt)
    assert gan.categories == ["vocals", "drums"]


def test_a_checkpoint_from_before_kinds_is_still_told_apart(tiny_ckpt: Path, gan_ckpt: Path, tmp_path: Path) -> None:
    for source, kind in ((tiny_ckpt, SEPARATOR), (gan_ckpt, GAN)):
        ckpt = torch.load(source, map_location="cpu", weights_only=True)
        for key in ("kind", "format"):
            ckpt[CHECKPOINT_KEY].pop(key)
        torch.save(ckpt, tmp_path / f"{kind}.ckpt")
        assert read_checkpoint(tmp_path / f"{kind}.ckpt", kind=kind)
    assert load_separator(tmp_path / "separator.ckpt").targets == ["vocals", "accompaniment"]


def compose_separate(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("separate", overrides=list(overrides))


@pytest.mark.parametrize("entry", ["separate", "export", "serve"])
def test_bad_checkpoints_give_one_line_in_every_separator_entry(
    entry: str, tiny_ckpt: Path, gan_ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    song = tmp_path / "song.wav"
    song.write_bytes(b"")  # never read: the checkpoint is refused first
    fn = {"separate": separate_files, "export": export_checkpoint, "serve": serve}[entry]
    for name, (path, needle) in bad_variants(tiny_ckpt, gan_ckpt, tmp_path).items():
        before = path.read_bytes() if path.is_file() else None
        cfg = compose_separate(
            f"ckpt={path}", f"input={song}", f"output={tmp_path}/out", f"paths.root_dir={tmp_path}", "export=onnx"
        )
        with pytest.raises(SystemExit) as stop:
            run_guarded(fn, cfg)
        err = capsys.readouterr().err
        assert stop.value.code == 2, name
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], (name, err)
        assert (path.read_bytes() if path.is_file() else None) == before, name  # nothing of the user's changed
    assert not (tmp_path / "out").exists()


def test_a_gan_checkpoint_given_to_separate_py(gan_ckpt: Path, tmp_path: Path) -> None:
    result = run_entry("separate.py", f"ckpt={gan_ckpt}", f"input={gan_ckpt}", f"paths.root_dir={tmp_path}")
    assert result.returncode == 2 and "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip().splitlines() == [f"error: {gan_ckpt} is a GAN checkpoint: {_gan_use()}"]


def _gan_use() -> str:
    from sepkit.checkpoint import USE

    return USE[GAN]


KILLER = """
import io, os, signal, sys, runpy, torch
real_save, saves = torch.save, []
def save(obj, f, *args, **kwargs):
    if isinstance(obj, dict) and "sepkit" in obj:
        saves.append(obj)
        if len(saves) == 3:  # the first save of the second epoch: half its bytes written, then killed
            buf = io.BytesIO()
            real_save(obj, buf, *args, **kwargs)
            half = buf.getvalue()[: len(buf.getvalue()) // 2]
            if hasattr(f, "write"):
                f.write(half)
                f.flush()
            else:
                with open(f, "wb") as out:
                    out.write(half)
            os.kill(os.getpid(), signal.SIGKILL)
    return real_save(obj, f, *args, **kwargs)
torch.save = save
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path("train.py", run_name="__main__")
"""


def test_a_run_killed_inside_a_save_leaves_whole_checkpoints(tmp_path: Path, tiny_root: Path, cache_dir: Path):
    import subprocess

    args = [*tiny_train_args(tmp_path, tiny_root, cache_dir), "trainer.max_epochs=2", "logger=none"]
    result = subprocess.run(
        [sys.executable, "-c", KILLER, *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == -9, result.stderr[-3000:]  # killed inside the third save
    checkpoints = tmp_path / "run" / "checkpoints"
    for name in ("best.ckpt", "last.ckpt"):
        ckpt = read_checkpoint(checkpoints / name, kind=SEPARATOR)
        assert ckpt["global_step"] == 4, name  # the first epoch's, whole
    assert load_separator(checkpoints / "last.ckpt").targets == ["vocals", "accompaniment"]
    leftovers = [p.name for p in checkpoints.iterdir() if p.name not in ("best.ckpt", "last.ckpt")]
    assert all(".partial-" in name for name in leftovers), leftovers


def test_resume_from_a_truncated_checkpoint_is_one_line(tmp_path: Path, tiny_ckpt: Path) -> None:
    run = tmp_path / "old"
    shutil.copytree(tiny_ckpt.parents[1], run, ignore=shutil.ignore_patterns("*.csv"))
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    result = run_entry("train.py", f"resume={run}", f"paths.root_dir={tmp_path}", f"hydra.run.dir={tmp_path}/run")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "truncated" in result.stderr and json.loads((run / "summary.json").read_text())
