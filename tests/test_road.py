"""The restructured inference road gives the stems of the old one on a fixed checkpoint
(tests/golden/road.py wrote them with the engine before the restructure), within 1e-5 of a peak
near 0.5.

Streaming a file is the exception by design: the old road separated blocks with context and
cross-faded their seams (up to 0.015 away from separating the whole file at once); the new road
streams exactly, so a file streamed in 7-s blocks must give the old road's whole-signal stems."""

import numpy as np
import pytest

from tests.golden.road import EVERY, HERE, SCENARIOS, separate

TOLERANCE = 1e-5


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_new_road_equals_the_old_outputs(scenario: str, tmp_path) -> None:
    old = np.load(HERE / "road.npz")
    stems = separate(scenario, tmp_path)
    reference = "default" if SCENARIOS[scenario][2] == "stream" else scenario
    for target, stem in stems.items():
        expected = old[f"{reference}/{target}"]
        assert stem[:, ::EVERY].shape == expected.shape
        assert np.abs(expected).max() > 0.05  # the fixture is not silence
        assert np.abs(stem[:, ::EVERY] - expected).max() < TOLERANCE, (scenario, target)
    if reference != scenario:  # the old streamed stems were the approximation
        assert np.abs(old[f"{scenario}/vocals"] - old["default/vocals"]).max() > 1e-3
