"""data_quality_checks: each check passes and fails on purpose, computed from the
batch in the lake before the load. A failure (severity error) keeps the batch in
the lake unloaded and fails the table in one line naming the check, the column
and the offending count; once the rows are fixed in MySQL, the next run's batch
supersedes them and both batches load. `warn` loads and reports; results are in
_lakeshift_runs.quality."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from conftest import mysql_exec
from kit.cli import error_lines, one_error_line
from kit.config import build_config
from kit.lake import local_storage, manifest_ids
from kit.source import norm, source_rows
from kit.targets import make_target

COLUMNS = ["id", "email", "status", "updated_at"]
NOW = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
OLD = datetime(2020, 1, 1)
HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id",
          "processing": {"batch_size": 4}}


def _people(mysql: Any, rows: list[tuple[Any, ...]]) -> None:
    mysql_exec(mysql, """CREATE TABLE people (id INT PRIMARY KEY, email VARCHAR(40) NULL,
                         status VARCHAR(10) NOT NULL, updated_at DATETIME(6) NOT NULL)""")
    with mysql.cursor() as cur:
        cur.executemany("INSERT INTO people VALUES (%s, %s, %s, %s)", rows)


def _good(n: int, at: datetime = NOW) -> list[tuple[Any, ...]]:
    return [(i, f"p{i}@x.org", "ok", at - timedelta(minutes=10, seconds=n - i)) for i in range(1, n + 1)]


def _fix(mysql: Any, where: str, set_: str) -> None:
    mysql_exec(mysql, f"UPDATE people SET {set_}, updated_at = %s WHERE {where}", params=(NOW,))


# check, bad rows (over _good(8)), the fix (UPDATE ... WHERE), fragments of the error line
CASES = {
    "null_check": ({"null_check": {"columns": ["email"]}}, "UPDATE people SET email = NULL WHERE id IN (2, 5)",
                   ("id IN (2, 5)", "email = CONCAT('fixed', id)"), ("null_check", "'email'", "2 offending")),
    "required_columns": ("null_check", "UPDATE people SET email = NULL WHERE id IN (3)",
                         ("id = 3", "email = 'three@x.org'"), ("null_check", "'email'", "1 offending")),
    "duplicate_check": ({"duplicate_check": {"columns": ["email"]}},
                        "UPDATE people SET email = 'same@x.org' WHERE id IN (1, 6, 7)",
                        ("id IN (6, 7)", "email = CONCAT('u', id)"), ("duplicate_check", "'email'", "2 offending")),
    "accepted_values": ({"accepted_values": {"status": ["ok", "vip"]}},
                        "UPDATE people SET status = 'bogus' WHERE id IN (4, 8)",
                        ("id IN (4, 8)", "status = 'vip'"), ("accepted_values(status)", "'status'", "2 offending",
                                                           "bogus")),
    "freshness": ({"freshness": {"column": "updated_at", "max_age": "1d"}},
                  f"UPDATE people SET updated_at = '{OLD}' + INTERVAL id SECOND",
                  ("id > 0", "email = email"), ("freshness(updated_at)", "'updated_at'", "8 offending", "max_age")),
    "row_count_min": ({"row_count_min": 10}, None, None, ("row_count_min", "2 offending", "8 rows, fewer than 10")),
}


def table_error(result: Any) -> str:
    """A sync whose table failed: exit 1, one `Error:` line."""
    assert result.exit_code == 1, result.output
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize("case", list(CASES))
def test_a_failed_check_keeps_the_batch_and_the_next_run_loads_it_once_fixed(case: str, mysql: Any, mysql_db: str,
                                                                             tmp_path: Path, cli: Any,
                                                                             request: pytest.FixtureRequest) -> None:
    check, bad, fix, fragments = CASES[case]
    _people(mysql, _good(8))
    if bad:
        mysql_exec(mysql, bad)
    target = make_target("postgres", request, tmp_path)
    storage = local_storage(tmp_path / "lake")
    table = {**HYBRID, "data_quality_checks": ["duplicate_check", check]}
    if case == "required_columns":
        table["validation"] = {"required_columns": ["id", "email"], "max_null_percentage": 10}
    cfg = build_config(tmp_path / "config", mysql_db, target.config, storage, {"people": table})

    failed = cli("sync", "pipeline", "-p", "p1", "-t", "people", config_dir=cfg)
    line = table_error(failed)
    for fragment in ("p1.people", "not loaded (kept in the lake)", "data_quality_checks", *fragments):
        assert fragment in line, (fragment, line)
    assert len(manifest_ids(storage, table="people")) == 1 and target.loads("p1", "people") == []
    assert not target.exists("people") or target.count("people") == 0
    quality = target.query(f'SELECT "status", "quality" FROM {target.name("_lakeshift_runs")}')
    assert quality[0][0] == "failed" and fragments[0] in quality[0][1] and "duplicate_check ok" in quality[0][1]

    if fix is None:  # row_count_min: more rows arrive
        with mysql.cursor() as cur:
            cur.executemany("INSERT INTO people VALUES (%s, %s, %s, %s)",
                            [(i, f"p{i}@x.org", "ok", NOW) for i in range(9, 20)])
    else:
        _fix(mysql, *fix)
    again = cli("sync", "pipeline", "-p", "p1", "-t", "people", config_dir=cfg)
    assert again.exit_code == 0, again.output + again.stderr
    ids = manifest_ids(storage, table="people")
    assert [b for b, _ in target.loads("p1", "people")] == ids and len(ids) == 2  # the kept batch loaded too
    got = [tuple(norm(v) for v in r) for r in target.rows("people", COLUMNS, "id")]
    assert got == source_rows(mysql_db, "people", COLUMNS, "id")
    last = target.query(f'SELECT "quality" FROM {target.name("_lakeshift_runs")} ORDER BY "started_at" DESC')[0][0]
    assert "superseded by the 1 later batch(es): loaded" in last, last


@pytest.mark.parametrize("target_kind", ["postgres", "duckdb"])
def test_warn_loads_and_reports_and_the_target_duplicate_check_runs_after_a_merge(
        target_kind: str, mysql: Any, mysql_db: str, tmp_path: Path, cli: Any,
        request: pytest.FixtureRequest) -> None:
    _people(mysql, _good(6))
    mysql_exec(mysql, "UPDATE people SET status = 'odd' WHERE id = 2")
    target = make_target(target_kind, request, tmp_path)
    checks = [{"accepted_values": {"status": ["ok"], "severity": "warn"}},
              {"duplicate_check": {"columns": ["email"]}}, {"row_count_min": {"min": 1, "severity": "warn"}}]
    cfg = build_config(tmp_path / "config", mysql_db, target.config, local_storage(tmp_path / "lake"),
                       {"people": {**HYBRID, "data_quality_checks": checks}})
    first = cli("sync", "pipeline", "-p", "p1", "-t", "people", config_dir=cfg)
    assert first.exit_code == 0, first.output + first.stderr
    assert target.count("people") == 6
    assert "accepted_values(status) failed on column 'status': 1 offending" in first.output  # the summary's note
    (quality,), = target.query(f'SELECT "quality" FROM {target.name("_lakeshift_runs")}')
    assert "(warn: loaded)" in quality and "duplicate_check (target) ok" in quality and "row_count_min ok" in quality

    # a row takes another row's email: the batch (one row) has no repeat, the target would have one
    # after the merge: the load rolls back inside its transaction and the batch stays in the lake
    before = sorted(target.rows("people", ["id", "email"], "id"))
    mysql_exec(mysql, "UPDATE people SET email = 'p1@x.org', updated_at = %s WHERE id = 3", params=(NOW,))
    second = cli("sync", "pipeline", "-p", "p1", "-t", "people", config_dir=cfg)
    line = table_error(second)
    assert "not loaded (kept in the lake): data_quality_checks duplicate_check (target) failed on column 'email'" \
        in line, line
    assert "1 offending" in line and len(target.loads("p1", "people")) == 1
    assert sorted(target.rows("people", ["id", "email"], "id")) == before  # nothing of the batch reached the target

    # fixed in MySQL: the next run loads the kept batch and its own
    mysql_exec(mysql, "UPDATE people SET email = 'p3@x.org', updated_at = %s WHERE id = 3",
               params=(NOW + timedelta(seconds=1),))
    third = cli("sync", "pipeline", "-p", "p1", "-t", "people", config_dir=cfg)
    assert third.exit_code == 0, third.output + third.stderr
    assert len(target.loads("p1", "people")) == 3 and target.count("people") == 6


def test_check_settings_are_checked_in_one_line(tmp_path: Path, mysql_db: str, cli: Any) -> None:
    cfg = build_config(tmp_path / "c", mysql_db, {"type": "duckdb", "path": str(tmp_path / "x.duckdb")},
                       local_storage(tmp_path / "lake"),
                       {"people": {**HYBRID, "data_quality_checks": ["null_check", {"freshness": {"column": "u"}}]}})
    line = one_error_line(cli("config", "validate", config_dir=cfg))
    assert "tables.people.data_quality_checks" in line and "item 2 (freshness): max_age" in line, line


def test_the_target_duplicate_query_on_redshift_is_one_statement_postgresql_runs(pg: Any, pg_schema: str) -> None:
    import sqlglot
    from kit.redshift import FakeRedshift
    from load_kit import SETTINGS

    from lakeshift.config.models import RedshiftTarget
    from lakeshift.load import open_target

    fake = FakeRedshift()
    fake.columns["people"] = [("id", "integer", None, None, None), ("email", "character varying", 40, None, None),
                              ("_lakeshift_deleted_at", "timestamp with time zone", None, None, None)]
    fake.staged_rows = 3
    target = RedshiftTarget(type="redshift", host="rs.example", database="dev", username="loader", schema="analytics",
                            iam_role="arn:aws:iam::123456789012:role/x")
    loader = open_target(target, SETTINGS, connection_factory=fake.connect)
    try:
        assert loader.repeated_keys("people", ["email"]) == 3
    finally:
        loader.close()
    sent = fake.statements()[-1]
    assert sent == ('SELECT COUNT(*) FROM (SELECT "email" FROM "analytics"."people" WHERE "_lakeshift_deleted_at" IS '
                    'NULL GROUP BY "email" HAVING COUNT(*) > 1) AS repeated')
    sqlglot.parse_one(sent, read="redshift")
    pg.execute(f'CREATE SCHEMA "{pg_schema}"')
    pg.execute(f'CREATE TABLE "{pg_schema}"."people" (id INT, email TEXT, "_lakeshift_deleted_at" TIMESTAMPTZ)')
    pg.execute(f"""INSERT INTO "{pg_schema}"."people" VALUES (1, 'a', NULL), (2, 'a', NULL), (3, 'b', NULL),
                   (4, 'b', now()), (5, 'c', NULL), (6, 'c', NULL), (7, 'c', NULL)""")
    assert pg.execute(sent.replace('"analytics"', f'"{pg_schema}"')).fetchone()[0] == 2
