"""Cases 17 and 18, end to end through the CLI into PostgreSQL and DuckDB:

17. columns added, dropped, widened and reordered in MySQL between runs (and
    between two batches still waiting in the lake): loads go by column name,
    never by position; new columns are added and filled in every existing row
    (the run reads the table from the start), possible renames reported,
    safe widenings applied, dropped columns kept (NULL for rows written after
    the drop), an incompatible change stops the load of an incremental table
    with the way out, which works, and recreates a full_sync table;
18. a table without a primary key (append mode, duplicates and ties included),
    a composite key whose cursor id is not unique on its own, and table/column
    names that need quoting (spaces, reserved words, mixed case, unicode, %, .).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kit.cli import summary
from kit.config import build_config
from kit.lake import local_storage
from kit.source import source_rows
from kit.targets import Target, make_target

from conftest import mysql_exec

T0 = datetime(2026, 2, 1, 8, 0, 0, 500000)


@pytest.fixture(params=["postgres", "duckdb"])
def tgt(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    return make_target(request.param, request, tmp_path)


def sync(cli: Any, config: Path, table: str, *extra: str, ok: bool = True) -> Any:
    result = cli("sync", "pipeline", "-p", "p1", "-t", table, *extra, config_dir=config)
    if ok:
        assert result.exit_code == 0, result.output + result.stderr
    return result


def target_columns(tgt: Target, table: str) -> list[str]:
    return [r[0] for r in tgt.query("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                                    f"'{tgt.schema}' AND table_name = '{table}' ORDER BY ordinal_position")]


def target_types(tgt: Target, table: str) -> dict[str, str]:
    if tgt.kind == "postgres":
        return dict(tgt.query("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
                              f"'\"{tgt.schema}\".\"{table}\"'::regclass AND attnum > 0 AND NOT attisdropped"))
    return dict(tgt.query("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = "
                          f"'{tgt.schema}' AND table_name = '{table}'"))


# ---------------------------------------------------------------- 17. schema changes

HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}
EVO_DDL = """CREATE TABLE evo (id INT NOT NULL PRIMARY KEY, a VARCHAR(10), b VARCHAR(10), amount INT,
             note VARCHAR(5), updated_at DATETIME(6) NOT NULL, KEY k (updated_at, id))"""


def evo_rows(mysql: Any, ids: range, at: datetime) -> None:
    with mysql.cursor() as cur:
        cur.executemany("INSERT INTO evo (id, a, b, amount, note, updated_at) VALUES (%s, %s, %s, %s, %s, %s)",
                        [(i, f"a{i}", f"b{i}", i * 10, f"n{i}", at) for i in ids])


def change_schema(mysql: Any) -> None:
    """Add a column in the middle, drop one, widen two, and swap two columns
    of the same type (a load by position would silently swap their values)."""
    mysql_exec(mysql, "ALTER TABLE evo ADD COLUMN extra VARCHAR(20) AFTER id, DROP COLUMN note, "
                      "MODIFY a VARCHAR(50), MODIFY amount BIGINT, MODIFY b VARCHAR(10) AFTER extra")
    later = T0 + timedelta(hours=1)
    mysql_exec(mysql, "UPDATE evo SET a = %s, amount = %s, extra = 'x', updated_at = %s WHERE id IN (1, 2)",
               params=("w" * 50, 2**40, later))
    mysql_exec(mysql, "INSERT INTO evo (id, extra, b, a, amount, updated_at) VALUES "
                      "(6, 'new', 'b6', 'a6', 1099511627776, %s), (7, NULL, 'b7', 'a7', -5, %s)", params=(later, later))


NEW_COLS = ["id", "extra", "b", "a", "amount", "updated_at"]


def check_after_change(tgt: Target, mysql_db: str) -> None:
    assert tgt.rows("evo", NEW_COLS, "id") == source_rows(mysql_db, "evo", NEW_COLS, "id")
    # the dropped column stays, NULL in every row written since: here every row, as the added
    # column made the run read the whole table again
    assert tgt.rows("evo", ["id", "note"], "id") == [(i, None) for i in range(1, 8)]
    assert target_columns(tgt, "evo") == ["id", "a", "b", "amount", "note", "updated_at", "extra"]
    types = target_types(tgt, "evo")
    if tgt.kind == "postgres":
        assert (types["a"], types["amount"], types["extra"]) == ("character varying(50)", "bigint",
                                                                 "character varying(20)")
    else:
        assert (types["a"], types["amount"], types["extra"]) == ("VARCHAR", "BIGINT", "VARCHAR")


def test_added_dropped_widened_and_reordered_columns_load_by_name(tgt: Target, mysql: Any, mysql_db: str,
                                                                  tmp_path: Path, cli: Any) -> None:
    mysql_exec(mysql, EVO_DDL)
    evo_rows(mysql, range(1, 6), T0)
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"), {"evo": HYBRID})
    sync(cli, config, "evo")
    old = ["id", "a", "b", "amount", "note", "updated_at"]
    assert tgt.rows("evo", old, "id") == source_rows(mysql_db, "evo", old, "id")

    change_schema(mysql)
    assert summary(sync(cli, config, "evo").output, "evo")[1] == 7  # `extra` added: every row again
    check_after_change(tgt, mysql_db)


def test_batches_waiting_across_a_schema_change_load_in_order_by_name(tgt: Target, mysql: Any, mysql_db: str,
                                                                      tmp_path: Path, cli: Any) -> None:
    """Two extracts (before and after the change) wait in the lake; one load
    takes both, each with its own columns."""
    mysql_exec(mysql, EVO_DDL)
    evo_rows(mysql, range(1, 6), T0)
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"), {"evo": HYBRID})
    sync(cli, config, "evo", "--backup-only")
    change_schema(mysql)
    sync(cli, config, "evo", "--backup-only")
    assert not tgt.exists("evo")
    loaded = sync(cli, config, "evo", "--load-only")
    assert "2 batch(es)" in loaded.output + loaded.stderr
    check_after_change(tgt, mysql_db)


def test_an_incompatible_change_stops_the_load_and_the_way_out_works(tgt: Target, mysql: Any, mysql_db: str,
                                                                     tmp_path: Path, cli: Any) -> None:
    mysql_exec(mysql, EVO_DDL)
    evo_rows(mysql, range(1, 6), T0)
    lake = tmp_path / "lake"
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(lake), {"evo": HYBRID})
    sync(cli, config, "evo")
    before = tgt.rows("evo", ["id", "a", "amount"], "id")

    mysql_exec(mysql, "ALTER TABLE evo MODIFY amount VARCHAR(20)")
    mysql_exec(mysql, "UPDATE evo SET amount = 'lots', updated_at = %s WHERE id = 3", params=(T0 + timedelta(hours=1),))
    refused = sync(cli, config, "evo", ok=False)
    assert refused.exit_code == 1
    err = refused.stderr.strip().splitlines()[-1]
    assert "column 'amount' is" in err and "not a safe widening, so the batch was not loaded" in err, err
    assert "Way out: drop the target table" in err and "lakeshift watermark reset -p p1 -t evo" in err, err
    assert tgt.rows("evo", ["id", "a", "amount"], "id") == before  # untouched
    assert len(list((lake / "p1" / "evo" / "_manifests").glob("*.json"))) == 2  # the batch waits in the lake

    # the way out, as the message says
    tgt_drop = f"DROP TABLE {tgt.name('evo')}"
    if tgt.kind == "postgres":
        import psycopg

        from conftest import PG_DSN

        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(tgt_drop)  # type: ignore[arg-type]
    else:
        import duckdb

        con = duckdb.connect(str(tgt.path))
        con.execute(tgt_drop)
        con.close()
    reset = cli("watermark", "reset", "-p", "p1", "-t", "evo", "-y", config_dir=config)
    assert reset.exit_code == 0, reset.output
    sync(cli, config, "evo")
    cols = ["id", "a", "b", "amount", "note", "updated_at"]
    assert tgt.rows("evo", cols, "id") == source_rows(mysql_db, "evo", cols, "id")


def source_columns(mysql: Any, table: str) -> list[str]:
    with mysql.cursor() as cur:
        cur.execute("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                    "AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION", (table,))
        return [r[0] for r in cur.fetchall()]


def assert_target_is_source(tgt: Target, mysql: Any, mysql_db: str, table: str, key: str = "id") -> None:
    """Every row, every column the source has now."""
    cols = source_columns(mysql, table)
    assert tgt.rows(table, cols, key) == source_rows(mysql_db, table, cols, key)


def log_lines(result: Any, level: str) -> list[str]:
    """The messages of the log lines at `level` on stderr (without time and logger)."""
    return [line.split(": ", 1)[1] for line in result.stderr.splitlines() if f" {level} lakeshift." in line]


CUST_DDL = """CREATE TABLE cust (id INT NOT NULL PRIMARY KEY, name VARCHAR(20) NOT NULL,
              updated_at DATETIME(6) NOT NULL, KEY k (updated_at, id))"""


def test_added_columns_get_their_values_in_every_existing_row(tgt: Target, mysql: Any, mysql_db: str,
                                                               tmp_path: Path, cli: Any) -> None:
    """Issue 10, seen 5: `ADD country CHAR(2) NOT NULL DEFAULT 'US'` left NULL in every target row
    not read again. Now the run that sees a new column reads the table from the start and merges it
    by key: NOT NULL and nullable columns, with and without a default, generated (VIRTUAL and STORED)."""
    mysql_exec(mysql, CUST_DDL)
    with mysql.cursor() as cur:
        cur.executemany("INSERT INTO cust VALUES (%s, %s, %s)",
                        [(i, f"c{i}", T0 + timedelta(seconds=i)) for i in range(1, 7)])
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"),
                          {"cust": HYBRID})
    sync(cli, config, "cust")

    mysql_exec(mysql, "ALTER TABLE cust ADD country CHAR(2) NOT NULL DEFAULT 'US'")
    mysql_exec(mysql, "UPDATE cust SET country = 'DE', updated_at = %s WHERE id = 2", params=(T0 + timedelta(hours=1),))
    preview = sync(cli, config, "cust", "--dry-run")
    assert "window: updated_at,id in (start, " in preview.output, preview.output
    assert "(columns added since the last batch: every row is read again)" in preview.output, preview.output
    result = sync(cli, config, "cust")
    assert summary(result.output, "cust")[1] == 6  # every row, not only the changed one
    assert log_lines(result, "INFO")[0] == ("cust: column 'country' added (char(2)); re-reading all rows so "
                                             "existing rows get its values")
    assert_target_is_source(tgt, mysql, mysql_db, "cust")
    assert tgt.rows("cust", ["country"], "id") == [("US",), ("DE",)] + [("US",)] * 4
    assert summary(sync(cli, config, "cust").output, "cust")[1] < 6  # once only: the next run goes on

    mysql_exec(mysql, "ALTER TABLE cust ADD nick VARCHAR(10) DEFAULT 'x', ADD qty INT NOT NULL, ADD born DATE")
    result = sync(cli, config, "cust")
    assert summary(result.output, "cust")[1] == 6
    assert [line for line in log_lines(result, "INFO") if "added" in line] == [
        f"cust: column {c!r} added ({t}); re-reading all rows so existing rows get its values"
        for c, t in (("nick", "varchar(10)"), ("qty", "int(11)"), ("born", "date"))]
    assert_target_is_source(tgt, mysql, mysql_db, "cust")
    assert tgt.rows("cust", ["nick", "qty", "born"], "id")[0] == ("x", 0, None)

    mysql_exec(mysql, "ALTER TABLE cust ADD twice INT AS (id * 2) VIRTUAL, "
                      "ADD shout VARCHAR(30) AS (CONCAT(name, '!')) STORED")
    result = sync(cli, config, "cust")
    assert summary(result.output, "cust")[1] == 6
    assert_target_is_source(tgt, mysql, mysql_db, "cust")
    assert tgt.rows("cust", ["twice", "shout"], "id")[-1] == (12, "c6!")


def test_a_rename_is_reported_and_the_new_column_filled(tgt: Target, mysql: Any, mysql_db: str, tmp_path: Path,
                                                        cli: Any) -> None:
    """Issue 10, seen 5: `CHANGE note comment TEXT` left `comment` NULL in unchanged rows, silently."""
    mysql_exec(mysql, "CREATE TABLE memo (id INT NOT NULL PRIMARY KEY, note TEXT, updated_at DATETIME(6) NOT NULL)")
    with mysql.cursor() as cur:
        cur.executemany("INSERT INTO memo VALUES (%s, %s, %s)", [(i, f"n{i}", T0) for i in range(1, 6)])
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"),
                          {"memo": HYBRID})
    sync(cli, config, "memo")

    mysql_exec(mysql, "ALTER TABLE memo CHANGE note comment TEXT")
    result = sync(cli, config, "memo")
    assert summary(result.output, "memo")[1] == 5
    assert log_lines(result, "WARNING") == [
        "memo: column 'note' is gone and 'comment' (text) appeared at its position: possibly a rename; 'comment' "
        "is filled for every row, 'note' is kept in the target (NULL in every row written from now on)"]
    assert_target_is_source(tgt, mysql, mysql_db, "memo")
    assert target_columns(tgt, "memo") == ["id", "note", "updated_at", "comment"]
    assert tgt.rows("memo", ["note"], "id") == [(None,)] * 5  # every row was written again

    # renamed to another type: not a rename by the rule, an added and a gone column; filled all the same
    mysql_exec(mysql, "ALTER TABLE memo CHANGE comment remark VARCHAR(100)")
    result = sync(cli, config, "memo")
    assert log_lines(result, "WARNING") == []
    assert log_lines(result, "INFO")[:2] == [
        "memo: column 'remark' added (varchar(100)); re-reading all rows so existing rows get its values",
        "memo: column 'comment' is gone from the source; the target keeps it (NULL in every row written from now on)"]
    assert_target_is_source(tgt, mysql, mysql_db, "memo")


def test_a_dropped_column_is_kept_and_nothing_is_read_again(tgt: Target, mysql: Any, mysql_db: str, tmp_path: Path,
                                                            cli: Any) -> None:
    mysql_exec(mysql, EVO_DDL)
    evo_rows(mysql, range(1, 6), T0)
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"), {"evo": HYBRID})
    sync(cli, config, "evo")
    mysql_exec(mysql, "ALTER TABLE evo DROP COLUMN note")
    mysql_exec(mysql, "UPDATE evo SET a = 'new', updated_at = %s WHERE id = 4", params=(T0 + timedelta(hours=1),))
    result = sync(cli, config, "evo")
    # the changed row, and the 4 rows on the watermark's timestamp read again (their fingerprint
    # changed with the column): nothing else
    assert summary(result.output, "evo")[1] == 5
    assert log_lines(result, "INFO")[0] == ("evo: column 'note' is gone from the source; the target keeps it "
                                            "(NULL in every row written from now on)")
    assert_target_is_source(tgt, mysql, mysql_db, "evo")
    assert tgt.rows("evo", ["note"], "id") == [(None,)] * 5


def test_a_column_added_to_a_composite_key_table(tgt: Target, mysql: Any, mysql_db: str, tmp_path: Path,
                                                 cli: Any) -> None:
    mysql_exec(mysql, """CREATE TABLE acct (tenant VARCHAR(8) NOT NULL, id INT NOT NULL, bal DECIMAL(12,2),
                         updated_at DATETIME(6) NOT NULL, PRIMARY KEY (tenant, id), KEY k (updated_at, id))""")
    with mysql.cursor() as cur:
        cur.executemany("INSERT INTO acct VALUES (%s, %s, %s, %s)",
                        [(t, i, f"{i}.5", T0) for t in ("acme", "globex") for i in range(1, 12)])
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"),
                          {"acct": {**HYBRID, "processing": {"batch_size": 5}}})
    sync(cli, config, "acct")
    mysql_exec(mysql, "ALTER TABLE acct ADD tier TINYINT NOT NULL DEFAULT 3 AFTER tenant",
               "UPDATE acct SET tier = 1 WHERE id = 7")
    assert summary(sync(cli, config, "acct").output, "acct")[1] == 22
    assert_target_is_source(tgt, mysql, mysql_db, "acct", key="tenant, id")
    assert tgt.count("acct") == 22


def test_a_column_added_after_the_lake_was_cleaned_is_found_in_the_target(tgt: Target, mysql: Any, mysql_db: str,
                                                                          tmp_path: Path, cli: Any) -> None:
    """No batch left in the lake (s3clean removed the loaded ones): the target table's columns are the
    reference."""
    mysql_exec(mysql, CUST_DDL)
    with mysql.cursor() as cur:
        cur.executemany("INSERT INTO cust VALUES (%s, %s, %s)", [(i, f"c{i}", T0) for i in range(1, 5)])
    lake = tmp_path / "lake"
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(lake), {"cust": HYBRID})
    sync(cli, config, "cust")
    cleaned = cli("s3clean", "clean", "-p", "p1", "-t", "cust", "--keep-last", "0", config_dir=config)
    assert cleaned.exit_code == 0, cleaned.output + cleaned.stderr
    assert not list((lake / "p1" / "cust" / "_manifests").glob("*.json"))
    mysql_exec(mysql, "ALTER TABLE cust ADD country CHAR(2) NOT NULL DEFAULT 'US'")
    result = sync(cli, config, "cust")
    assert summary(result.output, "cust")[1] == 4
    assert "cust: column 'country' added (char(2)); re-reading all rows" in result.stderr
    assert_target_is_source(tgt, mysql, mysql_db, "cust")


def test_a_column_added_to_a_keyless_table(tgt: Target, mysql: Any, mysql_db: str, tmp_path: Path, cli: Any) -> None:
    """The re-read from the start of a keyless (append) table must replace the rows it covers."""
    mysql_exec(mysql, "CREATE TABLE log (msg VARCHAR(20), at DATETIME(6) NOT NULL)")
    with mysql.cursor() as cur:
        cur.executemany("INSERT INTO log VALUES (%s, %s)", [(f"m{i}", T0 + timedelta(seconds=i)) for i in range(4)])
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"),
                          {"log": {"cdc_strategy": "timestamp_only", "cdc_timestamp_column": "at"}})
    sync(cli, config, "log")
    mysql_exec(mysql, "ALTER TABLE log ADD level INT NOT NULL DEFAULT 5")
    sync(cli, config, "log")
    cols = ["msg", "at", "level"]
    assert Counter(tgt.rows("log", cols, '"at"')) == Counter(source_rows(mysql_db, "log", cols, "`at`"))
    assert tgt.count("log") == 4


def test_a_full_sync_table_with_an_incompatible_type_change_is_recreated(tgt: Target, mysql: Any, mysql_db: str,
                                                                         tmp_path: Path, cli: Any) -> None:
    """INT -> VARCHAR (and a narrowing) used to stop the load until the user dropped the table: a
    replace batch replaces every row anyway, so the table is recreated in the batch's transaction."""
    mysql_exec(mysql, "CREATE TABLE snap (id INT NOT NULL PRIMARY KEY, amount INT, label VARCHAR(40))",
               "INSERT INTO snap VALUES (1, 10, 'a'), (2, NULL, 'b'), (3, 30, 'c')")
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"),
                          {"snap": {"cdc_strategy": "full_sync"}})
    sync(cli, config, "snap")
    mysql_exec(mysql, "ALTER TABLE snap MODIFY amount VARCHAR(20), MODIFY label VARCHAR(5)",
               "UPDATE snap SET amount = 'lots' WHERE id = 3", "INSERT INTO snap VALUES (4, '4.5', 'd')")
    result = sync(cli, config, "snap")
    assert_target_is_source(tgt, mysql, mysql_db, "snap")
    recreated = [line for line in log_lines(result, "INFO") if "recreated" in line]
    assert len(recreated) == 1 and "column 'amount' " in recreated[0]
    assert ("column 'label' " in recreated[0]) == (tgt.kind == "postgres")  # DuckDB's VARCHAR has no length
    types = target_types(tgt, "snap")
    if tgt.kind == "postgres":
        assert "row by row" not in result.stderr  # the new table was swapped in (the JSON case below: row by row)
        assert (types["amount"], types["label"]) == ("character varying(20)", "character varying(5)")
        assert tgt.query("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = "
                         f"'{tgt.name('snap')}'::regclass AND contype = 'p'") == [("PRIMARY KEY (id)",)]
    else:
        assert types["amount"] == "VARCHAR"
    mysql_exec(mysql, "INSERT INTO snap VALUES (5, 'x', 'e')")
    sync(cli, config, "snap")  # and the next snapshot loads as usual
    assert_target_is_source(tgt, mysql, mysql_db, "snap")


