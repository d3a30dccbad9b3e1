"""``make serve``: Dagster's daemon and webserver as two processes, on loopback only.

The daemon runs the delivery sensor, automation (staged and everything downstream refresh
on their own), schedules, the run queue and run monitoring; the webserver serves the UI on
127.0.0.1. Both read the same instance from ``DAGSTER_HOME`` (default
``$HOMICIDE_DATA_DIR/dagster_home``):

- ``HOMICIDE_DAGSTER_YAML=deploy/dagster.postgres.yaml`` installs that file as the
  instance's ``dagster.yaml`` (PostgreSQL storage; needs ``DAGSTER_PG_*``), replacing what
  was there; otherwise an existing ``dagster.yaml`` is kept, and a missing one becomes the
  embedded default (SQLite in ``DAGSTER_HOME``, telemetry off).
- The open-source webserver has no login: it binds to loopback and refuses anything else.
  In production it sits behind the force's single sign-on proxy (SECURITY.md).

SIGTERM or SIGINT (Ctrl-C) stops both cleanly: each child gets SIGTERM (Dagster maps it to
its interrupt handler, which a script-started child only has when SIGINT is not ignored,
so it is reset to default for them), then its whole process group is killed after
``--grace`` seconds. If either process dies, the other is stopped and the exit code is 1.
``DAGSTER_HOME/serve.json`` names the processes while they run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from homicide_assets.dagster_storage import BUILD_EVENT_BATCH_SIZE, DAGSTER_YAML_EVENT_LOG_STORAGE

REPO_ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
# The embedded instance's event log is Dagster's SQLite storage writing a step's batch of
# per-partition events in one transaction per shard (homicide_assets/dagster_storage.py), as
# `homicide-assets build` configures it; DAGSTER_EVENT_BATCH_SIZE (set for the daemon, its run
# workers and the webserver below) turns Dagster's batching on.
EVENT_LOG_STORAGE_YAML = DAGSTER_YAML_EVENT_LOG_STORAGE  # the same entry `build` writes
EVENT_BATCH_SIZE = str(BUILD_EVENT_BATCH_SIZE)
EMBEDDED_DAGSTER_YAML = """\
# embedded default: SQLite storage in DAGSTER_HOME (deploy/dagster.postgres.yaml for a force)
""" + EVENT_LOG_STORAGE_YAML + """\
run_queue:
  max_concurrent_runs: 2
  dequeue_interval_seconds: 1
  tag_concurrency_limits:
    # one run at a time per feed, so two deliveries of one feed never stage it concurrently
    - key: homicide_assets/feed
      value:
        applyLimitPerUniqueValue: true
      limit: 1
    # one refresh of staged and downstream at a time (delivery runs and automation runs)
    - key: homicide_assets/refresh
      limit: 1
telemetry:
  enabled: false
"""


def prepare_home(home: Path, dagster_yaml: str | None, say=print) -> Path:
    """Create ``home`` and its ``dagster.yaml`` (see the module docstring); return the yaml's path."""
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if dagster_yaml:
        source = Path(dagster_yaml)
        if not source.is_absolute():
            source = REPO_ROOT / source
        shutil.copyfile(source, target)
        say(f"serve: instance configuration {source} installed as {target}")
    elif not target.exists():
        target.write_text(EMBEDDED_DAGSTER_YAML, encoding="utf-8")
        say(f"serve: embedded default instance (SQLite) written to {target}")
    return target


def _child_setup() -> None:
    # A process started in the background from a shell inherits SIGINT ignored, and Dagster
    # maps SIGTERM onto the SIGINT handler: reset it so SIGTERM stops the child.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _bin(name: str) -> str:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else name


def start(host: str, port: int, workspace: Path, env: dict[str, str]) -> dict[str, subprocess.Popen]:
    """Start the daemon and the webserver, each in its own process group."""
    common = dict(cwd=REPO_ROOT, env=env, start_new_session=True, preexec_fn=_child_setup)
    daemon = subprocess.Popen([_bin("dagster-daemon"), "run", "-w", str(workspace)], **common)
    webserver = subprocess.Popen(
        [_bin("dagster-webserver"), "-h", host, "-p", str(port), "-w", str(workspace)], **common
    )
    return {"daemon": daemon, "webserver": webserver}


def wait_for_webserver(host: str, port: int, timeout: float, procs: dict[str, subprocess.Popen],
                       cancelled=lambda: False) -> bool:
    """True once ``/server_info`` answers; False when a process died, time ran out or we were stopped."""
    url = f"http://{'[::1]' if host == '::1' else host}:{port}/server_info"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cancelled() or any(p.poll() is not None for p in procs.values()):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


AUTOMATION_SENSOR_TYPES = {"AUTO_MATERIALIZE", "AUTOMATION"}


