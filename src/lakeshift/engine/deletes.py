"""Rows deleted in MySQL (`hard_deletes`): what a run does about them, the guard
that keeps a mistake in the source (a truncated table) from emptying the
warehouse, and how `--dry-run` says it.

- ignore: kept in the target (an incremental table never reads a deleted row);
- delete / soft on an incremental table: after its batches are loaded, the run
  compares the keys of MySQL and the target over the loaded range (key only) and
  writes the keys gone from MySQL as a delete batch (lake/deletes.py), loaded
  like any batch: removed, or marked in _lakeshift_deleted_at (soft);
- full_sync: the snapshot replaces the table, so rows it lacks are removed;
  with soft they are kept and marked instead."""

from __future__ import annotations

from typing import Any


from lakeshift.batch import Manifest
from lakeshift.engine.contracts import TargetLoader
from lakeshift.engine.plan import Plan, TablePlan
from lakeshift.errors import DeletesRefused
from lakeshift.lake import TableLake, write_delete_batch


def check_delete_fraction(table: str, count: int, target_rows: int, fraction: float, force: bool) -> None:
    """Refuse (one line, naming the table and the count) `count` deleted rows that are more
    than `fraction` of the target's `target_rows`, unless forced (--force-deletes)."""
    if force or count <= fraction * target_rows:
        return
    share = f"{count / target_rows:.0%} of the {target_rows:,}" if target_rows else f"all {target_rows:,}"
    raise DeletesRefused(
        f"tables.{table}: {count:,} row(s) are gone from MySQL, {share} row(s) in the target, more than "
        f"max_delete_fraction {fraction:g} allows; nothing was deleted. If MySQL lost them by mistake, restore "
        "them; if the deletes are real, run again with --force-deletes (or raise max_delete_fraction)")


def detects_deletes(plan: Plan, table: TablePlan) -> bool:
    """This run compares keys after loading: an incremental table with hard_deletes delete or soft,
    extracted and loaded in the same run (the comparison needs MySQL and the target)."""
    cfg = table.config
    return (cfg.hard_deletes != "ignore" and cfg.cdc_strategy != "full_sync" and plan.stages.extract
            and plan.stages.load and plan.limit is None)


def describe_deletes(plan: Plan, table: TablePlan) -> str:
    """For --dry-run: what becomes of rows deleted in MySQL."""
    cfg = table.config
    soft = cfg.hard_deletes == "soft"
    if cfg.cdc_strategy == "full_sync":
        return ("rows the snapshot lacks are kept, marked in _lakeshift_deleted_at (hard_deletes: soft)" if soft
                else "rows the snapshot lacks are removed (full_sync)")
    if cfg.hard_deletes == "ignore":
        return "not detected: rows deleted in MySQL stay in the target (hard_deletes: ignore)"
    if not detects_deletes(plan, table):
        why = "--limit" if plan.limit is not None else ("backup only" if not plan.stages.load else "load only")
        return f"not detected in this run ({why}): the key comparison needs MySQL and the target"
    action = "marked in _lakeshift_deleted_at" if soft else "removed"
    guard = ("--force-deletes: no limit" if plan.force_deletes else
             f"refused above {cfg.max_delete_fraction:g} of the target's rows (max_delete_fraction)")
    return (f"detected after the load by a key-only comparison over the loaded range, written to the lake as a "
            f"delete batch and {action}; {guard}")


def write_gone_rows(plan: Plan, table: TablePlan, table_lake: TableLake, reader: Any, desc: Any,
                    loader: TargetLoader, key: list[str]) -> Manifest | None:
    """Compare, guard, and write the keys gone from MySQL as a delete batch (None: nothing gone).
    Call under the table's extract lock: no batch of rows may be made between the comparison and
    this batch, or a key that came back in it would be deleted after it."""
    from lakeshift.verify import gone_keys

    cfg = table.config
    # verify compares the target's live rows only: keys already marked (soft) are not gone again
    keys = gone_keys(reader, desc, loader, table.target_table, key)
    if not keys.num_rows:
        return None
    check_delete_fraction(table.name, keys.num_rows, loader.live_rows(table.target_table), cfg.max_delete_fraction,
                          plan.force_deletes)
    columns = {c.name: c for c in desc.columns}
    return write_delete_batch(table_lake, plan.pipeline.pipeline.s3, pipeline=plan.pipeline.name, table=table.name,
                              source_table=desc.full_name, strategy=cfg.cdc_strategy,
                              key_columns=[columns[k] for k in key], keys=keys, soft=cfg.hard_deletes == "soft")
