"""Faults a force deployment must survive, each against real processes, files and servers.

- ``test_kill_9_during_a_build_then_rerun_gives_identical_outputs_and_no_duplicate_rows``
- ``test_two_partners_delivering_at_once``
- ``test_same_file_delivered_twice_at_once`` (SQLite and PostgreSQL stores)
- ``test_database_unavailable_fails_clearly_then_succeeds_on_retry`` (PostgreSQL behind a
  loopback TCP relay that is switched off and on)
- ``test_failing_write_mid_asset_leaves_no_partial_output_marked_materialised`` (a real
  ``RLIMIT_FSIZE`` makes the Parquet write fail half-way)
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
from sqlmodel import select

from homicide_assets.lib.settings import SEEDS_DIR, DataDir
from homicide_assets.lib.store import StoreUnavailable, session_scope
from homicide_assets.lib.store.ingest import Delivery, QuarantineEntry, Receipt
from homicide_assets_tests.conftest import TEST_KEY
from homicide_assets_tests.deliveries import csv_bytes, death_report, drop
from homicide_assets_tests.test_postgres import load_definitions_first, postgres_missing, throwaway_database

SAMPLE_LANDING = SEEDS_DIR / "sample_deliveries" / "landing"
EMBEDDED_DAGSTER_YAML = "telemetry:\n  enabled: false\n"


# ----------------------------------------------------------------------------- helpers


def sample_files(partner: str, feed: str, n: int) -> list[Path]:
    """The first ``n`` committed sample deliveries of ``partner``'s ``feed`` (by name)."""
    files = sorted((SAMPLE_LANDING / partner).glob(f"{partner}__{feed}__*.csv"))
    if len(files) < n:
        pytest.skip(f"seeds/sample_deliveries has {len(files)} {partner} {feed} files, the test needs {n}")
    return files[:n]


def fault_delivery_set() -> list[Path]:
    """A small mixed delivery set: two partners, three feeds."""
    return (sample_files("wmp", "death_reports", 4) + sample_files("wmp", "death_report_persons", 3)
            + sample_files("wht", "me_deaths", 3))


def put_in_landing(data_dir: DataDir, files: list[Path]) -> None:
    for f in files:
        partner = f.parent.name
        (data_dir.landing / partner).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, data_dir.landing / partner / f.name)


def fresh_data_dir(root: Path) -> DataDir:
    data_dir = DataDir(root).ensure()
    home = root / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text(EMBEDDED_DAGSTER_YAML)
    return data_dir


