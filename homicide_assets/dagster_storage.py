"""The embedded instance's event log: Dagster's SQLite storage, writing a batch in one transaction.

A run over many deliveries materialises one ``raw/<feed>`` partition per delivery, and Dagster
records one ``ASSET_MATERIALIZATION`` event per partition. Dagster's own SQLite event log
(:class:`SqliteEventLogStorage`) stores every event on its own: a new engine and connection to
the run's shard, a commit, a close (the last connection to a WAL database checkpoints it), then
the same again on the ``index`` shard for the asset tables. At ~1,800 deliveries that was 44% of
a force-decade build (py-spy, ``benchmarks/scale.md``).

Dagster already groups those events: a step's materialisations of a multi-partition output
carry batch metadata, and with ``DAGSTER_EVENT_BATCH_SIZE`` > 0 the instance hands them to
``EventLogStorage.store_event_batch`` together. Dagster's PostgreSQL storage writes such a batch
in one statement; the SQLite one inherits the default, which stores them one at a time. This
subclass writes a batch of materialisations (or observations, or a run's per-partition planned
materialisations) the way ``store_event`` writes one, in one transaction per shard:

- the rows in the run's shard, exactly as ``store_event`` inserts them;
- the same rows mirrored in the ``index`` shard, their asset event tags, and the asset table's
  latest-event columns (as ``store_event`` updates them, once per asset key with the batch's
  last event of that key: the values an event-at-a-time write would leave).

Anything else (step and run events, planned events, check evaluations, a batch mixing event
types or runs) goes through Dagster's own ``store_event``, unchanged. Reads are Dagster's.

Durability is SQLite's, unchanged: the same WAL journal, ``synchronous`` setting and commit per
transaction as Dagster's class; a committed batch survives ``kill -9`` of the process. What a
crash can lose is what the instance holds in memory before the batch is written: the events of
one step's output, generated in a loop right after the output was handled. A step killed then
has no ``STEP_SUCCESS``, so its run does not succeed either; ``homicide-assets build`` re-runs
any delivery whose partition has no materialisation (``cli.pending_deliveries``). SECURITY.md
states this.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from dagster import DagsterEventType, EventLogEntry
from dagster._config import StringSource
from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._serdes import ConfigurableClassData

#: Events this storage writes as one transaction per shard (Dagster's PostgreSQL storage batches the first two).
#: Dagster's SQLite ``store_event`` takes one path for all three: the run shard, then the index
#: shard's copy, asset event tags and asset table.
BATCHED_EVENT_TYPES = frozenset({DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.ASSET_OBSERVATION,
                                 DagsterEventType.ASSET_MATERIALIZATION_PLANNED})

#: ``DAGSTER_EVENT_BATCH_SIZE`` that ``homicide-assets build`` sets (unless set already): the most
#: events the instance holds before writing them (a step's batch ends earlier when its output does).
BUILD_EVENT_BATCH_SIZE = 1000

#: The ``event_log_storage`` entry of the embedded instance's ``dagster.yaml``.
DAGSTER_YAML_EVENT_LOG_STORAGE = """\
event_log_storage:
  module: homicide_assets.dagster_storage
  class: BatchingSqliteEventLogStorage
  config:
    dagster_home:
      env: DAGSTER_HOME
"""


def event_logs_directory(dagster_home: str) -> str:
    """Where Dagster's default SQLite instance keeps its event logs (``history/runs``)."""
    return os.path.join(dagster_home, "history", "runs", "")


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """:class:`SqliteEventLogStorage` with ``store_event_batch`` in one transaction per shard.

    Configured in ``dagster.yaml`` with ``dagster_home`` (the instance's ``DAGSTER_HOME``); it
    keeps its files where the default storage does (``history/runs/<run_id>.db`` and
    ``index.db``), so an instance can switch to or from it without moving anything.
    """

    def __init__(self, dagster_home: str, inst_data: ConfigurableClassData | None = None):
        self._dagster_home = dagster_home
        super().__init__(base_dir=event_logs_directory(dagster_home), inst_data=inst_data)

    @classmethod
    def config_type(cls):
        return {"dagster_home": StringSource}

    @classmethod
    def from_config_value(cls, inst_data, config_value):  # ty: ignore[invalid-method-override]
        return cls(inst_data=inst_data, **config_value)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        events = list(events)
        if not events:
            return
        batchable = all(
            e.is_dagster_event and e.dagster_event_type in BATCHED_EVENT_TYPES and e.get_dagster_event().asset_key
            for e in events
        ) and len({e.run_id for e in events}) == 1
        if not batchable:
            super().store_event_batch(events)  # one at a time, Dagster's store_event
            return
        rows = [self._event_to_row(e) for e in events]
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        with self.index_transaction() as conn:
            result = conn.execute(
                SqlEventLogStorageTable.insert().returning(SqlEventLogStorageTable.c.id, sort_by_parameter_order=True),
                rows,
            )
            event_ids = [row[0] for row in result.fetchall()]
            if len(event_ids) != len(events) or any(i is None for i in event_ids):
                raise DagsterInvariantViolationError("Cannot store asset event tags for null event id.")
            self._store_asset_event_tags(conn, events, event_ids)
            last: dict = {}
            for event, event_id in zip(events, event_ids):
                last[event.get_dagster_event().asset_key] = (event, event_id)
            for event, event_id in last.values():
                self._store_asset_event(conn, event, event_id)
