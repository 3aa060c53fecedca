"""Issue 10, the edges of the incremental model (MySQL -> lake -> PostgreSQL and
DuckDB through the CLI). Every case ends with target == source, or a run that
failed in one line and changed nothing:

1. a merge key must identify rows: keyless hybrid/id_only are refused (run,
   dry run, config validate); a configured key is used when MySQL declares it
   unique, checked in every batch when it cannot, refused when the table has
   another unique key;
2. a keyless window read from the start (watermark reset, a second pipeline
   into the same table) replaces the target's rows of that window;
3. the cursor restarts at its watermark's timestamp: a --limit inside a group
   of rows sharing cdc_id_column, a row written later in the same second;
   composite keys of every type with --limit at page boundaries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kit.cli import summary
from kit.config import build_config
from kit.lake import local_storage
from kit.source import source_rows
from kit.targets import Target, make_target

from conftest import mysql_exec

CLICKS = ["session_id", "url", "ts"]


@pytest.fixture(params=["postgres", "duckdb"])
def tgt(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    return make_target(request.param, request, tmp_path)


@pytest.fixture(params=["local", "s3"])
def lake_of(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """lake_of(name): a storage entry for a lake of its own, in a folder or in the moto S3 bucket."""
    if request.param == "local":
        return lambda name: local_storage(tmp_path / name)
    s3 = request.getfixturevalue("s3_storage")
    return lambda name: {**s3, "prefix": name}


def sync(cli: Any, config: Path, table: str, *extra: str, ok: bool = True) -> Any:
    result = cli("sync", "pipeline", "-p", "p1", "-t", table, *extra, config_dir=config)
    if ok:
        assert result.exit_code == 0, result.output + result.stderr
    return result


def error_line(result: Any) -> str:
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def create_clicks(mysql: Any) -> None:
    mysql_exec(mysql, "CREATE TABLE clicks (session_id INT NOT NULL, url VARCHAR(40) NOT NULL, ts DATETIME(6) NOT NULL)",
               "INSERT INTO clicks VALUES (1, '/a', '2026-01-01 10:00:00.1'), (1, '/b', '2026-01-01 10:00:00.2'), "
               "(2, '/a', '2026-01-01 10:00:00.3'), (2, '/c', '2026-01-01 10:00:00.4')")


# ---------------------------------------------------------------- 1. keys that identify rows


@pytest.mark.parametrize("strategy", [
    {"cdc_strategy": "hybrid", "cdc_timestamp_column": "ts", "cdc_id_column": "session_id"},
    {"cdc_strategy": "id_only", "cdc_id_column": "session_id"},
], ids=["hybrid", "id_only"])
def test_keyless_table_cannot_merge_on_a_column_that_repeats(strategy: dict[str, Any], tgt: Target, mysql: Any,
                                                            mysql_db: str, tmp_path: Path, cli: Any) -> None:
    create_clicks(mysql)
    lake = tmp_path / "lake"
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(lake), {"clicks": strategy})
    line = error_line(sync(cli, config, "clicks", ok=False))
    assert "tables.clicks: cdc_strategy" in line and "no primary key or unique index" in line
    assert "timestamp_only" in line and "primary_key" in line  # the ways out
    assert not tgt.exists("clicks") and not list(lake.rglob("*.parquet"))  # nothing read, nothing written

    dry = cli("sync", "pipeline", "-p", "p1", "-t", "clicks", "--dry-run", config_dir=config)
    assert "tables.clicks: cdc_strategy" in error_line(dry)
    validate = cli("config", "validate", config_dir=config)
    assert validate.exit_code == 1 and "pipelines/p1.yml: tables.clicks: cdc_strategy" in validate.stderr


def test_a_configured_key_is_used_and_checked_in_every_batch(tgt: Target, mysql: Any, mysql_db: str, tmp_path: Path,
                                                            cli: Any) -> None:
    create_clicks(mysql)
    lake = tmp_path / "lake"
    table = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "ts", "cdc_id_column": "session_id",
             "primary_key": ["session_id", "url"]}
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(lake), {"clicks": table})
    dry = cli("sync", "pipeline", "-p", "p1", "-t", "clicks", "--dry-run", config_dir=config)
    assert "merge on (session_id, url) from primary_key (not declared unique in MySQL" in dry.output
    assert summary(sync(cli, config, "clicks").output, "clicks")[1] == 4
    mysql_exec(mysql, "INSERT INTO clicks VALUES (3, '/a', '2026-01-01 10:00:01'), (1, '/d', '2026-01-01 10:00:02')")
    sync(cli, config, "clicks")
    assert tgt.rows("clicks", CLICKS, "session_id, url") == source_rows(mysql_db, "clicks", CLICKS, "session_id, url")
    assert tgt.count("clicks") == 6

    # a repeat of the configured key fails the table in one line naming it, nothing is loaded
    manifests = sorted(lake.rglob("_manifests/*.json"))
    mysql_exec(mysql, "INSERT INTO clicks VALUES (4, '/x', '2026-01-01 10:00:03'), (4, '/x', '2026-01-01 10:00:04')")
    line = error_line(sync(cli, config, "clicks", ok=False))
    assert "tables.clicks.primary_key (session_id, url) does not identify rows: session_id=4, url='/x' appears 2 times" in line
    assert sorted(lake.rglob("_manifests/*.json")) == manifests and tgt.count("clicks") == 6
    assert not [p for p in lake.rglob("*.parquet") if not any(m.stem in str(p) for m in manifests)]


def test_a_configured_key_that_is_not_unique_is_refused_when_the_table_has_one(tgt: Target, mysql: Any, mysql_db: str,
                                                                              tmp_path: Path, cli: Any) -> None:
    mysql_exec(mysql, "CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL, ts DATETIME(6) NOT NULL)",
               "INSERT INTO orders VALUES (1, 7, '2026-01-01'), (2, 7, '2026-01-02')")
    table = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "ts", "cdc_id_column": "id",
             "primary_key": ["customer_id"]}
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"),
                          {"orders": table})
    line = error_line(sync(cli, config, "orders", ok=False))
    assert "tables.orders.primary_key (customer_id) is not unique" in line and "primary key is (id)" in line
    assert not tgt.exists("orders")
    # a key that contains the primary key is unique: accepted (and so is the default)
    build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"),
                 {"orders": {**table, "primary_key": ["customer_id", "id"]}})
    sync(cli, config, "orders")
    assert tgt.count("orders") == 2


def test_a_not_null_unique_index_is_the_key_of_a_table_without_primary_key(tgt: Target, mysql: Any, mysql_db: str,
                                                                           tmp_path: Path, cli: Any) -> None:
    mysql_exec(mysql, "CREATE TABLE u (code VARCHAR(10) NOT NULL, alt INT NULL, v INT, ts DATETIME(6) NOT NULL, "
                      "UNIQUE KEY ux_alt (alt), UNIQUE KEY ux_code (code))",
               "INSERT INTO u VALUES ('a', 10, 1, '2026-01-01'), ('b', 20, 2, '2026-01-01')")
    table = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "ts", "cdc_id_column": "alt"}
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"), {"u": table})
    dry = cli("sync", "pipeline", "-p", "p1", "-t", "u", "--dry-run", config_dir=config)
    assert "merge on (code) from the source's unique index ux_code" in dry.output  # ux_alt allows NULLs
    sync(cli, config, "u")
    mysql_exec(mysql, "UPDATE u SET v = 3, ts = '2026-01-02' WHERE code = 'a'")
    sync(cli, config, "u")
    assert tgt.rows("u", ["code", "v"], "code") == [("a", 3), ("b", 2)]


# ---------------------------------------------------------------- 2. windows replace what they cover


@pytest.mark.slow  # four whole syncs; the append-window choice stays quick in test_load_strategies
def test_keyless_window_from_the_start_replaces_instead_of_doubling(tgt: Target, mysql: Any, mysql_db: str,
                                                                   tmp_path: Path, cli: Any, lake_of: Any) -> None:
    mysql_exec(mysql, "CREATE TABLE event_log (msg VARCHAR(20) NOT NULL, at DATETIME(6) NOT NULL)",
               "INSERT INTO event_log VALUES ('a', '2026-01-01 00:00:01'), ('b', '2026-01-01 00:00:02'), "
               "('b', '2026-01-01 00:00:02'), ('c', '2026-01-01 00:00:03'), ('d', '2026-01-01 00:00:04'), "
               "('e', '2026-01-01 00:00:05')")
    table = {"cdc_strategy": "timestamp_only", "cdc_timestamp_column": "at"}
    config = build_config(tmp_path / "config", mysql_db, tgt.config, lake_of("lake"), {"event_log": table})
    cols = ["msg", "at"]
    sync(cli, config, "event_log")
    assert tgt.rows("event_log", cols, '"at", msg') == source_rows(mysql_db, "event_log", cols, "at, msg")

    reset = cli("watermark", "reset", "-p", "p1", "-t", "event_log", "--yes", config_dir=config)
    assert reset.exit_code == 0, reset.output + reset.stderr
    mysql_exec(mysql, "INSERT INTO event_log VALUES ('f', '2026-01-01 00:00:06')")
    sync(cli, config, "event_log")  # from the start again: replaces, does not append a second copy
    assert tgt.rows("event_log", cols, '"at", msg') == source_rows(mysql_db, "event_log", cols, "at, msg")
    assert tgt.count("event_log") == 7  # the two real 'b' rows stay two

    # a second pipeline filling the same target table reads from the start: replaces too
    build_config(tmp_path / "config2", mysql_db, tgt.config, lake_of("lake2"),
                 {"event_log": table})
    sync(cli, tmp_path / "config2", "event_log")
    assert tgt.rows("event_log", cols, '"at", msg') == source_rows(mysql_db, "event_log", cols, "at, msg")

    # a --limit from the start reads whole timestamps (here 3 rows for 2: both 'b' rows share
    # one) and replaces only the window it read; the next run completes it
    reset = cli("watermark", "reset", "-p", "p1", "-t", "event_log", "--yes", config_dir=config)
    assert reset.exit_code == 0
    assert summary(sync(cli, config, "event_log", "--limit", "2").output, "event_log")[1] == 3
    assert tgt.rows("event_log", cols, '"at", msg') == source_rows(mysql_db, "event_log", cols, "at, msg")
    sync(cli, config, "event_log")
    assert tgt.rows("event_log", cols, '"at", msg') == source_rows(mysql_db, "event_log", cols, "at, msg")


def test_keyless_timestamp_only_with_a_text_cursor_is_refused(tgt: Target, mysql: Any, mysql_db: str, tmp_path: Path,
                                                             cli: Any) -> None:
    mysql_exec(mysql, "CREATE TABLE t (msg VARCHAR(20), stamp VARCHAR(30) NOT NULL)",
               "INSERT INTO t VALUES ('a', '2026-01-01')")
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"),
                          {"t": {"cdc_strategy": "timestamp_only", "cdc_timestamp_column": "stamp"}})
    line = error_line(sync(cli, config, "t", ok=False))
    assert "tables.t: MySQL" in line and "has no key" in line and "set primary_key" in line
    assert not tgt.exists("t")


# ---------------------------------------------------------------- 3. the cursor restarts at its timestamp


def test_a_limit_inside_rows_sharing_the_id_column_loses_none(tgt: Target, mysql: Any, mysql_db: str, tmp_path: Path,
                                                             cli: Any, lake_of: Any) -> None:
    mysql_exec(mysql, "CREATE TABLE order_lines (order_id INT NOT NULL, line_no INT NOT NULL, sku VARCHAR(10), "
                      "ts DATETIME(6) NOT NULL, PRIMARY KEY (order_id, line_no))")
    with mysql.cursor() as cur:  # 100 rows on one timestamp: orders 100..116 with 6 lines each (and 4)
        cur.executemany("INSERT INTO order_lines VALUES (%s, %s, %s, '2026-01-01 10:00:00')",
                        [(100 + i // 6, i % 6 + 1, f"s{i}") for i in range(100)])
    table = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "ts", "cdc_id_column": "order_id",
             "processing": {"batch_size": 4}}
    config = build_config(tmp_path / "config", mysql_db, tgt.config, lake_of("lake"), {"order_lines": table})
    cols = ["order_id", "line_no", "sku", "ts"]
    sync(cli, config, "order_lines", "--limit", "7")  # stops after line 1 of order 101
    assert tgt.count("order_lines") == 7
    sync(cli, config, "order_lines")
    assert tgt.rows("order_lines", cols, "order_id, line_no") == source_rows(mysql_db, "order_lines", cols,
                                                                            "order_id, line_no")


def test_a_row_written_later_in_the_same_second_is_read(tgt: Target, mysql: Any, mysql_db: str, tmp_path: Path,
                                                        cli: Any) -> None:
    mysql_exec(mysql, "CREATE TABLE sec (id INT PRIMARY KEY, v VARCHAR(10), ts DATETIME NOT NULL)",
               "INSERT INTO sec VALUES (1, 'a', '2026-01-01 10:00:00'), (5, 'b', '2026-01-01 10:00:07')")
    table = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "ts", "cdc_id_column": "id"}
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"), {"sec": table})
    dry = cli("sync", "pipeline", "-p", "p1", "-t", "sec", "--dry-run", config_dir=config)
    assert "warning: tables.sec: cdc_timestamp_column 'ts' is datetime (whole seconds) and no lookback" in dry.output
    validate = cli("config", "validate", config_dir=config)
    assert validate.exit_code == 0 and "warning: pipelines/p1.yml: tables.sec: cdc_timestamp_column 'ts'" in validate.output
    sync(cli, config, "sec")
    # later, in the same second as the watermark, with an id below the watermark's
    mysql_exec(mysql, "INSERT INTO sec VALUES (3, 'late', '2026-01-01 10:00:07')")
    sync(cli, config, "sec")
    assert tgt.rows("sec", ["id", "v"], "id") == [(1, "a"), (3, "late"), (5, "b")]


KEY_TYPES = {
    "bigint_unsigned": ("BIGINT UNSIGNED", lambda i: 18446744073709551000 + i),
    "decimal": ("DECIMAL(20,4)", lambda i: f"{i}.{i % 7:04d}"),
    "varchar_ci": ("VARCHAR(20) COLLATE utf8mb4_general_ci", lambda i: ("K" if i % 2 else "k") + f"{i:04d}"),
    "binary": ("BINARY(4)", lambda i: i.to_bytes(4, "big")),
    "datetime": ("DATETIME(6)", lambda i: f"2025-06-01 00:00:{i % 60:02d}.{i:06d}"),
}


@pytest.mark.parametrize("order", ["k_first", "n_first"])
@pytest.mark.parametrize("kind", list(KEY_TYPES))
def test_composite_keys_of_every_type_with_a_limit_at_every_page(kind: str, order: str, mysql: Any, mysql_db: str,
                                                                tmp_path: Path, cli: Any,
                                                                request: pytest.FixtureRequest) -> None:
    tgt = make_target("postgres", request, tmp_path)
    ddl, value = KEY_TYPES[kind]
    pk = "k, n" if order == "k_first" else "n, k"
    mysql_exec(mysql, f"CREATE TABLE c (k {ddl} NOT NULL, n INT NOT NULL, v INT, ts DATETIME(6) NOT NULL, "
                      f"PRIMARY KEY ({pk}))")
    with mysql.cursor() as cur:  # 40 rows on two timestamps (ties across every page)
        cur.executemany("INSERT INTO c VALUES (%s, %s, %s, %s)",
                        [(value(i), i % 3, i, "2026-01-01 00:00:01" if i < 25 else "2026-01-01 00:00:02")
                         for i in range(40)])
    table = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "ts", "cdc_id_column": "n",
             "processing": {"batch_size": 5}}
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"), {"c": table})
    for _ in range(3):  # each run stops at a page boundary (--limit 10 = 2 pages) inside a tie
        sync(cli, config, "c", "--limit", "10")
    mysql_exec(mysql, "UPDATE c SET v = -v, ts = '2026-01-01 00:00:02' WHERE v IN (3, 30)")
    sync(cli, config, "c", "--limit", "10")
    sync(cli, config, "c")
    cols = ["n", "v", "ts"]
    assert tgt.rows("c", cols, "v") == source_rows(mysql_db, "c", cols, "v")
    assert tgt.count("c") == 40


def test_a_table_called_like_the_staging_alias_merges(tgt: Target, mysql: Any, mysql_db: str, tmp_path: Path,
                                                      cli: Any) -> None:
    """The merge's staging alias was "s": a target table named s was ambiguous in DuckDB."""
    mysql_exec(mysql, "CREATE TABLE s (id INT PRIMARY KEY, v INT, ts DATETIME(6) NOT NULL)",
               "INSERT INTO s VALUES (1, 1, '2026-01-01'), (2, 2, '2026-01-01')")
    table = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "ts", "cdc_id_column": "id"}
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"), {"s": table})
    sync(cli, config, "s")
    mysql_exec(mysql, "UPDATE s SET v = 5, ts = '2026-01-02' WHERE id = 2")
    sync(cli, config, "s")
    assert tgt.rows("s", ["id", "v"], "id") == [(1, 1), (2, 5)]
