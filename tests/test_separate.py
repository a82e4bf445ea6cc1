"""separate.py end to end (wav, mp3, folders) and every bad input."""

import os

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import run_entry


def sep_args(tmp_path, ckpt, inp, out=None):
    out = out or tmp_path / "stems"
    return [
        f"ckpt={ckpt}",
        f"input={inp}",
        f"output={out}",
        f"paths.root_dir={tmp_path}",
        f"hydra.run.dir={tmp_path}/h",
    ]


@pytest.fixture
def songs(tmp_path, tiny_root):
    mix, rate = sf.read(next((tiny_root / "train").iterdir()) / "mixture.wav")
    folder = tmp_path / "songs"
    folder.mkdir()
    sf.write(folder / "one.mp3", mix[: rate * 5], rate, format="MP3")
    sf.write(folder / "two.wav", mix[: rate * 3, 0], 22050)  # mono, another rate
    return folder


def test_separate_folder_with_mp3_and_mono(tmp_path, tiny_ckpt, songs) -> None:
    result = run_entry("separate.py", *sep_args(tmp_path, tiny_ckpt, songs), "plot=true")
    assert result.returncode == 0, result.stderr[-3000:]
    one_in = sf.info(songs / "one.mp3")
    for name, ref in (("one", one_in), ("two", sf.info(songs / "two.wav"))):
        for target in ("vocals", "accompaniment"):
            out = sf.info(tmp_path / "stems" / name / f"{target}.wav")
            assert (out.frames, out.samplerate, out.channels) == (ref.frames, ref.samplerate, ref.channels)
    assert (tmp_path / "stems" / "one" / "separation.png").exists()
    assert "real time" in result.stderr
    # the stems add back up to the mixture (the targets cover it), up to the 16-bit files' rounding
    for name in ("one", "two"):
        mixture, _ = sf.read(songs / ("one.mp3" if name == "one" else "two.wav"), always_2d=True)
        vocals, _ = sf.read(tmp_path / "stems" / name / "vocals.wav", always_2d=True)
        accompaniment, _ = sf.read(tmp_path / "stems" / name / "accompaniment.wav", always_2d=True)
        assert np.abs(vocals).max() > 1e-3 and np.abs(accompaniment).max() > 1e-3  # neither stem is empty
        assert np.abs(vocals + accompaniment - mixture).max() < 1e-3, name


def test_existing_outputs_are_skipped_unless_overwrite(tmp_path, tiny_ckpt, songs) -> None:
    os.remove(songs / "two.wav")
    assert run_entry("separate.py", *sep_args(tmp_path, tiny_ckpt, songs / "one.mp3")).returncode == 0
    target = tmp_path / "stems" / "one" / "vocals.wav"
    before = target.stat().st_mtime_ns
    result = run_entry("separate.py", *sep_args(tmp_path, tiny_ckpt, songs / "one.mp3"))
    assert result.returncode == 0 and target.stat().st_mtime_ns == before
    result = run_entry("separate.py", *sep_args(tmp_path, tiny_ckpt, songs / "one.mp3"), "overwrite=true")
    assert result.returncode == 0 and target.stat().st_mtime_ns != before


def test_formats(tmp_path, tiny_ckpt, songs) -> None:
    os.remove(songs / "one.mp3")
    for fmt in ("flac", "mp3"):
        result = run_entry("separate.py", *sep_args(tmp_path, tiny_ckpt, songs), f"format={fmt}")
        assert result.returncode == 0, result.stderr[-2000:]
        data, rate = sf.read(tmp_path / "stems" / "two" / f"vocals.{fmt}")
        expected = sf.info(songs / "two.wav").frames
        assert rate == 22050 and abs(len(data) - expected) < 2000  # mp3 frames pad a little


