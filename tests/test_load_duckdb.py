"""DuckDB specifics: exact types, an S3 lake read through pyarrow (no httpfs),
the database file held by another process, parallel loads in one process."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from conftest import TEST_AWS_KEY, TEST_AWS_SECRET
from load_kit import SETTINGS, Lake, batch, col, load, manifest
from kit.targets import duck_target
from test_load_postgres import ROUND_TRIP

from lakeshift.batch import BatchFile
from lakeshift.errors import LockBusyError
from lakeshift.load import open_target

DUCK_TYPES = {
    "u64": "UBIGINT", "i64": "BIGINT", "i8": "TINYINT", "u8": "UTINYINT", "u16": "USMALLINT", "u32": "UINTEGER",
    "bits": "UBIGINT", "flag": "BOOLEAN", "yr": "SMALLINT", "d38": "DECIMAL(38,10)", "d65": "VARCHAR",
    "f32": "FLOAT", "f64": "DOUBLE", "d": "DATE", "dt": "TIMESTAMP", "ts": "TIMESTAMP WITH TIME ZONE",
    "tm": "INTERVAL", "s": "VARCHAR", "c4": "VARCHAR", "txt": "VARCHAR", "e": "VARCHAR", "j": "JSON", "bin": "BLOB",
    "vb": "BLOB", "geo": "BLOB",
}


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, float):
        return isinstance(got, float) and got == want and math.copysign(1, got) == math.copysign(1, want)
    return got == want and type(got) is type(want)


def test_every_lake_type_round_trips_value_exactly(tmp_path):
    lake = Lake(tmp_path / "lake")
    cols = [col("id", pa.int32())] + [c for c, *_ in ROUND_TRIP]
    data = {"id": [1, 2, 3, 4], **{c.name: v for c, v, *_ in ROUND_TRIP}}
    data["s"] = ["", None, "NULL", "a\x00b"]  # DuckDB VARCHAR holds NUL: '' vs NULL vs 'NULL' vs '\x00'
    m, paths = batch(lake, cols, [data])
    db = tmp_path / "new" / "folder" / "t.duckdb"
    loader = duck_target(db, "analytics").open()
    assert load(loader, lake, m, paths).rows == 4
    con = duckdb.connect(str(db))
    try:
        types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_schema = 'analytics' AND table_name = 't'").fetchall())
        con.execute("SET TimeZone = 'UTC'")
        got_rows = con.execute('SELECT * FROM analytics.t ORDER BY id').fetchall()
    finally:
        con.close()
    for i, (column, values, expected, _pg) in enumerate(ROUND_TRIP, start=1):
        assert types[column.name] == DUCK_TYPES[column.name], column.name
        want = list(data[column.name]) if column.name == "s" else list(expected if expected is not None else values)
        if column.name == "d65":
            want = values  # DECIMAL(65,30) stays its exact MySQL text in DuckDB (max 38 digits)
        if column.name == "j":
            want = values  # JSON text as MySQL wrote it
        if column.name in ("u64", "bits"):
            want = values
        for r, value in enumerate(want):
            got = got_rows[r][i]
            if column.name == "tm" and got is not None:
                assert isinstance(got, timedelta)
            assert _same(got, value), (column.name, r, got, value)


def test_an_s3_lake_is_read_through_pyarrow_without_httpfs(tmp_path, s3_endpoint, s3_bucket):
    fs = pafs.S3FileSystem(access_key=TEST_AWS_KEY, secret_key=TEST_AWS_SECRET, region="us-east-1",
                           endpoint_override=s3_endpoint, scheme="http")
    cols = [col("id", pa.int64()), col("v", pa.string())]
    key = f"{s3_bucket}/lake/pipe/t/b1/part-00000.parquet"
    pq.write_table(pa.table({"id": [1, 2], "v": ["x", "y"]}), key, filesystem=fs)
    size = fs.get_file_info(key).size
    m = manifest(cols, [BatchFile("pipe/t/b1/part-00000.parquet", 2, size)])
    loader = duck_target(tmp_path / "t.duckdb", "main").open()
    staged = loader.begin(m, "t")
    staged.add_part(key, fs, f"s3://{key}", m.files[0])
    assert staged.commit(m).rows == 2
    con = duckdb.connect(str(tmp_path / "t.duckdb"))
    try:
        assert con.execute("SELECT * FROM t ORDER BY id").fetchall() == [(1, "x"), (2, "y")]
        assert "httpfs" not in {r[0] for r in con.execute(
            "SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()}
    finally:
        con.close()


HOLDER = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])
print("open", flush=True)
sys.stdin.read()
"""


