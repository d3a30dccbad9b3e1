"""`make serve` end to end: daemon and webserver as separate processes, a drop, the output.

One slow test. It runs the production combination (instance and store on PostgreSQL via
``deploy/dagster.postgres.yaml``) when the PostgreSQL server at 127.0.0.1:5432 answers, and
the embedded default (SQLite) otherwise; the test's output says which.
"""

from __future__ import annotations

import os
import socket
from contextlib import ExitStack

import polars as pl
import pytest

from homicide_assets.bench_latency import OUTPUT_KEYS, _instance, served, time_one_drop
from homicide_assets_tests.conftest import TEST_KEY
from homicide_assets_tests.test_postgres import (
    POSTGRES_DAGSTER_YAML,
    load_definitions_first,
    postgres_missing,
    throwaway_database,
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outbound interface
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


@pytest.mark.slow
def test_serve_refreshes_the_output_after_a_drop_and_stops_cleanly(tmp_path, monkeypatch):
    """scripts/serve.py starts dagster-daemon and dagster-webserver as two processes on
    127.0.0.1 (not reachable on the machine's other address); a delivery dropped into
    landing is taken by the sensor, parsed by a run the daemon launched, and the output
    (the report when the graph has one, else staged/death_reports) is rematerialised with
    the new records; SIGTERM stops the launcher with exit code 0 and leaves no daemon,
    webserver, code server or run worker behind."""
    load_definitions_first()
    monkeypatch.setenv("HOMICIDE_PSEUDONYM_KEY", TEST_KEY)
    env, dagster_yaml = {"HOMICIDE_PSEUDONYM_KEY": TEST_KEY}, None
    with ExitStack() as databases:
        if postgres_missing() is None:
            from sqlalchemy.engine import make_url

            store = databases.enter_context(throwaway_database("serve_store"))
            url = make_url(databases.enter_context(throwaway_database("serve_dagster")))
            env.update(HOMICIDE_DATABASE_URL=store, DAGSTER_PG_HOST=url.host, DAGSTER_PG_PORT=str(url.port or 5432),
                       DAGSTER_PG_USERNAME=url.username, DAGSTER_PG_PASSWORD=url.password or "",
                       DAGSTER_PG_DB=url.database)
            dagster_yaml = str(POSTGRES_DAGSTER_YAML)
        else:
            monkeypatch.delenv("HOMICIDE_DATABASE_URL", raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        print(f"serve test on {'PostgreSQL' if dagster_yaml else 'the embedded default (SQLite)'}")

        with served(tmp_path / "data", dagster_yaml, env) as handle:
            assert set(handle.child_pids) == {"daemon", "webserver"}
            assert handle.child_pids["daemon"] != handle.child_pids["webserver"]
            other = _non_loopback_address()
            if other:
                with pytest.raises(OSError):
                    socket.create_connection((other, handle.port), timeout=3).close()
            instance = _instance(handle.dagster_home)
            assert type(instance.run_storage).__name__ == ("PostgresRunStorage" if dagster_yaml else "SqliteRunStorage")
            output_key = next(k for k in OUTPUT_KEYS if k in handle.asset_keys())
            sample = time_one_drop(handle, instance, 0, output_key, timeout=420)
            raw_run = instance.get_run_by_id(sample["raw_run_id"])
            assert raw_run.tags.get("dagster/sensor_name") == "partner_delivery_sensor"
            if output_key == ("report", "death_investigations_report"):
                reports = list((handle.data_dir / "reports").glob("*/death_investigations_report.html"))
                assert reports, "the report asset materialised but no report file was written"
            staged = pl.read_parquet(handle.data_dir / "warehouse" / "staged" / "death_reports.parquet")
            assert {"DR-2026-900000", "DR-2026-900001", "DR-2026-900002"} <= set(staged["report_id"])
            print(f"file to {'/'.join(output_key)}: {sample['output_seconds']} s "
                  f"(raw/death_reports: {sample['raw_seconds']} s)")
            pids = dict(handle.child_pids)

        assert handle.process.returncode == 0, handle.log_tail()
        assert "serve: stopped on SIGTERM" in handle.log_tail(20)
        for name, pid in pids.items():
            assert not _alive(pid), f"{name} (pid {pid}) outlived serve"
            assert not _group_alive(pid), f"a process started by the {name} outlived serve"


def test_serve_refuses_a_non_loopback_address():
    """The webserver has no login: serve.py will not bind anything but loopback."""
    import subprocess
    import sys

    from homicide_assets.bench_latency import SERVE_SCRIPT

    done = subprocess.run([sys.executable, str(SERVE_SCRIPT), "--host", "0.0.0.0", "--port", "1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "refusing to bind 0.0.0.0" in done.stderr
