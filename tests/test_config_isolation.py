"""Issue 15 item 1: a config folder of six pipelines, four broken in different
ways (a bad strategy value, an unknown key, an unknown source, a dependency
cycle). Every command that does not use a broken pipeline works (a real sync
MariaDB -> DuckDB, connections list/test), and `config validate` lists all four
problems at once, one line each, with the line of the key in the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kit.cli import one_error_line
from kit.config import build_config
from kit.source import HYBRID, create_items, mysql_count
from kit.targets import duck_target

from conftest import write_config

BAD_KEY = ("pipeline:\n  source: src\n  target: dst\ntables:\n  items:\n    cdc_timestamp_column: updated_at\n"
           "    cdc_stratgy: hybrid\n")
BAD_STRATEGY = "pipeline: {source: src, target: dst}\ntables:\n  items:\n    cdc_strategy: sometimes\n"


@pytest.fixture
def folder(tmp_path: Path, mysql: Any, mysql_db: str) -> tuple[Path, Any]:
    create_items(mysql, 30)
    target = duck_target(tmp_path / "t.duckdb")
    root = build_config(tmp_path / "config", mysql_db, target.config,
                        {"type": "local", "path": str(tmp_path / "lake")}, {"items": HYBRID}, pipeline="good")
    conns = yaml.safe_load((root / "connections.yml").read_text())
    # a lake no pipeline here uses, whose keys are unset: must not break anything
    conns["connections"]["storage"]["other_lake"] = {"type": "s3", "bucket": "b", "access_key_id": "${OTHER_KEY}",
                                                     "secret_access_key": "${OTHER_SECRET}"}
    write_config(root, {
        "connections.yml": conns,
        "pipelines/good2.yml": {"pipeline": {"source": "src", "target": "dst"},
                                "tables": {"items": {"cdc_strategy": "full_sync", "target_name": "items_full"}}},
        "pipelines/bad_strategy.yml": BAD_STRATEGY,
        "pipelines/bad_key.yml": BAD_KEY,
        "pipelines/bad_source.yml": {"pipeline": {"source": "nosuch", "target": "dst"},
                                     "tables": {"items": HYBRID}},
        "pipelines/cycle.yml": {"pipeline": {"source": "src", "target": "dst"},
                                "tables": {"a": {"cdc_strategy": "full_sync", "depends_on": ["b"]},
                                           "b": {"cdc_strategy": "full_sync", "depends_on": ["a"]}}},
    })
    return root, target


PROBLEMS = [
    "  - pipelines/bad_key.yml: tables.items.cdc_stratgy: unknown key; did you mean 'cdc_strategy'? (line 7)",
    "  - pipelines/bad_source.yml: pipeline.source: unknown source 'nosuch' (sources in connections.yml: src)"
    " (line 2)",
    "  - pipelines/bad_strategy.yml: tables.items.cdc_strategy: must be one of 'hybrid', 'timestamp_only', "
    "'id_only', 'full_sync' or 'binlog' (got 'sometimes') (line 4)",
    "  - pipelines/cycle.yml: dependency cycle: a -> b -> a",
]


def test_validate_lists_every_problem_at_once(cli, folder: tuple[Path, Any]) -> None:
    root, _ = folder
    r = cli("config", "validate", config_dir=root)  # live: the good pipelines are checked against MariaDB
    assert r.exit_code == 1
    assert r.stdout.splitlines()[:5] == ["4 problem(s):", *PROBLEMS]
    assert one_error_line(r) == PROBLEMS[0][4:].removesuffix(" (line 7)") + " (and 3 more problem(s), listed above)"

    doc = json.loads(cli("config", "validate", "--offline", "--json", config_dir=root).stdout)
    assert doc["version"] == 1 and doc["kind"] == "config_validate" and doc["ok"] is False
    assert [(p["file"], p["line"]) for p in doc["problems"]] == [
        ("pipelines/bad_key.yml", 7), ("pipelines/bad_source.yml", 2), ("pipelines/bad_strategy.yml", 4),
        ("pipelines/cycle.yml", None)]
    assert doc["pipelines"] == {"bad_key": "broken", "bad_source": "invalid", "bad_strategy": "broken",
                                "cycle": "invalid", "default": "ok", "good": "ok", "good2": "ok"}


def test_list_pipelines_shows_broken_ones(cli, folder: tuple[Path, Any]) -> None:
    root, _ = folder
    r = cli("config", "list-pipelines", config_dir=root)
    assert r.exit_code == 0, r.output
    problems = [line for line in r.stdout.splitlines() if line.split(":")[0] in ("bad_strategy", "cycle")]
    assert problems == ["bad_strategy: broken: " + PROBLEMS[2][4:], "cycle: invalid: " + PROBLEMS[3][4:]]
    good = next(line for line in r.stdout.splitlines() if " good " in line)
    assert "src -> dst" in good and " ok " in good
    doc = json.loads(cli("config", "list-pipelines", "--json", config_dir=root).stdout)
    status = {p["pipeline"]: (p["status"], len(p["problems"])) for p in doc["pipelines"]}
    assert status == {"bad_key": ("broken", 1), "bad_source": ("invalid", 1), "bad_strategy": ("broken", 1),
                      "cycle": ("invalid", 1), "default": ("ok", 0), "good": ("ok", 0), "good2": ("ok", 0)}


def test_good_commands_still_work(cli, folder: tuple[Path, Any], mysql_db: str) -> None:
    root, target = folder
    r = cli("connections", "list", config_dir=root)
    assert r.exit_code == 0, r.output
    assert "src" in r.stdout and "dst" in r.stdout
    v1 = {"MYSQL_HOST": None, "MYSQL_DATABASE": None, "REDSHIFT_HOST": None, "S3_BUCKET_NAME": None, "S3_BUCKET": None}
    doc = json.loads(cli("connections", "list", "--json", config_dir=root, env=v1).stdout)
    assert doc["version"] == 1 and doc["kind"] == "connections"
    listed = {(c["kind"], c["name"]): c for c in doc["connections"]}
    assert sorted(listed) == [("source", "src"), ("storage", "default"), ("storage", "other_lake"), ("target", "dst")]
    assert listed[("storage", "other_lake")]["usable"] is False
    assert listed[("storage", "other_lake")]["needs"] == ["OTHER_KEY", "OTHER_SECRET"]
    # with the v1.0 variables set, the built-in `default` source and target show again
    doc = json.loads(cli("connections", "list", "--json", config_dir=root, env={**v1, "MYSQL_HOST": "db1"}).stdout)
    assert ("source", "default") in {(c["kind"], c["name"]) for c in doc["connections"]}
    r = cli("connections", "test", "--all", "--json", config_dir=root)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["kind"] == "connections_test" and doc["ok"] is True
    assert {(x["kind"], x["name"], x["status"]) for x in doc["results"]} == {
        ("source", "src", "ok"), ("target", "dst", "ok"), ("storage", "default", "ok"),
        ("storage", "other_lake", "skipped")}

    r = cli("sync", "pipeline", "-p", "good", "--all", config_dir=root)
    assert r.exit_code == 0, r.output
    warnings = [line for line in r.stderr.splitlines() if "broken config file" in line]
    assert len(warnings) == 1
    assert "pipelines/bad_key.yml, pipelines/bad_strategy.yml" in warnings[0]
    assert target.count("items") == mysql_count(mysql_db) == 30
    r = cli("sync", "pipeline", "-p", "good2", "--all", config_dir=root)
    assert r.exit_code == 0, r.output
    assert target.count("items_full") == 30

    assert one_error_line(cli("sync", "pipeline", "-p", "bad_strategy", "--all", config_dir=root)).startswith(
        "pipelines/bad_strategy.yml: tables.items.cdc_strategy: must be one of")
    assert one_error_line(cli("sync", "pipeline", "-p", "bad_source", "--all", config_dir=root)).startswith(
        "pipelines/bad_source.yml: pipeline.source: unknown source 'nosuch'")
    assert "dependency cycle" in one_error_line(cli("sync", "pipeline", "-p", "cycle", "--all", config_dir=root))


def test_broken_table_file_and_environment_entry_break_only_their_users(make_config) -> None:
    from lakeshift.config.loader import load_config

    conns = {"connections": {"sources": {"src": {"host": "db", "database": "d", "username": "u"}},
                             "targets": {"dst": {"type": "duckdb", "path": "x.duckdb"}},
                             "storage": {"s3": {"type": "s3", "bucket": "b", "access_key_id": "${OTHER_KEY}",
                                                "secret_access_key": "${OTHER_SECRET}"}}}}
    full = {"cdc_strategy": "full_sync"}
    root = make_config({
        "connections.yml": conns,
        "pipelines/a.yml": {"pipeline": {"source": "src", "target": "dst"}, "tables": {"orders": full}},
        "pipelines/b.yml": {"pipeline": {"source": "src", "target": "dst"}, "tables": {"widgets": full}},
        "pipelines/c.yml": {"pipeline": {"source": "src", "target": "dst"}, "tables": {"orders": full}},
        "tables/widgets.yml": "lookback: 5m\nlookbak: 5m\n",
        "environments/qa.yml": {"pipelines": {"c": {"tabels": {}}}, "tables": {"orders": {"lookback": "2m"}}},
    })
    cfg = load_config(root, "qa", environ={})  # the unused s3 lake's variables are unset: not a problem
    assert sorted(cfg.pipelines) == ["a", "default"]
    assert cfg.pipeline("a").tables["orders"].lookback.total_seconds() == 120
    assert [str(p) for p in cfg.broken["b"]] == [
        "tables/widgets.yml: lookbak: unknown key; did you mean 'lookback'? (line 2)"]
    assert [str(p) for p in cfg.broken["c"]] == [
        "environments/qa.yml: pipelines.c.tabels: unknown key; did you mean 'tables'? (line 3)"]
    with pytest.raises(Exception, match="^tables/widgets.yml: lookbak: unknown key"):
        cfg.pipeline("b")


def test_validate_live_checks_every_table_and_column(cli, tmp_path: Path, mysql: Any, mysql_db: str) -> None:
    create_items(mysql, 3)
    tables = {"items": {**HYBRID, "primary_key": ["id", "nope_pk"], "validation": {"required_columns": ["nope_req"]}},
              "missing": {"cdc_strategy": "full_sync"}}
    config = build_config(tmp_path / "config", mysql_db, duck_target(tmp_path / "t.duckdb").config,
                          {"type": "local", "path": str(tmp_path / "lake")}, tables)
    r = cli("config", "validate", "--live", config_dir=config)
    assert r.exit_code == 1
    listed = [line for line in r.stdout.splitlines() if line.startswith("  - ")]
    assert [line.split(": ")[1] for line in listed] == [
        "tables.items.primary_key", "tables.items.validation.required_columns", "tables.missing"]
    assert "has no column 'nope_pk'" in listed[0] and "has no column 'nope_req'" in listed[1]
    assert "table " + mysql_db + ".missing does not exist" in listed[2]
    assert cli("config", "validate", "--offline", config_dir=config).exit_code == 0
