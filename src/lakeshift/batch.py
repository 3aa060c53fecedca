"""The hand-off contract between the extract and load stages.

A batch is the Parquet parts of one table from one run plus a manifest written
last. Everything the loader needs (schema with MySQL types, merge key, cursor
range, files) is in the manifest, so the load stage never talks to MySQL.
This module holds data only: no I/O, no imports of source/lake/load."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

FORMAT = "lakeshift-batch/1"
# The lake type profile new batches are written in (lake_profile.py).
LAKE_PROFILE = 2
Mode = Literal["merge", "replace", "append", "delete", "changes"]
DELETE_MODE = "delete"  # a batch of keys only: rows gone from the source (hard_deletes, verify --repair)

# cdc_strategy binlog: the columns a batch of changes (and the snapshot it starts from, with
# NULLs) carries besides the row image, and the values of OP_COLUMN.
OP_COLUMN = "_lakeshift_op"
SEQ_COLUMN = "_lakeshift_seq"
COMMIT_TS_COLUMN = "_lakeshift_commit_ts"
TRUNCATE_OP = "truncate"  # a TRUNCATE read from the binlog (hard_deletes set): no row image, every row goes
OPS = ("insert", "update", "delete", TRUNCATE_OP)


@dataclass(frozen=True)
class Column:
    """One source column as read from information_schema, and how the lake holds it."""

    name: str
    mysql_type: str  # COLUMN_TYPE, lower case: "decimal(12,2)", "bigint(20) unsigned", "tinyint(1)"
    data_type: str  # DATA_TYPE: "decimal", "bigint", "varchar", ...
    nullable: bool
    arrow_type: str  # str() of the Arrow type in the Parquet parts, e.g. "decimal128(12, 2)"
    char_max_length: int | None = None  # characters (VARCHAR/CHAR) or bytes (BINARY/BLOB)
    numeric_precision: int | None = None
    numeric_scale: int | None = None
    datetime_precision: int | None = None
    unsigned: bool = False
    # How a value is written when no Arrow type holds it exactly:
    # None (native), "text" (TIME, DECIMAL p>38, ... as their exact MySQL text)
    lake_encoding: str | None = None


@dataclass(frozen=True)
class BinlogPosition:
    """Where a binlog table's changes were read up to: the end of a committed
    transaction. `server` names the server the position belongs to (MySQL
    'uuid:<server_uuid>', MariaDB 'server_id:<n>'); `gtid` is the GTID set there
    where GTIDs are on; `seq` the number of changes numbered so far (the next
    change's _lakeshift_seq)."""

    file: str
    pos: int
    server: str
    gtid: str | None = None
    seq: int = 0

    @property
    def file_index(self) -> int:
        """The binlog file's number (mysql-bin.000042 -> 42): files sort by it."""
        tail = self.file.rsplit(".", 1)[-1]
        return int(tail) if tail.isdigit() else -1

    def key(self) -> tuple[int, int]:
        return self.file_index, self.pos

    def describe(self) -> str:
        return f"{self.file}:{self.pos}" + (f" (GTID {self.gtid})" if self.gtid else "") + f" on {self.server}"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BinlogPosition:
        return cls(file=str(data["file"]), pos=int(data["pos"]), server=str(data["server"]),
                   gtid=data.get("gtid"), seq=int(data.get("seq", 0)))


@dataclass(frozen=True)
class Cursor:
    """A position in a table's CDC order. `timestamp` is ISO-8601 at full
    precision (UTC with +00:00 for TIMESTAMP columns, naive for DATETIME);
    `id` is an int (or a str for non-integer keys)."""

    timestamp: str | None = None
    id: int | str | None = None
    # Checksum of the rows on this position's timestamp, taken in MySQL before they
    # were read (source/ties.py): unchanged, the next run starts right after it.
    ties: str | None = field(default=None, compare=False)
    binlog: BinlogPosition | None = None  # cdc_strategy binlog: the position is the watermark

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"timestamp": self.timestamp, "id": self.id}
        if self.ties is not None:
            data["ties"] = self.ties
        if self.binlog is not None:
            data["binlog"] = asdict(self.binlog)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Cursor | None:
        if not data:
            return None
        pos = data.get("binlog")
        return cls(timestamp=data.get("timestamp"), id=data.get("id"), ties=data.get("ties"),
                   binlog=BinlogPosition.from_dict(pos) if pos else None)


@dataclass(frozen=True)
class History:
    """scd_type: type_2 (load/strategies/history.py): the batch is written as versions of its
    business key. Given to the batch when it is loaded, from the table's config (never in the lake)."""

    business_key: tuple[str, ...]
    scd_columns: tuple[str, ...]  # a change in these opens a version; the other columns are updated in place
    max_delete_fraction: float = 0.1  # deleted tombstones a batch may write, as a share of the live keys
    force_deletes: bool = False