@pytest.mark.slow
def test_a_file_held_by_another_process_is_waited_for_then_refused(tmp_path):
    db = tmp_path / "t.duckdb"
    duckdb.connect(str(db)).close()
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "open"
        loader = duck_target(db, "main").open(lock_timeout=0.3)
        with pytest.raises(LockBusyError, match="held by another process"):
            loader.ensure_state_tables()
    finally:
        proc.stdin.close()
        proc.wait(30)
    duck_target(db, "main").open().ensure_state_tables()  # free again


def test_parallel_tables_in_one_process(tmp_path):
    """The engine loads independent tables on threads, each with its own loader."""
    lake = Lake(tmp_path / "lake")
    db = tmp_path / "t.duckdb"
    cols = [col("id", pa.int64()), col("v", pa.string())]
    jobs = []
    for n in range(4):
        m, paths = batch(lake, cols, [{"id": list(range(50)), "v": [f"t{n}"] * 50}], table=f"t{n}")
        jobs.append((m, paths, f"t{n}"))
    errors: list[BaseException] = []

    def run(m: Any, paths: list[str], name: str) -> None:
        try:
            loader = duck_target(db, "par").open()
            loader.ensure_state_tables()
            with loader.lock(m.pipeline, m.table):
                load(loader, lake, m, paths, target_table=name)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=job) for job in jobs]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert errors == []
    con = duckdb.connect(str(db))
    try:
        for n in range(4):
            assert con.execute(f"SELECT COUNT(*), MIN(v) FROM par.t{n}").fetchone() == (50, f"t{n}")
        assert con.execute("SELECT COUNT(*) FROM par._lakeshift_loads").fetchone() == (4,)
    finally:
        con.close()


def test_json_and_decimal_text_stay_exact(tmp_path):
    lake = Lake(tmp_path / "lake")
    cols = [col("id", pa.int32()), col("j", pa.string(), "json", "json"),
            col("d", pa.string(), "decimal(65,30)", "decimal", numeric_precision=65, numeric_scale=30,
                lake_encoding="text")]
    doc = '{"a": 1, "b": [true, null, 1.5e300], "k": "\\u0000"}'
    m, paths = batch(lake, cols, [{"id": [1], "j": [doc], "d": ["-12345678901234567890123456789012345.123456789012345678901234567890"]}])
    db = tmp_path / "t.duckdb"
    load(duck_target(db, "main").open(), lake, m, paths)
    con = duckdb.connect(str(db))
    try:
        j, d = con.execute("SELECT j, d FROM t").fetchone()
    finally:
        con.close()
    assert json.loads(j) == json.loads(doc) and Decimal(d) == Decimal(
        "-12345678901234567890123456789012345.123456789012345678901234567890")


def test_an_in_memory_database_lives_as_long_as_the_loader(tmp_path):
    lake = Lake(tmp_path / "lake")
    cols = [col("id", pa.int64())]
    m, paths = batch(lake, cols, [{"id": [1, 2]}])
    loader = open_target(duck_target(Path(":memory:"), "main").model(), SETTINGS)
    try:
        loader.ensure_state_tables()
        with loader.lock("pipe", "t"):
            assert load(loader, lake, m, paths).rows == 2
        assert list(loader.loaded_batches("pipe", "t")) == [m.batch_id]
    finally:
        loader.close()
