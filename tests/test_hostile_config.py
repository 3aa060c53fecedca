"""Hostile configuration and names, through the real CLI (a subprocess):

19. names built to inject SQL, in every place configuration takes a name
    (pipeline and tables/ and environments/ files, connections.yml), are
    refused at validation with one line naming the file and the key, and
    nothing runs (a sentinel table `y` in MySQL survives; no lake, no target);
    names MySQL allows but that cannot be quoted safely are refused when read
    from the catalogue; weird but legal names work end to end, and every
    identifier lakeshift sends (MySQL, PostgreSQL, Redshift) is quoted;
20. malformed YAML, unknown keys, wrong types, missing variables, dependency
    cycles, unknown connection names: one line on stderr, exit 1, and the lake
    folder and the target exactly as they were.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from kit.cli import run_cli
from kit.config import build_config
from kit.lake import local_storage, s3_client, tree
from kit.redshift import FakeRedshift, patch_redshift, redshift_config
from kit.source import source_rows
from kit.targets import Target, make_target

from conftest import mysql_exec

ORDERS = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}


def orders_table(mysql: Any) -> None:
    mysql_exec(mysql, "CREATE TABLE orders (id INT PRIMARY KEY, name VARCHAR(20), updated_at DATETIME(6) NOT NULL)",
               "INSERT INTO orders VALUES (1, 'a', '2026-01-01 00:00:00'), (2, 'b', '2026-01-02 00:00:00')",
               "CREATE TABLE y (keep INT)", "INSERT INTO y VALUES (42)")


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: "), stderr
    return lines[0][len("Error: "):]


def edit(path: Path, change: Any) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def y_survives(mysql: Any) -> None:
    with mysql.cursor() as cur:
        cur.execute("SELECT keep FROM y")
        assert cur.fetchall() == ((42,),)


# ---------------------------------------------------------------- 19. injection-shaped names

INJECTIONS = [
    # (file, how to put the value in, expected "file: key: ..." start, expected reason)
    ("pipelines/p1.yml", lambda d, v: d["tables"]["orders"].update(full_name=v),
     "pipelines/p1.yml: tables.orders.full_name: table 'x; DROP TABLE y; --'", "x; DROP TABLE y; --", "';'"),
    ("pipelines/p1.yml", lambda d, v: d["tables"]["orders"].update(primary_key=["id", v]),
     "pipelines/p1.yml: tables.orders.primary_key.1: name 'id`; DROP TABLE y'", "id`; DROP TABLE y", "'`'"),
    ("pipelines/p1.yml", lambda d, v: d["tables"]["orders"].update(cdc_timestamp_column=v),
     "pipelines/p1.yml: tables.orders.cdc_timestamp_column: name \"updated_at' OR '1'='1\"",
     "updated_at' OR '1'='1", "\"'\""),
    ("pipelines/p1.yml", lambda d, v: d["pipeline"].update(default_table_config={"target_name": v}),
     "pipelines/p1.yml: pipeline.default_table_config.target_name: name 'o\"; DROP TABLE y; --'",
     'o"; DROP TABLE y; --', "'\"'"),
    ("pipelines/p1.yml", lambda d, v: d["tables"]["orders"].update(validation={"required_columns": [v]}),
     "pipelines/p1.yml: tables.orders.validation.required_columns.0: name 'a\\\\b'", "a\\b", "'\\\\'"),
    ("tables/orders.yml", lambda d, v: d.update(target_name=v),
     "tables/orders.yml: target_name: name 'orders /* x */'", "orders /* x */", None),
    ("environments/dev.yml", lambda d, v: d.update(tables={"orders": {"cdc_id_column": v}}),
     "environments/dev.yml: tables.orders.cdc_id_column: name 'id\\nDROP TABLE y'", "id\nDROP TABLE y", "'\\n'"),
    ("connections.yml", lambda d, v: d["connections"]["targets"]["dst"].update(schema=v),
     "connections.yml: connections.targets.dst.schema: name 'public; DROP SCHEMA public CASCADE'",
     "public; DROP SCHEMA public CASCADE", "';'"),
]


@pytest.mark.parametrize("where, put, head, value, char", INJECTIONS,
                         ids=["full_name", "primary_key", "cursor", "default_table_config", "required_columns",
                              "tables-file", "environment", "target-schema"])
@pytest.mark.slow
def test_injection_shaped_names_are_refused_before_anything_runs(where: str, put: Any, head: str, value: str,
                                                                 char: str | None, mysql: Any, mysql_db: str,
                                                                 tmp_path: Path, request: pytest.FixtureRequest) -> None:
    orders_table(mysql)
    tgt = make_target("postgres", request, tmp_path)
    lake = tmp_path / "lake"
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(lake), {"orders": ORDERS})
    path = config / where
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}\n")
    edit(path, lambda d: put(d, value))
    env = ("--env", "dev") if where.startswith("environments/") else ()
    for args in (("config", "validate"), ("sync", "pipeline", "-p", "p1", "-t", "orders"),
                 ("sync", "pipeline", "-p", "p1", "-t", "orders", "--dry-run")):
        result = run_cli(config, *env, *args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        msg = one_line(result.stderr)
        assert msg.startswith(head), (args, msg)
        if char:
            assert f"contains {char}; quotes, backticks, semicolons, backslashes and control characters are not " \
                   "allowed in names" in msg, msg
        else:
            assert "contains a comment marker" in msg, msg
    y_survives(mysql)
    assert not lake.exists() and not tgt.exists("orders") and not tgt.exists("_lakeshift_runs")


@pytest.mark.parametrize("bad", ['a"b', "x;y", "c--d", "back\\slash"])
def test_catalogue_names_that_cannot_be_quoted_safely_are_refused(bad: str, mysql: Any, mysql_db: str, tmp_path: Path,
                                                                 cli: Any, request: pytest.FixtureRequest) -> None:
    """MySQL allows these column names (inside backticks); lakeshift refuses
    to carry them into SQL and says which table and column."""
    escaped = bad.replace("`", "``")
    mysql_exec(mysql, f"CREATE TABLE odd (id INT PRIMARY KEY, `{escaped}` INT)", "INSERT INTO odd VALUES (1, 2)")
    tgt = make_target("postgres", request, tmp_path)
    lake = tmp_path / "lake"
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(lake),
                          {"odd": {"cdc_strategy": "full_sync"}})
    result = cli("sync", "pipeline", "-p", "p1", "-t", "odd", config_dir=config)
    assert result.exit_code == 1
    err = result.stderr.strip().splitlines()[-1]
    assert f"table {mysql_db}.odd: column {bad!r}" in err and "not allowed in names" in err or \
        "comment marker" in err, err
    assert not tgt.exists("odd") and not list(lake.rglob("*.parquet"))


WEIRD_TABLE = "x DROP TABLE y"  # legal, no statement separator: it is just a name
WEIRD = ["id", "select", "Mixed Case", "what?", "50% off", "$1", "a.b", "(parens)", "ünï 列", "updated at"]


def weird_table(mysql: Any) -> None:
    mysql_exec(mysql, f"""CREATE TABLE `{WEIRD_TABLE}` (`id` INT NOT NULL PRIMARY KEY, `select` VARCHAR(10),
        `Mixed Case` INT, `what?` VARCHAR(5), `50% off` DECIMAL(5,2), `$1` INT, `a.b` VARCHAR(5), `(parens)` INT,
        `ünï 列` VARCHAR(5), `updated at` DATETIME(6) NOT NULL)""",
               "CREATE TABLE y (keep INT)", "INSERT INTO y VALUES (42)")
    with mysql.cursor() as cur:
        cur.executemany(f"INSERT INTO `{WEIRD_TABLE}` VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        [(i, f"s{i}", i, "?", f"{i}.5", -i, "x.y", i * 2, "ü", f"2026-01-01 00:00:0{i}")
                         for i in range(1, 6)])


WEIRD_CFG = {"full_name": WEIRD_TABLE, "target_name": "select", "cdc_strategy": "hybrid",
             "cdc_timestamp_column": "updated at", "cdc_id_column": "id", "processing": {"batch_size": 2},
             "validation": {"required_columns": ["50% off", "what?"]}}


def _bare(statement: str, quote: str) -> str:
    """The statement without its quoted identifiers, string literals and hex literals."""
    out = re.sub(rf"{quote}[^{quote}]*{quote}", " ", statement)
    out = re.sub(r"X'[0-9a-fA-F]*'", " ", out)
    return re.sub(r"'[^']*'", " ", out)


def assert_all_quoted(statements: list[str], quote: str, names: list[str]) -> None:
    assert statements
    for s in statements:
        bare = _bare(s, quote)
        for name in names:
            if name in ("id", "select"):  # also SQL words: a word match would not prove anything
                assert f"{quote}{name}{quote}" in s or name not in _names_in(s, quote), s
                continue
            assert name not in bare, (name, s)


def _names_in(statement: str, quote: str) -> set[str]:
    return set(re.findall(rf"{quote}([^{quote}]*){quote}", statement))


@pytest.mark.parametrize("kind", ["postgres", "duckdb"])
def test_weird_but_legal_names_work_and_every_identifier_is_quoted(kind: str, mysql: Any, mysql_db: str,
                                                                   tmp_path: Path, cli: Any,
                                                                   request: pytest.FixtureRequest,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    weird_table(mysql)
    mysql_sql: list[str] = []
    target_sql: list[str] = []
    import lakeshift.source.cx as cx
    from lakeshift.load import base

    real_stream = cx.Connectorx.stream

    def stream(self: Any, sql: str, *args: Any) -> Any:
        mysql_sql.append(sql)
        return real_stream(self, sql, *args)

    monkeypatch.setattr(cx.Connectorx, "stream", stream)
    real_run = base.Session._run
    monkeypatch.setattr(base.Session, "_run", lambda self, cur, st, p: (target_sql.append(st), real_run(self, cur, st, p))[1])
    if kind == "duckdb":
        from lakeshift.load.duckdb import DuckDBSession

        for method in ("execute", "query"):
            real = getattr(DuckDBSession, method)
            monkeypatch.setattr(DuckDBSession, method,
                                lambda self, st, params=None, _r=real: (target_sql.append(st), _r(self, st, params))[1])
    tgt = make_target(kind, request, tmp_path)
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(tmp_path / "lake"),
                          {"weird": WEIRD_CFG})
    for _ in range(2):
        result = cli("sync", "pipeline", "-p", "p1", "-t", "weird", config_dir=config)
        assert result.exit_code == 0, result.output + result.stderr
        mysql_exec(mysql, f"UPDATE `{WEIRD_TABLE}` SET `select` = 'new', `updated at` = '2026-02-01' WHERE id = 2")
    assert tgt.rows("select", WEIRD, '"id"') == source_rows(mysql_db, WEIRD_TABLE, WEIRD, "id")
    y_survives(mysql)
    assert_all_quoted(mysql_sql, "`", [n for n in WEIRD if n != "id"] + [WEIRD_TABLE])
    assert_all_quoted(target_sql, '"', [n for n in WEIRD if n != "id"])
    assert any("`x DROP TABLE y`" in s for s in mysql_sql) and any('"50% off"' in s for s in target_sql)


def test_every_identifier_in_the_redshift_sql_is_quoted(mysql: Any, mysql_db: str, tmp_path: Path, cli: Any,
                                                        s3_endpoint: str, s3_storage: dict[str, Any],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    weird_table(mysql)
    emulator = FakeRedshift(s3_client(s3_endpoint))
    patch_redshift(monkeypatch, emulator)
    config = build_config(tmp_path / "config", mysql_db,
                          redshift_config(schema="Ana lytics", iam_role="arn:aws:iam::1:role/r"), s3_storage,
                          {"weird": WEIRD_CFG})
    result = cli("sync", "pipeline", "-p", "p1", "-t", "weird", config_dir=config)
    assert result.exit_code == 0, result.output + result.stderr
    stmts = emulator.statements()
    assert_all_quoted(stmts, '"', [n for n in WEIRD if n != "id"] + ["Ana lytics"])
    create = next(s for s in stmts if s.startswith('CREATE TABLE "Ana lytics"."select"'))
    assert '"50% off" DECIMAL(5,2)' in create and '"what?" VARCHAR(20)' in create and '"(parens)" INTEGER' in create
    y_survives(mysql)


# ---------------------------------------------------------------- 20. broken configuration, nothing touched


def _snapshot(tgt: Target, lake: Path) -> tuple[Any, ...]:
    return (tree(lake), tgt.rows("orders", ["id", "name", "updated_at"], "id"), tgt.runs(), tgt.loads())


BROKEN = [
    ("yaml", lambda c: (c / "pipelines/p1.yml").write_text("pipeline: {name: p1, source: src\ntables: [\n"),
     r"^pipelines/p1\.yml: YAML syntax error at line \d+, column \d+: .+"),
    ("tab", lambda c: (c / "pipelines/p1.yml").write_text("pipeline:\n\tname: p1\n"),
     r"^pipelines/p1\.yml: YAML syntax error at line 2, column 1: .+"),
    ("unknown-key", lambda c: edit(c / "pipelines/p1.yml", lambda d: d["tables"]["orders"].update(lookbak="5m")),
     r"^pipelines/p1\.yml: tables\.orders\.lookbak: unknown key; did you mean 'lookback'\?$"),
    ("wrong-type", lambda c: edit(c / "pipelines/p1.yml",
                                  lambda d: d["tables"]["orders"].update(processing={"batch_size": "lots"})),
     r"^pipelines/p1\.yml: tables\.orders\.processing\.batch_size: .*'lots'.*"),
    ("wrong-type-port", lambda c: edit(c / "connections.yml",
                                       lambda d: d["connections"]["sources"]["src"].update(port="x")),
     r"^connections\.yml: connections\.sources\.src\.port: .*"),
    ("missing-var-pipeline", lambda c: edit(c / "pipelines/p1.yml",
                                            lambda d: d["tables"]["orders"].update(lookback="${LS_NOT_SET_LOOKBACK}")),
     r"^pipelines/p1\.yml: tables\.orders\.lookback uses \$\{LS_NOT_SET_LOOKBACK\}, which is not set.*"),
    ("missing-var-connection", lambda c: edit(c / "connections.yml",
                                              lambda d: d["connections"]["sources"]["src"].update(
                                                  password="${LS_NOT_SET_PASSWORD}")),
     r"^connections\.yml: connections\.sources\.src\.password uses \$\{LS_NOT_SET_PASSWORD\}, which is not set; "
     r"set LS_NOT_SET_PASSWORD in the environment or in \.env$"),
    ("cycle", lambda c: edit(c / "pipelines/p1.yml", lambda d: d["tables"].update(
        orders={**d["tables"]["orders"], "depends_on": ["items"]},
        items={"cdc_strategy": "full_sync", "depends_on": ["orders"]})),
     r"^pipelines/p1\.yml: dependency cycle: (orders -> items -> orders|items -> orders -> items)$"),
    ("unknown-source", lambda c: edit(c / "pipelines/p1.yml", lambda d: d["pipeline"].update(source="srcc")),
     r"^pipelines/p1\.yml: pipeline\.source: .*'srcc'.*"),
    ("unknown-target", lambda c: edit(c / "pipelines/p1.yml", lambda d: d["pipeline"].update(target="nowhere")),
     r"^pipelines/p1\.yml: pipeline\.target: .*'nowhere'.*"),
    ("target-as-source", lambda c: edit(c / "pipelines/p1.yml", lambda d: d["pipeline"].update(source="dst")),
     r"^pipelines/p1\.yml: pipeline\.source: .*'dst'.*"),
    ("unknown-storage", lambda c: edit(c / "pipelines/p1.yml",
                                       lambda d: d["pipeline"].update(s3={"storage": "elsewhere"})),
     r"^pipelines/p1\.yml: pipeline\.s3\.storage: .*'elsewhere'.*"),
    ("top-level-list", lambda c: (c / "connections.yml").write_text("- a\n- b\n"),
     r"^connections\.yml: .*mapping.*"),
]


@pytest.mark.slow
@pytest.mark.parametrize("name, breaks, pattern", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_configuration_is_one_line_and_touches_nothing(name: str, breaks: Any, pattern: str, mysql: Any,
                                                              mysql_db: str, tmp_path: Path,
                                                              request: pytest.FixtureRequest) -> None:
    orders_table(mysql)
    tgt = make_target("postgres", request, tmp_path)
    lake = tmp_path / "lake"
    config = build_config(tmp_path / "config", mysql_db, tgt.config, local_storage(lake), {"orders": ORDERS})
    first = run_cli(config, "sync", "pipeline", "-p", "p1", "-t", "orders")
    assert first.returncode == 0, first.stdout + first.stderr
    mysql_exec(mysql, "INSERT INTO orders VALUES (3, 'c', '2026-01-03 00:00:00')")  # a change a run would take
    before = _snapshot(tgt, lake)

    breaks(config)
    for args in (("sync", "pipeline", "-p", "p1", "-t", "orders"), ("config", "validate"),
                 ("watermark", "get", "-p", "p1", "-t", "orders"), ("s3clean", "list", "-p", "p1", "-t", "orders")):
        result = run_cli(config, *args)
        if name == "missing-var-connection" and args[0] in ("config", "s3clean", "watermark"):
            # an unusable connection is only an error where it is used (documented); validate lists it
            if args[0] == "config":
                assert result.returncode == 0 and "LS_NOT_SET_PASSWORD" in result.stdout, result.stdout
            continue
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert re.match(pattern, one_line(result.stderr)), (args, result.stderr)
    assert _snapshot(tgt, lake) == before