@dataclass(frozen=True)
class BatchFile:
    path: str  # relative to the table's lake folder
    rows: int
    bytes: int


@dataclass
class Manifest:
    batch_id: str
    pipeline: str
    table: str  # the pipeline's table key
    source_table: str  # schema.table in MySQL
    strategy: str  # cdc_strategy
    mode: Mode  # merge by key, replace the whole table (full_sync), append (no key), or delete (keys only)
    columns: list[Column]
    primary_key: list[str]  # merge key; empty for append
    cursor_timestamp_column: str | None = None
    cursor_id_column: str | None = None
    watermark_low: Cursor | None = None  # exclusive lower bound used by this run (None: from the start)
    watermark_high: Cursor | None = None  # last position read; the next run starts after it
    files: list[BatchFile] = field(default_factory=list)
    rows: int = 0
    bytes: int = 0
    null_counts: dict[str, int] = field(default_factory=dict)
    created_at: str = ""
    format: str = FORMAT
    # A sample (`--limit` on a full_sync table with --backup-only): some rows of a snapshot,
    # never loaded (it would replace the whole table with them) and never a watermark.
    sample: bool = False
    # False: the read started right AFTER watermark_low (the tie there was unchanged), so an
    # append batch's window starts after it too. Written only when false, like `sample`.
    low_inclusive: bool = True
    # The lake type profile of the parts (lake_profile.py); a manifest without the field (1) was
    # written before it existed, with unsigned Parquet types, which are converted when read.
    lake_profile: int = LAKE_PROFILE
    # True: each part ends with the column _lakeshift_ord, the row's position in the batch
    # (Redshift's COPY cannot number rows itself; the newest of a repeated key is the later row).
    row_ordinal: bool = False
    # hard_deletes: soft. A delete batch marks its keys' rows deleted (_lakeshift_deleted_at) instead
    # of removing them; a replace batch marks the rows its snapshot lacks. Written only when true.
    soft_delete: bool = False
    history: History | None = None  # set by the load stage (engine/history.py), never written
    # data_quality_checks duplicate_check (severity error) on a merge table: these key columns must
    # not repeat among the target's live rows after the move, or the load rolls back. Never written.
    unique_in_target: tuple[tuple[str, ...], ...] = ()

    @property
    def deletes(self) -> bool:
        """A delete batch: the key columns of rows gone from the source, nothing else. It
        moves no watermark and is no reference for the table's columns."""
        return self.mode == DELETE_MODE

    def to_json(self) -> str:
        data = asdict(self)
        data["watermark_low"] = self.watermark_low.to_dict() if self.watermark_low else None
        data["watermark_high"] = self.watermark_high.to_dict() if self.watermark_high else None
        if not self.sample:
            # Written only when true: an older lakeshift reads ordinary manifests as before and
            # refuses a sample's (an unknown field) instead of loading it as a snapshot.
            del data["sample"]
        if self.low_inclusive:
            del data["low_inclusive"]
        if not self.soft_delete:
            del data["soft_delete"]
        del data["history"]  # how the table is loaded is the config's, not the batch's
        del data["unique_in_target"]
        return json.dumps(data, indent=1, sort_keys=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"unsupported manifest format {data.get('format')!r}")
        data.setdefault("lake_profile", 1)
        data["columns"] = [Column(**c) for c in data["columns"]]
        data["files"] = [BatchFile(**f) for f in data["files"]]
        data["watermark_low"] = Cursor.from_dict(data.get("watermark_low"))
        data["watermark_high"] = Cursor.from_dict(data.get("watermark_high"))
        if not isinstance(data.get("sample", False), bool):
            raise ValueError(f"'sample' must be true or false, not {data['sample']!r}")
        if not isinstance(data.get("soft_delete", False), bool):
            raise ValueError(f"'soft_delete' must be true or false, not {data['soft_delete']!r}")
        return cls(**data)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def change_columns() -> list[Column]:
    """The change columns as manifest columns: the operation, the change's place in
    the table's total order, and its transaction's commit time (whole seconds, UTC)."""
    return [
        Column(OP_COLUMN, "varchar(8)", "varchar", True, "string", char_max_length=8),
        Column(SEQ_COLUMN, "bigint(20)", "bigint", True, "int64", numeric_precision=19, numeric_scale=0),
        Column(COMMIT_TS_COLUMN, "timestamp", "timestamp", True, "timestamp[us, tz=UTC]", datetime_precision=0),
    ]


def new_batch_id(now: datetime | None = None) -> str:
    """Sortable by creation time: 20261126T101530123456Z-a1b2c3."""
    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()
