"""bench.scaling: points from pair runs, replaced only by a rerun of the same entry and budget."""

from __future__ import annotations

import json

import pytest

from bench.scaling import adopt, merge


def row(entry: str, vocals: float) -> dict:
    median = {
        "model": {"vocals": {"si_sdr": vocals}, "accompaniment": {"si_sdr": vocals - 1}},
        "mixture": {"vocals": {"si_sdr": 0.1}},
    }
    return {"entry": entry, "median": median, "steps": 100, "tracks": 176}


def test_a_quality_pair_run_becomes_two_points(tmp_path) -> None:
    run = {"budget_s": 600.0, "threads": 1, "jobs": 2, "data": [], "rows": [row("a", 8.0), row("b", 9.5)]}
    (tmp_path / "quality.json").write_text(json.dumps(run))
    points = adopt(tmp_path)
    assert [(p["entry"], p["minutes"], p["vocals"], p["pair"]) for p in points] == [
        ("a", 10.0, 8.0, "a + b"),
        ("b", 10.0, 9.5, "a + b"),
    ]
    again = merge(points, [{**points[0], "vocals": 8.4}, {**points[0], "minutes": 30.0}])
    assert sorted((p["entry"], p["minutes"], p["vocals"]) for p in again) == [
        ("a", 10.0, 8.4),
        ("a", 30.0, 8.0),
        ("b", 10.0, 9.5),
    ]
    run["jobs"] = 1  # not a same-time pair
    (tmp_path / "quality.json").write_text(json.dumps(run))
    with pytest.raises(SystemExit, match="not a pair run"):
        adopt(tmp_path)
