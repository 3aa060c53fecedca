"""Run a plan: build the collaborators, run tables through the DAG executor,
report progress, and return one outcome per table."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lakeshift.engine.dag import Outcome, run_dag
from lakeshift.engine.plan import Plan
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


class Progress:
    """Rows per table: a live bar on a terminal; otherwise (cron) a log line per
    table every `interval` seconds while it reads, so a long table never looks stuck."""

    INTERVAL = 30.0

    def __init__(self, names: list[str], live: bool | None = None, interval: float | None = None) -> None:
        self.live = sys.stderr.isatty() if live is None else live
        self.interval = self.INTERVAL if interval is None else interval
        self.rows: dict[str, int] = {n: 0 for n in names}
        self.started: dict[str, float] = {}
        self._logged: dict[str, float] = {}
        self._bar: Any = None
        self._ids: dict[str, Any] = {}
        self._lock = threading.Lock()
        if self.live:
            from rich.console import Console
            from rich.progress import Progress as Bar, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._bar = Bar(SpinnerColumn(), TextColumn("{task.description}"),
                            TextColumn("{task.completed:,} rows"), TextColumn("{task.fields[rate]}"),
                            TimeElapsedColumn(), console=Console(stderr=True), transient=False)
            for n in names:
                self._ids[n] = self._bar.add_task(n, total=None, rate="", start=False)

    def __enter__(self) -> Progress:
        if self._bar:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar:
            self._bar.stop()

    def add(self, name: str, rows: int) -> None:
        with self._lock:
            now = time.monotonic()
            first = name not in self.started
            self.started.setdefault(name, now)
            self.rows[name] += rows
            elapsed = max(now - self.started[name], 1e-6)
            if self._bar:
                if first:
                    self._bar.start_task(self._ids[name])
                self._bar.update(self._ids[name], completed=self.rows[name],
                                 rate=f"{self.rows[name] / elapsed:,.0f} rows/s")
            elif now - self._logged.setdefault(name, self.started[name]) >= self.interval:
                self._logged[name] = now
                log.info("%s: extracting, %s rows read so far (%s rows/s, %.0fs)", name, f"{self.rows[name]:,}",
                         f"{self.rows[name] / elapsed:,.0f}", elapsed)

    def done(self, outcome: Outcome[TableResult]) -> None:
        r = outcome.result
        if outcome.status == "ok" and r:
            msg = (f"{outcome.name}: ok, {r.rows_extracted:,} rows extracted in {r.batches_written} batch(es) written, "
                   f"{r.rows_loaded:,} loaded in {r.batches_loaded} batch(es), {r.seconds:.2f}s")
        elif outcome.status == "skipped":
            msg = f"{outcome.name}: skipped because {outcome.blocked_by} did not succeed"
        else:
            msg = f"{outcome.name}: FAILED: {outcome.error}"
        if self._bar:
            self._bar.update(self._ids[outcome.name], description=f"{outcome.name} [{outcome.status}]")
        (log.error if outcome.status == "failed" else log.info)(msg)


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
        task = TableTask(plan, by_name[name], ctx, progress.add)
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
