"""The code location loads, validates, and its asset graph matches the reviewed snapshot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from homicide_assets.definitions import defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def graph_snapshot() -> dict:
    """Keys, groups, dependencies and checks of every asset: what a rename would change."""
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "partitioned": node.partitions_def is not None,
        }
    checks = sorted(f"{k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys)
    return {
        "assets": assets,
        "checks": checks,
        "sensors": sorted(s.name for s in repo.sensor_defs),
        "schedules": sorted(s.name for s in repo.schedule_defs),
        "jobs": sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")),
    }


def test_asset_graph_matches_snapshot():
    current = graph_snapshot()
    if os.environ.get("UPDATE_SNAPSHOTS") == "1" or not SNAPSHOT.exists():
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert current == expected, "asset graph changed: review, then rerun with UPDATE_SNAPSHOTS=1"


def test_every_asset_explains_itself():
    repo = defs.get_repository_def()
    for key in repo.asset_graph.get_all_asset_keys():
        node = repo.asset_graph.get(key)
        assert node.description, f"{key.to_user_string()} has no description"
        assert node.owners, f"{key.to_user_string()} has no owner"
        assert node.kinds, f"{key.to_user_string()} has no kinds"


def test_delivery_sensor_runs_by_default():
    sensor = defs.get_sensor_def("partner_delivery_sensor")
    assert sensor.default_status.value == "RUNNING"


def test_dagster_definitions_validate(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "homicide_assets.definitions"],
        capture_output=True, text=True, env=env, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "Validation successful" in proc.stdout + proc.stderr
