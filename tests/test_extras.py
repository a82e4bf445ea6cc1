"""Lean core, optional extras (issue #31): a core install trains, evaluates and separates; a feature
whose extra is missing stops with one line naming ``pip install 'sepkit[...]'``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from omegaconf import OmegaConf

from sepkit.extras import EXTRAS, PLUGINS, MissingExtra, check_config, check_overrides, missing_extra, require
from tests.conftest import ROOT, TINY_RUN

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> set[str]:
    return {r.split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower() for r in requirements}


def test_the_extras_named_in_messages_exist_and_the_core_holds_none_of_their_packages() -> None:
    extras = PROJECT["optional-dependencies"]
    assert set(EXTRAS.values()) <= set(extras)
    assert _names(extras["all"]) == {"sepkit"} and all(e in extras["all"][0] for e in set(EXTRAS.values()))
    optional = set().union(*(_names(v) for k, v in extras.items() if k not in ("all", "dev")))
    assert not _names(PROJECT["dependencies"]) & optional
    assert {"gradio", "wandb", "musdb", "museval", "pyworld", "hydra-optuna-sweeper"} <= optional


def test_require_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio now fails as if not installed
    with pytest.raises(
        MissingExtra, match=r"^the web page needs gradio, which is not installed: pip install 'sepkit\[web\]'$"
    ):
        require("gradio", "the web page")
    assert require("json", "anything") is json


def test_an_optional_import_deep_inside_becomes_one_line() -> None:
    try:
        try:
            raise ModuleNotFoundError("No module named 'stempeg'", name="stempeg")
        except ImportError as inner:
            raise RuntimeError("while instantiating the data source") from inner
    except RuntimeError as exc:
        err = missing_extra(exc)
    assert isinstance(err, MissingExtra) and str(err) == "stempeg is not installed: pip install 'sepkit[musdb]'"
    assert missing_extra(RuntimeError("x")) is None
    assert missing_extra(ModuleNotFoundError("No module named 'foo'", name="foo")) is None  # not ours: a bug


def test_plugins_and_loggers_are_checked_before_hydra_or_lightning_fail(monkeypatch) -> None:
    for module in set(PLUGINS.values()):
        monkeypatch.setitem(sys.modules, module, None)
    for override in ("hparams_search=optuna", "hydra/launcher=local", "hydra/launcher=slurm"):
        with pytest.raises(MissingExtra, match=r"pip install 'sepkit\[sweep\]'"):
            check_overrides(["model=unet_stereo", override])
    check_overrides(["hparams_search=null", "model=unet_stereo", "hydra/launcher=basic"])
    monkeypatch.setitem(sys.modules, "wandb", None)
    cfg = OmegaConf.create({"logger": {"wandb": {"_target_": "lightning.pytorch.loggers.WandbLogger"}}})
    with pytest.raises(
        MissingExtra, match=r"^logger=wandb needs wandb, which is not installed: pip install 'sepkit\[wandb\]'$"
    ):
        check_config(cfg)
    check_config(OmegaConf.create({"logger": {"csv": {"_target_": "lightning.pytorch.loggers.CSVLogger"}}}))


def core_site_packages(folder: Path) -> Path:
    """A folder of links to what a core install holds: the packages (and their metadata) of every
    distribution ``pip install sepkit`` pulls in, taken from this environment, and sepkit itself."""
    from bench.install_size import closure

    folder.mkdir()
    for name in closure(set()):
        dist = metadata.distribution(name)
        for top in {f.parts[0] for f in dist.files or [] if f.parts[0] not in ("..", "__pycache__")}:
            source = dist.locate_file(top)
            if source.exists() and not (folder / top).exists():
                (folder / top).symlink_to(source)
    (folder / "sepkit").symlink_to(ROOT / "sepkit")
    return folder


# Runs with only the core on the path (python -S: no site-packages), calling the `sepkit` command's
# main() for each case; prints one JSON line per case.
CORE = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from sepkit.commands import main

    for case in json.loads(sys.argv[1]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                main(case)
                code = 0
            except SystemExit as exc:
                code = exc.code
        print(json.dumps({"case": case, "code": code, "stderr": err.getvalue()}), flush=True)
    """
)


def test_a_core_install_separates_trains_and_evaluates_and_names_the_extra_for_the_rest(
    tmp_path, tiny_root, cache_dir
) -> None:
    rate = 44100
    song = tmp_path / "song.wav"
    sf.write(song, (np.random.default_rng(0).standard_normal((rate * 4, 2)) * 0.1).astype(np.float32), rate)
    run = [f"paths.root_dir={tmp_path}", f"paths.cache_dir={cache_dir}"]
    data = [f"data.root={tiny_root}", *TINY_RUN]
    ckpt = tmp_path / "train" / "checkpoints" / "last.ckpt"
    musdb = tmp_path / "musdb"
    for subset in ("train", "test"):
        (musdb / subset).mkdir(parents=True)
        (musdb / subset / f"Artist - Song {subset}.stem.mp4").write_bytes(b"not decoded: stempeg is missing")
    cases = [
        ["separate", f"input={song}", f"output={tmp_path}/stems", *run],  # the bundled model
        ["train", *run, *data, "logger=csv", f"hydra.run.dir={tmp_path}/train"],
        ["evaluate", f"ckpt={ckpt}", *run, f"hydra.run.dir={tmp_path}/eval"],
        ["serve", *run],
        ["export", f"ckpt={ckpt}", f"output={tmp_path}/model.onnx", *run],
        ["train", *run, "data=musdb", f"data.root={musdb}", f"hydra.run.dir={tmp_path}/musdb"],
        ["train", *run, *data, "logger=wandb", f"hydra.run.dir={tmp_path}/wandb"],
        ["train", *run, "hparams_search=optuna"],
        ["evaluate", f"ckpt={ckpt}", "eval.museval=true", *run, f"hydra.run.dir={tmp_path}/eval2"],
    ]
    core = core_site_packages(tmp_path / "core")
    env = {**os.environ, "PYTHONPATH": str(core), "PYTHONWARNINGS": "ignore"}
    for module in ("gradio", "musdb", "wandb", "onnx", "matplotlib", "pyworld", "hydra_plugins"):
        probe = subprocess.run([sys.executable, "-S", "-c", f"import {module}"], env=env, capture_output=True)
        assert probe.returncode == 1, f"{module} is importable in the core environment"
    (tmp_path / "cwd").mkdir()  # an empty folder: the run folders above are not importable from it
    done = subprocess.run(
        [sys.executable, "-S", "-c", CORE, json.dumps(cases)],
        cwd=tmp_path / "cwd",
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"case"')]
    assert len(rows) == len(cases), done.stderr[-3000:]
    for row in rows[:3]:
        assert row["code"] == 0, row
    assert {p.name for p in (tmp_path / "stems" / "song").iterdir()} >= {"vocals.wav", "accompaniment.wav"}
    assert sf.info(tmp_path / "stems" / "song" / "vocals.wav").samplerate == rate
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert "museval_sdr" not in results["metric_definitions"] and "si_sdr" in results["metric_definitions"]
    expected = ["web", "onnx", "musdb", "wandb", "sweep", "musdb"]
    for row, extra in zip(rows[3:], expected, strict=True):
        lines = row["stderr"].strip().splitlines()
        assert row["code"] == 2 and len(lines) == 1, row
        assert lines[0].startswith("error: ") and f"pip install 'sepkit[{extra}]'" in lines[0], row
    assert not (tmp_path / "model.onnx").exists()
