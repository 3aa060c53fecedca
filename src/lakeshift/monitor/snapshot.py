"""Each table's state as an on-call engineer asks for it: last run, last success,
watermark, batches waiting in the lake, last error, lag. Read from the lake
(manifests, watermark file) and the target's `_lakeshift_runs`/`_lakeshift_loads`
with a few pipeline-wide queries; no MySQL connection."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from lakeshift.batch import Cursor
from lakeshift.batch_state import SKIPPED_MODE, classify, pending
from lakeshift.config.loader import Config
from lakeshift.config.models import PipelineConfig, TableConfig
from lakeshift.errors import LakeshiftError, one_line
from lakeshift.identifiers import split_table_name
from lakeshift.load.state import LoadRecord, RunRecord, as_utc
from lakeshift.redact import redact

log = logging.getLogger("lakeshift.monitor")

RUNS_PER_TABLE = 20  # newest runs read per table: enough to find the last one that was not refused
_TIMESTAMP_STRATEGIES = ("hybrid", "timestamp_only")


@dataclass
class TableStatus:
    pipeline: str  # the pipeline key (what -p takes)
    table: str
    strategy: str
    target_table: str
    last_run: RunRecord | None = None  # newest run that was not refused
    last_refusal: RunRecord | None = None  # set when the newest run was refused (another run held the lock)
    last_success_at: datetime | None = None
    last_error: RunRecord | None = None  # newest failed run, when there was no success after it
    watermark: Cursor | None = None
    watermark_source: str = "none"
    batches_waiting: int | None = None  # None: unknown (the target's load records could not be read)
    rows_waiting: int | None = None
    newest_loaded_at: datetime | None = None  # newest source timestamp loaded (timestamp cursors)
    lag_seconds: float | None = None
    freshness: Any = None  # the table's `freshness` config (a Freshness), or None
    problems: list[str] = field(default_factory=list)  # what could not be read (lake or target)


@dataclass
class PipelineStatus:
    key: str
    name: str
    target: str
    tables: list[TableStatus]
    target_error: str | None = None


def cursor_time(cursor: Cursor | None) -> datetime | None:
    """A cursor's timestamp as aware UTC (a DATETIME cursor, naive, is taken as UTC)."""
    if cursor is None or not cursor.timestamp:
        return None
    try:
        return as_utc(cursor.timestamp)
    except ValueError:
        return None


def run_seconds(run: RunRecord) -> float | None:
    start, end = as_utc(run.started_at), as_utc(run.finished_at)
    return (end - start).total_seconds() if start and end else None


def one_line_error(text: str | None, width: int | None = None) -> str | None:
    """An error on one line, secrets redacted; cut at `width` with a visible '…' (text output only)."""
    if not text:
        return None
    line = one_line(redact(text))
    return line if width is None or len(line) <= width else line[: width - 1] + "…"


def chosen_pipelines(config: Config, keys: list[str] | None) -> list[PipelineConfig]:
    """The named pipelines; without names every pipeline, except the built-in v1.0 `default`
    one when its built-in target is not usable (the v1.0 variables are not set: never used)."""
    if keys:
        return [config.pipeline(k) for k in keys]
    from lakeshift.config import legacy
    from lakeshift.config.problems import warn_broken

    warn_broken(config)  # a broken pipeline file is named once, not silently left out
    out = []
    for key in sorted(config.pipelines):
        p = config.pipelines[key]
        target = config.targets.get(p.pipeline.target)
        if target is not None and target.origin == legacy.ORIGIN and not target.usable:
            continue
        out.append(p)
    return out


def read_pipelines(config: Config, keys: list[str] | None = None, now: datetime | None = None) -> list[PipelineStatus]:
    """Every (or the named) pipeline's tables."""
    now = now or datetime.now(timezone.utc)
    return [read_pipeline(config, p, now) for p in chosen_pipelines(config, keys)]


def read_pipeline(config: Config, p: PipelineConfig, now: datetime) -> PipelineStatus:
    runs, successes, loads, target_error = _target_state(config, p)
    lake = _lake(config, p)

    def one(name: str) -> TableStatus:
        return _table_status(p, name, p.tables[name], lake, runs.get(name, []), successes.get(name),
                             loads.get(name, {}), now, target_error)

    names = list(p.tables)
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(names))), thread_name_prefix="lakeshift-status") as pool:
        tables = list(pool.map(one, names))
    return PipelineStatus(p.key, p.name, p.pipeline.target, tables, target_error)


