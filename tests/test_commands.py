"""The ``sepkit`` command: the scripts' entry functions behind one console command, the configs
mapped into the package, from any folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sepkit.commands import COMMANDS, config_dir, main
from tests.conftest import ROOT

SEPKIT = Path(sys.executable).parent / "sepkit"


def run_sepkit(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(SEPKIT), *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_every_package_and_the_configs_go_into_the_wheel() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "sepkit").rglob("__init__.py")}
    assert set(setuptools["packages"]) == folders | {"sepkit.conf"}
    assert setuptools["package-dir"] == {"sepkit.conf": "conf"}
    assert Path(config_dir()) == ROOT / "conf"  # a checkout reads the top-level conf/
    assert set(COMMANDS) == {"train", "evaluate", "separate", "export", "serve", "diagnose"}


def test_sepkit_separate_from_another_folder_equals_separate_py(tmp_path, tiny_ckpt) -> None:
    rate = 22050
    song = tmp_path / "song.wav"
    sf.write(song, (np.random.default_rng(0).standard_normal((rate * 3, 2)) * 0.1).astype(np.float32), rate)
    work = tmp_path / "elsewhere"
    work.mkdir()
    result = run_sepkit("separate", f"ckpt={tiny_ckpt}", f"input={song}", cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    stems = work / "outputs" / "separated" / "song"  # under the current folder
    script = subprocess.run(
        [sys.executable, str(ROOT / "separate.py"), f"ckpt={tiny_ckpt}", f"input={song}", f"output={tmp_path}/ref"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert script.returncode == 0, script.stderr[-3000:]
    for target in ("vocals", "accompaniment"):
        assert (stems / f"{target}.wav").read_bytes() == (tmp_path / "ref" / "song" / f"{target}.wav").read_bytes()


def test_unknown_command_and_help(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as bad:
        main(["seperate", "input=x.wav"])
    assert bad.value.code == 2 and capsys.readouterr().err.strip().splitlines() == [
        "error: unknown command 'seperate'; use one of train, evaluate, separate, export, serve, diagnose"
    ]
    main(["--help"])
    assert "sepkit separate" in capsys.readouterr().out
    # the installed console script, in its own process: an error path leaves no traceback
    missing = run_sepkit("evaluate", cwd=tmp_path)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr and "ckpt=PATH" in missing.stderr


def test_a_bare_song_with_accents_and_brackets_is_separated(tmp_path, tiny_ckpt) -> None:
    """What a new user types first: ``sepkit separate "my sóng (live).wav"``, no ``input=``, no quoting."""
    song = tmp_path / "my sóng (live) [demo] & co.wav"
    sf.write(song, (np.random.default_rng(0).standard_normal((22050, 2)) * 0.1).astype(np.float32), 22050)
    result = run_sepkit("separate", song.name, f"ckpt={tiny_ckpt}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "outputs" / "separated" / song.stem / "vocals.wav").is_file()
    assert f"[1/1] {song.name}" in result.stderr  # the name as it is, not read as console markup


def test_overrides_are_tidied_for_hydra(tmp_path) -> None:
    from sepkit.commands import tidy_overrides

    (tmp_path / "a,b.wav").write_bytes(b"")
    assert tidy_overrides("separate", ["in/ok.wav"]) == ["input=in/ok.wav"]
    assert tidy_overrides("separate", ["input=in/é.wav"]) == ["input='in/é.wav'"]
    assert tidy_overrides("separate", ["input=it's.wav"]) == ["input='it\\'s.wav'"]
    assert tidy_overrides("separate", [f"input={tmp_path}/a,b.wav"]) == [f"input='{tmp_path}/a,b.wav'"]
    assert tidy_overrides("evaluate", ["runs/best.ckpt"]) == ["ckpt=runs/best.ckpt"]
    untouched = ["-m", "ckpt=a.ckpt,b.ckpt", "--config-dir", "~/my confs", "model=unet_paper", "+x=1", "~y"]
    assert tidy_overrides("train", untouched) == untouched


def test_an_unreadable_argument_is_one_line(capsys) -> None:
    from sepkit.commands import preflight

    with pytest.raises(SystemExit) as bad:
        preflight(["model=(x"], "train")
    err = capsys.readouterr().err.strip().splitlines()
    assert bad.value.code == 2 and len(err) == 1 and err[0].startswith("error: cannot read the argument 'model=(x'")
