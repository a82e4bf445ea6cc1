"""The inference road against its golden outputs (tests/golden/road.py), within 1e-5 of a peak
near 0.5.

* The model-band road (``fullband=False``) gives the stems of the engine before the restructure.
  Streaming a file is the exception by design: the old road separated blocks with context and
  cross-faded their seams (up to 0.015 away from separating the whole file at once); the new road
  streams exactly, so a file streamed in 7-s blocks must give the old road's whole-signal stems.
* The full-band road (the default since issue #25) gives the stems recorded when it was made, and
  they add up to the input; a file streamed in blocks gives its whole-signal stems.
"""

import numpy as np
import pytest

from tests.golden.road import EVERY, HERE, SCENARIOS, mixture, separate

TOLERANCE = 1e-5


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_model_band_road_equals_the_old_outputs(scenario: str, tmp_path) -> None:
    old = np.load(HERE / "road.npz")
    stems = separate(scenario, tmp_path, fullband=False)
    reference = "default" if SCENARIOS[scenario][2] == "stream" else scenario
    for target, stem in stems.items():
        expected = old[f"{reference}/{target}"]
        assert stem[:, ::EVERY].shape == expected.shape
        assert np.abs(expected).max() > 0.05  # the fixture is not silence
        assert np.abs(stem[:, ::EVERY] - expected).max() < TOLERANCE, (scenario, target)
    if reference != scenario:  # the old streamed stems were the approximation
        assert np.abs(old[f"{scenario}/vocals"] - old["default/vocals"]).max() > 1e-3


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_full_band_road_equals_its_golden_outputs(scenario: str, tmp_path) -> None:
    golden = np.load(HERE / "road_fullband.npz")
    stems = separate(scenario, tmp_path)
    reference = "default" if SCENARIOS[scenario][2] == "stream" else scenario
    for target, stem in stems.items():
        expected = golden[f"{reference}/{target}"]
        assert np.abs(expected).max() > 0.05
        assert np.abs(stem[:, ::EVERY] - expected).max() < TOLERANCE, (scenario, target)
    if SCENARIOS[scenario][2] == "memory":
        total = sum(stems.values())
        assert np.abs(total - mixture(SCENARIOS[scenario][1])).max() < 1e-5  # the stems add up to the input