def test_a_view_on_a_full_sync_table_to_recreate_is_named_with_the_way_out(mysql: Any, mysql_db: str,
                                                                           tmp_path: Path, cli: Any,
                                                                           request: pytest.FixtureRequest) -> None:
    pg = make_target("postgres", request, tmp_path)
    mysql_exec(mysql, "CREATE TABLE snap (id INT NOT NULL PRIMARY KEY, amount INT, doc JSON)",
               "INSERT INTO snap VALUES (1, 10, '{}'), (2, 20, '[1]')")
    config = build_config(tmp_path / "config", mysql_db, pg.config, local_storage(tmp_path / "lake"),
                          {"snap": {"cdc_strategy": "full_sync"}})
    sync(cli, config, "snap")
    import psycopg

    from conftest import PG_DSN

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        view = f'CREATE VIEW "{pg.schema}"."big" AS SELECT id FROM {pg.name("snap")} WHERE amount > 15'
        conn.execute(view)  # type: ignore[arg-type]
    mysql_exec(mysql, "ALTER TABLE snap MODIFY amount VARCHAR(20)", "UPDATE snap SET amount = 'many' WHERE id = 2")
    refused = sync(cli, config, "snap", ok=False)
    assert refused.exit_code == 1
    err = refused.stderr.strip().splitlines()[-1]
    assert f"view {pg.schema}.big depends on it, so the batch was not loaded" in err, err
    assert "Way out: drop the view, sync again, then create it again." in err, err
    assert pg.rows("snap", ["id", "amount"], "id") == [(1, 10), (2, 20)]  # untouched
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP VIEW "{pg.schema}"."big"')  # type: ignore[arg-type]
    sync(cli, config, "snap")
    assert_target_is_source(pg, mysql, mysql_db, "snap")


