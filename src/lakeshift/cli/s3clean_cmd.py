"""`lakeshift s3clean list|clean`: batches and orphans in the lake."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from lakeshift.config.models import parse_duration
from lakeshift.cli.options import pipeline_table
from lakeshift.engine.tables import TableHandle
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


@s3clean.command("clean")
@pipeline_table
@click.option("--older-than", default=None, help="Only batches/orphans older than this, e.g. 7d, 12h.")
@click.option("--dry-run", is_flag=True, help="Show what would be deleted; delete nothing.")
@click.option("--force", is_flag=True, help="Also delete pending and skipped batches, the newest full_sync snapshot "
              "and young orphans.")
def clean_(h: TableHandle, older_than: str | None, dry_run: bool, force: bool) -> None:
    """Delete batches no run will load (loaded, superseded snapshots, samples) and orphaned parts.
    Pending and skipped batches and the newest full_sync snapshot are kept unless --force."""
    from lakeshift.lake import clean

    try:
        age = parse_duration(older_than) if older_than else None
    except ValueError as exc:
        raise ConfigError(f"--older-than: {exc}") from None
    report = clean(h.table_lake, h.loaded(), age, dry_run=dry_run, force=force)
    verb = "would delete" if dry_run else "deleted"
    console.print(f"{verb} {len(report.deleted_batches)} batch(es) and {len(report.deleted_orphans)} orphan(s): "
                  f"{report.files_deleted} file(s), {report.bytes_deleted:,} bytes")
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
