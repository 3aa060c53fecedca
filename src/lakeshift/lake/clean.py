"""What `s3clean list` shows and `s3clean clean` removes. `loaded` is the set
of batch ids the target's load table records; the CLI gets it from the loader.

Rules: a batch goes only when loaded (or with force) and older than the
threshold; an orphan (a file no manifest names) goes when older than the
threshold and than ORPHAN_GRACE — a young orphan may be a part of an extract
that is still running — unless force. An unfinished S3 multipart upload (a
part whose writer was killed mid-upload: no object, but S3 keeps its data) is
aborted by the same rule as an orphan. Manifests may go: before anything is
deleted the watermark is settled into the state file."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Literal

from lakeshift.lake.layout import TableLake, batch_created
from lakeshift.lake.storage import FileInfo, PendingUpload

ORPHAN_GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class BatchRow:
    batch_id: str
    created: datetime
    files: int
    rows: int
    bytes: int
    loaded: bool

    @property
    def status(self) -> Literal["loaded", "pending"]:
        return "loaded" if self.loaded else "pending"


@dataclass(frozen=True)
class Listing:
    batches: list[BatchRow]  # oldest first
    orphans: list[FileInfo]  # paths relative to the table folder
    uploads: list[PendingUpload] = field(default_factory=list)  # unfinished S3 multipart uploads

    @property
    def orphan_bytes(self) -> int:
        return sum(f.size for f in self.orphans)


@dataclass
class CleanReport:
    dry_run: bool
    deleted_batches: list[BatchRow] = field(default_factory=list)
    deleted_orphans: list[FileInfo] = field(default_factory=list)
    kept_pending: list[BatchRow] = field(default_factory=list)  # not loaded; needs force
    kept_recent: list[BatchRow] = field(default_factory=list)  # younger than older_than
    kept_orphans: list[FileInfo] = field(default_factory=list)  # too young (maybe a running extract)
    aborted_uploads: list[PendingUpload] = field(default_factory=list)
    kept_uploads: list[PendingUpload] = field(default_factory=list)  # too young (maybe a running extract)

    @property
    def files_deleted(self) -> int:
        # a batch's files plus its manifest
        return sum(b.files + 1 for b in self.deleted_batches) + len(self.deleted_orphans)

    @property
    def bytes_deleted(self) -> int:
        return sum(b.bytes for b in self.deleted_batches) + sum(f.size for f in self.deleted_orphans)


def list_batches(table_lake: TableLake, loaded: set[str]) -> Listing:
    manifests = table_lake.manifests()
    rows = [
        BatchRow(m.batch_id, batch_created(m), len(m.files), m.rows, m.bytes, m.batch_id in loaded)
        for m in manifests
    ]
    return Listing(rows, table_lake.orphans(manifests), table_lake.incomplete_uploads())


def clean(table_lake: TableLake, loaded: set[str], older_than: timedelta | None, dry_run: bool,
          force: bool, now: datetime | None = None, orphan_grace: timedelta = ORPHAN_GRACE) -> CleanReport:
    now = now or datetime.now(timezone.utc)
    report = CleanReport(dry_run)
    manifests = {m.batch_id: m for m in table_lake.manifests()}
    orphans = table_lake.orphans(list(manifests.values()))

    def old_enough(ts: datetime) -> bool:
        return older_than is None or now - ts >= older_than

    doomed = []
    for batch_id, m in manifests.items():
        row = BatchRow(batch_id, batch_created(m), len(m.files), m.rows, m.bytes, batch_id in loaded)
        if not old_enough(row.created):
            report.kept_recent.append(row)
        elif not row.loaded and not force:
            report.kept_pending.append(row)
        else:
            report.deleted_batches.append(row)
            doomed.append(m)
    for f in orphans:
        if old_enough(f.mtime) and (force or now - f.mtime >= orphan_grace):
            report.deleted_orphans.append(f)
        else:
            report.kept_orphans.append(f)
    for u in table_lake.incomplete_uploads():
        if old_enough(u.initiated) and (force or now - u.initiated >= orphan_grace):
            report.aborted_uploads.append(u)
        else:
            report.kept_uploads.append(u)

    if dry_run:
        return report
    if report.aborted_uploads:
        table_lake.abort_uploads(report.aborted_uploads)
    if not (doomed or report.deleted_orphans):
        return report
    if doomed:
        table_lake.settle_watermark()  # the watermark must outlive the manifests it came from
    for m in doomed:
        table_lake.delete_batch(m)
    rels = [table_lake.rel(f.path) for f in report.deleted_orphans]
    table_lake.lake.delete(rels)
    table_lake.lake.prune_dirs(rels, stop=table_lake.base)
    return report
