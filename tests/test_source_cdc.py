"""CDC strategies against real MariaDB: first run, changes, second run taking
exactly the changed rows; ties across page boundaries; lookback; the fixed
upper bound; --limit; keyset paging over every kind of key; quoting."""

from __future__ import annotations

import pytest
from source_kit import reader, run, table_config  # noqa: F401

from conftest import mysql_exec
from lakeshift.batch import Cursor
from lakeshift.errors import SourceError

HYBRID = dict(cdc_strategy="hybrid", cdc_timestamp_column="updated_at", cdc_id_column="id")
TS_ONLY = dict(cdc_strategy="timestamp_only", cdc_timestamp_column="updated_at")
ID_ONLY = dict(cdc_strategy="id_only", cdc_id_column="id")
FULL = dict(cdc_strategy="full_sync")


@pytest.fixture
def events(mysql) -> str:
    mysql_exec(
        mysql,
        """CREATE TABLE events (id INT AUTO_INCREMENT PRIMARY KEY, updated_at DATETIME(6) NOT NULL,
           val VARCHAR(20), KEY ts_id (updated_at, id))""",
    )
    with mysql.cursor() as cur:
        cur.executemany("INSERT INTO events (updated_at, val) VALUES (%s, %s)",
                        [(f"2026-01-01 00:00:{i:02d}.{i:06d}", f"v{i}") for i in range(1, 51)])
    return "events"


def ids(table) -> list[int]:
    return table.column("id").to_pylist()


def change(mysql) -> None:
    """3 inserts and 2 updates, all later than everything before."""
    mysql_exec(
        mysql,
        "INSERT INTO events (updated_at, val) VALUES ('2026-02-01 00:00:00', 'new1'), "
        "('2026-02-01 00:00:00', 'new2'), ('2026-02-01 00:00:01.5', 'new3')",
        "UPDATE events SET updated_at = '2026-02-01 00:00:02', val = 'upd' WHERE id IN (7, 30)",
    )


@pytest.mark.parametrize("cfg, second", [
    (HYBRID, [51, 52, 53, 7, 30]),  # the tie at the watermark is unchanged: not read again
    (TS_ONLY, [51, 52, 53, 7, 30]),
    (ID_ONLY, [51, 52, 53]),  # id_only sees inserts only
    (FULL, list(range(1, 54))),
])
def test_first_run_then_exactly_the_changes(reader, events, mysql, cfg, second) -> None:  # noqa: F811
    cfg = table_config(**cfg)
    first, w1, sizes = run(reader, events, cfg, batch_size=7)
    assert ids(first) == list(range(1, 51)) and sizes == [7] * 7 + [1]
    assert w1.rows == 50
    change(mysql)
    later, w2, _ = run(reader, events, cfg, low=w1.last, batch_size=7)
    got = ids(later)
    assert sorted(got) == sorted(second) and len(got) == len(set(got))
    if cfg.cdc_strategy != "full_sync":
        assert got == second  # in cursor order
        assert w2.window.low == w1.last


def test_watermarks_by_strategy(reader, events) -> None:  # noqa: F811
    _, w, _ = run(reader, events, table_config(**HYBRID))
    assert w.last == Cursor(timestamp="2026-01-01T00:00:50.000050", id=50) == w.window.high
    _, w, _ = run(reader, events, table_config(**TS_ONLY))
    assert w.last == Cursor(timestamp="2026-01-01T00:00:50.000050", id=None)
    _, w, _ = run(reader, events, table_config(**ID_ONLY))
    assert w.last == Cursor(timestamp=None, id=50)
    _, w, _ = run(reader, events, table_config(**FULL))
    assert w.last is None and w.rows == 50


