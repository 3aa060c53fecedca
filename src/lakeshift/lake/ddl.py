"""CREATE EXTERNAL TABLE (or a DuckDB view) for one table's lake folder, with the
exact column types of the lake profile (lake_profile.py) in each engine's terms,
so users of Athena, Redshift Spectrum, Snowflake and DuckDB need not guess them
(`lakeshift lake ddl`, docs/types.md "Reading the lake with other engines").

The columns are the newest batch's; every Parquet part lies below the table
folder (year=/month=/day=/hour=/...), which Athena and Spectrum read with its
subfolders. Files that are not parts (_manifests/, _state/, the Redshift COPY
manifests) start with an underscore, which those engines skip; Snowflake and
DuckDB are given a *.parquet pattern."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import pyarrow as pa

from lakeshift.arrow_types import parse_arrow_type
from lakeshift.batch import Manifest
from lakeshift.errors import LakeshiftError
from lakeshift.identifiers import quote_ansi, quote_mysql
from lakeshift.lake_profile import ROW_ORDINAL, upgrade_type

# Redshift's largest VARCHAR and VARBYTE (bytes), which Spectrum's external tables take too.
SPECTRUM_VARCHAR_MAX = 65535
SPECTRUM_VARBYTE_MAX = 16777216

Dialect = Literal["athena", "spectrum", "snowflake", "duckdb"]
DIALECTS: tuple[str, ...] = ("athena", "spectrum", "snowflake", "duckdb")

_INTS = {  # bit width -> athena, spectrum, snowflake, duckdb
    8: ("TINYINT", "SMALLINT", "NUMBER(3,0)", "TINYINT"), 16: ("SMALLINT", "SMALLINT", "NUMBER(5,0)", "SMALLINT"),
    32: ("INT", "INTEGER", "NUMBER(10,0)", "INTEGER"), 64: ("BIGINT", "BIGINT", "NUMBER(19,0)", "BIGINT"),
}


def column_type(arrow: pa.DataType, dialect: str) -> str:
    """The engine's type that reads every value of a lake column of this Arrow type exactly."""
    i = DIALECTS.index(dialect)
    if pa.types.is_signed_integer(arrow):
        return _INTS[arrow.bit_width][i]
    if pa.types.is_decimal(arrow):
        p, s = arrow.precision, arrow.scale
        return f"NUMBER({p},{s})" if dialect == "snowflake" else f"DECIMAL({p},{s})"
    if pa.types.is_timestamp(arrow):  # Snowflake: UTC wall time for instants (the Parquet holds UTC)
        return ("TIMESTAMP", "TIMESTAMP", "TIMESTAMP_NTZ(6)",
                "TIMESTAMPTZ" if arrow.tz else "TIMESTAMP")[i]
    simple = {
        "bool": ("BOOLEAN",) * 4, "date32[day]": ("DATE",) * 4,
        "float": ("FLOAT", "REAL", "FLOAT", "FLOAT"), "double": ("DOUBLE", "DOUBLE PRECISION", "FLOAT", "DOUBLE"),
        "string": ("STRING", f"VARCHAR({SPECTRUM_VARCHAR_MAX})", "VARCHAR", "VARCHAR"),
        "binary": ("BINARY", f"VARBYTE({SPECTRUM_VARBYTE_MAX})", "BINARY", "BLOB"),
    }.get(str(arrow))
    if simple is None:
        raise LakeshiftError(f"lake type {arrow} is not in the lake profile; no {dialect} type for it")
    return simple[i]


def _columns(manifest: Manifest) -> list[tuple[str, pa.DataType]]:
    cols = [(c.name, upgrade_type(parse_arrow_type(c.arrow_type))) for c in manifest.columns]
    return cols + [(ROW_ORDINAL, pa.int64())] if manifest.row_ordinal else cols


def _column_list(cols: Sequence[tuple[str, pa.DataType]], dialect: str, quote: Callable[[str], str],
                 render: Callable[[str, str], str] | None = None) -> str:
    items = []
    for name, arrow in cols:
        t = column_type(arrow, dialect)
        items.append(render(name, t) if render else f"  {quote(name)} {t}")
    return "(\n" + ",\n".join(items) + "\n)"


def external_table(manifest: Manifest, location: str, dialect: str, name: str, schema: str | None = None,
                   stage: str = "lakeshift_lake", rel: str = "") -> str:
    """The statement for `dialect`. `location`: the table folder's URI (s3://.../ or a local
    path); `rel`: the folder's path below the lake's root, which the Snowflake stage `stage` points at."""
    cols = _columns(manifest)
    folder = location.rstrip("/") + "/"
    if "'" in folder or "\\" in folder:
        raise LakeshiftError(f"the lake folder {location} holds a quote or backslash; no statement can name it")
    if dialect in ("athena", "spectrum", "snowflake") and not folder.startswith("s3://"):
        raise LakeshiftError(f"--dialect {dialect} reads the lake from S3, but {location} is a local folder; "
                             "use --dialect duckdb for a local lake")
    if dialect == "athena":
        table = f"{quote_mysql(schema)}.{quote_mysql(name)}" if schema else quote_mysql(name)
        return (f"CREATE EXTERNAL TABLE {table} {_column_list(cols, dialect, quote_mysql)}\n"
                f"STORED AS PARQUET\nLOCATION '{folder}'")
    if dialect == "spectrum":
        table = f"{quote_ansi(schema or 'spectrum')}.{quote_ansi(name)}"
        return (f"CREATE EXTERNAL TABLE {table} {_column_list(cols, dialect, quote_ansi)}\n"
                f"STORED AS PARQUET\nLOCATION '{folder}'")
    if dialect == "snowflake":
        table = f"{quote_ansi(schema)}.{quote_ansi(name)}" if schema else quote_ansi(name)
        body = _column_list(cols, dialect, quote_ansi,
                            lambda n, t: f"  {quote_ansi(n)} {t} AS (CAST(VALUE:{quote_ansi(n)} AS {t}))")
        return (f"CREATE OR REPLACE EXTERNAL TABLE {table} {body}\n"
                f"LOCATION = @{stage}/{rel.strip('/')}/\nPATTERN = '.*[.]parquet'\n"
                "FILE_FORMAT = (TYPE = PARQUET)\nAUTO_REFRESH = FALSE")
    if dialect == "duckdb":
        table = f"{quote_ansi(schema)}.{quote_ansi(name)}" if schema else quote_ansi(name)
        select = ",\n".join(f"  CAST({quote_ansi(n)} AS {column_type(t, dialect)}) AS {quote_ansi(n)}" for n, t in cols)
        return (f"CREATE OR REPLACE VIEW {table} AS SELECT\n{select}\n"
                f"FROM read_parquet('{folder}**/*.parquet', union_by_name = true, hive_partitioning = false)")
    raise LakeshiftError(f"--dialect must be one of {', '.join(DIALECTS)}, not {dialect!r}")
