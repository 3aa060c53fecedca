"""Run a plan: build the collaborators, run tables through the DAG executor,
report progress, and return one outcome per table."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lakeshift.engine.dag import Outcome, run_dag
from lakeshift.engine.plan import Plan
from lakeshift.engine.progress import Progress
from lakeshift.engine.table_task import TableResult, TableTask
from lakeshift.lineage import open_lineage

if TYPE_CHECKING:
    from lakeshift.engine.contracts import TargetLoader
    from lakeshift.lake import BatchWriter, TableLake
    from lakeshift.source import MySQLReader

log = logging.getLogger("lakeshift.engine")


class RunContext:
    """Factories for one run's source reader, lake and loaders. Connections
    are opened per table task, so parallel tables never share one."""

    def __init__(self, plan: Plan) -> None:
        from lakeshift.lake import Lake

        cfg, p = plan.config, plan.pipeline.pipeline
        self.plan = plan
        self.settings = cfg.settings
        self.source = cfg.source(p.source) if plan.stages.extract else None
        self.target = cfg.target(p.target) if plan.stages.load else None
        self.storage = cfg.storage_for(p.s3.storage)
        self.lake = Lake.from_config(self.storage)
        self._pool: Any = None
        self._lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._state_ready = False

    def reader(self) -> MySQLReader:
        from lakeshift.source import MySQLPool, MySQLReader

        with self._lock:
            if self._pool is None:
                from lakeshift.source.worker import WorkerPool

                workers = WorkerPool()  # connectorx children shared by the run's tables
                if any(t.config.cdc_strategy != "binlog" for t in self.plan.tables):
                    # binlog tables read changes without one (a snapshot starts it when it reads): a
                    # child started per --follow cycle cost more CPU than the cycle's own read
                    workers.prestart()
                self._pool = MySQLPool(self.source, self.settings, cx_workers=workers)
        return MySQLReader(self.source, self.settings, self._pool)

    def loader(self) -> TargetLoader:
        from lakeshift.load import open_target

        wait = self.plan.wait  # --wait: the load lock waits as long as the extract lock
        return open_target(self.target, self.settings, lake_credentials=self.storage,
                           lock_timeout=None if wait is None else max(wait, float(self.settings.default_timeout)))

    def ensure_state(self, loader: TargetLoader) -> None:
        """The target's state tables, made sure of by the run's first table: each
        table has its own loader, and asking again costs every table catalogue
        queries (and, on PostgreSQL, the scan for stale staging tables)."""
        with self._state_lock:
            if self._state_ready:
                loader.assume_state_ready()
                return
            loader.ensure_state_tables()
            self._state_ready = True

    def table_lake(self, name: str) -> TableLake:
        from lakeshift.lake import TableLake

        return TableLake(self.lake, self.plan.pipeline.isolation_prefix, name)

    def batch_writer(self, table_lake: TableLake, batch_id: str, started: datetime, schema: Any,
                     on_part: Callable[..., None] | None, on_rows: Callable[..., None] | None = None,
                     ordinal: bool = False) -> BatchWriter:
        from lakeshift.lake import BatchWriter

        return BatchWriter(table_lake, batch_id, started, schema, self.plan.pipeline.pipeline.s3, on_part=on_part,
                           on_rows=on_rows, ordinal=ordinal)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()  # and its connectorx children


@dataclass
class RunReport:
    plan: Plan
    outcomes: list[Outcome[TableResult]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(o.status == "ok" for o in self.outcomes)


def _prune_history(plan: Plan, ctx: RunContext) -> None:
    """Run history older than the pipeline's run_history_days goes (a warning at worst)."""
    from lakeshift.monitor.history import prune

    try:
        loader = ctx.loader()
    except Exception as exc:  # noqa: BLE001 - housekeeping never fails the run
        log.warning("could not prune the run history: %s", exc)
        return
    try:
        prune(plan.pipeline, loader)
    finally:
        loader.close()


def run_plan(plan: Plan, live_progress: bool | None = None) -> RunReport:
    from lakeshift.memory import tune_allocators

    tune_allocators()  # before any table thread allocates: flat memory (lakeshift/memory.py)
    started = time.monotonic()
    ctx = RunContext(plan)
    by_name = {t.name: t for t in plan.tables}
    progress = Progress(list(by_name), live_progress)
    lineage = open_lineage(plan, ctx)  # None unless OpenLineage is configured (lineage.py)

    def run_table(name: str) -> TableResult:
        task = TableTask(plan, by_name[name], ctx, progress.table(name))
        return lineage.around(task.table, task.result, task.run) if lineage else task.run()

    try:
        with progress:
            outcomes = run_dag(
                [(t.name, t.depends_on) for t in plan.tables],
                run_table,
                workers=plan.workers,
                on_done=progress.done,
            )
        if plan.stages.load and any(o.status == "ok" for o in outcomes):  # a target that works
            _prune_history(plan, ctx)
    finally:
        ctx.close()
    return RunReport(plan=plan, outcomes=outcomes, seconds=time.monotonic() - started)
