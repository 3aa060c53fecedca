"""The commit of a batch: ONE transaction that gives the target table its new
shape, moves the staged rows in by the planned strategy and writes the load
record, so a batch is in the target completely, with its record, or not at all.

    skip if recorded -> schema plan -> [ALTER outside (Redshift)] -> BEGIN
    -> skip if recorded meanwhile -> [recreate] -> CREATE / ALTER -> fill staging
    -> facts -> plan_move -> move -> load record -> finish (drop staging / swap) -> COMMIT"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timezone

from lakeshift import faults
from lakeshift.batch import Manifest
from lakeshift.errors import LoadError, ValidationFailed
from lakeshift.identifiers import qualified_ansi
from lakeshift.load import sql
from lakeshift.load.contracts import LoadContext, Part, Staging
from lakeshift.load.schema_plan import TablePlan, plan_table, widen_refused
from lakeshift.load.session import Session
from lakeshift.load.state import LoadResult, cursor_to_text
from lakeshift.load.strategies import Moved, MoveJob, Recreate, TableFacts, plan_move

log = logging.getLogger("lakeshift.load")


def commit_batch(ctx: LoadContext, staging: Staging, target_table: str, manifest: Manifest,
                 parts: Sequence[Part]) -> LoadResult:
    """Load the staged batch in one transaction; "skipped" when it is recorded already."""
    started = time.monotonic()
    m = manifest
    ctx.ensure_state()
    s = staging.session()
    if _already_loaded(s, ctx.schema, m):
        log.info("%s: batch %s already loaded; skipped", m.table, m.batch_id)
        return LoadResult(m.batch_id, "skipped")
    existing = s.query(sql.table_columns(s.placeholder),
                       (ctx.dialect.catalog_name(ctx.schema), ctx.dialect.catalog_name(target_table)))
    plan = plan_table(ctx.dialect, ctx.schema, target_table, m, existing, primary_key=ctx.create_primary_key)
    job = MoveJob(m, ctx.dialect, ctx.schema, target_table, staging.name, staging.stage_sql, staging.ordinal,
                  plan.types, ctx.max_delete_fraction)
    for stmt in plan.before_transaction:
        _ddl(s, stmt, job)
    s.begin()
    try:
        if _already_loaded(s, ctx.schema, m):  # a concurrent run got there first
            s.rollback()
            return LoadResult(m.batch_id, "skipped")
        moved, notes = _in_transaction(ctx, staging, s, job, plan, parts)
        s.commit()
    except BaseException:
        s.rollback()
        raise
    log.info("%s: batch %s loaded into %s (%s rows, mode %s)", m.table, m.batch_id, target_table,
             moved.inserted, m.mode)
    return LoadResult(m.batch_id, "loaded", moved.inserted, moved.deleted, time.monotonic() - started, tuple(notes),
                      deleted=gone_rows(m, moved))


def _in_transaction(ctx: LoadContext, staging: Staging, s: Session, job: MoveJob, plan: TablePlan,
                    parts: Sequence[Part]) -> tuple[Moved, list[str]]:
    m = job.manifest
    notes = [Recreate(plan.recreate).run(s, job, ctx.dependent_views(s, job.target_table))] if plan.recreate else []
    if plan.create:
        s.execute(plan.create)
    for stmt in plan.in_transaction:
        _ddl(s, stmt, job)
    staged = 0
    if job.staged:
        staging.fill(s, m, parts)
        staged = staging.rows(s)
        if staged != m.rows:
            raise LoadError(f"batch {m.batch_id} of {m.table}: staging holds {staged} rows, "
                            f"the manifest says {m.rows}; not loading it")
    known = TableFacts(exists=plan.exists, staged=job.staged, staged_rows=staged, key=tuple(m.primary_key),
                       soft_delete=m.soft_delete, history=m.history is not None)
    moved = plan_move(m.mode, staging.facts(s, job, known)).move(s, job)
    moved = dataclasses.replace(moved, deleted=max(moved.deleted, 0), inserted=max(moved.inserted, 0))
    if m.unique_in_target:
        _refuse_repeated_keys(ctx, s, job)
    s.execute(sql.insert_load(ctx.schema, s.placeholder), (
        m.pipeline, m.table, m.batch_id, job.target_table, m.mode, moved.inserted, len(m.files), m.bytes,
        cursor_to_text(m.watermark_low), cursor_to_text(m.watermark_high), datetime.now(timezone.utc), None,
        gone_rows(m, moved)))
    faults.checkpoint("in_load_transaction")
    moved.finish(s, job)
    return moved, notes


def gone_rows(m: Manifest, moved: Moved) -> int:
    """Rows gone from the source that the batch removed or marked: a delete batch's, and those a
    soft full_sync marked, a binlog batch's deletes (a merge's `deleted` are rows replaced, a replace's
    every old row)."""
    if moved.gone is not None:
        return max(moved.gone, 0)  # a driver that cannot count says -1
    return moved.deleted if m.deletes or m.soft_delete or m.history is not None else 0  # history: tombstones


def _refuse_repeated_keys(ctx: LoadContext, s: Session, job: MoveJob) -> None:
    """duplicate_check on the target, inside the load transaction: a batch that would leave a key
    value on more than one live row is rolled back and stays in the lake, pending."""
    m = job.manifest
    names = s.query(sql.table_columns(s.placeholder),
                    (ctx.dialect.catalog_name(ctx.schema), ctx.dialect.catalog_name(job.target_table)))
    live = sql.live_condition({ctx.dialect.fold(row[0]) for row in names}, ctx.dialect.fold)
    for columns in m.unique_in_target:
        (n,), = s.query(sql.repeated_keys(qualified_ansi(ctx.schema, job.target_table), columns, live))
        if not n:
            continue
        key = ", ".join(columns)
        raise ValidationFailed(
                f"{m.table}: batch {m.batch_id} not loaded (kept in the lake): data_quality_checks duplicate_check "
                f"(target) failed on column {key!r}: {int(n):,} offending key value(s) would repeat in target table "
                f"{job.target_table}; fix the rows in MySQL (the next run's batch supersedes them) or remove the "
                "repeats in the target")


def _already_loaded(s: Session, schema: str, m: Manifest) -> bool:
    return bool(s.query(sql.select_loads(schema, s.placeholder, batch=True), (m.pipeline, m.table, m.batch_id)))


def _ddl(s: Session, stmt: str, job: MoveJob) -> None:
    """A schema change the target refuses (e.g. PostgreSQL: a view uses the
    column) is a SchemaChangeError with the way out, not a bare driver error."""
    try:
        s.execute(stmt)
    except LoadError as exc:
        if " ALTER COLUMN " not in stmt:
            raise
        raise widen_refused(job.dialect, job.schema, job.target_table, job.manifest.batch_id, exc) from None
