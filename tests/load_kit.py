"""Helpers for the load tests: hand-made Parquet parts and manifests (targets: kit.targets)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lakeshift.batch import BatchFile, Column, Cursor, Manifest
from lakeshift.config.models import ConnectionSettings
from lakeshift.lake_profile import PROFILE_VERSION, ROW_ORDINAL, ordinals, unsigned_type
from lakeshift.load import LoadResult

SETTINGS = ConnectionSettings()
_seq = itertools.count(1)

# arrow type -> (mysql COLUMN_TYPE, DATA_TYPE) used when a test does not say
_DEFAULT_MYSQL = {
    "int8": ("tinyint(4)", "tinyint"), "int16": ("smallint(6)", "smallint"), "int32": ("int(11)", "int"),
    "int64": ("bigint(20)", "bigint"), "uint8": ("tinyint(3) unsigned", "tinyint"),
    "uint16": ("smallint(5) unsigned", "smallint"), "uint32": ("int(10) unsigned", "int"),
    "uint64": ("bigint(20) unsigned", "bigint"), "bool": ("tinyint(1)", "tinyint"),
    "float": ("float", "float"), "double": ("double", "double"), "date32[day]": ("date", "date"),
    "timestamp[us]": ("datetime(6)", "datetime"), "timestamp[us, tz=UTC]": ("timestamp(6)", "timestamp"),
    "string": ("text", "text"), "binary": ("blob", "blob"),
}


def col(name: str, arrow: pa.DataType | str, mysql_type: str | None = None, data_type: str | None = None,
        **kw: Any) -> Column:
    arrow_s = str(arrow)
    mt, dt = _DEFAULT_MYSQL.get(arrow_s, (None, None))
    if arrow_s.startswith("decimal"):
        p, s = arrow.precision, arrow.scale  # type: ignore[union-attr]
        mt, dt = f"decimal({p},{s})", "decimal"
        kw.setdefault("numeric_precision", p)
        kw.setdefault("numeric_scale", s)
    mysql_type = mysql_type or mt
    data_type = data_type or dt
    if mysql_type is None or data_type is None:
        raise ValueError(f"say the MySQL type of {name}")
    if data_type in ("varchar", "char", "binary", "varbinary") and "char_max_length" not in kw:
        import re

        m = re.search(r"\((\d+)\)", mysql_type)
        kw["char_max_length"] = int(m.group(1)) if m else None
    return Column(name=name, mysql_type=mysql_type, data_type=data_type, nullable=True, arrow_type=arrow_s,
                  unsigned="unsigned" in mysql_type, **kw)


def ucol(name: str, bits: int, mysql_type: str | None = None, data_type: str | None = None) -> Column:
    """An unsigned MySQL integer (or BIT) column as the lake profile holds it (lake_profile.py)."""
    names = {8: "tinyint", 16: "smallint", 32: "int", 64: "bigint"}
    mysql_type = mysql_type or f"{names[bits]} unsigned"
    return col(name, unsigned_type(bits), mysql_type, data_type or names[bits])


class Lake:
    """A local folder playing the lake: parts written with pyarrow."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.fs = pafs.LocalFileSystem()

    def part(self, batch_id: str, table: pa.Table, index: int = 0, folder: str = "t") -> tuple[str, BatchFile]:
        rel = f"{folder}/{batch_id}/part-{index:05d}.parquet"
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, row_group_size=max(1, min(table.num_rows, 3)))
        return str(path), BatchFile(path=rel, rows=table.num_rows, bytes=path.stat().st_size)


def batch_id(n: int | None = None) -> str:
    n = next(_seq) if n is None else n
    return f"20260101T0000{n:08d}Z-aaaaaa"


def manifest(columns: Sequence[Column], files: Sequence[BatchFile], *, mode: str = "merge",
             key: Sequence[str] = ("id",), bid: str | None = None, pipeline: str = "pipe", table: str = "t",
             ts: str | None = None, id_col: str | None = None, null_counts: dict[str, int] | None = None,
             low: Cursor | None = None, high: Cursor | None = None, profile: int = PROFILE_VERSION) -> Manifest:
    return Manifest(
        batch_id=bid or batch_id(), pipeline=pipeline, table=table, source_table=f"src.{table}",
        strategy="full_sync" if mode == "replace" else "hybrid", mode=mode,  # type: ignore[arg-type]
        columns=list(columns), primary_key=list(key) if mode != "append" else [],
        cursor_timestamp_column=ts, cursor_id_column=id_col, watermark_low=low, watermark_high=high,
        files=list(files), rows=sum(f.rows for f in files), bytes=sum(f.bytes for f in files),
        null_counts=null_counts or {}, created_at="2026-01-01T00:00:00+00:00", lake_profile=profile,
    )


def batch(lake: Lake, columns: Sequence[Column], tables: Sequence[pa.Table | dict[str, list[Any]]], **kw: Any) -> tuple[Manifest, list[str]]:
    """Write `tables` as the parts of one batch; return its manifest and part paths."""
    bid = kw.pop("bid", None) or batch_id()
    schema = pa.schema([pa.field(c.name, pa.type_for_alias(c.arrow_type) if "(" not in c.arrow_type and "[" not in c.arrow_type
                                 else _arrow(c.arrow_type)) for c in columns])
    ordinal = kw.pop("ordinal", False)  # parts end with the row ordinal, as the lake writer writes it
    tables = [pa.table(t, schema=schema) if isinstance(t, dict) else t.cast(schema) for t in tables]
    if ordinal:
        starts = itertools.accumulate([0] + [t.num_rows for t in tables])
        tables = [t.append_column(ROW_ORDINAL, ordinals(start, t.num_rows)) for t, start in zip(tables, starts)]
    written = [lake.part(bid, t, i, folder=kw.get("table", "t")) for i, t in enumerate(tables)]
    m = manifest(columns, [f for _, f in written], bid=bid, **kw)
    m.row_ordinal = ordinal
    return m, [p for p, _ in written]


def _arrow(text: str) -> pa.DataType:
    from lakeshift.load.types import parse_arrow

    return parse_arrow(text)


def load(loader: Any, lake: Lake, m: Manifest, paths: Sequence[str], target_table: str = "t") -> LoadResult:
    """Like the engine: begin, add every part (abort if that fails), commit."""
    staged = loader.begin(m, target_table)
    try:
        for path, f in zip(paths, m.files):
            staged.add_part(path, lake.fs, "file://" + path, f)
    except BaseException:
        staged.abort()
        raise
    return staged.commit(m)


def rows(conn: Any, query: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(query).fetchall()]
