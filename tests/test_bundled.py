"""The model that ships with sepkit: small, loads, and separates as recorded when it was made."""

import numpy as np

from sepkit.checkpoint import BUNDLED, CHECKPOINT_KEY, read_checkpoint
from tests.golden.bundled import EVERY, RECORD, mixture, separate, sha256


def test_the_bundled_model_is_small_and_says_what_it_is() -> None:
    assert BUNDLED.stat().st_size < 2 * 2**20
    ckpt = read_checkpoint("bundled")
    info = ckpt[CHECKPOINT_KEY]
    assert info["kind"] == "separator" and info["targets"] == ["vocals", "accompaniment"]
    assert set(ckpt) == {CHECKPOINT_KEY, "state_dict"}  # weights only: no optimiser state
    assert "synthetic" in str(info["run"]["data"]["source"]["_target_"]).lower()  # built-in songs only


def test_the_bundled_model_separates_as_recorded() -> None:
    record = np.load(RECORD)
    assert str(record["sha256"]) == sha256(BUNDLED), "bundled.ckpt changed: rerun `make bundled`"
    stems = separate()
    for target, stem in stems.items():
        assert np.abs(stem[:, ::EVERY] - record[target]).max() < 1e-4, target
    total = sum(stems.values())
    assert np.abs(total - mixture()).max() < 1e-5  # full band, and the stems add up
