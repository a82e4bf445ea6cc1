"""evaluate.py end to end on generated audio; metrics against museval and by definition."""

import json

import numpy as np
import pytest
import torch

from sepkit.metrics import EVAL_METRICS, band_keys, band_metrics, museval_medians, sum_error_db, track_metrics, usdr
from tests.conftest import run_entry


def eval_args(tmp_path, ckpt, run="eval"):
    return [f"ckpt={ckpt}", f"paths.root_dir={tmp_path}", f"hydra.run.dir={tmp_path}/{run}", "eval.max_tracks=1"]


def test_evaluate_writes_tables_with_baselines_and_is_repeatable(tmp_path, tiny_ckpt) -> None:
    first = run_entry("evaluate.py", *eval_args(tmp_path, tiny_ckpt, "a"), "eval.save_audio=true", "eval.mel=true")
    assert first.returncode == 0, first.stderr[-3000:]
    out = tmp_path / "a"
    results = json.loads((out / "results.json").read_text())
    assert set(results["median"]) == {"model", "mixture", "oracle"}
    vocals = results["median"]
    assert set(vocals["model"]["vocals"]) == set(EVAL_METRICS) | set(band_keys(8000))
    # the generated songs are 44.1 kHz: full-band stems keep their upper band, and add up to the mixture
    assert vocals["model"]["vocals"]["sum_error_db"] < -80
    assert vocals["oracle"]["vocals"]["si_sdr_hi8k"] > vocals["mixture"]["vocals"]["si_sdr_hi8k"] + 3
    # the oracle ratio mask beats doing nothing
    assert vocals["oracle"]["vocals"]["si_sdr"] > vocals["mixture"]["vocals"]["si_sdr"] + 3
    assert (out / "per_track.csv").read_text().count("\n") == 1 + 3 * 2  # header + methods x targets
    assert (out / "eval.png").stat().st_size > 1000
    assert len(list((out / "estimates").rglob("*.wav"))) == 2
    assert "oracle" in first.stdout and "museval_sdr" in first.stdout
    # the mixture and oracle rows do not depend on the weights: cached for the next evaluation
    assert len(list((tmp_path / "outputs" / "cache" / "baselines").glob("*.json"))) == 1
    home = tmp_path / "home"  # no W&B credentials: the W&B run is written offline
    home.mkdir()
    second = run_entry(
        "evaluate.py",
        *eval_args(tmp_path, tiny_ckpt, "b"),
        "eval.mel=true",
        "logger=wandb",
        env={"HOME": str(home)},
    )
    assert second.returncode == 0, second.stderr[-3000:]
    assert list((tmp_path / "b" / "wandb").rglob("per_track*.table.json"))
    again = json.loads((tmp_path / "b" / "results.json").read_text())
    assert again["median"] == results["median"]
    assert again["tracks"] == results["tracks"]


def test_usdr_and_si_sdr_by_definition() -> None:
    ref = torch.randn(2, 8000)
    noise = torch.randn(2, 8000) * 0.1
    assert float(usdr(ref + noise, ref)) == pytest.approx(
        10 * np.log10(float(ref.pow(2).sum() / noise.pow(2).sum())), abs=1e-3
    )
    rows = track_metrics((ref * 3)[None], ref[None], 8000, with_museval=False)
    assert rows[0]["si_sdr"] > 60  # scale-invariant: a scaled reference is perfect


def test_track_metrics_rows_equal_one_target_at_a_time() -> None:
    refs = torch.randn(3, 2, 8000)
    ests = refs + 0.2 * torch.randn(3, 2, 8000)
    rows = track_metrics(ests, refs, 8000, with_museval=False, with_mel=False)
    for j, row in enumerate(rows):
        alone = track_metrics(ests[j : j + 1], refs[j : j + 1], 8000, with_museval=False, with_mel=False)[0]
        assert row == pytest.approx(alone, rel=1e-6)
        assert row["mse"] == pytest.approx(float(((ests[j] - refs[j]) ** 2).mean()), rel=1e-5)
        assert row["mae"] == pytest.approx(float((ests[j] - refs[j]).abs().mean()), rel=1e-5)
        assert row["usdr"] == pytest.approx(float(usdr(ests[j], refs[j])), rel=1e-9)


