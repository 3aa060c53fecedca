"""Rows deleted in MySQL (`hard_deletes`): what a run does about them, the guard
that keeps a mistake in the source (a truncated table) from emptying the
warehouse, and how `--dry-run` says it.

- ignore: kept in the target (an incremental table never reads a deleted row);
- delete / soft on an incremental table: after its batches are loaded, the run
  compares the keys of MySQL (read from the extract on, verify/prefetch.py) and
  the target (key only) and writes the keys gone from MySQL, but those of its own
  batch, as a delete batch (lake/deletes.py), loaded like any batch: removed,
  or marked in _lakeshift_deleted_at (soft); keys MySQL holds and the target
  lacks (a deleted id inserted again, never read again by id_only) are read
  again as a merge batch;
- full_sync: the snapshot replaces the table, so rows it lacks are removed;
  with soft they are kept and marked instead, under the same guard
  (load/delete_guard.py, checked in the load transaction)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lakeshift.batch import Manifest
from lakeshift.engine.contracts import TargetLoader
from lakeshift.engine.plan import Plan, TablePlan
from lakeshift.lake import TableLake, write_delete_batch
from lakeshift.load.delete_guard import check_delete_fraction

__all__ = ["check_delete_fraction", "describe_deletes", "detects_deletes", "keys_not_in", "start_key_read",
           "write_gone_rows"]


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
    guard = ("--force-deletes: no limit" if plan.force_deletes else
             f"refused above {cfg.max_delete_fraction:g} of the target's rows (max_delete_fraction)")
    if cfg.cdc_strategy == "full_sync":
        return (f"rows the snapshot lacks are kept, marked in _lakeshift_deleted_at (hard_deletes: soft); {guard}"
                if soft else "rows the snapshot lacks are removed (full_sync)")
    if cfg.hard_deletes == "ignore":
        return "not detected: rows deleted in MySQL stay in the target (hard_deletes: ignore)"
    if not detects_deletes(plan, table):
        why = "--limit" if plan.limit is not None else ("backup only" if not plan.stages.load else "load only")
        return f"not detected in this run ({why}): the key comparison needs MySQL and the target"
    action = "marked in _lakeshift_deleted_at" if soft else "removed"
    return (f"detected after the load by a key-only comparison over the loaded range, written to the lake as a "
            f"delete batch and {action}; {guard}")


def start_key_read(reader: Any, desc: Any, loader: TargetLoader, key: list[str]) -> Any:
    """MySQL's keys read from now on (verify.key_prefetch), for write_gone_rows after the load: a
    ReadAhead to close, or None. Call under the extract lock held until write_gone_rows returns."""
    from lakeshift.verify.table import key_prefetch

    return key_prefetch(reader, desc, loader, key)


def keys_not_in(gone: pa.Table, manifest: Manifest, lake: Any, table_lake: TableLake) -> pa.Table:
    """`gone` (keys of one column) without the keys the batch of `manifest` holds, read from its parts
    one key column at a time (memory: the gone keys and one row group of keys)."""
    if not gone.num_rows:
        return gone
    from lakeshift.engine.part_feeder import lake_part

    name = gone.column_names[0]
    wanted = gone.column(0).combine_chunks()
    held: list[pa.Array] = []
    for file in manifest.files:
        part = lake_part(lake, table_lake, file)
        with part.filesystem.open_input_file(part.path) as f:
            for b in pq.ParquetFile(f, pre_buffer=False).iter_batches(columns=[name], use_threads=False):
                keys = pc.cast(b.column(0), wanted.type)
                held.append(keys.filter(pc.is_in(keys, value_set=wanted)))
    if not held:
        return gone
    return gone.filter(pc.invert(pc.is_in(gone.column(0), value_set=pa.concat_arrays(held))))


def write_gone_rows(plan: Plan, table: TablePlan, table_lake: TableLake, reader: Any, desc: Any,
                    loader: TargetLoader, key: list[str], ahead: Any = None,
                    fresh: Callable[[pa.Table], pa.Table] | None = None) -> list[Manifest]:
    """Compare, guard, and write the keys gone from MySQL as a delete batch; the rows of keys
    MySQL holds and the target lacks (a deleted key inserted again: an id_only cursor never
    reads it again) are read again as a merge batch, written first.
    Returns the batches written. Call under the table's extract lock: no batch of rows may be
    made between the comparison and these, or a key that came back in it would be deleted after it."""
    from lakeshift.verify import key_gaps
    from lakeshift.verify.repair import RepairTarget, write_rows_batch

    cfg = table.config
    # verify compares the target's live rows only: keys already marked (soft) are not gone again.
    # Every MySQL row is compared (no watermark condition: it would cost MySQL a scan for the
    # pending count and a condition on every row); a row inserted since this run's extract is
    # then read again too, which merges the same row its next batch brings.
    gaps = key_gaps(reader, desc, loader, table.target_table, key, ahead=ahead)
    gone = fresh(gaps.gone) if fresh is not None else gaps.gone
    if gone.num_rows:
        check_delete_fraction(table.name, gone.num_rows, gaps.target_rows, cfg.max_delete_fraction,
                              plan.force_deletes)
    settings = plan.pipeline.pipeline.s3
    back = write_rows_batch(RepairTarget(reader, desc, table_lake, settings, plan.pipeline.name, table.name, cfg, key),
                            gaps.back)
    columns = {c.name: c for c in desc.columns}
    gone = write_delete_batch(table_lake, settings, pipeline=plan.pipeline.name, table=table.name,
                              source_table=desc.full_name, strategy=cfg.cdc_strategy,
                              key_columns=[columns[k] for k in key], keys=gone,
                              soft=cfg.hard_deletes == "soft") if gone.num_rows else None
    return [m for m in (back, gone) if m is not None]