def child_env(data_dir: DataDir, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOMICIDE_", "DAGSTER_PG_"))}
    env.update(HOMICIDE_DATA_DIR=str(data_dir.root), HOMICIDE_PSEUDONYM_KEY=TEST_KEY,
               DAGSTER_HOME=str(data_dir.root / "dagster_home"), DAGSTER_DISABLE_TELEMETRY="1", **extra)
    return env


def ingest_build() -> list[str]:
    """`homicide-assets build` cut down to ingest: landing -> raw/<feed> -> staged/<feed>.

    The same calls as :func:`homicide_assets.cli.run_build` (take landing as the sensor
    does, one ingest job per feed over its new partitions), then only the staged assets
    instead of the whole graph, so the fault tests stay fast. Returns the failed steps.
    """
    from dagster import AssetSelection, DagsterInstance, materialize

    from homicide_assets.cli import _prepare_environment, pending_deliveries, take_landing
    from homicide_assets.definitions import defs
    from homicide_assets.defs.ingest.partitions import DELIVERY_PARTITIONS

    data_dir = _prepare_environment()
    take_landing(data_dir)
    instance = DagsterInstance.get()
    failed = []
    for feed, ids in pending_deliveries(data_dir, instance).items():
        name = DELIVERY_PARTITIONS[feed].name
        instance.add_dynamic_partitions(name, [i for i in ids if i not in set(instance.get_dynamic_partitions(name))])
        order = instance.get_dynamic_partitions(name)
        positions = sorted(order.index(i) for i in ids)
        job = defs.resolve_job_def(f"ingest_{feed}")
        result = job.execute_in_process(instance=instance, raise_on_error=False, tags={
            "dagster/asset_partition_range_start": order[positions[0]],
            "dagster/asset_partition_range_end": order[positions[-1]]})
        if not result.success:
            failed.append(f"ingest_{feed}")
    staged = materialize(list(defs.assets), selection=AssetSelection.key_prefixes(["staged"]).without_checks(),
                         instance=instance, resources=defs.resources, raise_on_error=False)
    if not staged.success:
        failed.append("staged")
    return failed


INGEST_BUILD = [sys.executable, "-c", "import sys; from homicide_assets_tests.test_faults import ingest_build; "
                "sys.exit(1 if ingest_build() else 0)"]


def warehouse_frames(data_dir: DataDir) -> dict[str, pl.DataFrame]:
    return {str(p.relative_to(data_dir.warehouse)): pl.read_parquet(p)
            for p in sorted(data_dir.warehouse.rglob("*.parquet"))}


def ledger(data_dir: DataDir) -> dict:
    with session_scope(data_dir.database_url()) as s:
        deliveries = list(s.exec(select(Delivery)))
        quarantine = list(s.exec(select(QuarantineEntry)))
        receipts = list(s.exec(select(Receipt)))
    return {
        "deliveries": sorted((d.delivery_id, d.sha256, d.status, d.rows_read, d.rows_staged, d.rows_quarantined,
                              d.rows_superseded, d.columns_dropped) for d in deliveries),
        "quarantine": sorted(Counter((q.kind, q.delivery_id, q.line, q.column, q.rule, q.value, q.reason)
                                     for q in quarantine).items(), key=repr),
        "accepted": Counter(r.delivery_id for r in receipts if r.outcome == "accepted"),
        "receipts": receipts,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- kill -9


@pytest.mark.slow
def test_kill_9_during_a_build_then_rerun_gives_identical_outputs_and_no_duplicate_rows(tmp_path, monkeypatch):
    """`kill -9` of a build (landing -> raw -> staged, as `homicide-assets build` runs it) once
    the first feed's raw partitions are on disk, then a rerun: every warehouse table equals an
    uninterrupted build of the same deliveries, the
    ledger holds each delivery once with the same counts, quarantine rows are not doubled,
    and no staged record key appears twice."""
    files = fault_delivery_set()

    reference = fresh_data_dir(tmp_path / "reference")
    put_in_landing(reference, files)
    for name, value in child_env(reference).items():
        if name.startswith(("HOMICIDE_", "DAGSTER_")):
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("HOMICIDE_DATABASE_URL", raising=False)
    assert ingest_build() == []

    victim = fresh_data_dir(tmp_path / "victim")
    put_in_landing(victim, files)
    proc = subprocess.Popen(INGEST_BUILD, env=child_env(victim), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    # Killed once the first feed's ingest run has written all its raw partitions (landing is
    # taken in name order, so that is wht's me_deaths): the other feeds are received and in
    # the ledger but not yet parsed, and nothing is staged.
    first_feed = victim.warehouse / "raw" / "me_deaths"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(first_feed.glob("*.parquet"))) == 3:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, "the build finished before it could be killed: nothing was tested"
    assert not (victim.warehouse / "staged").exists() or len(warehouse_frames(victim)) < len(
        warehouse_frames(reference)), "the kill came after the build had written everything"

    for name, value in child_env(victim).items():
        if name.startswith(("HOMICIDE_", "DAGSTER_")):
            monkeypatch.setenv(name, value)
    assert ingest_build() == []  # the rerun

    expected, got = warehouse_frames(reference), warehouse_frames(victim)
    assert sorted(got) == sorted(expected)
    for name, frame in expected.items():
        assert got[name].equals(frame), f"{name} differs after kill -9 and rerun"
    staged_keys = {"staged/death_reports.parquet": ["report_id"],
                   "staged/death_report_persons.parquet": ["report_id", "person_seq"],
                   "staged/me_deaths.parquet": ["me_case_id"]}
    for name, key in staged_keys.items():
        frame = got[name]
        assert frame.height and frame.select(key).is_duplicated().sum() == 0, f"duplicate rows in {name}"

    want, have = ledger(reference), ledger(victim)
    assert have["deliveries"] == want["deliveries"]
    assert have["quarantine"] == want["quarantine"]
    assert set(have["accepted"].values()) == {1} and have["accepted"].keys() == want["accepted"].keys()
    # a file taken but not yet removed from landing when killed is recorded again as a duplicate
    assert all(r.outcome in ("accepted", "duplicate", "quarantined") for r in have["receipts"])
    assert not any(victim.landing.rglob("*.csv")), "a delivery was left in landing"


@pytest.mark.slow
def test_rerun_after_a_crash_between_ledger_and_raw_write_restages_every_delivery(tmp_path, monkeypatch):
    """The state a `kill -9` leaves when it lands between the ledger saying "parsed" and the
    raw partition reaching disk (the partition file is absent): a rerun must still stage
    every delivery's rows, as an uninterrupted build does."""
    files = sample_files("wmp", "death_reports", 4)
    runs = {}
    for name in ("reference", "crashed"):
        data_dir = fresh_data_dir(tmp_path / name)
        put_in_landing(data_dir, files)
        for key, value in child_env(data_dir).items():
            if key.startswith(("HOMICIDE_", "DAGSTER_")):
                monkeypatch.setenv(key, value)
        monkeypatch.delenv("HOMICIDE_DATABASE_URL", raising=False)
        assert ingest_build() == []
        if name == "crashed":
            partitions = (data_dir.warehouse / "raw" / "death_reports").glob("*.parquet")
            largest = max(partitions, key=lambda p: pl.read_parquet(p).height)
            assert pl.read_parquet(largest).height > 0
            largest.unlink()  # the write the crash prevented
            assert ingest_build() == []  # the rerun
        runs[name] = pl.read_parquet(data_dir.warehouse_file(["staged", "death_reports"]))
    assert runs["crashed"].equals(runs["reference"])


# ----------------------------------------------------------------------------- two partners


def _slow_upload(source: Path, target: Path, chunk: int = 96, pause: float = 0.08) -> None:
    """Write ``source`` to ``target`` a chunk at a time, as a slow partner upload would."""
    data = source.read_bytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as fh:
        for i in range(0, len(data), chunk):
            fh.write(data[i:i + chunk])
            fh.flush()
            os.fsync(fh.fileno())
            time.sleep(pause)


def _ingest_one(feed: str, partition: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    code = (
        "import sys; from dagster import DagsterInstance; from homicide_assets.definitions import defs; "
        f"r = defs.resolve_job_def('ingest_{feed}').execute_in_process(instance=DagsterInstance.get(), "
        f"partition_key={partition!r}, raise_on_error=False); sys.exit(0 if r.success else 1)"
    )
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.mark.slow
def test_two_partners_delivering_at_once(platform_env):
    """Two partners upload slowly at the same moment while the sensor's look/receive runs
    every 0.3 s: neither file is taken half-written (each archived sha256 is the complete
    file's), each is accepted once, their two ingest runs execute concurrently against one
    instance and one store and both succeed, and both partners' rows reach staged."""
    from dagster import DagsterInstance

    from homicide_assets.defs.ingest.partitions import DELIVERY_PARTITIONS
    from homicide_assets.lib.landing import look, receive
    from homicide_assets.lib.registry import default_registry

    data_dir = platform_env
    police = max(sample_files("wmp", "death_reports", 12), key=lambda p: p.stat().st_size)
    hospital = max(sample_files("wht", "me_deaths", 3), key=lambda p: p.stat().st_size)
    uploads = [threading.Thread(target=_slow_upload, args=(src, data_dir.landing / src.parent.name / src.name))
               for src in (police, hospital)]
    for t in uploads:
        t.start()
    cursor, accepted, looks = {}, [], 0
    registry = default_registry()
    deadline = time.monotonic() + 120
    while len(accepted) < 2 and time.monotonic() < deadline:
        looked = look(data_dir, cursor)
        outcome = receive(data_dir, registry, looked.ready)
        assert not outcome.quarantined and not outcome.duplicates
        accepted += outcome.accepted
        cursor = looked.cursor
        looks += 1
        time.sleep(0.3)
    for t in uploads:
        t.join()
    assert looks > 3, "the uploads finished before the looks began: nothing concurrent was tested"
    assert sorted(d.file_name for d in accepted) == sorted([police.name, hospital.name])
    for d in accepted:
        source = police if d.file_name == police.name else hospital
        assert d.sha256 == hashlib.sha256(source.read_bytes()).hexdigest(), f"{d.file_name} taken half-written"

    instance = DagsterInstance.get()
    for d in accepted:
        instance.add_dynamic_partitions(DELIVERY_PARTITIONS[d.feed].name, [d.delivery_id])
    env = child_env(data_dir)
    runs = [_ingest_one(d.feed, d.delivery_id, env) for d in accepted]
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err[-4000:]

    assert ingest_build() == []
    with session_scope(data_dir.database_url()) as s:
        statuses = {d.file_name: (d.status, d.rows_read) for d in s.exec(select(Delivery))}
    assert set(statuses) == {police.name, hospital.name}
    assert all(status == "staged" and rows > 0 for status, rows in statuses.values()), statuses
    police_ids = set(pl.read_csv(police, infer_schema=False)["report_id"])
    hospital_ids = set(pl.read_csv(hospital, infer_schema=False)["me_case_id"])
    staged_reports = set(pl.read_parquet(data_dir.warehouse_file(["staged", "death_reports"]))["report_id"])
    staged_me = set(pl.read_parquet(data_dir.warehouse_file(["staged", "me_deaths"]))["me_case_id"])
    assert staged_reports and staged_reports <= police_ids
    assert staged_me and staged_me <= hospital_ids


# ----------------------------------------------------------------------------- same file twice


def _receive_in_child(root: str, url: str, candidate: tuple[str, str, str], barrier, results) -> None:
    try:
        os.environ["HOMICIDE_DATABASE_URL"] = url
        from homicide_assets.lib.landing import Candidate, receive
        from homicide_assets.lib.registry import default_registry
        from homicide_assets.lib.store import get_engine

        get_engine.cache_clear()  # never share a forked connection pool
        registry = default_registry()
        barrier.wait(30)
        out = receive(DataDir(Path(root)), registry, [Candidate(candidate[0], candidate[1], Path(candidate[2]))])
        results.put(("ok", len(out.accepted), len(out.duplicates), len(out.quarantined)))
    except Exception as err:  # reported to the parent, which fails the test
        results.put(("error", f"{type(err).__name__}: {err}"[:500]))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_for_race(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'race.db'}"
        return
    reason = postgres_missing()
    if reason:
        pytest.skip(reason)
    with throwaway_database("race") as url:
        yield url


def test_same_file_delivered_twice_at_once(store_for_race, tmp_path):
    """Two receivers (a sensor tick and an operator's build, say) take the same landing file
    at the same instant, eight times over: neither crashes, the delivery is recorded once,
    the loser's copy becomes a duplicate receipt, the archive holds the bytes once and the
    landing folder is empty."""
    from homicide_assets.lib.store import init_db

    ctx = multiprocessing.get_context("fork")
    init_db(store_for_race)
    for round_ in range(8):
        data_dir = DataDir(tmp_path / f"round{round_}").ensure()
        name = f"wmp__death_reports__202601{round_ + 1:02d}.csv"
        path = drop(data_dir.landing, "wmp", name, csv_bytes("death_reports", [death_report(100 + round_)]))
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        barrier, results = ctx.Barrier(2), ctx.Queue()
        receivers = [ctx.Process(target=_receive_in_child,
                                 args=(str(data_dir.root), store_for_race, ("wmp", name, str(path)), barrier, results))
                     for _ in range(2)]
        for p in receivers:
            p.start()
        for p in receivers:
            p.join(120)
        outcomes = sorted(results.get(timeout=10) for _ in receivers)
        assert all(o[0] == "ok" for o in outcomes), outcomes
        assert sum(o[1] for o in outcomes) == 1, f"accepted {outcomes}"
        assert sum(o[3] for o in outcomes) == 0, f"quarantined {outcomes}"
        with session_scope(store_for_race) as s:
            rows = list(s.exec(select(Delivery).where(Delivery.sha256 == sha)))
            receipts = Counter(r.outcome for r in s.exec(select(Receipt).where(Receipt.sha256 == sha)))
        assert len(rows) == 1
        assert receipts["accepted"] == 1 and receipts["duplicate"] == sum(o[2] for o in outcomes)
        assert [p.name for p in (data_dir.archive / "wmp").iterdir()] == [sha]
        assert not any(data_dir.landing.rglob("*.csv"))


# ----------------------------------------------------------------------------- database outage


class TcpRelay:
    """A loopback TCP relay to the PostgreSQL server that can be switched off and on.

    Off means the port refuses connections and every relayed connection is cut, as when
    the database host goes away; on listens again on the same port.
    """

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def on(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def off(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            try:
                server.shutdown(socket.SHUT_RDWR)  # stops listening and wakes the accept() thread
            except OSError:
                pass
            server.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.mark.postgres
@pytest.mark.slow
def test_database_unavailable_fails_clearly_then_succeeds_on_retry(platform_env, monkeypatch):
    """The SQL store (PostgreSQL through a relay) is down: `build` fails with StoreUnavailable
    naming host, port and database and takes nothing from landing; the store returns, the
    files are received, then it goes down again before ingest: the build fails clearly again
    with the deliveries safe in the archive and ledger; back up, a plain retry stages all."""
    from sqlalchemy.engine import make_url

    from homicide_assets.cli import take_landing

    reason = postgres_missing()
    if reason:
        pytest.skip(reason)
    data_dir = platform_env
    with throwaway_database("outage") as direct_url:
        direct = make_url(direct_url)
        relay = TcpRelay(direct.host or "127.0.0.1", direct.port or 5432)
        url = direct.set(port=relay.port).render_as_string(hide_password=False)
        load_definitions_first()
        monkeypatch.setenv("HOMICIDE_DATABASE_URL", url)
        put_in_landing(data_dir, sample_files("wmp", "death_reports", 3) + sample_files("wht", "me_deaths", 2))
        in_landing = sorted(p.name for p in data_dir.landing.rglob("*.csv"))
        distinct_contents = {hashlib.sha256(p.read_bytes()).hexdigest() for p in data_dir.landing.rglob("*.csv")}

        with pytest.raises(StoreUnavailable) as down:
            ingest_build()
        message = str(down.value)
        assert f"127.0.0.1:{relay.port}/{direct.database}" in message and "unavailable" in message
        assert sorted(p.name for p in data_dir.landing.rglob("*.csv")) == in_landing, "files left landing"
        assert not any(data_dir.archive.rglob("*"))

        relay.on()
        try:
            outcome, _ = take_landing(data_dir)
            assert len(outcome.accepted) == len(in_landing)
            relay.off()
            with pytest.raises(StoreUnavailable, match=direct.database):
                ingest_build()
            archived = {p.name for p in data_dir.archive.rglob("*") if p.is_file()}
            assert archived == distinct_contents  # header-only extracts share their bytes

            relay.on()
            failed = ingest_build()
        finally:
            relay.off()
        assert failed == []
        # read directly, not through the relay
        with session_scope(direct_url) as s:
            deliveries = list(s.exec(select(Delivery)))
        assert len(deliveries) == len(in_landing) and {d.status for d in deliveries} == {"staged"}
        assert pl.read_parquet(data_dir.warehouse_file(["staged", "death_reports"])).height > 0
        assert pl.read_parquet(data_dir.warehouse_file(["staged", "me_deaths"])).height > 0


# ----------------------------------------------------------------------------- failing write

_LIMITED_BUILD = """
import json, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from homicide_assets_tests.test_faults import ingest_build
print(json.dumps({"failed": ingest_build()}))
"""


def _bulky_death_reports(first: int, rows: int) -> bytes:
    """Death reports whose narratives do not compress, so file sizes are predictable."""
    import random

    rng = random.Random(first)
    return csv_bytes("death_reports", [
        death_report(first + i, narrative=" ".join(f"{rng.getrandbits(64):016x}" for _ in range(24)))
        for i in range(rows)
    ])


@pytest.mark.postgres
@pytest.mark.slow
def test_failing_write_mid_asset_leaves_no_partial_output_marked_materialised(tmp_path, monkeypatch):
    """With the instance and store on PostgreSQL, a build runs under a real file-size limit
    that the new staged death_reports table crosses half-way through its write (its held
    copy under ``models/staging/``, written inside the asset, is the first to cross): the run
    fails, the asset's latest materialisation is still the previous run's, the file on disk
    is still the previous, complete one (no partial file, no temporary left behind), nothing
    downstream materialised from it, and the ledger does not call the new deliveries staged;
    lifting the limit, a retry materialises it. (A failure of the IO manager's own write:
    ``test_a_failed_table_write_leaves_the_ledger_saying_parsed``.)"""
    from dagster import AssetKey, DagsterInstance

    from homicide_assets.cli import take_landing
    from homicide_assets_tests.test_postgres import use_postgres_instance

    reason = postgres_missing()
    if reason:
        pytest.skip(reason)
    limit = 288 * 1024  # raw partitions of 600 rows are ~160 KB; staged with 1,800 rows ~410 KB
    data_dir = DataDir(tmp_path / "data").ensure()
    load_definitions_first()
    with throwaway_database("store") as store, throwaway_database("dagster") as dagster:
        monkeypatch.setenv("HOMICIDE_DATA_DIR", str(data_dir.root))
        monkeypatch.setenv("HOMICIDE_PSEUDONYM_KEY", TEST_KEY)
        monkeypatch.delenv("HOMICIDE_PSEUDONYM_KEY_FILE", raising=False)
        monkeypatch.setenv("HOMICIDE_DATABASE_URL", store)
        use_postgres_instance(data_dir.root / "dagster_home", dagster, monkeypatch)
        staged_key = AssetKey(["staged", "death_reports"])
        staged_path = data_dir.warehouse_file(["staged", "death_reports"])

        drop(data_dir.landing, "wmp", "wmp__death_reports__20260105.csv", _bulky_death_reports(1000, 600))
        assert ingest_build() == []
        instance = DagsterInstance.get()
        before = instance.get_latest_materialization_event(staged_key)
        before_bytes = staged_path.read_bytes()
        assert len(before_bytes) < limit

        drop(data_dir.landing, "wmp", "wmp__death_reports__20260106.csv", _bulky_death_reports(2000, 600))
        drop(data_dir.landing, "wmp", "wmp__death_reports__20260107.csv", _bulky_death_reports(3000, 600))
        take_landing(data_dir)  # received without the limit: the deliveries themselves are larger than it
        env = {**os.environ}
        limited = subprocess.run([sys.executable, "-c", _LIMITED_BUILD, str(limit)], env=env, capture_output=True,
                                 text=True, timeout=600)
        assert limited.returncode == 0, limited.stderr[-4000:]
        failed = json.loads(limited.stdout.strip().splitlines()[-1])["failed"]
        assert failed == ["staged"], failed

        after = instance.get_latest_materialization_event(staged_key)
        assert after.run_id == before.run_id, "a failed write was recorded as a materialisation"
        assert staged_path.read_bytes() == before_bytes, "the previous staged file was overwritten or truncated"
        assert pl.read_parquet(staged_path).height == 600
        leftovers = [p for p in data_dir.warehouse.rglob("*") if p.name.endswith(".tmp")]
        assert leftovers == [], f"temporary files left behind: {leftovers}"
        failing_run = instance.get_runs(limit=1)[0]
        assert failing_run.is_failure
        events = [r.event_log_entry.dagster_event for r in instance.get_records_for_run(failing_run.run_id).records]
        materialised = {e.asset_key for e in events if e is not None and e.is_step_materialization}
        assert staged_key not in materialised
        assert AssetKey(["staged", "death_report_persons"]) not in materialised
        raws = [p.stat().st_size for p in (data_dir.warehouse / "raw" / "death_reports").glob("*.parquet")]
        assert len(raws) == 3 and max(raws) < limit  # the premise: only the staged write crossed the limit
        # the ledger does not say the new deliveries are staged in a table that was not written
        assert _ledger_statuses(store) == {
            "wmp__death_reports__20260105.csv": ("staged", 600),
            "wmp__death_reports__20260106.csv": ("parsed", None),
            "wmp__death_reports__20260107.csv": ("parsed", None),
        }

        assert ingest_build() == []
        assert instance.get_latest_materialization_event(staged_key).run_id != before.run_id
        assert pl.read_parquet(staged_path).height == 1800 and staged_path.stat().st_size > limit
        assert _ledger_statuses(store) == {
            f"wmp__death_reports__2026010{day}.csv": ("staged", 600) for day in (5, 6, 7)
        }


def _ledger_statuses(url: str) -> dict[str, tuple[str, int | None]]:
    """Each death_reports delivery's ledger status and rows staged."""
    with session_scope(url) as s:
        return {
            d.file_name: (d.status, d.rows_staged)
            for d in s.exec(select(Delivery).where(Delivery.feed == "death_reports"))
        }


_LIMITED_RECEIVE = """
import json, resource, signal, sys
from pathlib import Path
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), int(sys.argv[2])))
from homicide_assets.cli import take_landing
from homicide_assets.lib.settings import DataDir
try:
    take_landing(DataDir(Path(sys.argv[1])))
    print(json.dumps({"error": None}))
except OSError as err:
    print(json.dumps({"error": f"{type(err).__name__}: {err}"}))
"""


def test_failing_archive_write_leaves_the_delivery_in_landing(platform_env):
    """The archive copy of a delivery fails half-way (a real file-size limit, as a full disk
    would): the error says so, the file stays in landing untouched, no partial or temporary
    file is left in the archive, and the ledger records nothing, so the next look retries."""
    from homicide_assets.lib.store import init_db

    data_dir = platform_env
    payload = _bulky_death_reports(5000, 400)
    path = drop(data_dir.landing, "wmp", "wmp__death_reports__20260110.csv", payload)
    limit = len(payload) // 2
    init_db(data_dir.database_url())  # the ledger exists already, as it does after the first delivery
    env = child_env(data_dir)
    done = subprocess.run([sys.executable, "-c", _LIMITED_RECEIVE, str(data_dir.root), str(limit)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    error = json.loads(done.stdout.strip().splitlines()[-1])["error"]
    assert error and "File too large" in error
    assert path.read_bytes() == payload
    assert [p for p in data_dir.archive.rglob("*") if p.is_file()] == []
    with session_scope(data_dir.database_url()) as s:
        assert list(s.exec(select(Delivery))) == [] and list(s.exec(select(Receipt))) == []


def _immutable(path: Path, on: bool) -> str | None:
    """Set or clear the immutable attribute (even root cannot create files in such a
    directory); returns why it could not be set, or None."""
    chattr = shutil.which("chattr")
    if chattr is None:
        return "chattr (e2fsprogs) is not installed"
    done = subprocess.run([chattr, "+i" if on else "-i", str(path)], capture_output=True, text=True)
    return None if done.returncode == 0 else f"chattr {'+i' if on else '-i'} failed here: {done.stderr.strip()}"


@pytest.mark.slow
def test_a_failed_table_write_leaves_the_ledger_saying_parsed(tmp_path, monkeypatch):
    """The staged assets record a delivery as staged in the ledger only once the IO manager
    has written the table holding its rows. With ``warehouse/staged/`` made immutable (a real
    write failure the held staging in ``models/`` does not meet), the new delivery's table
    write fails: the run fails, the previous table is untouched, and the ledger still says the
    new delivery is ``parsed`` with no rows staged; once writable, a rerun stages it."""
    data_dir = fresh_data_dir(tmp_path / "data")
    monkeypatch.setenv("HOMICIDE_DATA_DIR", str(data_dir.root))
    monkeypatch.setenv("HOMICIDE_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.setenv("DAGSTER_HOME", str(data_dir.root / "dagster_home"))
    load_definitions_first()
    drop(data_dir.landing, "wmp", "wmp__death_reports__20260105.csv", csv_bytes("death_reports", [
        death_report(1000 + i) for i in range(20)]))
    assert ingest_build() == []
    staged_dir = data_dir.warehouse / "staged"
    before = (staged_dir / "death_reports.parquet").read_bytes()
    statuses = _ledger_statuses(data_dir.database_url())
    assert statuses == {"wmp__death_reports__20260105.csv": ("staged", 20)}

    drop(data_dir.landing, "wmp", "wmp__death_reports__20260106.csv", csv_bytes("death_reports", [
        death_report(2000 + i) for i in range(15)]))
    why = _immutable(staged_dir, True)
    if why:
        pytest.skip(f"cannot make a directory immutable: {why}")
    try:
        assert ingest_build() == ["staged"]
    finally:
        assert _immutable(staged_dir, False) is None
    assert (staged_dir / "death_reports.parquet").read_bytes() == before
    assert _ledger_statuses(data_dir.database_url()) == {
        "wmp__death_reports__20260105.csv": ("staged", 20),
        "wmp__death_reports__20260106.csv": ("parsed", None),
    }

    assert ingest_build() == []
    assert pl.read_parquet(staged_dir / "death_reports.parquet").height == 35
    assert _ledger_statuses(data_dir.database_url()) == {
        "wmp__death_reports__20260105.csv": ("staged", 20),
        "wmp__death_reports__20260106.csv": ("staged", 15),
    }
