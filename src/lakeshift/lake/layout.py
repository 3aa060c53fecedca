"""Where one table's batches live in the lake, and its extract watermark.

    <root>/<isolation_prefix>/<table>/          (empty prefix: <root>/<table>/, the v1.0 layout)
        year=YYYY/month=MM/day=DD/hour=HH/<batch_id>-part-00000.parquet        partition_strategy datetime
        year=YYYY/month=MM/day=DD/hour=HH/batch=<batch_id>/part-00000.parquet  partition_strategy hybrid
        _manifests/<batch_id>.json     written last: a batch exists only when its manifest does
        _state/watermark.json          the extract watermark and the batch it came from

The folders are the run's start time in UTC, so all parts of a batch share one folder.

Watermark rule (so a crash between the manifest and the state file loses
nothing): the state file names the batch its watermark came from (or, for a
manual set/reset, the newest batch at that time). The effective watermark is
the state's, unless a manifest newer than that batch exists: then the newest
manifest's `watermark_high` wins."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

from lakeshift.batch import Cursor, Manifest, utc_now_iso
from lakeshift.errors import LakeError
from lakeshift.lake.errors import LakeFileNotFound
from lakeshift.lake.storage import FileInfo, Lake, PendingUpload
from lakeshift.lake_profile import upgrade_manifest

log = logging.getLogger("lakeshift.lake")

MANIFESTS = "_manifests"
STATE = "_state"
WATERMARK_FILE = f"{STATE}/watermark.json"
STATE_FORMAT = "lakeshift-watermark/1"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.=$-]*$")
PartitionStrategy = Literal["datetime", "hybrid"]


def _check_name(value: str, what: str) -> str:
    if not _NAME.fullmatch(value or "") or value in (".", ".."):
        raise LakeError(f"{what} {value!r} cannot be used as a lake folder name")
    return value


def folder_name(table: str) -> str:
    """The lake folder of a pipeline table key. Keys made of letters, digits
    and `_ . = $ -` are used as they are (the v1.0 layout); any other key
    (spaces, unicode, reserved words are all allowed in configuration) gets
    a readable slug plus a hash of the exact key, so two keys never share a
    folder and no key can reach outside its folder (no '/', never '..')."""
    if not isinstance(table, str) or not table:
        raise LakeError("table must be a non-empty name")
    if _NAME.fullmatch(table) and table not in (".", ".."):
        return table
    slug = re.sub(r"[^A-Za-z0-9_.=$-]+", "_", table)[:40]
    if not re.match(r"[A-Za-z0-9_]", slug):
        slug = "_" + slug
    return f"{slug}-{hashlib.sha256(table.encode('utf-8')).hexdigest()[:12]}"


@dataclass(frozen=True)
class WatermarkState:
    """The content of _state/watermark.json."""

    watermark: Cursor | None
    batch_id: str | None  # the batch the watermark came from; manual: the newest batch when it was set
    manual: bool = False  # written by `watermark set` / `watermark reset`
    updated_at: str = ""

    def to_json(self) -> str:
        return json.dumps({
            "format": STATE_FORMAT,
            "watermark": self.watermark.to_dict() if self.watermark else None,
            "batch_id": self.batch_id,
            "manual": self.manual,
            "updated_at": self.updated_at,
        }, indent=1)

    @classmethod
    def from_json(cls, text: str | bytes) -> WatermarkState:
        data = json.loads(text)
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"unsupported state format {data.get('format')!r}")
        return cls(Cursor.from_dict(data.get("watermark")), data.get("batch_id"), bool(data.get("manual")),
                   data.get("updated_at") or "")


@dataclass(frozen=True)
class WatermarkInfo:
    """Where the effective watermark came from."""

    source: Literal["none", "state", "manual", "manifest"]
    batch_id: str | None  # the batch it came from (manual: newest batch when it was set)
    state: WatermarkState | None
    updated_at: str = ""


class TableLake:
    """One table's folder in the lake. Paths it returns or takes (BatchFile.path,
    FileInfo.path) are relative to the table folder; `rel` makes them
    relative to the lake root for `Lake`."""

    def __init__(self, lake: Lake, isolation_prefix: str, table: str) -> None:
        self.lake = lake
        self.table = table
        self.folder = folder_name(table)
        prefix = (isolation_prefix or "").strip("/")
        for part in prefix.split("/") if prefix else []:
            _check_name(part, "isolation_prefix part")
        self.isolation_prefix = prefix
        self.base = f"{prefix}/{self.folder}" if prefix else self.folder

    def __repr__(self) -> str:
        return f"TableLake({self.uri()!r})"

    # ----------------------------------------------------------------- paths
    def rel(self, path: str = "") -> str:
        """Table-relative → lake-root-relative."""
        return f"{self.base}/{path}" if path else self.base

    def uri(self, path: str = "") -> str:
        return self.lake.uri(self.rel(path))

    def part_path(self, batch_id: str, started_at: datetime, n: int,
                  partition_strategy: PartitionStrategy = "hybrid") -> str:
        _check_name(batch_id, "batch id")
        ts = _utc(started_at)
        folder = f"year={ts:%Y}/month={ts:%m}/day={ts:%d}/hour={ts:%H}"
        if partition_strategy == "datetime":
            return f"{folder}/{batch_id}-part-{n:05d}.parquet"
        if partition_strategy == "hybrid":
            return f"{folder}/batch={batch_id}/part-{n:05d}.parquet"
        raise LakeError(f"unknown partition_strategy {partition_strategy!r}")

    @staticmethod
    def manifest_path(batch_id: str) -> str:
        return f"{MANIFESTS}/{_check_name(batch_id, 'batch id')}.json"

    # ------------------------------------------------------------- manifests
    def write_manifest(self, manifest: Manifest) -> None:
        """Call after every part is closed: this write makes the batch exist."""
        self.lake.write_bytes(self.rel(self.manifest_path(manifest.batch_id)), manifest.to_json().encode())

    def manifest_ids(self) -> list[str]:
        """Batch ids with a manifest, oldest first (batch ids sort by time)."""
        ids = []
        for f in self.lake.list(self.rel(MANIFESTS), recursive=False):
            name = f.path.rsplit("/", 1)[-1]
            if name.endswith(".json") and _NAME.fullmatch(name[:-5]) and not name.startswith("."):
                ids.append(name[:-5])
        return sorted(ids)

    def read_manifest(self, batch_id: str) -> Manifest:
        path = self.manifest_path(batch_id)
        data = self.lake.read_bytes(self.rel(path))
        try:
            manifest = upgrade_manifest(Manifest.from_json(data))
        except Exception as exc:  # noqa: BLE001 - any parse problem is the same: a damaged file
            raise LakeError(f"manifest {self.uri(path)} is unreadable ({_short(exc)}); repair or delete it") from None
        if manifest.batch_id != batch_id:
            raise LakeError(f"manifest {self.uri(path)} holds batch {manifest.batch_id!r}; repair or delete it")
        return manifest

    def manifests(self) -> list[Manifest]:
        """Every batch of the table, oldest first. A damaged manifest is an
        error naming the file: skipping it could hide data or move a watermark."""
        ids = self.manifest_ids()
        if len(ids) <= 4:
            return [self.read_manifest(b) for b in ids]
        with ThreadPoolExecutor(max_workers=min(16, len(ids)), thread_name_prefix="lakeshift-manifest") as pool:
            return list(pool.map(self.read_manifest, ids))  # one GET each: overlap them on S3

    def newest_manifest(self) -> Manifest | None:
        """The newest batch of rows (a delete batch holds keys only: it tells nothing of the columns)."""
        for batch_id in reversed(self.manifest_ids()):
            manifest = self.read_manifest(batch_id)
            if not manifest.deletes:
                return manifest
        return None

    def delete_batch(self, manifest: Manifest) -> None:
        """Parts first, manifest last: a crash in between leaves orphans, never
        a manifest naming missing files."""
        parts = [self.rel(f.path) for f in manifest.files]
        self.lake.delete(parts)
        self.lake.delete([self.rel(self.manifest_path(manifest.batch_id))])
        self.lake.prune_dirs(parts, stop=self.base)

    def files(self) -> list[FileInfo]:
        """Every file in the table folder, paths relative to it."""
        cut = len(self.base) + 1
        return [FileInfo(f.path[cut:], f.size, f.mtime) for f in self.lake.list(self.base)]

    def incomplete_uploads(self) -> list[PendingUpload]:
        """S3 multipart uploads of parts whose writer died mid-upload (paths
        relative to the table folder); none on a local lake."""
        return self.lake.incomplete_uploads(self.base)

    def abort_uploads(self, uploads: list[PendingUpload]) -> None:
        self.lake.abort_uploads(self.base, uploads)

    def orphans(self, manifests: list[Manifest] | None = None) -> list[FileInfo]:
        """Files no manifest names: parts of a killed or running extract, and
        temporary files. Manifests and the state file are not orphans."""
        if manifests is None:
            manifests = self.manifests()
        known = {f.path for m in manifests for f in m.files}
        known.update(self.manifest_path(m.batch_id) for m in manifests)
        known.add(WATERMARK_FILE)
        return [f for f in self.files() if f.path not in known]

    def check_writable(self) -> None:
        """A run can write this table's folder (probe file written and deleted), or LakeError."""
        self.lake.check_writable(self.base)

    # ------------------------------------------------------------- watermark
    def read_watermark(self) -> WatermarkState | None:
        try:
            data = self.lake.read_bytes(self.rel(WATERMARK_FILE))
        except LakeFileNotFound:
            return None
        try:
            return WatermarkState.from_json(data)
        except Exception as exc:  # noqa: BLE001
            raise LakeError(
                f"watermark state {self.uri(WATERMARK_FILE)} is unreadable ({_short(exc)}); "
                "repair it or use `watermark set`"
            ) from None

    def write_watermark(self, watermark: Cursor | None, batch_id: str | None, manual: bool = False) -> WatermarkState:
        """After a batch: call once its manifest is written, with that batch id."""
        state = WatermarkState(watermark, batch_id, manual, utc_now_iso())
        self.lake.write_bytes(self.rel(WATERMARK_FILE), state.to_json().encode())
        return state

    def set_watermark(self, watermark: Cursor | None) -> WatermarkState:
        """`watermark set` (None: `watermark reset`): applies after every batch written so far."""
        ids = self.manifest_ids()
        return self.write_watermark(watermark, ids[-1] if ids else None, manual=True)

    def reset_watermark(self) -> WatermarkState:
        """The next run starts from scratch."""
        return self.set_watermark(None)

    def effective_watermark(self) -> tuple[Cursor | None, WatermarkInfo]:
        state = self.read_watermark()
        for newest in reversed(self.manifest_ids()):
            if state is not None and state.batch_id is not None and newest <= state.batch_id:
                break
            manifest = self.read_manifest(newest)
            if manifest.sample or manifest.deletes:  # a sample or a delete batch moves no watermark
                continue
            return manifest.watermark_high, WatermarkInfo("manifest", newest, state, manifest.created_at)
        if state is None:
            return None, WatermarkInfo("none", None, None)
        return state.watermark, WatermarkInfo("manual" if state.manual else "state", state.batch_id, state,
                                              state.updated_at)

    def settle_watermark(self) -> WatermarkState | None:
        """Write the effective watermark to the state file when it only lives in
        a manifest (a crash after the manifest), so that manifest may be deleted."""
        cursor, info = self.effective_watermark()
        if info.source != "manifest":
            return info.state
        log.info("%s: recording the watermark of batch %s in the state file", self.uri(), info.batch_id)
        return self.write_watermark(cursor, info.batch_id)


def batch_created(manifest: Manifest) -> datetime:
    """When a batch was made: its created_at, else the time in its batch id."""
    for parse in (lambda: datetime.fromisoformat(manifest.created_at),
                  lambda: datetime.strptime(manifest.batch_id[:22], "%Y%m%dT%H%M%S%fZ")):
        try:
            return _utc(parse())
        except (ValueError, TypeError):
            continue
    return datetime.fromtimestamp(0, timezone.utc)


def _utc(ts: datetime) -> datetime:
    # A naive time is taken as UTC (the engine passes aware UTC times).
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
