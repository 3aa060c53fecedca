"""`lakeshift watermark set` checks its values against the source columns
before writing them: a value every later run would reject is refused in one
line naming the column, its type and a value that fits, and nothing changes;
so is a date not in the calendar. Values that fit are stored as runs write them.
Without the source, nothing is written either."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from kit.cli import one_error_line

from conftest import mysql_exec
from kit.config import build_config
from kit.lake import local_storage
from kit.targets import duck_target, duckdb_config


def hybrid(ts: str, ident: str) -> dict[str, Any]:
    return {"full_name": "events", "cdc_strategy": "hybrid", "cdc_timestamp_column": ts, "cdc_id_column": ident}


TABLES = {
    "local": hybrid("at", "id"),                    # DATETIME(6), INT
    "utc": hybrid("ts", "id"),                      # TIMESTAMP(6)
    "seconds": hybrid("at0", "id"),                 # DATETIME (no fraction)
    "epoch": hybrid("epoch", "code"),               # BIGINT timestamp, VARCHAR id
    "money": {"full_name": "events", "cdc_strategy": "id_only", "cdc_id_column": "amount"},  # DECIMAL(10,2)
    "daily": {"full_name": "events", "cdc_strategy": "timestamp_only", "cdc_timestamp_column": "day"},
    "doc": {"full_name": "events", "cdc_strategy": "id_only", "cdc_id_column": "doc"},  # BLOB
}


@pytest.fixture
def config(mysql: Any, mysql_db: str, tmp_path: Path) -> Path:
    mysql_exec(mysql, "CREATE TABLE events (id INT PRIMARY KEY, code VARCHAR(20) NOT NULL, amount DECIMAL(10,2), "
                      "epoch BIGINT, at DATETIME(6), ts TIMESTAMP(6) NULL, at0 DATETIME, day DATE, doc BLOB)",
               "INSERT INTO events VALUES (1, 'a', 1.50, 1700000000, '2026-05-01 08:00:00.5', "
               "'2026-05-01 08:00:00.5', '2026-05-01 08:00:00', '2026-05-01', 'x')")
    return build_config(tmp_path / "config", mysql_db, duckdb_config(tmp_path / "w.duckdb"),
                        local_storage(tmp_path / "lake"), TABLES)


def set_(cli: Any, config: Path, table: str, *args: str) -> Any:
    return cli("watermark", "set", "-p", "p1", "-t", table, *args, config_dir=config)


def watermark(cli: Any, config: Path, table: str) -> str:
    r = cli("watermark", "get", "-p", "p1", "-t", table, config_dir=config)
    return next(line for line in r.stdout.splitlines() if line.startswith("Extract watermark:"))


@pytest.mark.parametrize(
    ("table", "args", "message"),
    [
        ("local", ("--timestamp", "2026-05-01 08:00:00", "--id", "abc"),
         "p1.local: --id 'abc' does not fit column 'id' (int(11)): not a whole number; e.g. --id '12345'"),
        ("local", ("--timestamp", "2026-05-01T08:00:00+02:00"),
         "p1.local: --timestamp '2026-05-01T08:00:00+02:00' does not fit column 'at' (datetime(6)): a DATETIME "
         "column holds local times, give the value without a zone offset; e.g. --timestamp '2026-01-31 23:59:59.123456'"),
        ("local", ("--timestamp", "yesterday"),
         "p1.local: --timestamp 'yesterday' does not fit column 'at' (datetime(6)): not a DATETIME value; "
         "e.g. --timestamp '2026-01-31 23:59:59.123456'"),
        ("seconds", ("--timestamp", "2026-02-30 10:00:00"),
         "p1.seconds: --timestamp '2026-02-30 10:00:00' does not fit column 'at0' (datetime): not a DATETIME value; "
         "e.g. --timestamp '2026-01-31 23:59:59'"),
        ("utc", ("--timestamp", "2026-13-01 00:00:00+02:00"),
         "p1.utc: --timestamp '2026-13-01 00:00:00+02:00' does not fit column 'ts' (timestamp(6)): not a TIMESTAMP "
         "value; e.g. --timestamp '2026-01-31 23:59:59.123456' (UTC, or with a zone offset)"),
        ("epoch", ("--timestamp", "2026-05-01 08:00:00"),
         "p1.epoch: --timestamp '2026-05-01 08:00:00' does not fit column 'epoch' (bigint(20)): not a whole number; "
         "e.g. --timestamp '12345'"),
        ("money", ("--id", "1.5x"),
         "p1.money: --id '1.5x' does not fit column 'amount' (decimal(10,2)): not a number; e.g. --id '12345.55'"),
        ("money", ("--id", "NaN"),
         "p1.money: --id 'NaN' does not fit column 'amount' (decimal(10,2)): not a number; e.g. --id '12345.55'"),
        ("daily", ("--timestamp", "0000-00-00"),
         "p1.daily: --timestamp '0000-00-00' does not fit column 'day' (date): a zero date (to read from the start, "
         "use `lakeshift watermark reset`); "
         "e.g. --timestamp '2026-01-31'"),
        ("doc", ("--id", "5"),
         "p1.doc: column 'doc' of {db}.events is blob, which cannot be a CDC cursor; no watermark can be set on "
         "it (nothing changed)"),
    ],
    ids=["id-abc-on-int", "offset-on-datetime", "garbage", "no-such-day", "no-such-month", "date-on-bigint",
         "decimal-junk", "decimal-nan", "zero-date", "blob-column"],
)
def test_values_a_run_would_reject_are_refused(config: Path, cli: Any, mysql_db: str, table: str,
                                               args: tuple[str, ...], message: str) -> None:
    before = watermark(cli, config, table)
    line = one_error_line(set_(cli, config, table, *args))
    assert line == message.format(db=mysql_db) + ("" if table == "doc" else "; nothing changed")
    assert watermark(cli, config, table) == before
    assert not (config.parent / "lake" / "p1" / table / "_state").exists()


@pytest.mark.parametrize(
    ("table", "args", "stored"),
    [
        ("local", ("--timestamp", "2026-05-01 08:00:00.25", "--id", "7"), "timestamp=2026-05-01T08:00:00.250000, id=7"),
        ("local", ("--timestamp", "2026-05-01T08:00:00Z"), "timestamp=2026-05-01T08:00:00.000000"),
        ("local", ("--timestamp", "2026-05-01 08:00"), "timestamp=2026-05-01T08:00:00.000000"),
        ("utc", ("--timestamp", "2026-05-01T10:00:00+02:00"), "timestamp=2026-05-01T08:00:00.000000+00:00"),
        ("utc", ("--timestamp", "2026-05-01 08:00:00"), "timestamp=2026-05-01T08:00:00.000000+00:00"),
        ("epoch", ("--timestamp", "1700000000", "--id", "abc"), "timestamp=1700000000, id=abc"),
        ("money", ("--id", "1.25"), "id=1.25"),
        ("daily", ("--timestamp", "2026-05-01"), "timestamp=2026-05-01"),
    ],
    ids=["datetime-and-int", "datetime-utc-z", "no-seconds", "timestamp-offset-to-utc", "timestamp-naive-is-utc",
         "bigint-timestamp-varchar-id", "decimal", "date"],
)
def test_values_that_fit_are_stored_as_runs_write_them(config: Path, cli: Any, table: str, args: tuple[str, ...],
                                                       stored: str) -> None:
    r = set_(cli, config, table, *args)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == f"Watermark of p1.{table} set to {stored}"
    assert watermark(cli, config, table).startswith(f"Extract watermark: {stored}  [from manual]")


def test_a_set_watermark_is_what_the_next_run_reads_from(config: Path, cli: Any, mysql: Any, tmp_path: Path) -> None:
    mysql_exec(mysql, "INSERT INTO events (id, code, at, ts) VALUES (2, 'b', '2026-05-01 09:00:00', "
                      "'2026-05-01 09:00:00'), (3, 'c', '2026-05-01 10:00:00', '2026-05-01 10:00:00')")
    assert set_(cli, config, "utc", "--timestamp", "2026-05-01T11:00:00+02:00").exit_code == 0  # 09:00 UTC
    r = cli("sync", "pipeline", "-p", "p1", "-t", "utc", config_dir=config)
    assert r.exit_code == 0, r.output
    assert [row[0] for row in duck_target(tmp_path / "w.duckdb", "lake").rows("events", ["id"], "id")] == [2, 3]


def test_without_the_source_nothing_is_written(config: Path, cli: Any) -> None:
    conns = config / "connections.yml"
    data = yaml.safe_load(conns.read_text())
    data["connections"]["sources"]["src"]["port"] = 1
    conns.write_text(yaml.safe_dump(data))
    r = set_(cli, config, "local", "--timestamp", "2026-05-01 08:00:00", "--id", "7")
    assert r.exit_code == 1
    [line] = [x[len("Error: "):] for x in r.stderr.splitlines() if not re.match(r"\d{4}-\d\d-\d\d \S+ (WARNING|ERROR) ", x)]
    assert line.startswith("p1.local: the watermark is checked against the source's column types before it is "
                           "written, and the source could not be read (cannot connect to MySQL 127.0.0.1:1/"), line
    assert line.endswith("; nothing changed. Run it again when MySQL is reachable"), line
    assert not (config.parent / "lake" / "p1" / "local" / "_state").exists()
