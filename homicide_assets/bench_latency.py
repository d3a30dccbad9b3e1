"""File-to-output latency through a real daemon and webserver (``make bench-latency``).

:func:`measure_latency` starts ``scripts/serve.py`` (Dagster's daemon and webserver as
separate processes, loopback only) on a fresh data directory, then drops deliveries into
``landing/`` one at a time and times each from the moment the file is written until the
output asset (the full report when the graph has one, else ``staged/death_reports``) is
materialised by a run that includes the new delivery. Nothing is simulated: the delivery
sensor's two looks, the run queue, run-worker start-up and automation are all in the figure.

``make bench`` calls :func:`measure_latency` and adds the returned dict to its JSON line;
``python -m homicide_assets.bench_latency --drops 5`` prints it alone.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from homicide_assets.lib.settings import REPO_ROOT

SERVE_SCRIPT = REPO_ROOT / "scripts" / "serve.py"
#: Output assets in order of preference: the first the graph has is what "output" means.
OUTPUT_KEYS = (("report", "death_investigations_report"), ("staged", "death_reports"))
IN_PROGRESS = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    """A running ``scripts/serve.py``: its process, port, data directory and Dagster home."""

    process: subprocess.Popen
    host: str
    port: int
    data_dir: Path
    dagster_home: Path
    log_path: Path
    child_pids: dict[str, int] = field(default_factory=dict)

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"http://{self.host}:{self.port}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def asset_keys(self) -> set[tuple[str, ...]]:
        found = self.graphql("{ assetNodes { assetKey { path } } }")
        return {tuple(n["assetKey"]["path"]) for n in found["data"]["assetNodes"]}

    def sensors(self) -> list[dict]:
        found = self.graphql("""{ repositoriesOrError { ... on RepositoryConnection { nodes { sensors {
            name sensorType sensorState { status ticks(limit: 1) { status timestamp } } } } } } }""")
        return [s for repo in found["data"]["repositoriesOrError"]["nodes"] for s in repo["sensors"]]

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def _wait(predicate, timeout: float, what: str, served: Served | None = None, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if served is not None and served.process.poll() is not None:
            raise RuntimeError(
                f"serve exited ({served.process.returncode}) while waiting for {what}:\n{served.log_tail()}"
            )
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(
        f"timed out after {timeout:.0f} s waiting for {what}"
        + (f"\n--- serve log ---\n{served.log_tail()}" if served else "")
    )


@contextmanager
def served(
    data_dir: Path,
    dagster_yaml: str | None = None,
    env: dict[str, str] | None = None,
    ready_timeout: float = 240.0,
    initial_build: bool = True,
) -> Iterator[Served]:
    """Start ``scripts/serve.py`` on ``data_dir`` and a free loopback port; stop it on exit.

    With ``initial_build`` (the default) ``homicide-assets build`` first materialises the
    whole graph once, as a new deployment's operator does: eager automation only refreshes
    an asset whose dependencies all exist, so without it a drop refreshes staged but not
    the report. Yields once the webserver answers, the delivery sensor is running and every
    automation sensor has ticked once (so the first drop is judged like any later one). On
    exit the launcher gets SIGTERM, as an operator's service manager would send it.
    """
    data_dir = Path(data_dir).resolve()
    home = data_dir / "dagster_home"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    child_env = {
        **os.environ,
        **(env or {}),
        "HOMICIDE_DATA_DIR": str(data_dir),
        "DAGSTER_HOME": str(home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    if not (child_env.get("HOMICIDE_PSEUDONYM_KEY") or child_env.get("HOMICIDE_PSEUDONYM_KEY_FILE")):
        child_env["HOMICIDE_PSEUDONYM_KEY"] = secrets.token_hex(32)  # synthetic data, throwaway key
    if dagster_yaml:
        child_env["HOMICIDE_DAGSTER_YAML"] = str(dagster_yaml)
    else:
        child_env.pop("HOMICIDE_DAGSTER_YAML", None)
    if initial_build:
        home.mkdir(parents=True, exist_ok=True)
        if dagster_yaml:
            shutil.copyfile(dagster_yaml, home / "dagster.yaml")
        built = subprocess.run([sys.executable, "-m", "homicide_assets.cli", "build"], cwd=REPO_ROOT, env=child_env,
                               capture_output=True, text=True, timeout=1800)
        if built.returncode != 0:
            raise RuntimeError(f"the initial build failed:\n{built.stdout[-3000:]}\n{built.stderr[-5000:]}")
    log_path = data_dir / "serve.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, str(SERVE_SCRIPT), "--port", str(port)],
        cwd=REPO_ROOT,
        env=child_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    handle = Served(process, "127.0.0.1", port, data_dir, home, log_path)
    try:
        _wait(lambda: "serve: UI at" in handle.log_tail(400), ready_timeout, "the webserver", handle)
        state = home / "serve.json"
        handle.child_pids = json.loads(state.read_text()) if state.exists() else {}

        def sensors_ready() -> bool:
            sensors = handle.sensors()
            delivery = [s for s in sensors if s["name"] == "partner_delivery_sensor"]
            automation = [s for s in sensors if s["sensorType"] in ("AUTO_MATERIALIZE", "AUTOMATION")]
            return (
                bool(delivery)
                and delivery[0]["sensorState"]["status"] == "RUNNING"
                and all(
                    s["sensorState"]["status"] == "RUNNING" and s["sensorState"]["ticks"] for s in automation
                )
            )

        _wait(sensors_ready, ready_timeout, "the delivery and automation sensors", handle, interval=2)
        yield handle
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        log.close()


def _instance(home: Path):
    from dagster import DagsterInstance

    # The embedded instance's event log (homicide_assets.dagster_storage) takes its folder from
    # DAGSTER_HOME, as Dagster's own tools do; it is read when the storage is built, so it is
    # set for that moment only (this process's own DAGSTER_HOME, if any, is left as it was).
    before = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        return DagsterInstance.from_config(str(home))
    finally:
        if before is None:
            del os.environ["DAGSTER_HOME"]
        else:
            os.environ["DAGSTER_HOME"] = before


def _materialisation(instance, key: tuple[str, ...], partition: str | None = None):
    from dagster import AssetKey, AssetRecordsFilter

    records = instance.fetch_materializations(
        AssetRecordsFilter(
            asset_key=AssetKey(list(key)), asset_partitions=[partition] if partition else None
        ),
        limit=1,
    ).records
    return records[0].event_log_entry if records else None


def runs_in_progress(instance) -> int:
    from dagster import DagsterRunStatus, RunsFilter

    return len(instance.get_run_ids(RunsFilter(statuses=[DagsterRunStatus[s] for s in IN_PROGRESS])))


def death_reports_csv(first_report: int, rows: int) -> bytes:
    """A valid death_reports delivery (contract header, synthetic values) as CSV bytes."""
    import csv
    import io

    from homicide_assets.lib.feeds import FEEDS

    header = FEEDS["death_reports"].column_names
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\r\n")
    writer.writeheader()
    for n in range(first_report, first_report + rows):
        row = {
            "report_id": f"DR-2026-{n:06d}",
            "reported_at": "2026-01-05T10:15",
            "date_of_death": "04/01/2026",
            "classification": "suspected_suicide",
            "investigation_status": "open",
            "forename": "Alex",
            "surname": f"Latency{n}",
            "date_of_birth": "1990-02-03",
            "sex": "M",
            "ethnicity": "white",
            "home_postcode": "B23 6TJ",
            "incident_postcode": "B5 4TD",
            "incident_lat": "52.4770",
            "incident_lon": "-1.8990",
            "location_type": "street",
            "method": "hanging",
            "substances": "alcohol",
            "domestic_abuse_related": "N",
            "gang_related": "N",
            "suspects_count": "0",
            "officer_in_case": "4821",
            "attending_officers": "4821",
            "narrative": "Synthetic record for the latency benchmark.",
        }
        writer.writerow({k: row.get(k, "") for k in header})
    return buf.getvalue().encode("utf-8")


def drop_death_reports(landing: Path, n: int, rows: int = 3) -> tuple[Path, str]:
    """Write the ``n``-th test delivery of death reports; return its path and delivery id."""
    from homicide_assets.lib.landing import delivery_id_for, sha256_of
    from homicide_assets.lib.parsing import parse_delivery_name

    name = f"wmp__death_reports__2026{1 + (n // 28) % 12:02d}{1 + n % 28:02d}.csv"
    data = death_reports_csv(900000 + n * 10, rows)
    folder = landing / "wmp"
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f"{name}.part"  # written under a temporary name, then renamed: as partners' tools do
    partial.write_bytes(data)
    path = folder / name
    os.replace(partial, path)
    sha, _ = sha256_of(path)
    return path, delivery_id_for(parse_delivery_name(name), sha)


def time_one_drop(
    handle: Served, instance, n: int, output_key: tuple[str, ...], timeout: float = 300.0
) -> dict:
    """Drop delivery ``n``; seconds until raw/death_reports and the output include it."""
    t0 = time.time()
    _, delivery_id = drop_death_reports(handle.data_dir / "landing", n)
    raw = _wait(
        lambda: _materialisation(instance, ("raw", "death_reports"), delivery_id),
        timeout,
        f"raw/death_reports partition {delivery_id}",
        handle,
    )

    def output_after_raw():
        event = _materialisation(instance, output_key)
        if event is None or event.timestamp < raw.timestamp:
            return None
        if event.run_id != raw.run_id:
            record = instance.get_run_record_by_id(event.run_id)
            if record is None or (record.start_time or 0) < raw.timestamp:
                return None  # a run that started before the delivery was parsed does not include it
        return event

    output = _wait(output_after_raw, timeout, f"{'/'.join(output_key)} after delivery {delivery_id}", handle)
    return {
        "delivery_id": delivery_id,
        "raw_seconds": round(raw.timestamp - t0, 1),
        "output_seconds": round(output.timestamp - t0, 1),
        "raw_run_id": raw.run_id,
        "output_run_id": output.run_id,
    }


def measure_latency(
    drops: int = 5,
    dagster_yaml: str | None = None,
    workdir: Path | None = None,
    env: dict[str, str] | None = None,
    timeout_per_drop: float = 300.0,
) -> dict:
    """Start the daemon and webserver, drop ``drops`` deliveries one at a time, time each.

    Returns ``{"latency": {...}}`` with the output asset, p50 and max seconds from file
    written to output materialised, the same for ``raw/<feed>``, each sample, and the
    instance storage used. ``dagster_yaml`` (default ``$HOMICIDE_DAGSTER_YAML``) selects the
    instance configuration, e.g. ``deploy/dagster.postgres.yaml``.
    """
    from homicide_assets.defs.ingest.sensors import DELIVERY_SENSOR_INTERVAL_SECONDS

    dagster_yaml = dagster_yaml or os.environ.get("HOMICIDE_DAGSTER_YAML")
    own = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="homicide_latency_")) if own else Path(workdir)
    samples = []
    t_start = time.monotonic()
    with served(workdir / "data", dagster_yaml, env) as handle:
        keys = handle.asset_keys()
        output_key = next(k for k in OUTPUT_KEYS if k in keys)
        instance = _instance(handle.dagster_home)
        for n in range(drops):
            samples.append(time_one_drop(handle, instance, n, output_key, timeout_per_drop))
            _wait(lambda: runs_in_progress(instance) == 0, timeout_per_drop, "the runs to finish", handle, 1)
        storage = type(instance.run_storage).__name__
    outputs = [s["output_seconds"] for s in samples]
    raws = [s["raw_seconds"] for s in samples]
    result = {
        "latency": {
            "output": "/".join(output_key),
            "drops": drops,
            "sensor_interval_seconds": DELIVERY_SENSOR_INTERVAL_SECONDS,
            "p50_seconds": round(statistics.median(outputs), 1),
            "max_seconds": round(max(outputs), 1),
            "raw_p50_seconds": round(statistics.median(raws), 1),
            "raw_max_seconds": round(max(raws), 1),
            "samples_seconds": outputs,
            "run_storage": storage,
            "wall_seconds": round(time.monotonic() - t_start, 1),
        }
    }
    if own:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--drops", type=int, default=5)
    parser.add_argument(
        "--dagster-yaml", default=None, help="instance configuration (default: embedded SQLite)"
    )
    args = parser.parse_args(argv)
    print(json.dumps(measure_latency(args.drops, args.dagster_yaml)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