# ---------------------------------------------------------------- 18. no key, composite key, quoted names


def test_table_without_a_key_is_appended_exactly_once(tgt: Target, mysql: Any, mysql_db: str, tmp_path: Path,
                                                      cli: Any) -> None:
    """No primary key: append mode. timestamp_only re-reads the rows at its
    watermark every run; each append batch replaces its window in the target,
    so ties, identical duplicate rows and re-runs never double a row."""
    mysql_exec(mysql, "CREATE TABLE log (msg VARCHAR(20), level INT, at DATETIME(6) NOT NULL)")
    rows = [("start", 1, T0), ("dup", 2, T0 + timedelta(seconds=1)), ("dup", 2, T0 + timedelta(seconds=1)),
            ("tie a", 3, T0 + timedelta(seconds=2)), ("tie b", 3, T0 + timedelta(seconds=2))]
    with mysql.cursor() as cur:
        cur.executemany("INSERT INTO log VALUES (%s, %s, %s)", rows)
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"),
                          {"log": {"cdc_strategy": "timestamp_only", "cdc_timestamp_column": "at"}})
    cols = ["msg", "level", "at"]

    def same() -> None:
        got, want = tgt.rows("log", cols, '"at", "msg"'), source_rows(mysql_db, "log", cols, "`at`, msg")
        assert Counter(got) == Counter(want) and len(got) == len(want)

    sync(cli, config, "log")
    same()
    assert "_lakeshift_batch_id" in target_columns(tgt, "log")
    assert summary(sync(cli, config, "log").output, "log")[1] == 0  # re-read at the watermark, unchanged
    same()
    with mysql.cursor() as cur:  # a late row on the watermark's timestamp, another duplicate, a newer row
        cur.executemany("INSERT INTO log VALUES (%s, %s, %s)", [("tie c", 3, T0 + timedelta(seconds=2)),
                                                                 ("tie a", 3, T0 + timedelta(seconds=2)),
                                                                 ("end", 9, T0 + timedelta(seconds=3))])
    sync(cli, config, "log")
    same()
    sync(cli, config, "log")
    same()
    assert tgt.count("log") == 8


