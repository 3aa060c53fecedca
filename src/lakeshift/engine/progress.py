"""A run's progress per table, by phase: `extract` (rows read, of an estimated
total when the catalogue gives one: percentage and time left), `load` (the batch
being committed, one transaction: the phase is shown, never a made-up
percentage), then `ok`/`failed`/`skipped`. On a terminal a live rich bar; without
one (cron) a log line per table every `interval` seconds, and one per phase change
of a table that has been running that long, so a long table never looks stuck."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from lakeshift.errors import LakeshiftError

if TYPE_CHECKING:
    from lakeshift.engine.batch_spec import BatchSpec
    from lakeshift.engine.dag import Outcome
    from lakeshift.engine.table_task import TableResult

log = logging.getLogger("lakeshift.engine")


class TableProgress(Protocol):
    """What a table task reports while it runs."""

    def rows(self, n: int) -> None: ...

    def phase(self, name: str, total: int | None = None, note: str = "") -> None: ...


class RowCounter:
    """A TableProgress over a `(table, rows)` callable (tests, callers of old)."""

    def __init__(self, table: str, add: Callable[[str, int], None]) -> None:
        self.table, self.add = table, add

    def rows(self, n: int) -> None:
        self.add(self.table, n)

    def phase(self, name: str, total: int | None = None, note: str = "") -> None:
        pass


def table_progress(table: str, progress: TableProgress | Callable[[str, int], None]) -> TableProgress:
    return progress if hasattr(progress, "phase") else RowCounter(table, progress)  # type: ignore[return-value,arg-type]


class EstimatingSource(Protocol):
    def estimated_rows(self, full_name: str) -> int | None: ...


def expected_rows(source: EstimatingSource, spec: BatchSpec, limit: int | None) -> int | None:
    """About how many rows this extract reads, from the catalogue: known when it reads the
    whole table (a snapshot, a first load); None for an incremental window or a query."""
    window = spec.window
    if window.empty:
        return 0
    if window.low is not None or spec.desc.custom_sql:
        return None
    try:
        estimate = source.estimated_rows(f"{spec.desc.schema}.{spec.desc.table}")
    except LakeshiftError as exc:  # progress never fails a run
        log.warning("%s: no row estimate for the progress display: %s", spec.desc.full_name, exc)
        return None
    return None if estimate is None else (estimate if limit is None else min(estimate, limit))


class _Table:
    """One table's state: phase, rows read, estimated total."""

    def __init__(self) -> None:
        self.phase, self.note = "waiting", ""
        self.rows, self.total = 0, None  # type: int, int | None
        self.started: float | None = None
        self.logged = 0.0

    def pct(self) -> str:
        return f" ({min(self.rows * 100 // self.total, 99)}%)" if self.total else ""  # an estimate: never 100 early

    def count(self) -> str:
        return f"{self.rows:,} of ~{self.total:,} rows" if self.total is not None else f"{self.rows:,} rows"