def test_museval_medians_match_museval_directly() -> None:
    museval = pytest.importorskip("museval")
    rng = np.random.default_rng(0)
    refs = rng.standard_normal((2, 3 * 8000, 2))
    ests = refs + 0.3 * rng.standard_normal(refs.shape) + 0.2 * refs[::-1]
    sdr, _, sir, sar = museval.evaluate(refs, ests, win=8000, hop=8000)
    ours = museval_medians(torch.from_numpy(ests).permute(0, 2, 1), torch.from_numpy(refs).permute(0, 2, 1), 8000)
    np.testing.assert_allclose(ours["museval_sdr"], np.nanmedian(sdr, axis=1), atol=0.01)
    np.testing.assert_allclose(ours["museval_sir"], np.nanmedian(sir, axis=1), atol=0.01)
    np.testing.assert_allclose(ours["museval_sar"], np.nanmedian(sar, axis=1), atol=0.01)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["ckpt=/no/such.ckpt"], "does not exist"),
        ([], "pass ckpt=PATH"),
    ],
)
def test_bad_checkpoints(tmp_path, args, needle) -> None:
    result = run_entry("evaluate.py", *args, f"paths.root_dir={tmp_path}", f"hydra.run.dir={tmp_path}/e")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert needle in result.stderr


def test_not_a_sepkit_checkpoint(tmp_path) -> None:
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint at all")
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}}, other)
    for path, needle in ((junk, "corrupt"), (other, "not a sepkit checkpoint")):
        result = run_entry("evaluate.py", f"ckpt={path}", f"paths.root_dir={tmp_path}", f"hydra.run.dir={tmp_path}/e")
        assert result.returncode != 0 and "Traceback" not in result.stderr
        assert needle in result.stderr


def test_oracle_goes_through_the_separators_stages() -> None:
    from sepkit.evaluation import oracle_irm
    from sepkit.separator import build_separator
    from tests.test_separator import PAPER

    calls = []

    separator = build_separator(PAPER, ["vocals", "accompaniment"]).eval()
    own_apply = separator.apply_masks
    separator.apply_masks = lambda masks, spec: calls.append(masks.shape) or own_apply(masks, spec)
    t = torch.arange(3 * 16000) / 16000
    refs = torch.stack([torch.sin(2 * torch.pi * 440 * t), 0.5 * torch.sin(2 * torch.pi * 97 * t)])[:, None]
    est = oracle_irm(refs.sum(0), refs, 16000, separator)
    assert calls and est.shape == refs.shape
    error = (est - refs)[..., 2000:-2000].pow(2).sum() / refs[..., 2000:-2000].pow(2).sum()
    assert 10 * torch.log10(error) < -20  # separated tones come back


def test_band_metrics_on_known_cases() -> None:
    rate = 44100
    t = torch.arange(2 * rate) / rate
    low = torch.sin(2 * torch.pi * 440 * t)
    high = 0.1 * torch.sin(2 * torch.pi * 12000 * t) + 0.05 * torch.sin(2 * torch.pi * 9000 * t)
    reference = torch.stack([low + high, low + high])[None]  # (targets, channels, time)
    dull = torch.stack([low, low])[None]  # a stem with nothing above 8 kHz
    (row,) = band_metrics(dull, reference, rate, [8000.0])
    assert row["si_sdr_lo8k"] > 60 and row["energy_hi8k"] < -50 and row["si_sdr_hi8k"] < -20
    (row,) = band_metrics(reference * 0.5, reference, rate, [8000.0])  # the right stem, quieter
    assert row["si_sdr_hi8k"] > 60 and row["energy_hi8k"] == pytest.approx(20 * np.log10(0.5), abs=1e-3)
    (row,) = band_metrics(reference, dull, rate, [8000.0])  # nothing above 8 kHz to measure against
    assert np.isnan(row["si_sdr_hi8k"]) and np.isnan(row["energy_hi8k"])
    mixture = reference[0]
    assert sum_error_db(torch.stack([mixture, torch.zeros_like(mixture)]), mixture) < -200  # a stem that is the mix
    assert sum_error_db(torch.stack([mixture, mixture]), mixture) == pytest.approx(0.0, abs=1e-6)
