"""The web page: upload a song, listen to and download its stems (Gradio, local only).

The page calls :func:`sepkit.separation.separate_file` with the same engine as ``separate.py``, so
its stems are identical to the command line's for the same file and settings.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import soundfile as sf
from omegaconf import DictConfig, OmegaConf

from sepkit.audio import AUDIO_EXTENSIONS, probe
from sepkit.errors import SepkitError
from sepkit.inference import SeparationEngine
from sepkit.separation import output_subtype, plot_file, separate_file

log = logging.getLogger(__name__)


def safe_name(name: str) -> str:
    """A file-name stem made only of letters, digits, spaces, ``-``, ``_`` and ``.`` (no paths)."""
    stem = Path(name).stem
    cleaned = re.sub(r"[^\w\- .]", "_", stem).strip(" .")
    return cleaned[:80] or "track"


class WebSeparator:
    """What the page does with one upload; independent of Gradio so it can be tested directly.

    Args:
        engine: the inference engine (shared with separate.py).
        workdir: where stems are written (one sub-folder per request).
        max_upload_mb: largest upload accepted.
        max_minutes: longest song accepted.
        fmt: download format, ``wav`` or ``mp3``.
        keep_minutes: request folders older than this are deleted.
        plot: also return the spectrogram / mask figure.
    """

    def __init__(
        self,
        engine: SeparationEngine,
        workdir: Path,
        max_upload_mb: float = 100,
        max_minutes: float = 15,
        fmt: str = "wav",
        keep_minutes: float = 60,
        plot: bool = True,
    ) -> None:
        if fmt not in ("wav", "mp3"):
            raise SepkitError(f"web.format={fmt!r} must be wav or mp3")
        self.engine = engine
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_upload_mb * 1024 * 1024
        self.max_seconds = max_minutes * 60
        self.fmt = fmt
        self.subtype = output_subtype(fmt, 16)
        self.keep_seconds = keep_minutes * 60
        self.plot = plot

    def cleanup(self) -> None:
        """Delete request folders older than ``keep_minutes``."""
        cutoff = time.time() - self.keep_seconds
        for folder in self.workdir.glob("req-*"):
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)

    def check(self, upload: str | Path, original_name: str | None = None) -> sf._SoundFileInfo:
        path = Path(upload)
        name = original_name or path.name
        if Path(name).suffix.lower() not in AUDIO_EXTENSIONS:
            kind = Path(name).suffix or "this file type"
            raise SepkitError(f"{kind} is not accepted; upload {', '.join(AUDIO_EXTENSIONS)}")
        size = path.stat().st_size
        if size == 0:
            raise SepkitError("the file is empty")
        if size > self.max_bytes:
            raise SepkitError(f"the file is {size / 2**20:.0f} MB; the limit is {self.max_bytes / 2**20:.0f} MB")
        info = probe(path, self.engine.downmix)
        if info.frames / info.samplerate > self.max_seconds:
            raise SepkitError(
                f"the song is {info.frames / info.samplerate / 60:.1f} minutes; the limit is {self.max_seconds / 60:g}"
            )
        return info

    def __call__(self, upload: str | Path, original_name: str | None = None, progress=None) -> dict[str, Any]:
        """Separate one upload; returns ``{"stems": {target: path}, "figure": path|None, "seconds": audio
        seconds, "elapsed": seconds taken, "realtime": the separation's real-time factor}``."""
        self.cleanup()
        info = self.check(upload, original_name)
        name = safe_name(original_name or Path(upload).name)
        request = Path(tempfile.mkdtemp(prefix="req-", dir=self.workdir))
        source = request / f"input{Path(upload).suffix.lower()}"
        shutil.copyfile(upload, source)
        start = time.perf_counter()
        realtime = separate_file(
            self.engine, source, request, self.fmt, self.subtype, overwrite=True, progress=progress
        )
        stems = {}
        for target in self.engine.targets:
            final = request / f"{name} - {target}.{self.fmt}"
            (request / source.stem / f"{target}.{self.fmt}").replace(final)
            stems[target] = final
        figure = plot_file(self.engine, source, request, title=name) if self.plot else None
        source.unlink()
        return {
            "stems": stems,
            "figure": figure,
            "seconds": info.frames / info.samplerate,
            "elapsed": time.perf_counter() - start,
            "realtime": realtime,  # separation alone, as separate.py reports it
        }


def build_app(web: WebSeparator, title: str, concurrency: int = 1, queue_size: int = 16):
    """The Gradio page around ``web``."""
    import gradio as gr

    sep = web.engine.separator
    targets = web.engine.targets
    from sepkit.checkpoint import BUNDLED

    source = "the bundled model" if getattr(sep, "checkpoint_path", None) == str(BUNDLED) else "your checkpoint"
    model_line = (
        f"**Model:** `{sep.name}` ({source}) · {sep.sample_rate} Hz · targets: {', '.join(targets)} · "
        f"limits: {web.max_bytes / 2**20:.0f} MB, {web.max_seconds / 60:g} min"
    )

    def run(upload, progress=gr.Progress()):  # noqa: B008 (Gradio injects progress this way)
        if upload is None:
            raise gr.Error("Choose or drop an audio file first.")
        progress(0.0, desc="separating")
        try:
            result = web(upload, Path(upload).name, progress=lambda f: progress(f, desc="separating"))
        except SepkitError as err:
            raise gr.Error(str(err)) from None
        stems = [str(result["stems"][t]) for t in targets]
        status = (
            f"Separated {result['seconds']:.1f} s of audio at {result['realtime']:.0f}x real time "
            f"({result['elapsed']:.1f} s with the figure)."
        )
        figure = str(result["figure"]) if result["figure"] else None
        return (*stems, *stems, figure, status)

    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(600, int(web.keep_seconds))) as app:
        gr.Markdown(f"# {title}\nUpload a song (mp3, wav, flac, ogg) and get its stems.\n\n{model_line}")
        upload = gr.File(label="Song", file_types=list(AUDIO_EXTENSIONS), type="filepath", elem_id="upload")
        button = gr.Button("Separate", variant="primary", elem_id="separate")
        status = gr.Markdown(elem_id="status")
        players = [gr.Audio(label=t, type="filepath", interactive=False, elem_id=f"player-{t}") for t in targets]
        files = [gr.File(label=f"download {t}", interactive=False, elem_id=f"download-{t}") for t in targets]
        figure = gr.Image(label="spectrogram and vocal mask", type="filepath", visible=web.plot)
        button.click(
            run,
            inputs=upload,
            outputs=[*players, *files, figure, status],
            api_name="separate",
            concurrency_limit=concurrency,
        )
    app.queue(max_size=queue_size, default_concurrency_limit=concurrency)
    return app


