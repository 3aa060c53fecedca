"""verify's SQL for Redshift (no cluster here): the statements are generated for
the hostile table, parse with sqlglot's redshift dialect, and the canonical
texts Redshift shares with PostgreSQL run on PostgreSQL and equal MariaDB's."""

from __future__ import annotations

import dataclasses

from pathlib import Path
from typing import Any

import pytest
import sqlglot
from kit.targets import make_target
from test_types_e2e import DDL, ROWS, insert_rows, table_cfg
from verify_kit import pipeline_config

from conftest import mysql_exec


def _parses(statement: str) -> None:
    tree = sqlglot.parse_one(statement, read="redshift")
    assert not isinstance(tree, sqlglot.exp.Command), statement


@pytest.fixture
def hostile_desc(mysql: Any, mysql_db: str, tmp_path: Path, cli: Any, request: pytest.FixtureRequest) -> Any:
    from lakeshift.config.loader import load_config
    from lakeshift.source import MySQLReader

    mysql_exec(mysql, DDL)
    insert_rows(mysql, ROWS)
    tgt = make_target("postgres", request, tmp_path)
    config = pipeline_config(tmp_path, mysql_db, tgt, table_cfg())
    assert cli("sync", "pipeline", "-p", "p1", "-t", "hostile", config_dir=config).exit_code == 0
    cfg = load_config(str(config))
    reader = MySQLReader(cfg.source("src"), cfg.settings)
    desc = reader.describe("hostile", cfg.pipeline("p1").tables["hostile"])
    yield reader, desc, tgt
    reader.close()


def test_redshift_statements_parse_and_compare_the_right_columns(hostile_desc: Any) -> None:
    from lakeshift.verify import canonical as C
    from lakeshift.verify import queries as Q

    _, desc, _ = hostile_desc
    side = Q.Side(C.REDSHIFT, '"analytics"."hostile"', lambda n: f'"{n}"', conds=('"_lakeshift_deleted_at" IS NULL',))
    arrow = [c.name for c in desc.columns if C.sql_kind(c, C.REDSHIFT) is None]
    assert arrow == ["f", "db", "bl", "vb", "tm", "g"]  # SUPER (MySQL JSON) too; MariaDB's JSON is text
    hashable = [c for c in desc.columns if c.name not in arrow]
    key = [c for c in desc.columns if c.name == "id"]
    vc = [c for c in desc.columns if c.name == "vc"]
    for shape in (Q.Shape(key, key, 16), Q.Shape(vc, vc, 16), Q.Shape(key, hashable, 1024), Q.Shape([], hashable, 64)):
        for statement in (Q.aggregate_sql(side, shape), Q.fetch_sql(side, shape, [1, 5, 9]), Q.count_sql(side)):
            _parses(statement)
    # an integer key, keys only: the key itself as BIGINT (canonical.py); Redshift sums it as DECIMAL(38,0)
    assert Q.aggregate_sql(side, Q.Shape(key, key, 16)) == (
        "SELECT b, COUNT(*), COALESCE(SUM(CAST(h AS DECIMAL(38,0))), 0), "
        "COALESCE(SUM(MOD(MOD(h, 2147483647) * MOD(h, 2147483647), 2147483647)), 0) FROM ("
        "SELECT (k & 15) AS b, k AS h FROM (SELECT CAST(\"id\" AS BIGINT) AS k FROM \"analytics\".\"hostile\" "
        "WHERE (\"_lakeshift_deleted_at\" IS NULL)) x) y GROUP BY b")
    # BIGINT UNSIGNED (DECIMAL(20,0) on Redshift): above 2^63 - 1, its two's complement as BIGINT
    unsigned = dataclasses.replace(key[0], mysql_type="bigint(20) unsigned", data_type="bigint")
    assert C.int_key(unsigned, C.REDSHIFT, '"id"') == (
        'CASE WHEN "id" > 9223372036854775807 THEN CAST("id" - 18446744073709551616 AS BIGINT) '
        'ELSE CAST("id" AS BIGINT) END')
    _parses(Q.aggregate_sql(side, Q.Shape([unsigned], [unsigned], 16)))
    text_key = [c for c in desc.columns if c.name == "vc"]  # any other key: md5 of its canonical text
    assert Q.aggregate_sql(side, Q.Shape(text_key, text_key, 16)) == (
        "SELECT b, COUNT(*), COALESCE(SUM(CAST(STRTOL(SUBSTRING(h, 1, 15), 16) AS DECIMAL(38,0))), 0) FROM ("
        "SELECT (STRTOL(SUBSTRING(k, 25, 8), 16) % 16) AS b, k AS h FROM ("
        "SELECT md5(COALESCE((CAST(OCTET_LENGTH(\"vc\") AS VARCHAR(12)) || ':' || \"vc\"), '~')) AS k "
        "FROM \"analytics\".\"hostile\" "
        "WHERE (\"_lakeshift_deleted_at\" IS NULL)) x) y GROUP BY b")
    texts = {c.name: side.text(c) for c in hashable}
    assert texts["zts"] == "TO_CHAR(CONVERT_TIMEZONE('UTC', \"zts\"), 'YYYY-MM-DD HH24:MI:SS.US')"
    assert texts["d65"] == '"d65"'  # Redshift holds DECIMAL(65,30) as MySQL's exact text
    # short text: its length in bytes, ':', the text; longer text (TINYTEXT's 255 bytes are short): its md5
    assert texts["vc"] == '(CAST(OCTET_LENGTH("vc") AS VARCHAR(12)) || \':\' || "vc")'


def test_redshift_texts_shared_with_postgresql_equal_mariadb(hostile_desc: Any) -> None:
    """Where Redshift's SQL is also PostgreSQL's, it runs on PostgreSQL and gives MariaDB's canonical text."""
    from lakeshift.source.convert import ref, zero_date_test
    from lakeshift.source.positions import from_sql
    from lakeshift.verify import canonical as C
    from lakeshift.verify import queries as Q

    reader, desc, tgt = hostile_desc
    src = Q.Side(C.MYSQL, from_sql(desc), ref, zero_date_test)
    rs = Q.Side(C.REDSHIFT, tgt.name("hostile"), lambda n: f'"{n}"')
    kinds = ("int", "bit", "decimal", "date", "datetime", "text", "long_text")
    shared = [c for c in desc.columns if C.sql_kind(c, C.REDSHIFT) in kinds]
    assert len(shared) >= 15
    for c in shared:
        want = dict(reader.pool.query(f"SELECT {ref('id')}, {src.text(c)} FROM {src.table_sql}"))
        got = dict(tgt.query(f'SELECT "id", {rs.text(c)} FROM {rs.table_sql}'))
        assert got == want, c.name
