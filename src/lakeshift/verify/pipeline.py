"""Verify a pipeline's tables: resolve each one (source table, target table,
merge key, the watermark its target has loaded) and compare it (table.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from lakeshift.engine.merge_key import resolve_merge_key
from lakeshift.engine.plan import Stages, TablePlan, build_plan
from lakeshift.verify.report import TableReport
from lakeshift.verify.table import TableJob, compare_table
from lakeshift.verify.watermark import loaded_watermark, synced_condition

if TYPE_CHECKING:
    from lakeshift.config.loader import Config
    from lakeshift.config.models import PipelineConfig


def verify_pipeline(config: Config, pipeline: PipelineConfig, tables: list[str], *, deep: bool = False,
                    on_table: Callable[[TableReport], None] | None = None) -> list[TableReport]:
    """Compare each of `tables` (the pipeline's table keys) with its target; in dependency order."""
    from lakeshift.load import open_target
    from lakeshift.source import MySQLReader

    plan = build_plan(config, pipeline, tables, Stages(extract=True, load=True))
    p = pipeline.pipeline
    reader = MySQLReader(config.source(p.source), config.settings)
    reports = []
    try:
        for t in plan.tables:
            loader = open_target(config.target(p.target), config.settings, lake_credentials=config.storage_for(p.s3.storage))
            try:
                report = compare_table(_job(reader, loader, pipeline.name, t, deep))
            finally:
                loader.close()
            reports.append(report)
            if on_table:
                on_table(report)
    finally:
        reader.close()
    return reports


def _job(reader: object, loader: object, pipeline: str, t: TablePlan, deep: bool) -> TableJob:
    desc = reader.describe(t.source_table, t.config)  # type: ignore[attr-defined]
    key = resolve_merge_key(t.name, t.config, desc).columns
    records = loader.loaded_batches(pipeline, t.name)  # type: ignore[attr-defined]
    synced = synced_condition(desc, t.config, loaded_watermark(records))
    return TableJob(reader, desc, loader, t.target_table, key, deep=deep, synced=synced,  # type: ignore[arg-type]
                    name=t.name)