def test_datetime6_watermark_keeps_microseconds_and_an_unchanged_table_gives_nothing(reader, mysql) -> None:  # noqa: F811
    mysql_exec(mysql, "CREATE TABLE m (id INT PRIMARY KEY, updated_at DATETIME(6) NOT NULL)",
               "INSERT INTO m VALUES (1, '2026-03-01 10:00:00.123456'), (2, '2026-03-01 10:00:00.123457'), "
               "(3, '2026-03-01 10:00:00.999999')")
    cfg = table_config(cdc_strategy="hybrid", cdc_timestamp_column="updated_at", cdc_id_column="id")
    first, w1, _ = run(reader, "m", cfg, batch_size=2)
    assert w1.last == Cursor(timestamp="2026-03-01T10:00:00.999999", id=3)  # never rounded up to :01
    again, w2, _ = run(reader, "m", cfg, low=w1.last)
    assert again.num_rows == 0 and w2.last is None and w2.rows == 0 and not w2.window.low_inclusive
    mysql_exec(mysql, "UPDATE m SET id = 5 WHERE id = 3")  # same timestamp, another row: the tie changed
    changed, w2b, _ = run(reader, "m", cfg, low=w1.last)
    assert ids(changed) == [5] and w2b.window.low_inclusive
    mysql_exec(mysql, "UPDATE m SET id = 3 WHERE id = 5")
    # a row one microsecond later is taken, one at an earlier microsecond is not (no lookback)
    mysql_exec(mysql, "INSERT INTO m VALUES (4, '2026-03-01 10:00:01.000000'), (0, '2026-03-01 10:00:00.999998')")
    third, w3, _ = run(reader, "m", cfg, low=w1.last)
    assert ids(third) == [4] and w3.last == Cursor(timestamp="2026-03-01T10:00:01.000000", id=4)


def test_timestamp_only_rereads_only_the_rows_at_the_watermark(reader, mysql) -> None:  # noqa: F811
    mysql_exec(mysql, "CREATE TABLE m (id INT PRIMARY KEY, updated_at DATETIME(6) NOT NULL)",
               "INSERT INTO m VALUES (1, '2026-03-01 10:00:00'), (2, '2026-03-01 10:00:00.5'), "
               "(3, '2026-03-01 10:00:00.5')")
    cfg = table_config(**{**TS_ONLY})
    _, w1, _ = run(reader, "m", cfg)
    again, w2, _ = run(reader, "m", cfg, low=w1.last)
    assert ids(again) == [] and not w2.window.low_inclusive  # the tie at the watermark is unchanged
    # a row committed later with the watermark's own timestamp is taken
    mysql_exec(mysql, "INSERT INTO m VALUES (0, '2026-03-01 10:00:00.5')")
    third, _, _ = run(reader, "m", cfg, low=w1.last)
    assert ids(third) == [0, 2, 3]


# ---------------------------------------------------------------- ties across pages


@pytest.fixture
def ties(mysql) -> str:
    mysql_exec(mysql, "CREATE TABLE ties (id INT PRIMARY KEY, updated_at DATETIME NOT NULL, KEY (updated_at, id))",
               "INSERT INTO ties SELECT seq, '2026-05-05 05:05:05' FROM seq_1_to_10000",
               "INSERT INTO ties VALUES (20000, '2026-05-05 05:05:04'), (20001, '2026-05-05 05:05:06')")
    return "ties"


@pytest.mark.parametrize("cfg", [HYBRID, TS_ONLY])
def test_ten_thousand_rows_sharing_a_timestamp_taken_exactly_once(reader, ties, cfg) -> None:  # noqa: F811
    table, w, sizes = run(reader, ties, table_config(**cfg), batch_size=1000)
    got = ids(table)
    assert len(got) == 10002 == len(set(got))
    assert got[0] == 20000 and got[-1] == 20001 and sorted(got[1:-1]) == list(range(1, 10001))
    assert sizes == [1000] * 10 + [2]


def test_ties_resume_from_the_middle_of_a_timestamp(reader, ties) -> None:  # noqa: F811
    cfg = table_config(**HYBRID)
    first, w1, _ = run(reader, ties, cfg, batch_size=1000, limit=3500)
    assert w1.last == Cursor(timestamp="2026-05-05T05:05:05.000000", id=3499)
    rest, _, _ = run(reader, ties, cfg, low=w1.last, batch_size=1000)
    # the next run restarts at the tie's timestamp: every tied row again (merged by key), none lost
    assert sorted(ids(rest)) == list(range(1, 10001)) + [20001]
    assert set(ids(first)) | set(ids(rest)) == set([20000, 20001] + list(range(1, 10001)))


