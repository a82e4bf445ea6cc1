"""The restructured inference road gives the stems of the old one (tests/golden/road.py wrote them
with the engine before the restructure) on a fixed checkpoint, within 1e-5 of a peak near 0.5."""

import numpy as np
import pytest

from tests.golden.road import EVERY, HERE, SCENARIOS, separate

TOLERANCE = 1e-5


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_new_road_equals_the_old_outputs(scenario: str, tmp_path) -> None:
    old = np.load(HERE / "road.npz")
    stems = separate(scenario, tmp_path)
    for target, stem in stems.items():
        expected = old[f"{scenario}/{target}"]
        assert stem[:, ::EVERY].shape == expected.shape
        assert np.abs(expected).max() > 0.05  # the fixture is not silence
        assert np.abs(stem[:, ::EVERY] - expected).max() < TOLERANCE, (scenario, target)
