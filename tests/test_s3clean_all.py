"""Issue 15 item 7: `s3clean clean --all` over every table of a pipeline, keeping
the newest loaded batch of each by default (--keep-last N), --older-than, and a
confirmation asked only on a terminal. Real MariaDB -> DuckDB, local lake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kit.config import build_config
from kit.lake import manifest_ids
from kit.source import HYBRID, create_items, insert_items
from kit.targets import duck_target


@pytest.fixture
def two_loaded_batches(cli, tmp_path: Path, mysql: Any, mysql_db: str) -> tuple[Path, dict[str, Any]]:
    create_items(mysql, 5)
    create_items(mysql, 5, table="things")
    storage = {"type": "local", "path": str(tmp_path / "lake")}
    config = build_config(tmp_path / "config", mysql_db, duck_target(tmp_path / "t.duckdb").config, storage,
                          {"items": HYBRID, "things": HYBRID})
    for _ in range(2):
        assert cli("sync", "pipeline", "-p", "p1", "--all", config_dir=config).exit_code == 0
        insert_items(mysql, 2)
        insert_items(mysql, 2, table="things")
    return config, storage


def test_clean_all_keeps_the_newest_loaded_batch(cli, two_loaded_batches: tuple[Path, dict[str, Any]]) -> None:
    config, storage = two_loaded_batches
    before = {t: manifest_ids(storage, table=t) for t in ("items", "things")}
    assert all(len(ids) == 2 for ids in before.values())
    assert cli("s3clean", "clean", "-p", "p1", config_dir=config).exit_code == 2  # -t or --all

    young = cli("s3clean", "clean", "-p", "p1", "--all", "--older-than", "1d", config_dir=config)
    assert young.exit_code == 0 and young.stdout.count("kept 2 batch(es) younger than 1d") == 2
    assert {t: manifest_ids(storage, table=t) for t in before} == before

    r = cli("s3clean", "clean", "-p", "p1", "--all", config_dir=config)
    assert r.exit_code == 0, r.output
    assert "items:" in r.stdout and "things:" in r.stdout and r.stdout.count("deleted 1 batch(es)") == 2
    assert {t: manifest_ids(storage, table=t) for t in before} == {t: ids[-1:] for t, ids in before.items()}


def test_clean_asks_on_a_terminal(cli, two_loaded_batches: tuple[Path, dict[str, Any]],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from lakeshift.cli import s3clean_cmd

    config, storage = two_loaded_batches
    monkeypatch.setattr(s3clean_cmd, "_interactive", lambda: True)
    no = cli("s3clean", "clean", "-p", "p1", "-t", "items", "--keep-last", "0", config_dir=config, input="n\n")
    assert no.exit_code == 1 and "would delete 2 batch(es)" in no.stdout and "Delete 2 batch(es)" in no.stdout
    assert len(manifest_ids(storage)) == 2
    yes = cli("s3clean", "clean", "-p", "p1", "-t", "items", "--keep-last", "0", config_dir=config, input="y\n")
    assert yes.exit_code == 0 and "deleted 2 batch(es)" in yes.stdout
    assert manifest_ids(storage) == []