# ---------------------------------------------------------------- lookback and late rows


@pytest.mark.parametrize("cfg", [HYBRID, TS_ONLY])
def test_lookback_catches_a_late_row_that_a_plain_run_misses(reader, events, mysql, cfg) -> None:  # noqa: F811
    _, w1, _ = run(reader, events, table_config(**cfg))
    # committed late: a new id, but a timestamp 5 minutes before the watermark
    mysql_exec(mysql, "INSERT INTO events (id, updated_at, val) VALUES (100, '2025-12-31 23:55:50', 'late')")
    plain, _, _ = run(reader, events, table_config(**cfg), low=w1.last)
    assert 100 not in ids(plain)  # the documented limit without lookback
    short = table_config(**cfg, lookback="4m")
    missed, _, _ = run(reader, events, short, low=w1.last)
    assert 100 not in ids(missed)
    caught, w2, _ = run(reader, events, table_config(**cfg, lookback="10m"), low=w1.last)
    assert 100 in ids(caught) and set(ids(caught)) == set(range(1, 51)) | {100}
    assert w2.window.low == Cursor(timestamp="2025-12-31T23:50:50.000050", id=None) and w2.window.low_inclusive
    assert w2.last == w1.last  # the watermark does not move back
    assert "lookback 10m" in w2.window.describe()


def test_lookback_needs_a_temporal_cursor(reader, mysql) -> None:  # noqa: F811
    mysql_exec(mysql, "CREATE TABLE n (id INT PRIMARY KEY, version BIGINT NOT NULL)", "INSERT INTO n VALUES (1, 5)")
    cfg = table_config(cdc_strategy="timestamp_only", cdc_timestamp_column="version", lookback="10m")
    with pytest.raises(SourceError, match="lookback needs a DATE/DATETIME/TIMESTAMP"):
        run(reader, "n", cfg)
    # without lookback an integer version column works as the cursor
    table, w, _ = run(reader, "n", table_config(cdc_strategy="timestamp_only", cdc_timestamp_column="version"))
    assert ids(table) == [1] and w.last == Cursor(timestamp="5", id=None)


# ---------------------------------------------------------------- fixed upper bound


@pytest.mark.parametrize("cfg", [HYBRID, TS_ONLY, ID_ONLY])
def test_rows_written_during_the_run_wait_for_the_next_run(reader, events, mysql, cfg) -> None:  # noqa: F811
    cfg = table_config(**cfg)
    desc = reader.describe(events, cfg)
    window = reader.plan_window(cfg, desc, None)
    batches = reader.read(cfg, desc, window, 10)
    with pytest.raises(SourceError, match="before the read ended"):
        batches.result  # noqa: B018 - a position taken halfway would skip rows
    seen = ids_of(next(batches))
    mysql_exec(mysql, "INSERT INTO events (updated_at, val) VALUES ('2026-01-01 00:00:50.000050', 'tie'), "
                      "('2027-01-01 00:00:00', 'during')")
    for b in batches:
        seen += ids_of(b)
    assert seen == list(range(1, 51))
    assert window.high == batches.result.last
    later, _, _ = run(reader, events, cfg, low=batches.result.last)
    assert 51 in ids(later) and 52 in ids(later)


def ids_of(batch) -> list[int]:
    return batch.column("id").to_pylist()


def test_limit_caps_the_run_and_the_next_run_continues(reader, events) -> None:  # noqa: F811
    cfg = table_config(**HYBRID)
    first, w1, sizes = run(reader, events, cfg, batch_size=10, limit=25)
    assert ids(first) == list(range(1, 26)) and sizes == [10, 10, 5]
    rest, _, _ = run(reader, events, cfg, low=w1.last, batch_size=10)
    assert ids(rest) == list(range(25, 51))  # from the watermark's timestamp on
    full, _, sizes = run(reader, events, table_config(**FULL), batch_size=100, limit=3)
    assert ids(full) == [1, 2, 3] and sizes == [3]


