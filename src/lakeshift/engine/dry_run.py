"""`--dry-run`: what a sync would do, reading but never writing anything."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lakeshift.batch_state import classify, count_by_state
from lakeshift.batch_state import pending as pending_batches
from lakeshift.engine.plan import Plan
from lakeshift.engine.runner import RunContext
from lakeshift.engine.table_task import merge_key
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


def preview(plan: Plan) -> list[TablePreview]:
    ctx = RunContext(plan)
    rows: list[TablePreview] = []
    loader = ctx.loader() if plan.stages.load else None
    try:
        for t in plan.tables:
            table_lake = ctx.table_lake(t.name)
            window, merge = "(not extracted: load only)", "-"
            if plan.stages.extract:
                reader = ctx.reader()
                desc = reader.describe(t.source_table)
                low = None if t.config.cdc_strategy == "full_sync" else table_lake.effective_watermark()[0]
                win = reader.plan_window(t.config, desc, low)
                window = win.describe() + (f", at most {plan.limit} rows" if plan.limit else "")
                if plan.limit and t.config.cdc_strategy == "full_sync":
                    window += " (a sample batch: never loaded)"
                key = merge_key(t, desc.primary_key)
                merge = ("replace whole table" if t.config.cdc_strategy == "full_sync"
                         else f"merge on {', '.join(key)}" if key else "append")
            pending: list[str] = []
            not_loaded = ""
            target = "(not loaded: backup only)"
            if loader is not None:
                target = f"{plan.config.target(plan.pipeline.pipeline.target).schema_}.{t.target_table}"
                statuses = classify(table_lake.manifests(), _loaded(loader, plan.pipeline.name, t.name))
                pending = [m.batch_id for m in pending_batches(statuses)]
                not_loaded = count_by_state(statuses, ("superseded", "sample"))
            rows.append(TablePreview(t.name, t.config.cdc_strategy, t.source_table, window,
                                     table_lake.uri(""), target, merge, pending, t.depends_on, not_loaded))
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
