"""`--dry-run`: what a sync would do, reading but never writing anything. The
batch a table would extract comes from the run's own planning (batch_spec.py)
and the batches it would load from the run's own rule (batch_state.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lakeshift.batch_state import classify, count_by_state
from lakeshift.batch_state import pending as pending_batches
from lakeshift.engine.batch_spec import BatchSpec, batches_after_extract, plan_batch
from lakeshift.engine.contracts import TargetLoader
from lakeshift.engine.deletes import describe_deletes
from lakeshift.engine.history import describe_history
from lakeshift.engine.plan import Plan, TablePlan
from lakeshift.engine.runner import RunContext
from lakeshift.errors import LakeshiftError

THIS_RUN = "this run's snapshot"  # how the pending list names the batch the run would write


@dataclass
class TablePreview:
    name: str
    strategy: str
    source: str
    window: str
    lake: str
    target: str
    merge: str
    pending: list[str]
    depends_on: tuple[str, ...]
    deletes: str = ""  # what becomes of rows deleted in MySQL (hard_deletes)
    not_loaded: str = ""  # batches no run loads, e.g. "2 superseded, 1 sample"
    warnings: list[str] = field(default_factory=list)
    error: str = ""  # why this table would fail; the preview goes on with the next table


def preview(plan: Plan) -> list[TablePreview]:
    """Every table's preview; a table that would fail has its `error` (all of them reported, not the first)."""
    ctx = RunContext(plan)
    loader = ctx.loader() if plan.stages.load else None
    try:
        return [_preview_or_error(plan, ctx, loader, t) for t in plan.tables]
    finally:
        if loader is not None:
            loader.close()
        ctx.close()


def _preview_or_error(plan: Plan, ctx: RunContext, loader: TargetLoader | None, t: TablePlan) -> TablePreview:
    try:
        return _preview(plan, ctx, loader, t)
    except LakeshiftError as exc:
        return TablePreview(t.name, t.config.cdc_strategy, t.source_table, "-", "-", "-", "-", [], t.depends_on,
                            error=exc.message)


def _preview(plan: Plan, ctx: RunContext, loader: TargetLoader | None, t: TablePlan) -> TablePreview:
    table_lake = ctx.table_lake(t.name)
    spec = None
    if plan.stages.extract and t.config.cdc_strategy == "binlog":
        return _binlog_preview(plan, ctx, loader, t)
    if plan.stages.extract:
        reader = ctx.reader()
        try:
            spec = plan_batch(t, plan.pipeline.name, plan.limit, reader, table_lake, loader)
        finally:
            reader.close()
    row = TablePreview(t.name, t.config.cdc_strategy, _source(t), _window(spec, plan.limit),
                       table_lake.uri(""), "(not loaded: backup only)", spec.check.describe() if spec else "-",
                       [], t.depends_on, deletes=describe_deletes(plan, t),
                       warnings=list(spec.check.warnings) if spec else [])
    return _with_loads(plan, loader, t, row, spec.head if spec else None,
                       batches_after_extract(spec, table_lake.manifests()))


def _source(t: TablePlan) -> str:
    """The source table, or the custom_sql (shortened) and the checks its batches must pass."""
    sql = t.config.custom_sql
    text = t.source_table if not sql else "custom_sql " + (" ".join(sql.split())[:77] + "..." if len(sql) > 80
                                                            else " ".join(sql.split()))
    checks = t.config.data_quality_checks
    if checks:
        from lakeshift.config.quality import describe_check

        text += "  checks: " + ", ".join(f"{describe_check(c)}" + (" (warn)" if c.severity == "warn" else "")
                                         for c in checks)
    return text


def _binlog_preview(plan: Plan, ctx: RunContext, loader: TargetLoader | None, t: TablePlan) -> TablePreview:
    """A binlog table: the server is checked and its position read, no row and no event."""
    from lakeshift.engine.binlog_batch import plan_binlog_batch

    table_lake = ctx.table_lake(t.name)
    reader = ctx.reader()
    try:
        b = plan_binlog_batch(t, plan.pipeline, reader, table_lake)
    finally:
        reader.close()
    low = b.head.watermark_low.binlog if b.head.watermark_low else None
    window = (f"snapshot (full read) at binlog position {b.end.describe()}" if b.snapshot else
              f"changes from binlog {low.describe() if low else '?'} up to {b.end.file}:{b.end.pos}"
              + (" (none committed since)" if b.empty else ""))
    key = ", ".join(b.head.primary_key)
    row = TablePreview(t.name, "binlog", t.source_table, window, table_lake.uri(""), "(not loaded: backup only)",
                       f"replace whole table; key {key}" if b.snapshot else f"apply changes on key {key}", [],
                       t.depends_on, deletes=_binlog_deletes(t.config.hard_deletes), warnings=list(b.notes))
    manifests = table_lake.manifests()
    return _with_loads(plan, loader, t, row, b.head, manifests if b.empty else [*manifests, b.head])


def _with_loads(plan: Plan, loader: TargetLoader | None, t: TablePlan, row: TablePreview, mine: Any,
                manifests: list[Any]) -> TablePreview:
    """The batches the run would load, and those no run loads."""
    row.merge = describe_history(t.config) or row.merge  # a history is written as versions, whatever the mode
    if loader is not None:
        row.target = f"{plan.config.target(plan.pipeline.pipeline.target).schema_}.{t.target_table}"
        statuses = classify(manifests, _loaded(loader, plan.pipeline.name, t.name))
        row.pending = [THIS_RUN if m is mine else m.batch_id for m in pending_batches(statuses)]
        row.not_loaded = count_by_state([s for s in statuses if s.manifest is not mine], ("superseded", "sample"))
    return row


def _window(spec: BatchSpec | None, limit: int | None) -> str:
    if spec is None:
        return "(not extracted: load only)"
    text = spec.window.describe() + (f", at most {limit} rows" if limit else "")
    text += " (columns added since the last batch: every row is read again)" if spec.read_from_start else ""
    return text + (" (a sample batch: never loaded)" if spec.sample else "")


def _loaded(loader: TargetLoader, pipeline: str, table: str) -> dict[str, Any]:
    try:
        return dict(loader.loaded_batches(pipeline, table))
    except LakeshiftError:
        return {}


def _binlog_deletes(hard_deletes: str) -> str:
    if hard_deletes == "soft":
        return "marked in _lakeshift_deleted_at (read from the binlog; hard_deletes: soft)"
    return "removed from the target (read from the binlog)"