# ---------------------------------------------------------------- NULL cursors, no key


def test_null_cursor_rows_are_read_by_full_sync_only(reader, mysql) -> None:  # noqa: F811
    mysql_exec(mysql, "CREATE TABLE nc (id INT PRIMARY KEY, updated_at DATETIME NULL)",
               "INSERT INTO nc VALUES (1, '2026-01-01'), (2, NULL), (3, '2026-01-02')")
    for cfg in (HYBRID, TS_ONLY):
        table, _, _ = run(reader, "nc", table_config(**cfg))
        assert ids(table) == [1, 3]
    table, _, _ = run(reader, "nc", table_config(**FULL))
    assert ids(table) == [1, 2, 3]


def test_table_without_a_key_is_read_in_one_streamed_query(reader, mysql) -> None:  # noqa: F811
    mysql_exec(mysql, "CREATE TABLE nokey (id INT, updated_at DATETIME NOT NULL, v VARCHAR(5))",
               "INSERT INTO nokey SELECT seq % 7, '2026-01-01' + INTERVAL (seq DIV 3) SECOND, 'x' "
               "FROM seq_1_to_2500")
    cfg = table_config(**TS_ONLY)
    table, w, sizes = run(reader, "nokey", cfg, batch_size=1000)
    assert w.window.page_columns == [] and table.num_rows == 2500 and sizes == [1000, 1000, 500]
    assert "one streamed query" in reader.plan_window(table_config(**FULL), reader.describe("nokey"), None).describe()
    table, _, _ = run(reader, "nokey", table_config(**FULL), batch_size=1000, limit=1200)
    assert table.num_rows == 1200
    # the last row of the ordered stream is the greatest timestamp
    assert w.last.timestamp == "2026-01-01T00:13:53.000000"


def test_unique_not_null_key_pages_when_there_is_no_primary_key(reader, mysql) -> None:  # noqa: F811
    mysql_exec(mysql, "CREATE TABLE uk (code VARCHAR(10) NOT NULL, n INT NULL, UNIQUE KEY (n), UNIQUE KEY (code))",
               "INSERT INTO uk SELECT CONCAT('c', seq), seq FROM seq_1_to_95")
    desc = reader.describe("uk")
    window = reader.plan_window(table_config(**FULL), desc, None)
    assert desc.primary_key == [] and window.page_columns == ["code"]  # n is nullable: not a paging key
    table, _, sizes = run(reader, "uk", table_config(**FULL), batch_size=10)
    assert sorted(table.column("n").to_pylist()) == list(range(1, 96)) and len(sizes) == 10


# ---------------------------------------------------------------- keyset over every kind of key


KEY_TYPES = {
    "varchar_ci": ("VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
                   ["a", "B", "c", "ß", "z", "😀", "é", "a b", "a%", "a'b", 'a"b', "a\\b", "ab", "Zed",
                    "\u00e9t\u00e9", "x" * 40, "0", "-", "_"]),
    "latin1_cs": ("VARCHAR(20) CHARACTER SET latin1 COLLATE latin1_general_cs",
                  ["a", "A", "b", "B", "ä", "Ä", "é", "z", "Z", "0", "a b", "a'", "a\\"]),
    "decimal": ("DECIMAL(30,5)", ["-99999999999999999999999.99999", "-1", "-0.00001", "0", "0.00001", "1.5",
                                 "12345678901234567890123.12345", "99999999999999999999999.99999"]),
    "bigint_unsigned": ("BIGINT UNSIGNED", ["0", "1", "9223372036854775807", "9223372036854775808",
                                            "18446744073709551615"]),
    "datetime6": ("DATETIME(6)", ["'2026-01-01 00:00:00'", "'2026-01-01 00:00:00.000001'",
                                  "'2026-01-01 00:00:00.5'", "'1000-01-01 00:00:00'", "'9999-12-31 23:59:59.999999'"]),
    "timestamp": ("TIMESTAMP(3)", ["'1970-01-01 00:00:01'", "'2020-03-08 07:00:00.001'", "'2038-01-19 03:14:07.999'"]),
    "date": ("DATE", ["'1000-01-01'", "'2024-02-29'", "'9999-12-31'"]),
    "time": ("TIME(6)", ["'-838:59:59'", "'-00:00:00.000001'", "'00:00:00'", "'12:00:00.5'", "'838:59:59'"]),
    "varbinary": ("VARBINARY(8)", ["X''", "X'00'", "X'0000'", "X'01'", "X'ff'", "X'ff00'", "X'27'", "X'5c'"]),
    "enum": ("ENUM('z','a','m') NOT NULL", ["'z'", "'a'", "'m'"]),
    "double": ("DOUBLE", ["-1.7976931348623157e308", "-0.1", "0", "5e-324", "0.1", "0.30000000000000004", "1e300"]),
}


