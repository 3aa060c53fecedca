"""`lakeshift batches list|skip`: a table's batches and their state; skip a batch
that can never load."""

from __future__ import annotations

import click
from rich.table import Table

from lakeshift.cli.options import pipeline_table
from lakeshift.cli.output import console
from lakeshift.engine.tables import TableHandle
from lakeshift.lake import batch_created


@click.group()
def batches() -> None:
    """List a table's batches, or skip one that can never load."""


@batches.command("list")
@pipeline_table
def list_(h: TableHandle) -> None:
    """Every batch in the lake with its state: loaded, pending (the next run loads it),
    superseded (an older full_sync snapshot), sample (--limit on full_sync) or skipped."""
    from lakeshift.engine.batches import table_batches

    found = table_batches(h)
    out = Table("batch", "created", "rows", "files", "state", "loaded at / reason", title=h.table_lake.uri())
    for b in found:
        m = b.manifest
        when = b.loaded_at.strftime("%Y-%m-%d %H:%M:%S") if b.loaded_at else ""
        kind = ("delete batch: keys of rows gone from MySQL" + (", marked (soft)" if m.soft_delete else "")
                if m.deletes else "")
        detail = " ".join(x for x in (when, b.reason if b.state != "loaded" else "", kind) if x)
        out.add_row(m.batch_id, batch_created(m).strftime("%Y-%m-%d %H:%M:%S"), f"{m.rows:,}", str(len(m.files)),
                    b.state, detail)
    console.print(out)
    if not found:
        console.print("no batches")


@batches.command("skip")
@pipeline_table
@click.argument("batch_id")
@click.option("--reason", required=True, help="Why the batch is skipped; recorded with it in _lakeshift_loads.")
def skip(h: TableHandle, batch_id: str, reason: str) -> None:
    """Record BATCH_ID in the target as skipped, so no run loads it (its files stay in the lake).
    For a batch that can never load; a loaded batch cannot be skipped."""
    from lakeshift.engine.batches import reread_commands, skip_batch

    done = skip_batch(h, batch_id, reason)
    m = done.batch.manifest
    console.print(f"Batch {batch_id} of {h.pipeline.key}.{h.name} ({m.rows:,} rows, {done.batch.state}) recorded "
                  f"as skipped in the target; its files stay in the lake")
    if done.incremental:
        commands = " or ".join(f"`{c}`" for c in reread_commands(h, done))
        click.secho(f"Warning: the {m.rows:,} row(s) of this batch are missing from the target unless a later "
                    f"batch read them again. To read them again: {commands}, then sync", fg="yellow", err=True)
    elif m.deletes:
        console.print("The rows of its keys stay in the target; the next run with hard_deletes finds them again")
    elif done.batch.state == "pending":
        console.print("The target keeps its current rows until the next full_sync snapshot is loaded")


commands = [batches]