def check_address(host: str, port: int) -> None:
    """Fail with one line when the page could not listen on ``host:port`` (a port in use, a host
    that is not this machine's), before anything is loaded or printed."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
            probe.bind((host, port))
    except OSError as exc:
        why = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be listened on ({exc.strerror or exc})"
        raise SepkitError(
            f"web.host={host} web.port={port} {why}: pass another web.port=N (or web.host=127.0.0.1)"
        ) from None


def serve(cfg: DictConfig, block: bool = True):
    """Start the page for ``cfg.ckpt`` on ``cfg.web.host:cfg.web.port``."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from sepkit.checkpoint import load_separator
    from sepkit.extras import require

    require("gradio", "the web page (sepkit serve)", extra="web")
    if cfg.web.plot:
        require("matplotlib", "the web page's spectrograms (web.plot=true)", extra="web")
    w = cfg.web
    check_address(str(w.host), int(w.port))
    separator = load_separator(cfg.ckpt)
    engine = SeparationEngine(separator, **OmegaConf.to_container(cfg.engine, resolve=True))
    if w.plot:  # imported now rather than during the first request (about 0.5 s)
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401
    workdir = Path(cfg.paths.log_dir) / "web"
    web = WebSeparator(engine, workdir, w.max_upload_mb, w.max_minutes, w.format, w.keep_minutes, w.plot)
    app = build_app(web, "sepkit: vocals and instrumental", w.concurrency, w.queue_size)
    print(f"serving {separator.name} on http://{w.host}:{w.port}", flush=True)
    import gradio as gr

    # system fonts only: the default theme would fetch Google Fonts from the internet
    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    app.launch(
        theme=theme,
        server_name=w.host,
        server_port=int(w.port),
        max_file_size=f"{int(w.max_upload_mb)}mb",
        prevent_thread_lock=not block,
        show_error=True,
        quiet=True,
        ssr_mode=False,
    )
    return app
