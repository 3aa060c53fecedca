"""Verify a pipeline's tables: resolve each one (source table, target table,
merge key, the watermark its target has loaded) and compare it (table.py);
with `repair`, mend what differs through the normal batch path (repair.py),
load it like `--load-only`, and compare again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakeshift.engine.merge_key import resolve_merge_key
from lakeshift.engine.plan import Plan, Stages, TablePlan, build_plan
from lakeshift.errors import LakeshiftError
from lakeshift.verify.report import TableReport
from lakeshift.verify.table import Outcome, TableJob, keys_table, run
from lakeshift.verify.watermark import loaded_watermark, synced_condition

if TYPE_CHECKING:
    from lakeshift.config.loader import Config
    from lakeshift.config.models import PipelineConfig


class RepairFailed(LakeshiftError):
    """The repair batches were written to the lake but did not load; the next sync loads them."""


def verify_pipeline(config: Config, pipeline: PipelineConfig, tables: list[str], *, deep: bool = False,
                    repair: bool = False, force_deletes: bool = False) -> list[TableReport]:
    """Compare each of `tables` (the pipeline's table keys) with its target, in dependency order."""
    plan = build_plan(config, pipeline, tables, Stages(extract=True, load=True), force_deletes=force_deletes)
    outcomes = _compare(plan, deep)
    if not repair:
        return [o.report for o in outcomes.values()]
    mended = _write_repairs(plan, outcomes)
    if not mended:
        return [o.report for o in outcomes.values()]
    _load(plan, list(mended))
    again = _compare(build_plan(config, pipeline, list(mended), Stages(), force_deletes=force_deletes), deep)
    reports = []
    for name, outcome in outcomes.items():
        report = again[name].report if name in again else outcome.report
        if name in mended:
            rows, deleted = mended[name]
            report.repaired_rows, report.repaired_deletes = rows, deleted
        reports.append(report)
    return reports


def _compare(plan: Plan, deep: bool) -> dict[str, Outcome]:
    from lakeshift.source import MySQLReader

    reader = MySQLReader(plan.config.source(plan.pipeline.pipeline.source), plan.config.settings)
    out = {}
    try:
        for t in plan.tables:
            with _loader(plan) as loader:
                out[t.name] = run(_job(reader, loader, plan.pipeline.name, t, deep))
    finally:
        reader.close()
    return out


class _loader:
    """The pipeline's target loader for one table, closed after it."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def __enter__(self) -> Any:
        from lakeshift.load import open_target

        cfg, p = self.plan.config, self.plan.pipeline.pipeline
        self.loader = open_target(cfg.target(p.target), cfg.settings, lake_credentials=cfg.storage_for(p.s3.storage))
        return self.loader

    def __exit__(self, *exc: object) -> None:
        self.loader.close()


def _job(reader: Any, loader: Any, pipeline: str, t: TablePlan, deep: bool) -> TableJob:
    desc = reader.describe(t.source_table, t.config)
    key = resolve_merge_key(t.name, t.config, desc).columns
    records = loader.loaded_batches(pipeline, t.name)
    synced = synced_condition(desc, t.config, loaded_watermark(records))
    return TableJob(reader, desc, loader, t.target_table, key, deep=deep, synced=synced, name=t.name)


def _write_repairs(plan: Plan, outcomes: dict[str, Outcome]) -> dict[str, tuple[int, int]]:
    """Write the repair batches of every table that differs: {table: (rows re-read, keys deleted)}."""
    from lakeshift.engine.deletes import check_delete_fraction
    from lakeshift.lake import Lake, TableLake
    from lakeshift.source import MySQLReader
    from lakeshift.verify.repair import RepairTarget, write_gone_batch, write_rows_batch

    cfg, p = plan.config, plan.pipeline
    lake = Lake.from_config(cfg.storage_for(p.pipeline.s3.storage))
    reader = MySQLReader(cfg.source(p.pipeline.source), cfg.settings)
    mended: dict[str, tuple[int, int]] = {}
    try:
        for t in plan.tables:
            o = outcomes[t.name]
            if o.report.equal:
                continue
            if not o.report.keyed:
                o.report.notes.append("not repaired: a table without a key has no rows to name; a full_sync "
                                      "(or `lakeshift watermark reset` and a sync) rebuilds it")
                continue
            tl = TableLake(lake, p.isolation_prefix, t.name)
            desc = reader.describe(t.source_table, t.config)
            target = RepairTarget(reader, desc, tl, p.pipeline.s3, p.name, t.name, t.config, list(o.report.key))
            check_delete_fraction(t.name, len(o.diff.extra), o.report.target_rows, t.config.max_delete_fraction,
                                  plan.force_deletes)
            with reader.table_lock(p.name, t.name, scope=tl.uri()):
                rows = write_rows_batch(target, o.diff.missing + o.diff.different)
                gone = write_gone_batch(target, keys_table(desc, target.key, o.diff.extra))
            mended[t.name] = (rows.rows if rows else 0, gone.rows if gone else 0)
    finally:
        reader.close()
    return mended


def _load(plan: Plan, tables: list[str]) -> None:
    """Load the repair batches (and any other pending batch of those tables), as `--load-only` does."""
    from lakeshift.engine.runner import run_plan

    load = build_plan(plan.config, plan.pipeline, tables, Stages(extract=False, load=True),
                      force_deletes=plan.force_deletes)
    report = run_plan(load, live_progress=False)
    if not report.ok:
        failed = [f"{o.name}: {o.error}" for o in report.outcomes if o.status != "ok"]
        raise RepairFailed(f"the repair batches are in the lake but did not load ({'; '.join(failed)}); "
                           f"`lakeshift sync pipeline -p {plan.pipeline.key} --load-only` loads them")