def _lake(config: Config, p: PipelineConfig) -> Any:
    from lakeshift.lake import Lake

    try:
        return Lake.from_config(config.storage_for(p.pipeline.s3.storage))
    except LakeshiftError as exc:
        return exc


def _target_state(config: Config, p: PipelineConfig) -> tuple[dict[str, list[RunRecord]], dict[str, datetime],
                                                             dict[str, dict[str, LoadRecord]], str | None]:
    """Runs (newest first), last successes and load records per table; or the reason the target could not be read."""
    from lakeshift.load import open_target

    runs: dict[str, list[RunRecord]] = {}
    try:
        loader: Any = open_target(config.target(p.pipeline.target), config.settings)
        try:
            found, successes, loads = loader.state.pipeline_state(p.name, RUNS_PER_TABLE)
            for run in found:
                runs.setdefault(run.table, []).append(run)
        finally:
            loader.close()
    except LakeshiftError as exc:
        return {}, {}, {}, one_line_error(str(exc))
    return runs, successes, loads, None


def _table_status(p: PipelineConfig, name: str, t: TableConfig, lake: Any, runs: list[RunRecord],
                  success: datetime | None, records: dict[str, LoadRecord], now: datetime,
                  target_error: str | None) -> TableStatus:
    target_table = t.target_name or split_table_name(t.full_name or name)[1]
    st = TableStatus(p.key, name, t.cdc_strategy, target_table, freshness=t.freshness)
    if target_error:
        st.problems.append(f"target: {target_error}")
    _from_runs(st, runs, success, records)
    _from_loads(st, t, records, now)
    if isinstance(lake, Exception):
        st.problems.append(f"lake: {one_line_error(str(lake))}")
        return st
    try:
        _from_lake(st, p, name, lake, records if target_error is None else None)
    except LakeshiftError as exc:
        st.problems.append(f"lake: {one_line_error(str(exc))}")
    return st


def _from_runs(st: TableStatus, runs: list[RunRecord], success: datetime | None,
               records: dict[str, LoadRecord]) -> None:
    st.last_run = next((r for r in runs if r.status != "refused"), None)
    if runs and runs[0].status == "refused":
        st.last_refusal = runs[0]
    loaded_at = [r.loaded_at for r in records.values() if r.loaded_at and r.mode != SKIPPED_MODE]
    # A run history pruned (run_history_days) or never recorded: the newest load record says it too.
    st.last_success_at = success or (max(loaded_at) if loaded_at else None)
    failed = next((r for r in runs if r.status in ("failed", "interrupted")), None)
    failed_at = as_utc(failed.started_at) if failed is not None else None
    if failed is not None and (st.last_success_at is None or (failed_at is not None and failed_at >= st.last_success_at)):
        st.last_error = failed


def _from_loads(st: TableStatus, t: TableConfig, records: dict[str, LoadRecord], now: datetime) -> None:
    if t.cdc_strategy not in _TIMESTAMP_STRATEGIES:
        return
    times = [ts for r in records.values() if r.mode != SKIPPED_MODE
             for ts in [cursor_time(r.watermark_high)] if ts is not None]
    if times:
        st.newest_loaded_at = max(times)
        st.lag_seconds = max(0.0, (now - st.newest_loaded_at).total_seconds())


def _from_lake(st: TableStatus, p: PipelineConfig, name: str, lake: Any,
               records: dict[str, LoadRecord] | None) -> None:
    """`records` None: the target could not be read, so which batches wait is unknown."""
    from lakeshift.lake import TableLake

    tl = TableLake(lake, p.isolation_prefix, name)
    if records is not None:
        waiting = pending(classify(tl.manifests(), records))
        st.batches_waiting = len(waiting)
        st.rows_waiting = sum(m.rows for m in waiting)
    if st.strategy != "full_sync":
        st.watermark, info = tl.effective_watermark()
        st.watermark_source = info.source
