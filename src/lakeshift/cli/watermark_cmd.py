"""`lakeshift watermark get|set|reset`: the extract watermark (in the lake) and
the load state (in the target)."""

from __future__ import annotations

from typing import Any

import click

from lakeshift.batch import Cursor
from lakeshift.batch_state import SKIPPED_MODE, classify, count_by_state
from lakeshift.batch_state import pending as pending_batches
from lakeshift.cli.options import pipeline_table
from lakeshift.engine.tables import TableHandle
from lakeshift.errors import ConfigError, LakeshiftError, one_line

from lakeshift.cli.output import console



def _fmt(cursor: Cursor | None) -> str:
    if cursor is None:
        return "none (the next run starts from the beginning)"
    if cursor.binlog is not None:
        return f"binlog {cursor.binlog.describe()}, {cursor.binlog.seq:,} change(s) numbered"
    parts = [f"{k}={v}" for k, v in (("timestamp", cursor.timestamp), ("id", cursor.id)) if v is not None]
    return ", ".join(parts)


@click.group()
def watermark() -> None:
    """Show or change a table's extract watermark."""


@watermark.command("get")
@pipeline_table
def get(h: TableHandle) -> None:
    """Show the extract watermark, the last batch, and the load state."""
    cursor, info = h.table_lake.effective_watermark()
    console.print(f"Table {h.pipeline.key}.{h.name}  ({h.table.cdc_strategy}; lake {h.table_lake.uri()})")
    console.print(f"Extract watermark: {_fmt(cursor)}  [from {info.source}"
                  + (f", batch {info.batch_id}" if info.batch_id else "") + "]")
    manifests = h.table_lake.manifests()
    if manifests:
        last = manifests[-1]
        console.print(f"Last batch:        {last.batch_id}  {last.rows:,} rows, {len(last.files)} file(s), "
                      f"{last.bytes:,} bytes, created {last.created_at}")
    else:
        console.print("Last batch:        none")
    try:
        with h.loader() as loader:
            records = loader.loaded_batches(h.pipeline.name, h.name)
            runs = loader.last_runs(h.pipeline.name, h.name, _RUNS_LOOKED_AT)
    except LakeshiftError as exc:
        console.print(f"Load state:        unavailable ({exc})")
        return
    statuses = classify(manifests, records)
    pending = [m.batch_id for m in pending_batches(statuses)]
    loaded = {b: r for b, r in records.items() if r.mode != SKIPPED_MODE}
    if loaded:
        rec = loaded[max(loaded)]
        what = (f"{rec.deleted:,} row(s) gone from MySQL applied to" if rec.mode == "delete" else
                f"{rec.rows:,} rows into")
        console.print(f"Last loaded batch: {rec.batch_id}  {what} {rec.target_table} at {rec.loaded_at}")
    else:
        console.print("Last loaded batch: none")
    console.print(f"Pending batches:   {len(pending)}" + (f" ({', '.join(pending[:5])}{' ...' if len(pending) > 5 else ''})" if pending else ""))
    never = count_by_state(statuses)
    if never:
        console.print(f"Never loaded:      {never} (`lakeshift batches list -p {h.pipeline.key} -t {h.name}` "
                      "shows them)")
    _print_runs(runs)


_RUNS_LOOKED_AT = 50  # newest run records read to find the last run that was not refused


def _print_runs(runs: list[Any]) -> None:
    """The last run that ran; a refusal (another run held the lock, the config
    refused the table) did nothing, so it is shown apart, when it is the newest."""
    if not runs:
        return
    ran = next((r for r in runs if r.status != "refused"), None)
    if ran is not None:
        console.print(f"Last run:          {ran.status} at {ran.finished_at}, {ran.rows_extracted:,} extracted, "
                      f"{ran.rows_loaded:,} loaded" + (f", error: {one_line(ran.error)}" if ran.error else ""))
    else:
        console.print(f"Last run:          none in the newest {len(runs)} record(s), all refused")
    if runs[0].status == "refused":
        console.print(f"Last refusal:      at {runs[0].finished_at}, nothing done: {one_line(runs[0].error or '')}")


@watermark.command("set")
@pipeline_table
@click.option("--timestamp", help="Cursor timestamp, e.g. '2026-01-31 23:59:59.123456' (UTC for TIMESTAMP columns).")
@click.option("--id", "id_", help="Cursor id (id_only, or the tie-breaker for hybrid).")
def set_(h: TableHandle, timestamp: str | None, id_: str | None) -> None:
    """Set the extract watermark: the next run reads rows after it."""
    strategy = h.table.cdc_strategy
    if strategy == "full_sync":
        raise ConfigError(f"{h.pipeline.key}.{h.name} uses full_sync, which has no watermark")
    if strategy == "binlog":
        raise ConfigError(f"{h.pipeline.key}.{h.name} uses binlog, whose watermark is a binlog position: use "
                          "`watermark reset` to take a new snapshot")
    if strategy in ("hybrid", "timestamp_only") and not timestamp:
        raise ConfigError(f"{h.pipeline.key}.{h.name} uses {strategy}: pass --timestamp")
    if strategy == "id_only" and (not id_ or timestamp):
        raise ConfigError(f"{h.pipeline.key}.{h.name} uses id_only: pass --id only")
    if strategy == "timestamp_only" and id_:
        raise ConfigError(f"{h.pipeline.key}.{h.name} uses timestamp_only: --id does not apply")
    cursor = _checked_against_source(h, timestamp, id_)
    h.table_lake.set_watermark(cursor)
    console.print(f"Watermark of {h.pipeline.key}.{h.name} set to {_fmt(cursor)}")


def _checked_against_source(h: TableHandle, timestamp: str | None, id_: str | None) -> Cursor:
    """The values as the source's cursor columns take them, or one line saying
    why not: a value every later run would reject is never written."""
    from lakeshift.source import MySQLReader
    from lakeshift.source.watermark_values import checked_cursor

    where = f"{h.pipeline.key}.{h.name}"
    try:
        reader = MySQLReader(h.config.source(h.pipeline.pipeline.source), h.config.settings)
        try:
            desc = reader.describe(h.table.full_name or h.name, h.table)
        finally:
            reader.close()
    except ConfigError:
        raise
    except LakeshiftError as exc:
        raise LakeshiftError(
            f"{where}: the watermark is checked against the source's column types before it is written, and the "
            f"source could not be read ({exc}); nothing changed. Run it again when MySQL is reachable") from None
    return checked_cursor(desc, h.table, timestamp, id_, where)


@watermark.command("reset")
@pipeline_table
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def reset(h: TableHandle, yes: bool) -> None:
    """Forget the extract watermark: the next run re-reads the whole table (binlog: a new snapshot)."""
    if not yes:
        click.confirm(f"Reset the watermark of {h.pipeline.key}.{h.name}? The next run re-reads the whole table",
                      abort=True)
    h.table_lake.reset_watermark()
    console.print(f"Watermark of {h.pipeline.key}.{h.name} reset; the next run starts from the beginning")


commands = [watermark]
