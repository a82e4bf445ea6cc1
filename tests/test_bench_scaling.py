"""bench.scaling: points from pair runs, replaced only by a rerun of the same entry and budget."""

from __future__ import annotations

import argparse
import json

import pytest

import bench.scaling
from bench.scaling import adopt, label, merge, parse_sets, run_pair, stored_points


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


def test_an_override_for_one_entry_reaches_its_run_and_its_point(tmp_path, monkeypatch) -> None:
    sets = parse_sets(["openunmix:model.audio_channels=1"], ["tfc_tdf_cpu", "openunmix"])
    assert sets == {"openunmix": ["model.audio_channels=1"]}
    with pytest.raises(SystemExit, match="ENTRY:KEY=VALUE"):
        parse_sets(["stereo_cpu:model.audio_channels=1"], ["tfc_tdf_cpu", "openunmix"])
    seen = {}

    def fake(name, overrides, *_):
        seen[name] = overrides
        return row(name, 9.0)

    monkeypatch.setattr(bench.scaling, "train_and_evaluate", fake)
    opts = argparse.Namespace(out=str(tmp_path), data=str(tmp_path), seed=0, sets=sets)
    points = run_pair(["tfc_tdf_cpu", "openunmix"], 90.0, opts)
    assert seen["openunmix"][-1] == "model.audio_channels=1"
    assert "model.audio_channels=1" not in seen["tfc_tdf_cpu"]
    assert points[1]["pair"] == "tfc_tdf_cpu + openunmix (openunmix: model.audio_channels=1)"
    assert [label(p) for p in points] == ["tfc_tdf_cpu", "openunmix model.audio_channels=1"]


def test_points_start_from_the_committed_results_where_the_store_is_missing(tmp_path) -> None:
    store, results = tmp_path / "out" / "points.json", tmp_path / "scaling.json"
    assert stored_points(store, results) == []
    committed = [{"entry": "a", "minutes": 90.0, "vocals": 10.6}]
    results.write_text(json.dumps({"name": "scaling", "rows": committed}))
    assert stored_points(store, results) == committed  # a fresh clone keeps the table's points
    store.parent.mkdir()
    store.write_text(json.dumps([{"entry": "b", "minutes": 10.0, "vocals": 8.0}]))
    assert [p["entry"] for p in stored_points(store, results)] == ["b"]  # the local store wins
