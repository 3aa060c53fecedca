"""What `s3clean list` shows and `s3clean clean` removes. `loaded` is what the
target's load table records (batch id -> record, or a set of ids); the CLI
gets it from the loader. Each batch's state comes from lakeshift.batch_state.

Rules: a batch goes, when older than the threshold, only if no run will ever
load it and no state depends on its files: loaded, superseded (an older
full_sync snapshot a newer one replaces) or a sample. Pending and skipped
batches (a skipped batch's rows may be needed to repair the target) and the
newest full_sync snapshot (the lake's one full copy of the table) stay unless
force. An orphan (a file no manifest names) goes when older than the
threshold and than ORPHAN_GRACE — a young orphan may be a part of an extract
that is still running — unless force. An unfinished S3 multipart upload (a
part whose writer was killed mid-upload: no object, but S3 keeps its data) is
aborted by the same rule as an orphan. Manifests may go: before anything is
deleted the watermark is settled into the state file. A snapshot superseded by
a loaded one stays superseded when that one's files are gone: its load record
in the target still says so."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from lakeshift.batch import Manifest
from lakeshift.batch_state import BatchStatus, State, classify
from lakeshift.lake.layout import TableLake, batch_created
from lakeshift.lake.storage import FileInfo, PendingUpload

ORPHAN_GRACE = timedelta(hours=1)
Loaded = Mapping[str, Any] | Collection[str]  # batch id -> load record, or just the ids


@dataclass(frozen=True)
class BatchRow:
    batch_id: str
    created: datetime
    files: int
    rows: int
    bytes: int
    state: State
    loaded_at: datetime | None = None
    reason: str | None = None  # why it is not loaded (skipped, superseded, sample)
    snapshot: bool = False  # a full_sync snapshot (not a sample)

    @property
    def status(self) -> State:
        return self.state

    @classmethod
    def of(cls, s: BatchStatus) -> BatchRow:
        m = s.manifest
        return cls(m.batch_id, batch_created(m), len(m.files), m.rows, m.bytes, s.state, s.loaded_at, s.reason,
                   m.mode == "replace" and not m.sample)


def statuses(table_lake: TableLake, loaded: Loaded) -> list[BatchStatus]:
    records = loaded if isinstance(loaded, Mapping) else dict.fromkeys(loaded)
    return classify(table_lake.manifests(), records)


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
    kept_skipped: list[BatchRow] = field(default_factory=list)  # skipped: its rows may be needed; needs force
    kept_snapshot: list[BatchRow] = field(default_factory=list)  # the newest full_sync snapshot; needs force
    kept_last: list[BatchRow] = field(default_factory=list)  # among the newest `keep_last` loaded batches
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


def list_batches(table_lake: TableLake, loaded: Loaded) -> Listing:
    found = statuses(table_lake, loaded)
    manifests = [s.manifest for s in found]
    return Listing([BatchRow.of(s) for s in found], table_lake.orphans(manifests), table_lake.incomplete_uploads())


def clean(table_lake: TableLake, loaded: Loaded, older_than: timedelta | None, dry_run: bool,
          force: bool, now: datetime | None = None, orphan_grace: timedelta = ORPHAN_GRACE,
          keep_last: int = 0) -> CleanReport:
    """`keep_last`: the newest N loaded batches stay whatever their age (the CLI keeps 1)."""
    now = now or datetime.now(timezone.utc)
    report = CleanReport(dry_run)
    found = statuses(table_lake, loaded)
    orphans = table_lake.orphans([s.manifest for s in found])
    snapshots = [s.batch_id for s in found if BatchRow.of(s).snapshot and s.state in ("loaded", "pending")]
    newest_loaded = [s.batch_id for s in found if s.state == "loaded"][-keep_last:] if keep_last > 0 else []

    def old_enough(ts: datetime) -> bool:
        return older_than is None or now - ts >= older_than

    doomed = []
    for s in found:
        row = BatchRow.of(s)
        if not old_enough(row.created):
            report.kept_recent.append(row)
        elif row.state == "pending" and not force:
            report.kept_pending.append(row)
        elif row.state == "skipped" and not force:
            report.kept_skipped.append(row)
        elif snapshots and row.batch_id == snapshots[-1] and not force:
            report.kept_snapshot.append(row)
        elif row.batch_id in newest_loaded:
            report.kept_last.append(row)
        else:
            report.deleted_batches.append(row)
            doomed.append(s.manifest)
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

    if not dry_run:
        _delete(table_lake, report, doomed)
    return report


def _delete(table_lake: TableLake, report: CleanReport, doomed: list[Manifest]) -> None:
    """Carry out what the report decided: aborted uploads, deleted batches and orphan files."""
    if report.aborted_uploads:
        table_lake.abort_uploads(report.aborted_uploads)
    if doomed:
        table_lake.settle_watermark()  # the watermark must outlive the manifests it came from
    for m in doomed:
        table_lake.delete_batch(m)
    if report.deleted_orphans:
        rels = [table_lake.rel(f.path) for f in report.deleted_orphans]
        table_lake.lake.delete(rels)
        table_lake.lake.prune_dirs(rels, stop=table_lake.base)