class Progress:
    """Every table of a run (see the module's doc). `table(name)` is what its task reports to."""

    INTERVAL = 30.0

    def __init__(self, names: list[str], live: bool | None = None, interval: float | None = None,
                 console: Any = None) -> None:
        self.live = sys.stderr.isatty() if live is None else live
        self.interval = self.INTERVAL if interval is None else interval
        self.tables: dict[str, _Table] = {n: _Table() for n in names}
        self._bar: Any = None
        self._ids: dict[str, Any] = {}
        self._lock = threading.Lock()
        if self.live:
            from rich.console import Console
            from rich.progress import (BarColumn, Progress as Bar, SpinnerColumn, TaskProgressColumn, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self._bar = Bar(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                            TextColumn("{task.fields[count]}"), TextColumn("{task.fields[rate]}"),
                            TimeElapsedColumn(), TimeRemainingColumn(),
                            console=console or Console(stderr=True), transient=False)
            for n in names:
                self._ids[n] = self._bar.add_task(n, total=None, count="", rate="", start=False)

    def __enter__(self) -> Progress:
        if self._bar:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar:
            self._bar.stop()

    def table(self, name: str) -> TableProgress:
        progress = self

        class Reporter:
            def rows(self, n: int) -> None:
                progress.add(name, n)

            def phase(self, phase: str, total: int | None = None, note: str = "") -> None:
                progress.phase(name, phase, total, note)

        return Reporter()

    def _start(self, name: str, t: _Table, now: float) -> None:
        if t.started is None:
            t.started, t.logged = now, now
            if self._bar:
                self._bar.start_task(self._ids[name])

    def phase(self, name: str, phase: str, total: int | None = None, note: str = "") -> None:
        with self._lock:
            now, t = time.monotonic(), self.tables[name]
            self._start(name, t, now)
            t.phase, t.note, t.total = phase, note, total
            if self._bar:
                self._show(name, t, now)
            elif phase != "extract" and t.started is not None and now - t.started >= self.interval:
                t.logged = now  # a long table: its phase change too (a quick one stays quiet)
                log.info("%s: %s%s%s", name, _doing(phase), f" {note}" if note else "",
                         f" ({t.count()} read)" if t.rows else "")

    def add(self, name: str, rows: int) -> None:
        with self._lock:
            now, t = time.monotonic(), self.tables[name]
            self._start(name, t, now)
            t.rows += rows
            if t.phase == "waiting":
                t.phase = "extract"  # rows are read: a caller that reports no phase extracts
            if t.total is not None and t.rows > t.total:
                t.total = t.rows  # the catalogue's estimate was low
            if self._bar:
                self._show(name, t, now)
            elif now - t.logged >= self.interval:
                t.logged = now
                elapsed = max(now - (t.started or now), 1e-6)
                rate = t.rows / elapsed
                left = f", about {(t.total - t.rows) / rate:.0f}s left" if t.total and rate else ""
                log.info("%s: %s, %s read so far%s (%s rows/s, %.0fs%s)", name, _doing(t.phase),
                         t.count(), t.pct(), f"{rate:,.0f}", elapsed, left)

    def _show(self, name: str, t: _Table, now: float) -> None:
        elapsed = max(now - (t.started or now), 1e-6)
        total = t.total if t.phase == "extract" else None  # a load is one transaction: no bar to fill
        if total is None:
            self._no_total(name)
        self._bar.update(self._ids[name], description=f"{name} {t.phase}{f' {t.note}' if t.note else ''}",
                         completed=t.rows, total=total, count=t.count(), rate=f"{t.rows / elapsed:,.0f} rows/s")

    def _no_total(self, name: str) -> None:
        """update() keeps the old total when given None; a rich Task's `total` is public."""
        for task in self._bar.tasks:
            if task.id == self._ids[name]:
                task.total = None

    def done(self, outcome: Outcome[TableResult]) -> None:
        r = outcome.result
        if outcome.status == "ok" and r:
            msg = (f"{outcome.name}: ok, {r.rows_extracted:,} rows extracted in {r.batches_written} batch(es) written, "
                   f"{r.rows_loaded:,} loaded in {r.batches_loaded} batch(es), {r.seconds:.2f}s")
        elif outcome.status == "skipped":
            msg = f"{outcome.name}: skipped because {outcome.blocked_by} did not succeed"
        else:
            msg = f"{outcome.name}: FAILED: {outcome.error}"
        with self._lock:
            t = self.tables[outcome.name]
            t.phase, t.note = ("done" if outcome.status == "ok" else outcome.status), ""
            if self._bar:
                if outcome.status != "ok":
                    self._no_total(outcome.name)
                self._bar.update(self._ids[outcome.name], description=f"{outcome.name} {t.phase}",
                                 total=t.rows if outcome.status == "ok" else None, completed=t.rows)
        (log.error if outcome.status == "failed" else log.info)(msg)


def _doing(phase: str) -> str:
    return {"extract": "extracting", "load": "loading"}.get(phase, phase)