@pytest.mark.parametrize("kind", sorted(KEY_TYPES))
def test_full_sync_pages_by_any_key_type_exactly_once(reader, mysql, kind) -> None:  # noqa: F811
    ddl, values = KEY_TYPES[kind]
    mysql_exec(mysql, f"CREATE TABLE k (pk {ddl}, n INT NOT NULL, PRIMARY KEY (pk, n))")
    quoted = values if kind not in ("varchar_ci", "latin1_cs") else None
    rows = 0
    with mysql.cursor() as cur:
        for i, v in enumerate(values):
            for n in (1, 2, 3):
                if quoted is None:
                    cur.execute("INSERT INTO k VALUES (%s, %s)", (v, n))
                else:
                    cur.execute(f"INSERT INTO k VALUES ({v}, %s)", (n,))
                rows += 1
    with mysql.cursor() as cur:
        cur.execute("SELECT CAST(pk AS CHAR), n FROM k ORDER BY pk, n")
        expected = [(r[0], r[1]) for r in cur.fetchall()]
    for batch_size in (1, 2, 5):
        table, w, _ = run(reader, "k", table_config(**FULL), batch_size=batch_size)
        assert w.window.page_columns == ["pk", "n"]
        assert table.num_rows == rows == len(expected)
        assert table.column("n").to_pylist() == [n for _, n in expected]


@pytest.mark.parametrize("ddl, value, cursor_id", [
    ("VARCHAR(20) COLLATE utf8mb4_general_ci", "'Ab'", "Ab"),
    ("DECIMAL(20,0)", "12345678901234567890", 12345678901234567890),
    ("BIGINT UNSIGNED", "18446744073709551615", 18446744073709551615),
])
def test_non_integer_id_cursors_round_trip(reader, mysql, ddl, value, cursor_id) -> None:  # noqa: F811
    mysql_exec(mysql, f"CREATE TABLE c (id {ddl} PRIMARY KEY)", f"INSERT INTO c VALUES ({value})")
    cfg = table_config(cdc_strategy="id_only", cdc_id_column="id")
    _, w, _ = run(reader, "c", cfg)
    assert w.last == Cursor(timestamp=None, id=cursor_id)
    again, _, _ = run(reader, "c", cfg, low=Cursor.from_dict(w.last.to_dict()))
    assert again.num_rows == 0


# ---------------------------------------------------------------- TIMESTAMP cursors


def test_timestamp_cursor_is_utc_and_offsets_in_a_watermark_are_honoured(reader, mysql) -> None:  # noqa: F811
    mysql_exec(mysql, "CREATE TABLE s (id INT PRIMARY KEY, at TIMESTAMP(6) NOT NULL)",
               "INSERT INTO s VALUES (1, '2026-01-01 10:00:00'), (2, '2026-01-01 12:00:00.000001')")
    cfg = table_config(cdc_strategy="hybrid", cdc_timestamp_column="at", cdc_id_column="id")
    _, w, _ = run(reader, "s", cfg)
    assert w.last == Cursor(timestamp="2026-01-01T12:00:00.000001+00:00", id=2)
    # 12:00+02:00 is 10:00 UTC: starting at 10:00Z takes both rows, 10:00:01Z only row 2
    later, _, _ = run(reader, "s", cfg, low=Cursor(timestamp="2026-01-01T12:00:00+02:00", id=1))
    assert ids(later) == [1, 2]
    later, _, _ = run(reader, "s", cfg, low=Cursor(timestamp="2026-01-01T12:00:01+02:00", id=1))
    assert ids(later) == [2]


