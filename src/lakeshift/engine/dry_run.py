"""`--dry-run`: what a sync would do, reading but never writing anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lakeshift.batch_state import classify, count_by_state
from lakeshift.batch_state import pending as pending_batches
from lakeshift.engine.plan import Plan
from lakeshift.engine.runner import RunContext
from lakeshift.engine.schema_watch import check_columns
from lakeshift.engine.table_checks import check_table
from lakeshift.errors import LakeshiftError


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
    not_loaded: str = ""  # batches no run loads, e.g. "2 superseded, 1 sample"
    warnings: list[str] = field(default_factory=list)


def preview(plan: Plan) -> list[TablePreview]:
    ctx = RunContext(plan)
    rows: list[TablePreview] = []
    loader = ctx.loader() if plan.stages.load else None
    try:
        for t in plan.tables:
            table_lake = ctx.table_lake(t.name)
            window, merge, warnings = "(not extracted: load only)", "-", []
            if plan.stages.extract:
                reader = ctx.reader()
                desc = reader.describe(t.source_table)
                checked = check_table(t.name, t.config, desc)
                warnings = checked.warnings
                low = None if t.config.cdc_strategy == "full_sync" else table_lake.effective_watermark()[0]
                reread = check_columns(t.name, t.config.cdc_strategy, desc.apply(t.config).columns, table_lake,
                                       loader, t.target_table, low is not None).read_from_start
                win = reader.plan_window(t.config, desc, None if reread else low)
                window = win.describe() + (f", at most {plan.limit} rows" if plan.limit else "")
                window += " (columns added since the last batch: every row is read again)" if reread else ""
                if plan.limit and t.config.cdc_strategy == "full_sync":
                    window += " (a sample batch: never loaded)"
                merge = checked.describe()
            pending: list[str] = []
            not_loaded = ""
            target = "(not loaded: backup only)"
            if loader is not None:
                target = f"{plan.config.target(plan.pipeline.pipeline.target).schema_}.{t.target_table}"
                statuses = classify(table_lake.manifests(), _loaded(loader, plan.pipeline.name, t.name))
                pending = [m.batch_id for m in pending_batches(statuses)]
                not_loaded = count_by_state(statuses, ("superseded", "sample"))
            rows.append(TablePreview(t.name, t.config.cdc_strategy, t.source_table, window,
                                     table_lake.uri(""), target, merge, pending, t.depends_on, not_loaded,
                                     warnings))
    finally:
        if loader is not None:
            loader.close()
        ctx.close()
    return rows


def _loaded(loader: Any, pipeline: str, table: str) -> dict[str, Any]:
    try:
        return loader.loaded_batches(pipeline, table)
    except LakeshiftError:
        return {}