def test_table_without_a_key_full_sync_replaces_it(tgt: Target, mysql: Any, mysql_db: str, tmp_path: Path,
                                                   cli: Any) -> None:
    mysql_exec(mysql, "CREATE TABLE log (msg VARCHAR(20), level INT)",
               "INSERT INTO log VALUES ('a', 1), ('a', 1), ('b', NULL), (NULL, NULL)")
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"),
                          {"log": {"cdc_strategy": "full_sync"}})
    sync(cli, config, "log")
    mysql_exec(mysql, "DELETE FROM log WHERE msg = 'b'", "INSERT INTO log VALUES ('c', 3)")
    sync(cli, config, "log")
    order = "msg NULLS FIRST, level NULLS FIRST"
    assert tgt.rows("log", ["msg", "level"], order) == [(None, None), ("a", 1), ("a", 1), ("c", 3)]


def test_composite_key_with_a_non_unique_cursor_id(tgt: Target, mysql: Any, mysql_db: str, tmp_path: Path,
                                                   cli: Any) -> None:
    """PRIMARY KEY (tenant, id): `id` repeats across tenants, so pages are cut
    on (updated_at, id, tenant) and rows merge on (tenant, id)."""
    mysql_exec(mysql, """CREATE TABLE acct (tenant VARCHAR(8) NOT NULL, id INT NOT NULL, bal DECIMAL(12,2),
                         updated_at DATETIME(6) NOT NULL, PRIMARY KEY (tenant, id), KEY k (updated_at, id))""")
    with mysql.cursor() as cur:
        cur.executemany("INSERT INTO acct VALUES (%s, %s, %s, %s)",
                        [(t, i, f"{i}.{len(t)}0", T0) for t in ("acme", "globex", "ü-co") for i in range(1, 40)])
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"),
                          {"acct": {**HYBRID, "processing": {"batch_size": 7}}})
    cols = ["tenant", "id", "bal", "updated_at"]
    sync(cli, config, "acct")
    assert tgt.rows("acct", cols, "tenant, id") == source_rows(mysql_db, "acct", cols, "tenant, id")
    later = T0 + timedelta(minutes=1)
    mysql_exec(mysql, "UPDATE acct SET bal = bal + 1, updated_at = %s WHERE id = 5", params=(later,))
    mysql_exec(mysql, "INSERT INTO acct VALUES ('acme', 40, 1, %s), ('initech', 5, 2, %s)", params=(later, later))
    # the 5 changed rows and the 114 left on the old watermark's timestamp (all rows shared it)
    assert summary(sync(cli, config, "acct").output, "acct")[1] == 119
    assert tgt.rows("acct", cols, "tenant, id") == source_rows(mysql_db, "acct", cols, "tenant, id")
    assert tgt.count("acct") == 3 * 39 + 2
    if tgt.kind == "postgres":  # the merge key is the target's primary key
        assert tgt.query("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = "
                         f"'{tgt.name('acct')}'::regclass AND contype = 'p'") == [("PRIMARY KEY (tenant, id)",)]