def test_datetime_cursor_rejects_an_offset(reader, events) -> None:  # noqa: F811
    with pytest.raises(SourceError, match="watermark value"):
        run(reader, events, table_config(**HYBRID), low=Cursor(timestamp="2026-01-01T00:00:10+05:00", id=1))


# ---------------------------------------------------------------- names


def test_names_with_spaces_reserved_words_mixed_case_and_unicode(reader, mysql) -> None:  # noqa: F811
    mysql_exec(
        mysql,
        """CREATE TABLE `Order Ünits` (`select` INT NOT NULL, `Mixed Case` VARCHAR(10) NOT NULL,
           `updated at` DATETIME(3) NOT NULL, `naïve value` TEXT, `from` DECIMAL(5,2),
           PRIMARY KEY (`select`, `Mixed Case`))""",
        "INSERT INTO `Order Ünits` VALUES (1, 'a', '2026-01-01 00:00:00.001', 'é', 1.5), "
        "(1, 'B', '2026-01-01 00:00:00.001', NULL, NULL), (2, 'a', '2026-01-01 00:00:00.002', 'x', -1)",
    )
    cfg = table_config(cdc_strategy="hybrid", cdc_timestamp_column="updated at", cdc_id_column="select")
    table, w, _ = run(reader, "Order Ünits", cfg, batch_size=1)
    assert table.column_names == ["select", "Mixed Case", "updated at", "naïve value", "from"]
    assert list(zip(table.column("select").to_pylist(), table.column("Mixed Case").to_pylist())) == [
        (1, "B"), (1, "a"), (2, "a")]
    assert w.last == Cursor(timestamp="2026-01-01T00:00:00.002000", id=2)
    full, _, _ = run(reader, "Order Ünits", table_config(**FULL), batch_size=1)
    assert full.num_rows == 3


def test_schema_qualified_names_and_missing_tables(reader, mysql, mysql_db) -> None:  # noqa: F811
    mysql_exec(mysql, "CREATE TABLE t1 (id INT PRIMARY KEY)", "INSERT INTO t1 VALUES (1)")
    desc = reader.describe(f"{mysql_db}.t1")
    assert (desc.schema, desc.table) == (mysql_db, "t1")
    with pytest.raises(SourceError) as err:
        reader.describe("no_such_table")
    assert f"{mysql_db}.no_such_table" in str(err.value) and "does not exist" in str(err.value)
    with pytest.raises(SourceError, match="has no column 'nope'"):
        run(reader, "t1", table_config(cdc_strategy="id_only", cdc_id_column="nope"))


def test_window_descriptions(reader, events) -> None:  # noqa: F811
    cfg = table_config(**HYBRID)
    desc = reader.describe(events, cfg)
    first = reader.plan_window(cfg, desc, None)
    assert first.describe() == "updated_at,id in (start, (2026-01-01 00:00:50.000050, 50)]"
    w = reader.plan_window(cfg, desc, Cursor(timestamp="2026-01-01T00:00:10.000010", id=10))
    assert w.describe() == "updated_at,id in [2026-01-01 00:00:10.000010, (2026-01-01 00:00:50.000050, 50)]"
    ts_cfg = table_config(**TS_ONLY)
    w = reader.plan_window(ts_cfg, desc, Cursor(timestamp="2026-01-01T00:00:10.000010"))
    assert w.describe() == "updated_at in [2026-01-01 00:00:10.000010, 2026-01-01 00:00:50.000050]"
    assert reader.plan_window(table_config(**FULL), desc, None).describe() == "all rows (full snapshot), paged by id"


def test_empty_table_has_an_empty_window(reader, mysql) -> None:  # noqa: F811
    mysql_exec(mysql, "CREATE TABLE e (id INT PRIMARY KEY, updated_at DATETIME)")
    table, w, _ = run(reader, "e", table_config(**HYBRID))
    assert table.num_rows == 0 and w.window.empty and w.last is None
    assert "nothing to read" in w.window.describe()