def _graphql(host: str, port: int, query: str, variables: dict | None = None) -> dict:
    url = f"http://{'[::1]' if host == '::1' else host}:{port}/graphql"
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def start_automation_sensors(host: str, port: int) -> list[str]:
    """Turn on every stopped automation sensor; return their names.

    Dagster's ``default_automation_condition_sensor`` (what evaluates the assets'
    ``AutomationCondition``s, so staged tables and everything downstream refresh after a
    delivery) is created STOPPED in open-source Dagster. A sensor that the code declares
    with ``default_status=RUNNING`` is already running and left alone; so is one an
    operator stopped in the UI after it had run (its state is then no longer default).
    """
    found = _graphql(host, port, """{ repositoriesOrError { ... on RepositoryConnection { nodes {
        name location { name } sensors { name sensorType sensorState { status hasStartPermission } } } } } }""")
    started = []
    for repo in found["data"]["repositoriesOrError"].get("nodes", []):
        for sensor in repo["sensors"]:
            if sensor["sensorType"] in AUTOMATION_SENSOR_TYPES and sensor["sensorState"]["status"] == "STOPPED":
                selector = {"repositoryLocationName": repo["location"]["name"], "repositoryName": repo["name"],
                            "sensorName": sensor["name"]}
                result = _graphql(host, port, """mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) {
                    __typename ... on PythonError { message } } }""", {"s": selector})
                kind = result.get("data", {}).get("startSensor", {}).get("__typename")
                if kind != "Sensor":
                    raise RuntimeError(f"could not start {sensor['name']}: {result}")
                started.append(sensor["name"])
    return started


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a pid reused by another user's process
        return False
    return True


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def stop(procs: dict[str, subprocess.Popen], grace: float) -> None:
    """Stop both children and everything they started; return when all of it is gone.

    SIGTERM to each child, up to ``grace`` seconds for a clean exit; then SIGTERM to what is
    left of its process group (code server, run workers) and five seconds more; then SIGKILL.
    """
    for proc in procs.values():
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    for proc in procs.values():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    groups = [proc.pid for proc in procs.values()]
    for pgid in groups:
        _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_group_alive(g) for g in groups):
        time.sleep(0.2)
    for pgid in groups:
        _signal_group(pgid, signal.SIGKILL)
    for proc in procs.values():
        if proc.poll() is None:
            proc.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_group_alive(g) for g in groups):
        time.sleep(0.1)  # SIGKILLed processes take a moment to be reaped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=os.environ.get("HOMICIDE_SERVE_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("HOMICIDE_SERVE_PORT", "3000")))
    parser.add_argument("--workspace", default=str(REPO_ROOT / "workspace.yaml"))
    parser.add_argument("--dagster-yaml", default=os.environ.get("HOMICIDE_DAGSTER_YAML"))
    parser.add_argument("--no-automation", action="store_true",
                        help="leave automation sensors as they are (by default stopped ones are started)")
    parser.add_argument("--grace", type=float, default=20.0, help="seconds to wait for a clean stop")
    parser.add_argument("--ready-timeout", type=float, default=180.0)
    args = parser.parse_args(argv)

    if args.host not in LOOPBACK:
        print(f"serve: refusing to bind {args.host}: the webserver has no login; it listens on loopback "
              "and is reached through the force's single sign-on proxy (SECURITY.md)", file=sys.stderr)
        return 2
    data_dir = Path(os.environ.get("HOMICIDE_DATA_DIR", REPO_ROOT / "data")).resolve()
    for sub in ("landing", "archive", "quarantine", "warehouse", "reports"):
        (data_dir / sub).mkdir(parents=True, exist_ok=True)
    home = Path(os.environ.get("DAGSTER_HOME") or data_dir / "dagster_home").resolve()
    prepare_home(home, args.dagster_yaml)
    env = {"DAGSTER_EVENT_BATCH_SIZE": EVENT_BATCH_SIZE, **os.environ,
           "HOMICIDE_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(home)}

    stopping = {"signal": None}

    def _on_signal(signum, _frame):
        stopping["signal"] = signum

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    procs = start(args.host, args.port, Path(args.workspace), env)
    state_file = home / "serve.json"
    state_file.write_text(json.dumps({name: p.pid for name, p in procs.items()}), encoding="utf-8")
    code = 0
    try:
        if wait_for_webserver(args.host, args.port, args.ready_timeout, procs,
                              cancelled=lambda: stopping["signal"] is not None):
            print(f"serve: UI at http://{args.host}:{args.port} (daemon pid {procs['daemon'].pid}, "
                  f"webserver pid {procs['webserver'].pid}); data {data_dir}; DAGSTER_HOME {home}", flush=True)
            if not args.no_automation:
                for name in start_automation_sensors(args.host, args.port):
                    print(f"serve: started {name} (staged tables and what depends on them refresh "
                          "on their own)", flush=True)
        elif stopping["signal"] is None:
            print("serve: the webserver did not come up", file=sys.stderr)
            code = 1
        while code == 0 and stopping["signal"] is None:
            dead = [name for name, p in procs.items() if p.poll() is not None]
            if dead:
                print(f"serve: {', '.join(dead)} exited (code "
                      f"{', '.join(str(procs[n].returncode) for n in dead)}); stopping", file=sys.stderr)
                code = 1
                break
            time.sleep(0.5)
    finally:
        stop(procs, args.grace)
        state_file.unlink(missing_ok=True)
    if stopping["signal"] is not None:
        print(f"serve: stopped on {signal.Signals(stopping['signal']).name}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
