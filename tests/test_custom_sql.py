"""custom_sql: a table read from one SELECT (a filter, a join), wrapped as a
derived table so the hybrid cursor, keyset pages and ties work on its output;
the target equals the same SELECT run on MySQL after every run. Hostile SQL is
refused before it reaches MySQL; cursor/key columns missing from the output are
named by `config validate`; types come from the result metadata."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import mysql_connect, mysql_exec
from kit.cli import one_error_line
from kit.config import build_config
from kit.lake import local_storage
from kit.source import norm
from kit.targets import make_target

T0 = datetime(2026, 3, 1, 12, 0, 0)
JOIN = ("SELECT o.id, o.customer_id, c.name AS customer, c.tier, o.amount, o.amount * 2 AS doubled, o.updated_at "
        "FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.status <> 'void'")
FILTER = "SELECT id, customer_id, amount, status, updated_at FROM orders WHERE amount >= 10"
HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id",
          "primary_key": ["id"], "processing": {"batch_size": 7}}


def _create(mysql: Any) -> None:
    mysql_exec(mysql, """CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL,
                             tier TINYINT(1) NOT NULL)""",
               """CREATE TABLE orders (id BIGINT UNSIGNED PRIMARY KEY, customer_id INT NOT NULL,
                             amount DECIMAL(12,3) NOT NULL, status VARCHAR(10) NOT NULL,
                             updated_at TIMESTAMP NOT NULL, KEY ix (updated_at, id))""")
    with mysql.cursor() as cur:
        cur.executemany("INSERT INTO customers VALUES (%s, %s, %s)", [(i, f"c{i} ✓", i % 2) for i in range(1, 6)])
        # 60 orders on 6 whole-second timestamps: ties of 10 rows cross the 7-row pages
        cur.executemany("INSERT INTO orders VALUES (%s, %s, %s, %s, %s)",
                        [(i, 1 + i % 5, f"{i % 23}.{i % 1000:03d}", "void" if i % 9 == 0 else "ok",
                          T0 + timedelta(seconds=i // 10)) for i in range(1, 61)])


def _change(mysql: Any) -> None:
    last = T0 + timedelta(seconds=6)  # the watermark's own second: a tie grown after the run
    with mysql.cursor() as cur:
        cur.executemany("INSERT INTO orders VALUES (%s, %s, %s, %s, %s)",
                        [(100 + i, 1 + i % 5, f"{30 + i}.5", "ok", last) for i in range(12)])
        cur.execute("UPDATE orders SET amount = amount + 100, updated_at = %s WHERE id IN (3, 4, 21, 22)",
                    (T0 + timedelta(minutes=5),))
        cur.execute("UPDATE orders SET amount = 50, updated_at = %s WHERE id = 40", (T0 + timedelta(minutes=5),))


def _mysql_rows(mysql_db: str, query: str) -> list[tuple[Any, ...]]:
    with mysql_connect(mysql_db, init_command="SET time_zone = '+00:00'") as conn, conn.cursor() as cur:
        cur.execute(f"SELECT * FROM ({query}) AS q ORDER BY id")
        return [tuple(norm(v) for v in row) for row in cur.fetchall()]


OTHER = {"timestamp_only": {"cdc_strategy": "timestamp_only", "cdc_id_column": None, "lookback": "2s"},
         "full_sync": {"cdc_strategy": "full_sync"}}


@pytest.mark.parametrize("query,target_kind,strategy", [(JOIN, "postgres", "hybrid"), (FILTER, "duckdb", "hybrid"),
                                                        (FILTER, "postgres", "timestamp_only"),
                                                        (JOIN, "duckdb", "full_sync")],
                         ids=["join-pg", "filter-duck", "filter-lookback-pg", "join-full-duck"])
def test_custom_sql_syncs_incrementally_and_equals_the_select(query: str, target_kind: str, strategy: str, mysql: Any,
                                                            mysql_db: str, tmp_path: Path, cli: Any,
                                                            request: pytest.FixtureRequest) -> None:
    _create(mysql)
    target = make_target(target_kind, request, tmp_path)
    table = {**HYBRID, **OTHER.get(strategy, {}), "custom_sql": query}
    cfg = build_config(tmp_path / "config", mysql_db, target.config, local_storage(tmp_path / "lake"),
                       {"sales": {k: v for k, v in table.items() if v is not None}})
    columns = [c.strip().split(" AS ")[-1].split(".")[-1] for c in query[7:query.index(" FROM ")].split(",")]
    if strategy == "hybrid" and target_kind == "postgres":
        dry = cli("sync", "pipeline", "-p", "p1", "-t", "sales", "--dry-run", config_dir=cfg)
        assert "source:  custom_sql SELECT o.id" in dry.output and "merge on (id)" in dry.output, dry.output
    for round_ in range(2):
        if round_:
            _change(mysql)
        result = cli("sync", "pipeline", "-p", "p1", "-t", "sales", config_dir=cfg)
        assert result.exit_code == 0, result.output + result.stderr
        want = _mysql_rows(mysql_db, query)
        got = [tuple(norm(v) for v in r) for r in target.rows("sales", columns, "id")]
        assert got == want, f"round {round_}"
    assert len(want) > 40
    loads = target.loads("p1", "sales")
    if strategy != "full_sync":
        assert len(loads) == 2 and loads[1][1] < len(want)  # the second run read the changes only
    verified = cli("verify", "-p", "p1", "-t", "sales", config_dir=cfg)  # verify compares the same SELECT
    assert verified.exit_code == 0, verified.output + verified.stderr


TYPED = """CREATE TABLE typed (id BIGINT UNSIGNED PRIMARY KEY, i INT, si SMALLINT UNSIGNED NOT NULL, b TINYINT(1),
    d DECIMAL(12,3) NOT NULL, big DECIMAL(50,2), f FLOAT, g DOUBLE, ts TIMESTAMP(6) NULL, dt DATETIME(3),
    da DATE, t TIME(2), y YEAR, bt BIT(5), j JSON, e ENUM('a','b'), st SET('x','y'), vc VARCHAR(30),
    ch CHAR(4) CHARACTER SET latin1, tx TEXT, mt MEDIUMTEXT, vb VARBINARY(16), bl BLOB, lb LONGBLOB)"""


def test_types_come_from_the_result_metadata_exactly_as_from_the_catalogue(mysql: Any, mysql_db: str) -> None:
    from conftest import MYSQL
    from lakeshift.config.models import ConnectionSettings, MySQLSource, TableConfig
    from lakeshift.source import MySQLReader
    from lakeshift.source.types import lake_type

    mysql_exec(mysql, TYPED)
    reader = MySQLReader(MySQLSource(host=MYSQL["host"], port=MYSQL["port"], username=MYSQL["user"],
                                     database=mysql_db), ConnectionSettings())
    try:
        table = reader.describe("typed")
        query = reader.describe("typed", TableConfig(custom_sql="SELECT * FROM typed WHERE id > 0",
                                                     primary_key=["id"]))
    finally:
        reader.close()
    assert [c.name for c in query.columns] == [c.name for c in table.columns]
    for a, b in zip(table.infos, query.infos):
        assert (lake_type(a), a.nullable, a.unsigned, a.whole_seconds) == \
            (lake_type(b), b.nullable, b.unsigned, b.whole_seconds), (a, b)
    assert [(c.arrow_type, c.nullable) for c in query.columns] == [(c.arrow_type, c.nullable) for c in table.columns]


HOSTILE = {
    "SELECT * FROM orders; DROP TABLE orders": "more than one statement",
    "DELETE FROM orders": "not a SELECT",
    "UPDATE orders SET amount = 0": "not a SELECT",
    "DROP TABLE orders": "not a SELECT",
    "SELECT * FROM orders INTO OUTFILE '/tmp/x'": "not one MySQL SELECT",
    "SELECT * FROM orders INTO DUMPFILE '/tmp/x'": "not one MySQL SELECT",
    "SELECT id INTO @v FROM orders": "INTO",
    "SELECT * FROM orders FOR UPDATE": "row locks",
    "SELECT * FROM orders LOCK IN SHARE MODE": "row locks",
    "SELECT SLEEP(100) AS s": "SLEEP",
    "SELECT LOAD_FILE('/etc/passwd') AS f": "LOAD_FILE",
    "SELECT id /*!50000 , (SELECT 1) */ FROM orders": "executable comment",
    "SELECT @x := 1 AS a": "assigns a variable",
    "CALL p()": "not a SELECT",
}


def test_hostile_sql_is_refused_before_mysql(tmp_path: Path, mysql_db: str, mysql: Any, cli: Any) -> None:
    _create(mysql)
    for n, (sql, why) in enumerate(HOSTILE.items()):
        cfg = build_config(tmp_path / f"c{n}", mysql_db, {"type": "duckdb", "path": str(tmp_path / "x.duckdb")},
                           local_storage(tmp_path / "lake"), {"sales": {**HYBRID, "custom_sql": sql}})
        result = cli("sync", "pipeline", "-p", "p1", "-t", "sales", config_dir=cfg)
        line = one_error_line(result)
        assert "sales" in line and "custom_sql" in line and why in line, (sql, line)
    with mysql.cursor() as cur:  # nothing reached MySQL
        cur.execute("SELECT COUNT(*) FROM orders")
        assert cur.fetchone()[0] == 60


def test_config_validate_names_a_cursor_column_missing_from_the_output(tmp_path: Path, mysql_db: str, mysql: Any,
                                                                      cli: Any) -> None:
    _create(mysql)
    cfg = build_config(tmp_path / "c", mysql_db, {"type": "duckdb", "path": str(tmp_path / "x.duckdb")},
                       local_storage(tmp_path / "lake"),
                       {"sales": {**HYBRID, "custom_sql": "SELECT id, amount FROM orders"}})
    result = cli("config", "validate", config_dir=cfg)
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.stderr.splitlines() if "updated_at" in ln]
    assert len(lines) == 1 and "tables.sales.cdc_timestamp_column" in lines[0] and "custom_sql" in lines[0], lines


def test_custom_sql_in_a_table_file_and_an_environment_override(tmp_path: Path) -> None:
    from lakeshift.config.loader import load_config

    cfg = build_config(tmp_path / "c", "db", {"type": "duckdb", "path": str(tmp_path / "x.duckdb")},
                       local_storage(tmp_path / "lake"), {"sales": dict(HYBRID)})
    (cfg / "tables").mkdir()
    (cfg / "tables" / "sales.yml").write_text(yaml.safe_dump({"custom_sql": FILTER}))
    (cfg / "environments").mkdir()
    (cfg / "environments" / "qa.yml").write_text(yaml.safe_dump({"tables": {"sales": {"custom_sql": JOIN}}}))
    assert load_config(cfg, env_name=None).pipeline("p1").tables["sales"].custom_sql == FILTER
    assert load_config(cfg, env_name="qa").pipeline("p1").tables["sales"].custom_sql == JOIN
    (cfg / "environments" / "qa.yml").write_text(yaml.safe_dump({"tables": {"sales": {"custom_sql": "TRUNCATE orders"}}}))
    with pytest.raises(Exception) as err:
        load_config(cfg, env_name="qa").pipeline("p1")
    assert "environments/qa.yml" in str(err.value) or "custom_sql" in str(err.value)
    assert "\n" not in str(err.value) and "tables.sales.custom_sql" in str(err.value)


def test_binlog_with_custom_sql_is_refused_in_one_line(tmp_path: Path) -> None:
    from lakeshift.config.loader import load_config

    cfg = build_config(tmp_path / "c", "db", {"type": "duckdb", "path": str(tmp_path / "x.duckdb")},
                       local_storage(tmp_path / "lake"), {"sales": {"cdc_strategy": "binlog", "custom_sql": FILTER}})
    with pytest.raises(Exception) as err:
        load_config(cfg).pipeline("p1")
    text = str(err.value)
    assert "\n" not in text and "tables.sales" in text and "custom_sql cannot be read from the binlog" in text, text
