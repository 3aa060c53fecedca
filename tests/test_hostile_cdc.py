"""Source data that breaks other tools, end to end (MySQL -> lake -> PostgreSQL
and DuckDB through the CLI), each test ending with target == source value by
value:

11. a transaction that commits late with an older cursor value: lookback
    catches it; without lookback the documented limit (it is missed);
12. 10,000 rows on one timestamp across page boundaries, a run killed in the
    middle of its extract: every row exactly once after the next run;
13. DATETIME(6) cursors keep microseconds; an unchanged table gives 0 rows;
14. a writer session and a whole server in a non-UTC zone, rows across DST
    changes: the same UTC instants in every target, nothing skipped or doubled;
15. hard deletes: full_sync removes them, the incremental strategies keep them.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kit.cli import run_cli, summary
from kit.config import build_config
from kit.lake import local_storage
from kit.servers import start_mariadb
from kit.source import source_rows
from kit.targets import Target, make_target

from conftest import mysql_connect, mysql_exec

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456)
COLS = ["id", "name", "updated_at"]
HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}
TS_ONLY = {"cdc_strategy": "timestamp_only", "cdc_timestamp_column": "updated_at"}
ID_ONLY = {"cdc_strategy": "id_only", "cdc_id_column": "id"}
FULL = {"cdc_strategy": "full_sync"}


@pytest.fixture(params=["postgres", "duckdb"])
def tgt(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    return make_target(request.param, request, tmp_path)


def create_events(mysql: Any, n: int) -> None:
    mysql_exec(mysql, """CREATE TABLE events (
        id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        name VARCHAR(40) NOT NULL,
        updated_at DATETIME(6) NOT NULL,
        KEY ix_cursor (updated_at, id))""")
    with mysql.cursor() as cur:
        cur.executemany("INSERT INTO events (name, updated_at) VALUES (%s, %s)",
                        [(f"e{i}", T0 + timedelta(seconds=i)) for i in range(1, n + 1)])


def sync(cli: Any, config: Path, table: str = "events", *extra: str) -> Any:
    result = cli("sync", "pipeline", "-p", "p1", "-t", table, *extra, config_dir=config)
    assert result.exit_code == 0, result.output + result.stderr
    return result


# ---------------------------------------------------------------- 11. late commits


@pytest.mark.parametrize("strategy", [HYBRID, TS_ONLY], ids=["hybrid", "timestamp_only"])
def test_a_late_commit_with_an_older_timestamp_needs_lookback(strategy: dict[str, Any], tgt: Target, mysql: Any,
                                                              mysql_db: str, tmp_path: Path, cli: Any) -> None:
    create_events(mysql, 20)
    storage = local_storage(tmp_path / "lake")
    config = build_config(tmp_path / "config", mysql_db, tgt.config, storage, {"events": strategy})

    # a transaction writes a row stamped before the newest committed row and stays open across a run
    late = mysql_connect(mysql_db, init_command="SET time_zone = '+00:00'")
    try:
        late.autocommit(False)
        late.begin()
        mysql_exec(late, "INSERT INTO events (name, updated_at) VALUES ('late', %s)",
                   params=(T0 + timedelta(seconds=5, microseconds=500000),))
        sync(cli, config)
        assert tgt.rows("events", COLS, "id") == source_rows(mysql_db, "events", COLS, "id")  # 20 committed rows
        late.commit()
    finally:
        late.close()
    late_id = source_rows(mysql_db, "events", ["id"], "id")[-1][0]
    mysql_exec(mysql, "INSERT INTO events (name, updated_at) VALUES ('normal', %s)", params=(T0 + timedelta(minutes=2),))

    # without lookback: the documented limit of every cursor-based read -- the late row is missed
    sync(cli, config)
    source = source_rows(mysql_db, "events", COLS, "id")
    assert [r for r in source if r[0] == late_id][0][1] == "late"
    assert tgt.rows("events", COLS, "id") == [r for r in source if r[0] != late_id]
    sync(cli, config)  # and it stays missed: nothing moves the watermark back
    assert late_id not in {r[0] for r in tgt.rows("events", ["id"], "id")}

    # with a lookback wider than the delay the next run re-reads that far back and catches it
    build_config(tmp_path / "config", mysql_db, tgt.config, storage, {"events": {**strategy, "lookback": "10m"}})
    sync(cli, config)
    assert tgt.rows("events", COLS, "id") == source_rows(mysql_db, "events", COLS, "id")
    assert tgt.count("events") == tgt.count("events", distinct="id") == 22


# ---------------------------------------------------------------- 12. ties + a kill in the middle


@pytest.mark.slow
def test_ten_thousand_tied_rows_and_a_kill_mid_extract_every_row_once(tgt: Target, mysql: Any, mysql_db: str,
                                                                     tmp_path: Path) -> None:
    mysql_exec(mysql, """CREATE TABLE ties (
        id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(20) NOT NULL, updated_at DATETIME(6) NOT NULL,
        KEY ix_cursor (updated_at, id))""")
    with mysql.cursor() as cur:
        cur.executemany("INSERT INTO ties VALUES (%s, %s, %s)",
                        [(i, f"row {i}", T0) for i in range(1, 10_001)])
    lake = tmp_path / "lake"
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(lake),
                          {"ties": {**HYBRID, "processing": {"batch_size": 1000}}},
                          s3={"max_file_rows": 1000, "row_group_rows": 1000})
    args = ("sync", "pipeline", "-p", "p1", "-t", "ties")

    # run 1 stops in the middle of the tie (4,500 of 10,000 rows, all on one timestamp)
    first = run_cli(config, *args, "--limit", "4500")
    assert first.returncode == 0, first.stdout + first.stderr
    assert tgt.count("ties") == 4500

    # run 2 is killed after its first Parquet part of the remaining 5,500: no manifest, nothing loaded
    killed = run_cli(config, *args, env={"LAKESHIFT_FAULT": "part_closed"})
    assert killed.returncode == -9, killed.stdout + killed.stderr
    manifests = sorted((lake / "p1" / "ties" / "_manifests").glob("*.json"))
    assert len(manifests) == 1
    assert tgt.count("ties") == 4500

    # run 3 finishes the job: it restarts at the tie's timestamp, so it reads every tied row
    # again and merges them by key: every row exactly once in the target
    third = run_cli(config, *args)
    assert third.returncode == 0, third.stdout + third.stderr
    assert summary(third.stdout, "ties")[1] == 10_000
    assert tgt.rows("ties", COLS, "id") == source_rows(mysql_db, "ties", COLS, "id")
    assert tgt.count("ties") == tgt.count("ties", distinct="id") == 10_000
    assert [rows for _, rows in tgt.loads()] == [4500, 10_000]
    watermark = json.loads((lake / "p1" / "ties" / "_state" / "watermark.json").read_text())
    assert {k: watermark["watermark"][k] for k in ("timestamp", "id")} == {
        "timestamp": T0.isoformat(timespec="microseconds"), "id": 10_000}
    assert watermark["watermark"]["ties"].startswith("10000:")  # the tied rows' checksum

    # run 4: nothing changed; the tie at the watermark checksums the same: nothing read
    fourth = run_cli(config, *args)
    assert fourth.returncode == 0 and summary(fourth.stdout, "ties")[1] == 0
    assert len(tgt.loads()) == 2


# ---------------------------------------------------------------- 13. microseconds


@pytest.mark.slow
def test_datetime6_watermark_keeps_microseconds_and_no_change_means_no_rows(tgt: Target, mysql: Any, mysql_db: str,
                                                                           tmp_path: Path) -> None:
    mysql_exec(mysql, """CREATE TABLE micro (
        id INT NOT NULL PRIMARY KEY, name VARCHAR(20) NOT NULL, updated_at DATETIME(6) NOT NULL)""")
    base = datetime(2026, 5, 6, 7, 8, 9, 999990)
    with mysql.cursor() as cur:  # one row per microsecond, crossing a second boundary
        cur.executemany("INSERT INTO micro VALUES (%s, %s, %s)",
                        [(i, f"m{i}", base + timedelta(microseconds=i)) for i in range(1, 16)])
    newest = base + timedelta(microseconds=15)  # 2026-05-06 07:08:10.000005
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"),
                          {"micro": HYBRID})
    args = ("sync", "pipeline", "-p", "p1", "-t", "micro")
    first = run_cli(config, *args)
    assert first.returncode == 0, first.stdout + first.stderr
    assert summary(first.stdout, "micro")[1] == 15

    got = run_cli(config, "watermark", "get", "-p", "p1", "-t", "micro")
    assert got.returncode == 0, got.stderr
    assert "Extract watermark: timestamp=2026-05-06T07:08:10.000005, id=15" in got.stdout

    second = run_cli(config, *args)  # nothing changed: nothing read
    assert second.returncode == 0, second.stdout + second.stderr
    assert summary(second.stdout, "micro")[1] == 0
    assert [r[:2] for r in tgt.runs()] == [("ok", 15), ("ok", 0)]

    # one microsecond later is a change; a row one microsecond before the watermark is the
    # late-row limit of case 11 (not read without lookback)
    mysql_exec(mysql, "INSERT INTO micro VALUES (16, 'later', %s), (17, 'earlier', %s)",
               params=(newest + timedelta(microseconds=1), newest - timedelta(microseconds=1)))
    third = run_cli(config, *args)
    assert summary(third.stdout, "micro")[1] == 1
    source = source_rows(mysql_db, "micro", COLS, "id")
    assert tgt.rows("micro", COLS, "id") == [r for r in source if r[0] != 17]
    assert source[15][2] == datetime(2026, 5, 6, 7, 8, 10, 6)  # the value really has microseconds


def test_timestamp_only_rereads_the_rows_at_its_watermark_without_doubling(mysql: Any, mysql_db: str,
                                                                         tmp_path: Path, cli: Any,
                                                                         request: pytest.FixtureRequest) -> None:
    """The rows on timestamp_only's watermark: unchanged, a run reads nothing; a row
    added to them later, the run reads them again and merges them once."""
    tgt = make_target("postgres", request, tmp_path)
    mysql_exec(mysql, "CREATE TABLE micro (id INT PRIMARY KEY, name VARCHAR(20), updated_at DATETIME(6) NOT NULL)")
    mysql_exec(mysql, "INSERT INTO micro VALUES (1, 'a', '2026-01-01 00:00:00.000001'), "
                      "(2, 'b', '2026-01-01 00:00:00.000002'), (3, 'c', '2026-01-01 00:00:00.000002')")
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"),
                          {"micro": TS_ONLY})
    assert summary(sync(cli, config, "micro").output, "micro")[1] == 3
    assert summary(sync(cli, config, "micro").output, "micro")[1] == 0  # the tie is unchanged
    # a row written later on the watermark's own timestamp, with a smaller id: the tie changed
    mysql_exec(mysql, "INSERT INTO micro VALUES (0, 'late', '2026-01-01 00:00:00.000002')")
    assert summary(sync(cli, config, "micro").output, "micro")[1] == 3  # the three rows on the watermark
    assert tgt.rows("micro", COLS, "id") == source_rows(mysql_db, "micro", COLS, "id")
    assert tgt.count("micro") == 4


# ---------------------------------------------------------------- 14. time zones and DST

TZ_COLS = ["id", "s", "w"]
# New York: DST ends 2020-11-01 02:00 EDT (01:00-02:00 happens twice), starts 2021-03-14 02:00 EST (02:00-03:00
# never happens). Written in New York time; what MySQL stores for TIMESTAMP is the UTC instant.
NY_ROWS_1 = [  # (id, wall time in New York, offset that disambiguates it)
    (1, "2020-10-31 23:59:59.999999", "-04:00"),
    (2, "2020-11-01 00:30:00.000001", "-04:00"),
    (3, "2020-11-01 01:30:00.250000", "-04:00"),  # the first 01:30 (EDT)
]
NY_ROWS_2 = [
    (4, "2020-11-01 01:30:00.250000", "-05:00"),  # the second 01:30 (EST): same wall time, one hour later
    (5, "2020-11-01 01:59:59.999999", "-05:00"),
    (6, "2020-11-01 02:00:00.000000", "-05:00"),
    (7, "2021-03-14 01:59:59.999999", "-05:00"),
    (8, "2021-03-14 03:00:00.000000", "-04:00"),  # one microsecond after row 7
]
UTC_OF = {1: datetime(2020, 11, 1, 3, 59, 59, 999999), 2: datetime(2020, 11, 1, 4, 30, 0, 1),
          3: datetime(2020, 11, 1, 5, 30, 0, 250000), 4: datetime(2020, 11, 1, 6, 30, 0, 250000),
          5: datetime(2020, 11, 1, 6, 59, 59, 999999), 6: datetime(2020, 11, 1, 7, 0),
          7: datetime(2021, 3, 14, 6, 59, 59, 999999), 8: datetime(2021, 3, 14, 7, 0)}


def _ensure_zone_tables() -> bool:
    """Load MariaDB's time zone tables once if they are empty (additive; other
    tests only gain named zones). False if they cannot be loaded."""
    import subprocess

    with mysql_connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT CONVERT_TZ('2020-01-01 00:00:00', '+00:00', 'America/New_York')")
        if cur.fetchone()[0] is not None:
            return True
    sql = subprocess.run(["mysql_tzinfo_to_sql", "/usr/share/zoneinfo"], capture_output=True, timeout=300)
    if sql.returncode != 0 or not sql.stdout:
        return False
    load = subprocess.run(["mariadb", "-uroot", "-h127.0.0.1", "-P3306", "mysql"], input=sql.stdout,
                          capture_output=True, timeout=300)
    return load.returncode == 0


def _insert_ny(conn: Any, rows: list[tuple[int, str, str]], named_zone: bool) -> None:
    """Insert each wall time in a New York session. The named zone is used
    where the wall time is unambiguous; inside the repeated hour and for the
    rows around it the offset says which 01:30 is meant."""
    for rid, wall, offset in rows:
        ambiguous = wall.startswith("2020-11-01 01:")
        zone = "America/New_York" if named_zone and not ambiguous else offset
        mysql_exec(conn, f"SET time_zone = '{zone}'")
        mysql_exec(conn, "INSERT INTO tz VALUES (%s, %s, %s)", params=(rid, wall, wall))


def _tz_sync_checks(tgt: Target, config: Path, cli: Any, read_source: Any, insert_second: Any) -> None:
    sync(cli, config, "tz")
    assert tgt.rows("tz", TZ_COLS, "id") == read_source()
    insert_second()
    sync(cli, config, "tz")
    rows = tgt.rows("tz", TZ_COLS, "id")
    assert rows == read_source()
    assert [r[0] for r in rows] == list(range(1, 9))  # none skipped, none doubled
    assert {r[0]: r[1] for r in rows} == UTC_OF  # the instants, in UTC
    assert rows[2][2] == rows[3][2] == datetime(2020, 11, 1, 1, 30, 0, 250000)  # DATETIME keeps the wall time
    assert tgt.count("tz") == 8


TZ_DDL = "CREATE TABLE tz (id INT PRIMARY KEY, s TIMESTAMP(6) NOT NULL, w DATETIME(6) NOT NULL, KEY k (s, id))"
TZ_TABLE = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "s", "cdc_id_column": "id"}


def test_writer_session_in_new_york_across_dst(tgt: Target, mysql: Any, mysql_db: str, tmp_path: Path, cli: Any) -> None:
    named = _ensure_zone_tables()
    mysql_exec(mysql, TZ_DDL)
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"),
                          {"tz": TZ_TABLE})
    with mysql_connect(mysql_db) as writer:
        _insert_ny(writer, NY_ROWS_1, named)
        _tz_sync_checks(tgt, config, cli, lambda: source_rows(mysql_db, "tz", TZ_COLS, "id"),
                        lambda: _insert_ny(writer, NY_ROWS_2, named))


@pytest.fixture(scope="module")
def new_york_server() -> Any:
    """A MariaDB whose OS time zone is America/New_York (time_zone = SYSTEM):
    every session that does not set its own zone is in New York."""
    server = start_mariadb(tz="America/New_York")
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_server_in_new_york_across_dst(new_york_server: Any, tmp_path: Path, cli: Any,
                                       request: pytest.FixtureRequest) -> None:
    tgt = make_target("postgres", request, tmp_path)
    db = "ls_tz_" + tmp_path.name[-8:].replace("-", "_")
    root = new_york_server.connect()
    try:
        mysql_exec(root, f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4", f"USE `{db}`", TZ_DDL)
        with root.cursor() as cur:
            cur.execute("SELECT @@global.time_zone, @@system_time_zone")
            assert cur.fetchone() == ("SYSTEM", "EST")

        def insert(rows: list[tuple[int, str, str]]) -> None:
            for rid, wall, offset in rows:  # the server's own zone, except inside the repeated hour
                zone = offset if wall.startswith("2020-11-01 01:") else "SYSTEM"
                mysql_exec(root, f"SET time_zone = '{zone}'")
                mysql_exec(root, "INSERT INTO tz VALUES (%s, %s, %s)", params=(rid, wall, wall))

        def read_source() -> list[tuple[Any, ...]]:
            with new_york_server.connect(database=db, init_command="SET time_zone = '+00:00'") as conn:
                with conn.cursor() as cur:
                    cur.execute("SELECT id, s, w FROM tz ORDER BY id")
                    return [tuple(r) for r in cur.fetchall()]

        insert(NY_ROWS_1)
        config = build_config(tmp_path / "config", db, tgt.config, local_storage(tmp_path / "lake"), {"tz": TZ_TABLE})
        text = (config / "connections.yml").read_text().replace("port: 3306", f"port: {new_york_server.port}")
        (config / "connections.yml").write_text(text)
        _tz_sync_checks(tgt, config, cli, read_source, lambda: insert(NY_ROWS_2))
    finally:
        mysql_exec(root, f"DROP DATABASE IF EXISTS `{db}`")
        root.close()


# ---------------------------------------------------------------- 15. hard deletes


@pytest.mark.parametrize("strategy", [FULL, HYBRID, TS_ONLY, ID_ONLY], ids=["full_sync", "hybrid", "timestamp_only",
                                                                          "id_only"])
def test_hard_deletes_by_strategy(strategy: dict[str, Any], tgt: Target, mysql: Any, mysql_db: str, tmp_path: Path,
                                  cli: Any) -> None:
    create_events(mysql, 30)
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"),
                          {"events": strategy})
    sync(cli, config)
    before = source_rows(mysql_db, "events", COLS, "id")
    assert tgt.rows("events", COLS, "id") == before

    deleted = {3, 17, 30}
    mysql_exec(mysql, "DELETE FROM events WHERE id IN (3, 17, 30)",
               "INSERT INTO events (name, updated_at) VALUES ('after', '2026-04-01 00:00:00')")
    sync(cli, config)
    after = source_rows(mysql_db, "events", COLS, "id")
    if strategy is FULL:
        # full_sync replaces the table with the snapshot: the deleted rows are gone
        assert tgt.rows("events", COLS, "id") == after
    else:
        # incremental strategies never see a row that is gone: the target keeps it as it last was
        got = tgt.rows("events", COLS, "id")
        assert got == sorted(after + [r for r in before if r[0] in deleted])
        assert {r[0] for r in got} - {r[0] for r in after} == deleted
