"""`lakeshift s3clean list|clean`: batches and orphans in the lake."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.table import Table

from lakeshift.config.models import parse_duration
from lakeshift.cli.options import pipeline_table
from lakeshift.engine.tables import TableHandle, resolve_table
from lakeshift.errors import ConfigError

from lakeshift.cli.output import console


@click.group()
def s3clean() -> None:
    """List and clean a table's batches in the lake (S3 or local)."""


@s3clean.command("list")
@pipeline_table
def list_(h: TableHandle) -> None:
    """List batches (loaded, pending, superseded, sample, skipped), their files and sizes, and orphaned parts."""
    from lakeshift.lake import list_batches

    listing = list_batches(h.table_lake, h.loaded())
    out = Table("batch", "created", "files", "rows", "bytes", "status", title=f"{h.table_lake.uri()}")
    for b in listing.batches:
        out.add_row(b.batch_id, b.created.strftime("%Y-%m-%d %H:%M:%S"), str(b.files), f"{b.rows:,}",
                    f"{b.bytes:,}", b.status)
    console.print(out)
    console.print(f"{len(listing.orphans)} orphaned file(s), {listing.orphan_bytes:,} bytes (parts without a manifest)")
    for f in listing.orphans:
        console.print(f"  orphan {f.path}  {f.size:,} bytes")
    if listing.uploads:
        console.print(f"{len(listing.uploads)} unfinished multipart upload(s) (a writer died mid-upload; "
                      "S3 keeps their data until they are aborted)")
        for u in listing.uploads:
            console.print(f"  upload {u.path}  started {u.initiated:%Y-%m-%d %H:%M:%S}")


def _interactive() -> bool:
    """Ask before deleting only when a person is there to answer (not from cron)."""
    return sys.stdin.isatty() and sys.stdout.isatty()


@s3clean.command("clean")
@click.option("--pipeline", "-p", default="default", show_default=True, help="Pipeline name.")
@click.option("--table", "-t", "tables", multiple=True, help="Table (as named in the pipeline); repeatable.")
@click.option("--all", "all_tables", is_flag=True, help="Every table of the pipeline.")
@click.option("--keep-last", type=click.IntRange(0), default=1, show_default=True,
              help="Keep the newest N loaded batches of each table whatever their age (0: none).")
@click.option("--older-than", default=None, help="Only batches/orphans older than this, e.g. 7d, 12h.")
@click.option("--dry-run", is_flag=True, help="Show what would be deleted; delete nothing.")
@click.option("--force", is_flag=True, help="Also delete pending and skipped batches, the newest full_sync snapshot "
              "and young orphans.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (asked only on a terminal).")
@click.pass_obj
def clean_(app: Any, pipeline: str, tables: tuple[str, ...], all_tables: bool, keep_last: int,
           older_than: str | None, dry_run: bool, force: bool, yes: bool) -> None:
    """Delete batches no run will load (loaded, superseded snapshots, samples) and orphaned parts.
    Pending and skipped batches, the newest full_sync snapshot and the newest --keep-last loaded
    batches are kept (the first three unless --force). On a terminal it asks before deleting."""
    from lakeshift.lake import clean

    if all_tables == bool(tables):
        raise click.UsageError("give -t TABLE (repeatable) or --all (not both)")
    try:
        age = parse_duration(older_than) if older_than else None
    except ValueError as exc:
        raise ConfigError(f"--older-than: {exc}") from None
    names = list(app.config.pipeline(pipeline).tables) if all_tables else list(tables)
    handles = [(h, h.loaded()) for h in (resolve_table(app.config, pipeline, n) for n in names)]
    if not dry_run and not yes and _interactive():
        plans = [clean(h.table_lake, loaded, age, dry_run=True, force=force, keep_last=keep_last)
                 for h, loaded in handles]
        for (h, _), report in zip(handles, plans):
            _show(h, report, older_than, len(handles) > 1)
        if not any(r.deleted_batches or r.deleted_orphans or r.aborted_uploads for r in plans):
            return
        batches = sum(len(r.deleted_batches) for r in plans)
        orphans = sum(len(r.deleted_orphans) for r in plans)
        click.confirm(f"Delete {batches} batch(es) and {orphans} orphan(s) of {len(handles)} table(s) from the lake?",
                      abort=True)
    for h, loaded in handles:
        report = clean(h.table_lake, loaded, age, dry_run=dry_run, force=force, keep_last=keep_last)
        _show(h, report, older_than, len(handles) > 1)


def _show(h: TableHandle, report: Any, older_than: str | None, heading: bool) -> None:
    dry_run = report.dry_run
    if heading:
        console.print(f"{h.name}:")
    verb = "would delete" if dry_run else "deleted"
    console.print(f"{verb} {len(report.deleted_batches)} batch(es) and {len(report.deleted_orphans)} orphan(s): "
                  f"{report.files_deleted} file(s), {report.bytes_deleted:,} bytes")
    if report.kept_last:
        console.print(f"kept the newest {len(report.kept_last)} loaded batch(es) "
                      f"({', '.join(b.batch_id for b in report.kept_last)}; --keep-last 0 deletes them)")
    if report.kept_pending:
        console.print(f"kept {len(report.kept_pending)} pending batch(es) not yet loaded (the next run loads them; "
                      f"one that can never load: `lakeshift batches skip -p {h.pipeline.key} -t {h.name}`; "
                      "--force deletes them)")
    if report.kept_skipped:
        console.print(f"kept {len(report.kept_skipped)} skipped batch(es) (their rows may be needed to repair the "
                      "target; use --force to delete them)")
    if report.kept_snapshot:
        console.print(f"kept the newest full_sync snapshot {report.kept_snapshot[0].batch_id} (the lake's full copy "
                      "of the table; use --force to delete it)")
    if report.kept_recent:
        console.print(f"kept {len(report.kept_recent)} batch(es) younger than {older_than}")
    if report.kept_orphans:
        console.print(f"kept {len(report.kept_orphans)} recent orphan(s) (may belong to a running extract)")
    if report.aborted_uploads:
        console.print(f"{'would abort' if dry_run else 'aborted'} {len(report.aborted_uploads)} unfinished "
                      "multipart upload(s)")
    if report.kept_uploads:
        console.print(f"kept {len(report.kept_uploads)} recent unfinished upload(s) (may belong to a running extract)")


commands = [s3clean]