QUOTED_TABLE = "Order Details 注文"
QUOTED_COLS = ["Order ID", "select", "Mixed Case", "ünïcödé 列", "from", "rate %", "a.b", "group by", "updated at"]


def test_names_that_need_quoting_end_to_end(tgt: Target, mysql: Any, mysql_db: str, tmp_path: Path, cli: Any) -> None:
    mysql_exec(mysql, f"""CREATE TABLE `{QUOTED_TABLE}` (`Order ID` INT NOT NULL PRIMARY KEY, `select` VARCHAR(10),
        `Mixed Case` INT, `ünïcödé 列` VARCHAR(10), `from` DATE, `rate %` DECIMAL(5,2), `a.b` TEXT,
        `group by` TINYINT(1), `updated at` DATETIME(6) NOT NULL, KEY `k 1` (`updated at`, `Order ID`))""")
    with mysql.cursor() as cur:
        cur.executemany(f"INSERT INTO `{QUOTED_TABLE}` VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        [(i, f"s{i}", -i, f"ü{i}", "2026-01-0%d" % (1 + i % 9), f"{i}.5", f"x.{i}", i % 2,
                          T0 + timedelta(seconds=i % 3)) for i in range(1, 26)])
    table = {"full_name": QUOTED_TABLE, "target_name": "Bestell Positionen Ü", "cdc_strategy": "hybrid",
             "cdc_timestamp_column": "updated at", "cdc_id_column": "Order ID", "processing": {"batch_size": 4},
             "validation": {"required_columns": ["Mixed Case", "ünïcödé 列"]}}
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"),
                          {"Order Details": table})
    order = '"Order ID"'
    sync(cli, config, "Order Details")
    source = source_rows(mysql_db, QUOTED_TABLE, QUOTED_COLS, "`Order ID`")
    assert tgt.rows("Bestell Positionen Ü", QUOTED_COLS, order) == source
    mysql_exec(mysql, f"UPDATE `{QUOTED_TABLE}` SET `select` = 'upd', `updated at` = %s WHERE `Order ID` <= 3",
               params=(T0 + timedelta(hours=1),))
    sync(cli, config, "Order Details")
    assert tgt.rows("Bestell Positionen Ü", QUOTED_COLS, order) == source_rows(mysql_db, QUOTED_TABLE, QUOTED_COLS,
                                                                             "`Order ID`")
    assert target_columns(tgt, "Bestell Positionen Ü") == QUOTED_COLS


