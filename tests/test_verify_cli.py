"""`lakeshift verify` on the command line: the summary, --json, and the exit
codes (0 equal, 3 differences, 1 an error in one line)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kit.cli import one_error_line
from kit.targets import make_target
from verify_kit import pipeline_config, tamper

from conftest import mysql_exec


@pytest.fixture
def synced(mysql: Any, mysql_db: str, tmp_path: Path, cli: Any, request: pytest.FixtureRequest) -> tuple[Path, Any]:
    mysql_exec(mysql, "CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(10))", "CREATE TABLE b (id INT PRIMARY KEY, x DOUBLE)",
               "INSERT INTO a VALUES (1, 'one'), (2, 'two'), (3, 'three')", "INSERT INTO b VALUES (1, 0.5), (2, -0.0)")
    tgt = make_target("postgres", request, tmp_path)
    config = pipeline_config(tmp_path, mysql_db, tgt, {"a": {"cdc_strategy": "full_sync"},
                                                       "b": {"cdc_strategy": "full_sync"}})
    assert cli("sync", "pipeline", "-p", "p1", "--all", config_dir=config).exit_code == 0
    return config, tgt


def test_equal_tables_exit_0(synced: tuple[Path, Any], cli: Any) -> None:
    config, _ = synced
    result = cli("verify", "-p", "p1", "--all", "--deep", config_dir=config)
    assert result.exit_code == 0, result.output + result.stderr
    assert "2 of 2 table(s) equal" in result.output
    assert "compared in Arrow" not in result.output  # x DOUBLE: hashed in SQL (its exact M*2^E form)


def test_differences_exit_3_with_example_keys(synced: tuple[Path, Any], cli: Any) -> None:
    config, tgt = synced
    tamper(tgt, "DELETE FROM a WHERE id = 2", "UPDATE b SET x = 0.5000000000000001 WHERE id = 1")  # the next double
    keys = cli("verify", "-p", "p1", "-t", "a", "-t", "b", config_dir=config)
    assert keys.exit_code == 3
    assert "a: missing (first 1): id=2" in keys.output
    assert keys.stderr.strip() == "Error: 1 of 2 table(s) differ from MySQL: a"
    deep = cli("verify", "-p", "p1", "--all", "--deep", "--json", config_dir=config)
    assert deep.exit_code == 3
    doc = json.loads(deep.stdout)
    assert doc["equal"] is False and doc["deep"] is True
    by = {t["table"]: t for t in doc["tables"]}
    assert (by["a"]["missing"], by["a"]["examples"]["missing"]) == (1, [{"id": 2}])
    assert (by["b"]["different"], by["b"]["examples"]["different"], by["b"]["equal"]) == (1, [{"id": 1}], False)
    assert set(by["a"]) >= {"source_rows", "target_rows", "missing", "extra", "different", "pending", "windows",
                            "seconds", "examples"}


def test_errors_exit_1_in_one_line(synced: tuple[Path, Any], cli: Any) -> None:
    config, tgt = synced
    tamper(tgt, "DROP TABLE b")
    msg = one_error_line(cli("verify", "-p", "p1", "-t", "b", config_dir=config))
    assert "target table" in msg and ".b does not exist" in msg and "lakeshift sync" in msg
    assert "no tables selected" in one_error_line(cli("verify", "-p", "p1", config_dir=config))
    assert "'nope'" in one_error_line(cli("verify", "-p", "p1", "-t", "nope", config_dir=config))
