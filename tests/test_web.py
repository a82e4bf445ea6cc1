"""The web page: API-level separation equals separate.py, limits and bad uploads, a live server."""

import socket
import time

import numpy as np
import pytest
import soundfile as sf

from sepkit import load_separator
from sepkit.errors import SepkitError
from sepkit.inference import SeparationEngine
from sepkit.web import WebSeparator, build_app, safe_name
from tests.conftest import run_entry

gr = pytest.importorskip("gradio")


@pytest.fixture
def song(tmp_path, tiny_root):
    mix, rate = sf.read(next((tiny_root / "train").iterdir()) / "mixture.wav")
    path = tmp_path / "My Song.mp3"
    sf.write(path, mix[: rate * 4], rate, format="MP3")
    return path


@pytest.fixture
def web(tmp_path, tiny_ckpt):
    return WebSeparator(
        SeparationEngine(load_separator(tiny_ckpt)), tmp_path / "work", max_upload_mb=1, max_minutes=0.5
    )


def test_page_stems_equal_separate_py(tmp_path, tiny_ckpt, song, web) -> None:
    result = web(song, song.name)
    assert sorted(p.name for p in result["stems"].values()) == ["My Song - accompaniment.wav", "My Song - vocals.wav"]
    cli = run_entry(
        "separate.py",
        f"ckpt={tiny_ckpt}",
        f"input={song}",
        f"output={tmp_path}/cli",
        f"paths.root_dir={tmp_path}",
        f"hydra.run.dir={tmp_path}/h",
    )
    assert cli.returncode == 0, cli.stderr[-2000:]
    for target, path in result["stems"].items():
        page, _ = sf.read(path)
        command_line, _ = sf.read(tmp_path / "cli" / "My Song" / f"{target}.wav")
        np.testing.assert_array_equal(page, command_line)
    assert result["figure"].exists()
    assert result["realtime"] > 0 and result["elapsed"] > 0  # what the status line reports


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"ID3 not really an mp3" * 10), "cannot read it as audio"),
        (lambda p: sf.write(p, np.zeros((44100 * 40, 2)), 44100, format="MP3"), "limit is 0.5"),
        (lambda p: p.write_bytes(b"\0" * (2 * 2**20)), "limit is 1 MB"),
    ],
)
def test_bad_uploads(tmp_path, web, make, needle) -> None:
    path = tmp_path / "upload.mp3"
    make(path)
    with pytest.raises(SepkitError, match=needle):
        web(path, path.name)


def test_wrong_type_and_channels(tmp_path, web) -> None:
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(SepkitError, match="not accepted"):
        web(txt, txt.name)
    wav = tmp_path / "surround.wav"
    sf.write(wav, np.zeros((8000, 6)), 8000)
    with pytest.raises(SepkitError, match="6 channels"):
        web(wav, wav.name)


def test_silent_upload_gives_silent_stems(tmp_path, web) -> None:
    wav = tmp_path / "quiet.wav"
    sf.write(wav, np.zeros((44100, 2)), 44100)
    for path in web(wav, wav.name)["stems"].values():
        assert np.all(sf.read(path)[0] == 0)


def test_names_are_sanitised() -> None:
    assert safe_name("../../etc/passwd") == "passwd"
    assert "/" not in safe_name("a/b\\c:d*e?.mp3") and safe_name("...") == "track"


def test_old_request_folders_are_removed(tmp_path, web, song) -> None:
    web(song, song.name)
    assert len(list(web.workdir.iterdir())) == 1
    web.keep_seconds = 0
    time.sleep(0.01)
    web.cleanup()
    assert list(web.workdir.iterdir()) == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_port_in_use_is_one_line_before_anything_is_served(tmp_path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_entry(
            "separate.py", "serve=true", f"web.port={port}", f"paths.root_dir={tmp_path}", f"hydra.run.dir={tmp_path}/h"
        )
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1 and "is in use" in errors[0], result.stderr[-2000:]
    assert "serving" not in result.stdout


def test_live_server_on_localhost(web, song) -> None:
    from gradio_client import Client, handle_file

    app = build_app(web, "test page")
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        vocals, accompaniment, *_rest, status = client.predict(handle_file(str(song)), api_name="/separate")
        assert vocals.endswith("My Song - vocals.wav") and "Separated" in status
        assert sf.info(vocals).frames == sf.info(str(song)).frames
        with pytest.raises(Exception, match="Invalid file type|not accepted|not audio"):
            client.predict(handle_file(__file__), api_name="/separate")
    finally:
        app.close()