def test_a_column_name_longer_than_postgres_allows(mysql: Any, mysql_db: str, tmp_path: Path, cli: Any,
                                                   request: pytest.FixtureRequest) -> None:
    """22 CJK characters are 66 bytes: legal in MySQL and DuckDB, too long for
    PostgreSQL's 63 -- refused with the reason, never truncated into a clash."""
    long_name = "長" * 22
    mysql_exec(mysql, f"CREATE TABLE lng (id INT PRIMARY KEY, `{long_name}` INT)", "INSERT INTO lng VALUES (1, 2)")
    pg = make_target("postgres", request, tmp_path)
    config = build_config(tmp_path / "config", mysql_db, pg.config, local_storage(tmp_path / "lake"),
                          {"lng": {"cdc_strategy": "full_sync"}})
    refused = sync(cli, config, "lng", ok=False)
    assert refused.exit_code == 1
    assert f"column of lng '{long_name}' is 66 bytes long; PostgreSQL allows 63" in refused.stderr
    assert not pg.exists("lng")

    duck = make_target("duckdb", request, tmp_path)
    config = build_config(tmp_path / "config2", mysql_db, duck.config, local_storage(tmp_path / "lake2"),
                          {"lng": {"cdc_strategy": "full_sync"}})
    sync(cli, config, "lng")
    assert duck.rows("lng", ["id", long_name], "id") == [(1, 2)]