def write_bad_inputs(folder):
    folder.mkdir()
    rate = 44100
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage")
    sf.write(folder / "empty.wav", np.zeros((0, 2)), rate)
    sf.write(folder / "tiny.wav", np.zeros((50, 2)), rate)
    sf.write(folder / "silent.wav", np.zeros((rate * 2, 2)), rate)
    sf.write(folder / "nan.wav", np.full((rate, 2), np.nan), rate, subtype="FLOAT")
    sf.write(folder / "surround.wav", np.random.default_rng(0).standard_normal((rate, 6)) * 0.1, rate)
    good = np.random.default_rng(1).standard_normal((rate * 2, 2)) * 0.1
    sf.write(folder / "truncated.wav", good, rate)
    data = (folder / "truncated.wav").read_bytes()
    (folder / "truncated.wav").write_bytes(data[: len(data) // 2])


def test_bad_inputs_each_get_one_line_and_the_run_goes_on(tmp_path, tiny_ckpt) -> None:
    folder = tmp_path / "bad"
    write_bad_inputs(folder)
    result = run_entry("separate.py", *sep_args(tmp_path, tiny_ckpt, folder))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    for name, needle in [
        ("corrupt.wav", "cannot read"),
        ("empty.wav", "empty"),
        ("tiny.wav", "shorter than one STFT window"),
        ("nan.wav", "NaN"),
        ("surround.wav", "6 channels"),
    ]:
        assert any(name in e and needle in e for e in errors), (name, errors)
    silent, _ = sf.read(tmp_path / "stems" / "silent" / "vocals.wav")
    assert np.all(silent == 0)
    truncated = sf.info(tmp_path / "stems" / "truncated" / "vocals.wav")  # what is there is separated
    assert truncated.frames > 0
    assert not list((tmp_path / "stems").rglob("*.partial*"))


def test_one_bad_file_is_one_line_and_exit_code_2(tmp_path, tiny_ckpt) -> None:
    folder = tmp_path / "bad"
    write_bad_inputs(folder)
    result = run_entry("separate.py", *sep_args(tmp_path, tiny_ckpt, folder / "empty.wav"))
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1 and "empty.wav" in errors[0], result.stderr[-2000:]


def test_a_rate_sharing_no_factor_is_refused_without_filling_the_memory(tmp_path, tiny_ckpt) -> None:
    song = tmp_path / "odd.wav"
    sf.write(song, 0.1 * np.random.default_rng(0).standard_normal((44101, 2)).astype("float32"), 44101)
    result = run_entry("separate.py", *sep_args(tmp_path, tiny_ckpt, song))
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1, result.stderr[-2000:]
    assert "44101 Hz" in errors[0] and "ffmpeg" in errors[0] and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("bit_depth=abc", "bit_depth='abc' must be an integer"),
        ("engine.device=mps", "cpu, cuda"),
        ("engine.block_seconds=0", "engine.block_seconds=0 must be a number above 0"),
        ("engine.wiener_iterations=abc", "engine.wiener_iterations"),
        ("web.port=99999", "from 0 to 65535"),
    ],
)
def test_bad_settings_are_one_line(tmp_path, tiny_ckpt, songs, override, needle) -> None:
    result = run_entry("separate.py", *sep_args(tmp_path, tiny_ckpt, songs / "two.wav"), override)
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1 and needle in errors[0], result.stderr[-2000:]
    assert not (tmp_path / "stems").exists()


def test_downmix(tmp_path, tiny_ckpt) -> None:
    folder = tmp_path / "bad"
    write_bad_inputs(folder)
    result = run_entry("separate.py", *sep_args(tmp_path, tiny_ckpt, folder / "surround.wav"), "engine.downmix=true")
    assert result.returncode == 0
    assert sf.info(tmp_path / "stems" / "surround" / "vocals.wav").channels == 1


@pytest.mark.parametrize(
    ("kind", "needle"),
    [("missing_input", "does not exist"), ("missing_ckpt", "does not exist"), ("unwritable", "cannot write")],
)
def test_run_level_errors(tmp_path, tiny_ckpt, songs, kind, needle) -> None:
    ckpt, inp, out = tiny_ckpt, songs, tmp_path / "stems"
    if kind == "missing_input":
        inp = tmp_path / "nothing.mp3"
    elif kind == "missing_ckpt":
        ckpt = tmp_path / "nothing.ckpt"
    else:
        out = tmp_path / "file_not_dir"
        out.write_text("x")
    result = run_entry("separate.py", *sep_args(tmp_path, ckpt, inp, out))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert needle in result.stderr


def test_input_is_never_overwritten(tmp_path, tiny_ckpt) -> None:
    folder = tmp_path / "x" / "vocals"
    folder.mkdir(parents=True)
    src = folder / "vocals.wav"
    sf.write(src, np.random.default_rng(0).standard_normal((44100, 2)) * 0.1, 44100)
    before = src.read_bytes()
    result = run_entry("separate.py", *sep_args(tmp_path, tiny_ckpt, src, tmp_path / "x"), "overwrite=true")
    assert result.returncode != 0 and "overwrite the input" in result.stderr
    assert src.read_bytes() == before


def test_partial_outputs_and_name_clashes_are_not_overwritten(tmp_path, tiny_ckpt, songs) -> None:
    mine = tmp_path / "stems" / "two" / "vocals.wav"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"my own file")
    result = run_entry("separate.py", *sep_args(tmp_path, tiny_ckpt, songs / "two.wav"))
    assert result.returncode != 0 and "already exists" in result.stderr
    assert mine.read_bytes() == b"my own file"
    sf.write(songs / "two.flac", np.zeros((44100, 2)), 44100)
    result = run_entry("separate.py", *sep_args(tmp_path, tiny_ckpt, songs))
    assert result.returncode != 0 and "collide" in result.stderr and "Traceback" not in result.stderr


def test_the_separation_path_imports_no_training_stack() -> None:
    import subprocess
    import sys

    # one fresh process: the separation path's imports, then evaluation's on top of them
    code = """import sys
import sepkit.cli, sepkit.separation, sepkit.inference, sepkit.export, sepkit.checkpoint
print(sorted(m for m in ("lightning", "gradio", "wandb", "matplotlib", "museval", "onnxscript") if m in sys.modules))
import sepkit.evaluation
print(sorted(m for m in ("lightning", "gradio", "wandb") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]"  # separation: no training stack, web page, plots, museval or ONNX exporter
    assert out[1] == "[]"  # evaluation needs torchmetrics (which brings matplotlib) but not the training stack
