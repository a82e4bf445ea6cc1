"""sepkit as a tool: the wheel, installed in a fresh environment, separates and trains from an
empty folder with no file of the repository on the path (slow: builds and installs)."""

from __future__ import annotations

import site
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def run(*cmd: str, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, (cmd, result.stdout[-2000:], result.stderr[-3000:])
    return result


def test_the_wheel_separates_with_its_bundled_model_and_trains_from_an_empty_folder(tmp_path) -> None:
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(ROOT), cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("sepkit-*.whl")
    with zipfile.ZipFile(wheel) as archive:  # the stored weights the package needs
        assert {"sepkit/models/bundled.ckpt", "sepkit/gan/reference.pt"} <= set(archive.namelist())
    run(sys.executable, "-m", "venv", str(tmp_path / "venv"), cwd=tmp_path)
    venv_site = next((tmp_path / "venv" / "lib").glob("python3*/site-packages"))
    # the dependencies from this environment (a .pth line: its own .pth files, the checkout's
    # editable hook among them, are not read), sepkit itself only from the wheel
    (venv_site / "deps.pth").write_text(site.getsitepackages()[0] + "\n")
    run(str(tmp_path / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel), cwd=tmp_path)
    sepkit = str(tmp_path / "venv" / "bin" / "sepkit")
    empty = tmp_path / "empty"
    empty.mkdir()
    rate = 44100
    song = (np.random.default_rng(0).standard_normal((rate * 4, 2)) * 0.1).astype(np.float32)
    sf.write(empty / "song.wav", song, rate)
    out = run(sepkit, "separate", "input=song.wav", cwd=empty)
    assert "the bundled one" in out.stdout + out.stderr
    stems = {t: sf.read(empty / "outputs" / "separated" / "song" / f"{t}.wav")[0] for t in ("vocals", "accompaniment")}
    assert all(s.shape == song.shape for s in stems.values())  # full length, stereo, the song's rate
    where = run(str(tmp_path / "venv" / "bin" / "python"), "-c", "import sepkit; print(sepkit.__file__)", cwd=empty)
    assert str(tmp_path / "venv") in where.stdout and str(ROOT) not in where.stdout
    run(sepkit, "train", "debug=fdr", "data.source.generate.tracks=6", "data.source.generate.seconds=6", cwd=empty)
    assert list((empty / "outputs" / "debug").rglob("summary.json"))  # debug overlays: task_name=debug