@pytest.mark.slow  # parallel tables into one DuckDB file stay in the quick loop in test_load_duckdb
def test_parallel_tables_into_a_duckdb_file_named_like_its_schema(mysql: Any, mysql_db: str, tmp_path: Path,
                                                                   cli: Any) -> None:
    """shop.duckdb with schema `shop`: DuckDB would name the file's catalog
    `shop` too, so the file is attached under another name -- once per
    process, shared by the tables loading side by side (a second attach of
    the same file in one process is refused by DuckDB)."""
    from kit.targets import duck_target, duckdb_config

    for t in ("a", "b", "c"):
        mysql_exec(mysql, f"CREATE TABLE {t} (id INT PRIMARY KEY, v INT)", f"INSERT INTO {t} VALUES (1, 1), (2, 2)")
    db = tmp_path / "shop.duckdb"
    config = build_config(tmp_path / "config", mysql_db, duckdb_config(db, "shop"), local_storage(tmp_path / "lake"),
                          {t: {"cdc_strategy": "full_sync"} for t in ("a", "b", "c")},
                          processing={"strategy": "parallel", "max_parallel_tables": 3})
    for i in range(3):
        mysql_exec(mysql, *(f"INSERT INTO {t} VALUES ({10 + i}, {i})" for t in ("a", "b", "c")))
        result = cli("sync", "pipeline", "-p", "p1", "--all", config_dir=config)
        assert result.exit_code == 0, result.output + result.stderr
        for t in ("a", "b", "c"):
            assert duck_target(db, "shop.shop").rows(t, ["id", "v"], "id") == source_rows(mysql_db, t, ["id", "v"], "id")
