"""`lakeshift watermark get|set|reset`: the extract watermark (in the lake) and
the load state (in the target)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from lakeshift.batch import Cursor
from lakeshift.batch_state import SKIPPED_MODE, classify, count_by_state
from lakeshift.batch_state import pending as pending_batches
from lakeshift.cli.options import pipeline_table
from lakeshift.engine.tables import TableHandle
from lakeshift.errors import ConfigError, LakeshiftError

from lakeshift.cli.output import console



def _fmt(cursor: Cursor | None) -> str:
    if cursor is None:
        return "none (the next run starts from the beginning)"
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
            runs = loader.last_runs(h.pipeline.name, h.name, 1)
    except LakeshiftError as exc:
        console.print(f"Load state:        unavailable ({exc})")
        return
    statuses = classify(manifests, records)
    pending = [m.batch_id for m in pending_batches(statuses)]
    loaded = {b: r for b, r in records.items() if r.mode != SKIPPED_MODE}
    if loaded:
        rec = loaded[max(loaded)]
        console.print(f"Last loaded batch: {rec.batch_id}  {rec.rows:,} rows into {rec.target_table} at {rec.loaded_at}")
    else:
        console.print("Last loaded batch: none")
    console.print(f"Pending batches:   {len(pending)}" + (f" ({', '.join(pending[:5])}{' ...' if len(pending) > 5 else ''})" if pending else ""))
    never = count_by_state(statuses)
    if never:
        console.print(f"Never loaded:      {never} (`lakeshift batches list -p {h.pipeline.key} -t {h.name}` "
                      "shows them)")
    if runs:
        r = runs[0]
        console.print(f"Last run:          {r.status} at {r.finished_at}, {r.rows_extracted:,} extracted, "
                      f"{r.rows_loaded:,} loaded" + (f", error: {r.error}" if r.error else ""))


def _parse_timestamp(value: str) -> str:
    try:
        return datetime.fromisoformat(value.strip().replace(" ", "T", 1)).isoformat()
    except ValueError:
        raise ConfigError(f"--timestamp {value!r} is not a timestamp; use e.g. '2026-01-31 23:59:59.123456'") from None


@watermark.command("set")
@pipeline_table
@click.option("--timestamp", help="Cursor timestamp, e.g. '2026-01-31 23:59:59.123456' (UTC for TIMESTAMP columns).")
@click.option("--id", "id_", help="Cursor id (id_only, or the tie-breaker for hybrid).")
def set_(h: TableHandle, timestamp: str | None, id_: str | None) -> None:
    """Set the extract watermark: the next run reads rows after it."""
    strategy = h.table.cdc_strategy
    if strategy == "full_sync":
        raise ConfigError(f"{h.pipeline.key}.{h.name} uses full_sync, which has no watermark")
    if strategy in ("hybrid", "timestamp_only") and not timestamp:
        raise ConfigError(f"{h.pipeline.key}.{h.name} uses {strategy}: pass --timestamp")
    if strategy == "id_only" and (not id_ or timestamp):
        raise ConfigError(f"{h.pipeline.key}.{h.name} uses id_only: pass --id only")
    if strategy == "timestamp_only" and id_:
        raise ConfigError(f"{h.pipeline.key}.{h.name} uses timestamp_only: --id does not apply")
    ident: int | str | None = None
    if id_ is not None:
        ident = int(id_) if id_.lstrip("-").isdigit() else id_
    cursor = Cursor(timestamp=_parse_timestamp(timestamp) if timestamp else None, id=ident)
    h.table_lake.set_watermark(cursor)
    console.print(f"Watermark of {h.pipeline.key}.{h.name} set to {_fmt(cursor)}")


@watermark.command("reset")
@pipeline_table
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def reset(h: TableHandle, yes: bool) -> None:
    """Forget the extract watermark: the next run re-reads the whole table."""
    if not yes:
        click.confirm(f"Reset the watermark of {h.pipeline.key}.{h.name}? The next run re-reads the whole table",
                      abort=True)
    h.table_lake.reset_watermark()
    console.print(f"Watermark of {h.pipeline.key}.{h.name} reset; the next run starts from the beginning")


commands = [watermark]
