"""BatchWriter on S3 (moto) and a local folder: part rolling, row groups,
compression, exact values, field metadata, zero rows, abort."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakeshift.batch import BatchFile, new_batch_id
from lakeshift.config.models import LakeSettings, LocalStorage, S3Storage
from lakeshift.lake import BatchWriter, Lake, TableLake
from lakeshift.lake.local import LocalLake

STARTED = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=timezone.utc)


@pytest.fixture(params=["s3", "local"])
def table_lake(request: pytest.FixtureRequest, tmp_path: Path) -> TableLake:
    if request.param == "s3":
        storage: Any = S3Storage(**request.getfixturevalue("s3_storage"))
    else:
        storage = LocalStorage(type="local", path="lake")
    return TableLake(Lake.from_config(storage, base_dir=tmp_path), "pipe", "orders")


def read_part(tl: TableLake, part: BatchFile) -> pq.ParquetFile:
    lake = tl.lake
    return pq.ParquetFile(lake.filesystem.open_input_file(lake.full_path(tl.rel(part.path))))


def ids_schema() -> pa.Schema:
    return pa.schema([pa.field("id", pa.int64(), metadata={"mysql_type": "bigint(20)"}),
                      pa.field("name", pa.string(), metadata={"mysql_type": "varchar(20)"})])


def ids_batch(start: int, n: int, schema: pa.Schema) -> pa.RecordBatch:
    ids = list(range(start, start + n))
    names = [None if i % 7 == 0 else f"n{i}" for i in ids]
    return pa.RecordBatch.from_arrays([pa.array(ids, pa.int64()), pa.array(names, pa.string())], schema=schema)


def test_parts_roll_with_exact_rows_sizes_and_row_groups(table_lake: TableLake) -> None:
    schema = ids_schema()
    seen: list[BatchFile] = []
    settings = LakeSettings(max_file_rows=1000, row_group_rows=300, partition_strategy="hybrid")
    batch_id = new_batch_id(STARTED)
    writer = BatchWriter(table_lake, batch_id, STARTED, schema, settings, on_part=seen.append)
    for start in range(0, 1020, 170):  # 6 batches of 170 = 1020 rows
        writer.write(ids_batch(start, 170, schema))
        assert writer._buffered < settings.row_group_rows  # memory bounded by one row group
    assert len(seen) == 1 and seen[0].rows == 1000  # handed over as soon as it closed
    writer.write(pa.Table.from_batches([ids_batch(1020, 1480, schema)]))  # a Table works too
    files, rows, nbytes, nulls = writer.close()

    assert rows == 2500
    assert [f.rows for f in files] == [1000, 1000, 500]
    assert seen == files
    assert nbytes == sum(f.bytes for f in files)
    folder = f"year=2026/month=03/day=04/hour=05/batch={batch_id}"
    assert [f.path for f in files] == [f"{folder}/part-{n:05d}.parquet" for n in range(3)]
    listed = {f.path: f.size for f in table_lake.files()}
    assert listed == {f.path: f.bytes for f in files}
    assert nulls == {"id": 0, "name": len([i for i in range(2500) if i % 7 == 0])}

    groups = [[read_part(table_lake, f).metadata.row_group(g).num_rows
               for g in range(read_part(table_lake, f).metadata.num_row_groups)] for f in files]
    assert groups == [[300, 300, 300, 100], [300, 300, 300, 100], [300, 200]]
    back = pa.concat_tables([read_part(table_lake, f).read() for f in files])
    assert back.column("id").to_pylist() == list(range(2500))


def test_datetime_layout_names(table_lake: TableLake) -> None:
    schema = ids_schema()
    batch_id = new_batch_id(STARTED)
    writer = BatchWriter(table_lake, batch_id, STARTED, schema,
                         LakeSettings(max_file_rows=5, partition_strategy="datetime"))
    writer.write(ids_batch(0, 7, schema))
    files, *_ = writer.close()
    assert [f.path for f in files] == [
        f"year=2026/month=03/day=04/hour=05/{batch_id}-part-00000.parquet",
        f"year=2026/month=03/day=04/hour=05/{batch_id}-part-00001.parquet",
    ]


@pytest.mark.parametrize("compression, codec", [("snappy", "SNAPPY"), ("zstd", "ZSTD"), ("gzip", "GZIP"),
                                                ("none", "UNCOMPRESSED")])
def test_compressions(table_lake: TableLake, compression: str, codec: str) -> None:
    schema = ids_schema()
    writer = BatchWriter(table_lake, new_batch_id(), STARTED, schema, LakeSettings(compression=compression))
    writer.write(ids_batch(0, 500, schema))
    files, rows, *_ = writer.close()
    meta = read_part(table_lake, files[0]).metadata
    assert rows == 500 and meta.num_rows == 500
    assert {meta.row_group(0).column(c).compression for c in range(2)} == {codec}


def test_exact_values_and_field_metadata_round_trip(table_lake: TableLake) -> None:
    every_byte = bytes(range(256))
    fields = [
        ("dec", pa.decimal128(38, 10), [Decimal("-9999999999999999999999999999.9999999999"),
                                        Decimal("0.0000000001"), None, Decimal("12345.6789012345")],
         "decimal(38,10)"),
        ("u64", pa.decimal128(20, 0), [18446744073709551615, 0, None, 9223372036854775808], "bigint(20) unsigned"),
        ("ts", pa.timestamp("us", tz="UTC"), [datetime(1970, 1, 1, 0, 0, 1, 1, tzinfo=timezone.utc),
                                              datetime(2038, 1, 19, 3, 14, 7, 999999, tzinfo=timezone.utc),
                                              None, datetime(2026, 2, 28, 23, 59, 59, 123456, tzinfo=timezone.utc)],
         "timestamp(6)"),
        ("dt", pa.timestamp("us"), [datetime(1000, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999), None,
                                    datetime(2026, 1, 1, 12)], "datetime(6)"),
        ("d", pa.date32(), [date(1000, 1, 1), date(9999, 12, 31), None, date(2024, 2, 29)], "date"),
        ("bin", pa.binary(), [every_byte, b"", None, b"\x00"], "blob"),
        ("s", pa.string(), ["emoji 😀🏳️‍🌈 𝄞", "", None, "NULL"], "varchar(255)"),
        ("b", pa.bool_(), [True, False, None, True], "tinyint(1)"),
        ("i8", pa.int8(), [-128, 127, None, 0], "tinyint(4)"),
        ("f", pa.float64(), [1.5e308, -0.0, None, 5e-324], "double"),
    ]
    schema = pa.schema([pa.field(n, t, metadata={"mysql_type": m}) for n, t, _, m in fields])
    table = pa.table({n: pa.array(v, t) for n, t, v, _ in fields}, schema=schema)
    writer = BatchWriter(table_lake, new_batch_id(), STARTED, schema, LakeSettings(compression="zstd"))
    writer.write(table.to_batches()[0])
    files, rows, _, nulls = writer.close()
    assert rows == 4 and nulls == {n: 1 for n, *_ in fields}

    back = read_part(table_lake, files[0]).read()
    assert back.schema.equals(schema, check_metadata=True)
    assert back.schema.field("dec").metadata == {b"mysql_type": b"decimal(38,10)"}
    for name, _, values, _ in fields:
        assert back.column(name).to_pylist() == values, name
    assert back.column("bin")[0].as_py() == every_byte
    assert back.column("ts").type.tz == "UTC"


def test_a_type_outside_the_lake_profile_fails_the_suite_check(table_lake: TableLake) -> None:
    """conftest sets LAKESHIFT_CHECK_LAKE_PROFILE: each closed part is checked (never in production)."""
    schema = pa.schema([pa.field("u", pa.uint64()), pa.field("t", pa.timestamp("ns"))])
    writer = BatchWriter(table_lake, new_batch_id(), STARTED, schema, LakeSettings())
    writer.write(pa.table({"u": pa.array([1], pa.uint64()), "t": pa.array([1000], pa.timestamp("ns"))}, schema=schema))
    with pytest.raises(AssertionError, match=r"outside the lake profile: u: INT64/Int\(bitWidth=64, isSigned=false\)"):
        writer.close()


def test_the_row_ordinal_numbers_the_rows_of_the_batch_across_parts(table_lake: TableLake) -> None:
    schema = ids_schema()
    seen: list[pa.Table] = []
    writer = BatchWriter(table_lake, new_batch_id(), STARTED, schema, LakeSettings(max_file_rows=30, row_group_rows=10),
                         on_rows=seen.append, ordinal=True)
    writer.write(ids_batch(0, 45, schema))
    writer.write(ids_batch(45, 20, schema))
    files = writer.close().files
    parts = [read_part(table_lake, f).read() for f in files]
    assert [p.schema.names for p in parts] == [["id", "name", "_lakeshift_ord"]] * 3
    assert [v for p in parts for v in p.column("_lakeshift_ord").to_pylist()] == list(range(65))
    assert [v for p in parts for v in p.column("id").to_pylist()] == list(range(65))
    assert all(t.schema.names == ["id", "name"] for t in seen)  # the loader's copy: the batch's columns only


def test_zero_rows_writes_no_file(table_lake: TableLake) -> None:
    schema = ids_schema()
    calls: list[BatchFile] = []
    writer = BatchWriter(table_lake, new_batch_id(), STARTED, schema, LakeSettings(), on_part=calls.append)
    writer.write(ids_batch(0, 0, schema))
    assert tuple(writer.close()) == ([], 0, 0, {"id": 0, "name": 0})
    assert calls == [] and table_lake.files() == []


def test_exact_multiple_of_max_file_rows_makes_no_empty_part(table_lake: TableLake) -> None:
    schema = ids_schema()
    writer = BatchWriter(table_lake, new_batch_id(), STARTED, schema, LakeSettings(max_file_rows=50))
    writer.write(ids_batch(0, 100, schema))
    files, rows, *_ = writer.close()
    assert [f.rows for f in files] == [50, 50] and rows == 100
    assert len(table_lake.files()) == 2


def test_abort_deletes_the_parts(table_lake: TableLake) -> None:
    schema = ids_schema()
    writer = BatchWriter(table_lake, new_batch_id(), STARTED, schema,
                         LakeSettings(max_file_rows=100, row_group_rows=10))
    writer.write(ids_batch(0, 250, schema))  # two closed parts, one open
    assert len(table_lake.files()) >= 2
    writer.abort()
    assert table_lake.files() == []
    if isinstance(table_lake.lake, LocalLake):  # empty partition folders go too
        assert list(Path(table_lake.lake.full_path(table_lake.base)).rglob("*")) == []


def test_context_manager_aborts_on_error(table_lake: TableLake) -> None:
    schema = ids_schema()
    with pytest.raises(RuntimeError, match="boom"):
        with BatchWriter(table_lake, new_batch_id(), STARTED, schema, LakeSettings(max_file_rows=10)) as w:
            w.write(ids_batch(0, 25, schema))
            raise RuntimeError("boom")
    assert table_lake.files() == []


def test_naive_and_non_utc_start_times_use_utc_folders(table_lake: TableLake) -> None:
    est = timezone(timedelta(hours=-5))
    local = datetime(2026, 12, 31, 22, 30, tzinfo=est)  # 2027-01-01 03:30 UTC
    assert table_lake.part_path("b1", local, 0, "hybrid").startswith("year=2027/month=01/day=01/hour=03/")
    assert table_lake.part_path("b1", datetime(2026, 1, 2, 3), 7, "datetime") == (
        "year=2026/month=01/day=02/hour=03/b1-part-00007.parquet")
