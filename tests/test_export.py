"""ONNX export: every variant's mask network round-trips through onnxruntime, and the engine and
separate.py give the torch path's stems within 1e-4 with engine.backend=onnxruntime."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from sepkit.commands import config_options
from sepkit.errors import SepkitError
from sepkit.inference import SeparationEngine
from sepkit.separator import build_separator
from tests.conftest import MASK_VARIANTS, ROOT, model_overrides, run_entry

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
# Every separator in conf/model/ and the complex-mask TFC-TDF. make test keeps the complex-input
# networks' round trips and the refusal (openunmix); the magnitude U-Nets' (about 12 s of export
# each) run in make test-slow, and one of them (the tiny unet_paper checkpoint) goes through
# separate.py export=onnx + onnxruntime below in make test.
FAST = {"tfc_tdf", "openunmix", *MASK_VARIANTS}
VARIANTS = [
    pytest.param(n, marks=() if n in FAST else pytest.mark.slow) for n in [*config_options("model"), *MASK_VARIANTS]
]
TOLERANCE = 1e-4


def variant(name: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=model_overrides(name))
    torch.manual_seed(0)
    separator = build_separator(OmegaConf.to_container(cfg.model, resolve=True), ["vocals", "accompaniment"])
    for module in separator.modules():  # non-trivial BatchNorm statistics, as after training
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return separator.eval()


@pytest.mark.parametrize("name", VARIANTS)
def test_every_variant_round_trips_through_onnxruntime(tmp_path, name) -> None:
    from sepkit.export import OnnxMasks, export_onnx

    separator = variant(name)
    if separator.net.onnx_unsupported:  # a model that cannot be exported says so before writing anything
        with pytest.raises(SepkitError, match="cannot be exported to ONNX"):
            export_onnx(separator, tmp_path / f"{name}.onnx")
        assert not list(tmp_path.iterdir())
        return
    path = export_onnx(separator, tmp_path / f"{name}.onnx")
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["sample_rate"] == separator.sample_rate and sidecar["onnx"]["opset"] >= 17
    masks = OnnxMasks(path)
    bins = separator.n_fft // 2 + 1
    for batch, frames in ((3, separator.patch_frames), (1, 37)):  # dynamic batch and frames axes
        spec = torch.randn(batch, separator.audio_channels, bins, frames, dtype=torch.complex64)
        x = separator.mask_input(spec)  # magnitudes, or real and imaginary parts (tfc_tdf)
        with torch.no_grad():
            expected = separator.estimate_masks(x)
        got = masks(x)
        assert got.shape == expected.shape
        assert float((got - expected).abs().max()) < TOLERANCE
    audio = torch.randn(2, 3 * 44100) * 0.1
    torch_out = SeparationEngine(separator, device="cpu").separate(audio, 44100)
    onnx_out = SeparationEngine(separator, device="cpu", backend="onnxruntime", onnx=str(path)).separate(audio, 44100)
    for target in separator.targets:
        assert float((torch_out[target] - onnx_out[target]).abs().max()) < TOLERANCE
    with pytest.raises(SepkitError, match="already exists"):
        export_onnx(separator, path)  # nothing of the user's is replaced without overwrite
    if name in MASK_VARIANTS:  # the same recipe with magnitude masks refuses the complex masks' export
        with pytest.raises(SepkitError, match="exported from another model"):
            SeparationEngine(variant(MASK_VARIANTS[name][0]), device="cpu", backend="onnxruntime", onnx=str(path))


def test_separate_py_exports_and_runs_onnx(tmp_path, tiny_ckpt, tiny_root) -> None:
    ckpt = tmp_path / "model.ckpt"
    shutil.copy(tiny_ckpt, ckpt)
    common = [f"paths.root_dir={tmp_path}", f"hydra.run.dir={tmp_path}/h"]
    song = tmp_path / "song.wav"
    mix, rate = sf.read(next((tiny_root / "train").iterdir()) / "mixture.wav")
    sf.write(song, mix[: rate * 4], rate, subtype="FLOAT")

    def separate(backend: str):
        args = [f"ckpt={ckpt}", f"input={song}", f"output={tmp_path / backend}", f"engine.backend={backend}"]
        return run_entry("separate.py", *args, "bit_depth=32", *common)

    result = run_entry("separate.py", f"ckpt={ckpt}", "export=onnx", *common)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "model.onnx").stat().st_size > 1000 and (tmp_path / "model.json").is_file()
    for backend in ("torch", "onnxruntime"):
        result = separate(backend)
        assert result.returncode == 0, result.stderr[-3000:]
    for target in ("vocals", "accompaniment"):
        a, _ = sf.read(tmp_path / "torch" / "song" / f"{target}.wav")
        b, _ = sf.read(tmp_path / "onnxruntime" / "song" / f"{target}.wav")
        assert np.abs(a - b).max() < TOLERANCE


def test_unknown_backend_and_missing_file_fail_clearly(tmp_path) -> None:
    separator = variant("unet_stereo")
    with pytest.raises(SepkitError, match="engine.backend"):
        SeparationEngine(separator, device="cpu", backend="tf")
    with pytest.raises(SepkitError, match="does not exist"):
        SeparationEngine(separator, device="cpu", backend="onnxruntime", onnx=str(tmp_path / "none.onnx"))
    separator.checkpoint_path = str(tmp_path / "model.ckpt")  # as load_separator sets it
    with pytest.raises(SepkitError, match="sepkit export ckpt="):  # nothing exported beside it yet
        SeparationEngine(separator, device="cpu", backend="onnxruntime")


def test_the_bundled_model_is_exported_where_onnxruntime_looks(tmp_path, monkeypatch) -> None:
    from sepkit.checkpoint import BUNDLED, default_onnx_path

    monkeypatch.chdir(tmp_path)
    assert default_onnx_path("bundled") == default_onnx_path(BUNDLED) == Path("bundled.onnx")  # not the install
    assert default_onnx_path(tmp_path / "run" / "best.ckpt") == tmp_path / "run" / "best.onnx"


def test_export_path_that_is_a_folder_is_refused(tmp_path) -> None:
    (tmp_path / "folder").mkdir()
    common = [f"paths.root_dir={tmp_path}", f"hydra.run.dir={tmp_path}/h", "overwrite=true"]
    result = run_entry("separate.py", "ckpt=bundled", "export=onnx", f"export_path={tmp_path}/folder", *common)
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1 and "is a folder" in errors[0], result.stderr[-2000:]
    assert list((tmp_path / "folder").iterdir()) == [] and not list(tmp_path.glob(".*partial*"))


@pytest.mark.parametrize("extension", [pytest.param("learned", marks=pytest.mark.slow), "banded"])  # one path
def test_a_learnt_extension_separates_the_same_through_onnxruntime(tmp_path, extension: str) -> None:
    """The network goes to ONNX; the learnt extension stays the engine's (it reads the song's own grid)."""
    from sepkit.export import export_onnx
    from tests.test_separator import PAPER

    torch.manual_seed(0)
    separator = build_separator({**PAPER, "mask_extension": extension}, ["vocals", "accompaniment"]).eval()
    with torch.no_grad():
        for p in separator.extender.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    path = export_onnx(separator, tmp_path / "m.onnx")
    audio = torch.randn(2, 3 * 44100) * 0.1
    torch_out = SeparationEngine(separator, device="cpu").separate(audio, 44100)
    onnx_out = SeparationEngine(separator, device="cpu", backend="onnxruntime", onnx=str(path)).separate(audio, 44100)
    for target in separator.targets:
        assert float((torch_out[target] - onnx_out[target]).abs().max()) < TOLERANCE
