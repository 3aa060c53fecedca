"""Issue 10: `--limit` never shrinks a target, superseded full_sync snapshots are
not "pending" anywhere, and a batch that can never load has a way out
(`lakeshift batches list|skip`). Real MariaDB, PostgreSQL and DuckDB, the real
CLI in subprocesses."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from kit.checks import assert_mirrors
from kit.cli import assert_one_line_error, ok, run_cli, summary, sync
from kit.config import build_config
from kit.lake import local_storage, manifest_ids, table_lake
from kit.source import FULL_SYNC, HYBRID, T0, create_items, insert_items
from kit.targets import Target, make_target

TARGETS = ["postgres", "duckdb"]


def full_sync_table(mysql: Any, mysql_db: str, target: Target, tmp_path: Path, rows: int) -> tuple[Path, dict[str, Any]]:
    storage = local_storage(tmp_path / "lake")
    create_items(mysql, rows)
    config = build_config(tmp_path / "config", mysql_db, target.config, storage, {"items": FULL_SYNC})
    return config, storage


def cli_ok(config: Path, *args: str) -> Any:
    return ok(run_cli(config, *args))


def batch_states(config: Path, out: str | None = None) -> dict[str, str]:
    """batch id -> state, from `lakeshift batches list` (or its output `out`)."""
    out = out or cli_ok(config, "batches", "list", "-p", "p1", "-t", "items").stdout
    rows = [re.search(r"(\d{8}T\d{12}Z-[0-9a-f]{6}).*?\b(loaded|pending|superseded|sample|skipped)\b", line)
            for line in out.splitlines()]
    return {m.group(1): m.group(2) for m in rows if m}


@pytest.mark.slow
@pytest.mark.parametrize("kind", TARGETS)
def test_limit_on_a_full_sync_table_is_refused_before_anything_runs(kind: str, mysql: Any, mysql_db: str,
                                                                    tmp_path: Path, request: Any) -> None:
    target = make_target(kind, request, tmp_path)
    config, storage = full_sync_table(mysql, mysql_db, target, tmp_path, 200)
    ok(sync(config))
    before = manifest_ids(storage)
    for extra in (("--limit", "10"), ("--limit", "10", "--dry-run")):
        assert_one_line_error(sync(config, "p1", ("items",), *extra),
                              "--limit 10 on full_sync table p1.items", "--backup-only")
    assert manifest_ids(storage) == before  # nothing was extracted
    assert assert_mirrors(target, mysql_db) == 200  # and the target keeps every row


@pytest.mark.slow
@pytest.mark.parametrize("kind", TARGETS)
def test_limit_with_backup_only_writes_a_sample_that_is_never_loaded(kind: str, mysql: Any, mysql_db: str,
                                                                    tmp_path: Path, request: Any) -> None:
    target = make_target(kind, request, tmp_path)
    config, storage = full_sync_table(mysql, mysql_db, target, tmp_path, 200)
    ok(sync(config))
    insert_items(mysql, 20)
    dry = ok(sync(config, "p1", ("items",), "--limit", "10", "--backup-only", "--dry-run")).stdout
    assert "at most 10 rows (a sample batch: never loaded)" in dry
    sampled = ok(sync(config, "p1", ("items",), "--limit", "10", "--backup-only"))
    assert "sample of 10 rows" in sampled.stdout
    sample_id = manifest_ids(storage)[-1]
    sample = table_lake(storage).read_manifest(sample_id)
    assert sample.sample and sample.rows == 10
    # --load-only loads nothing of it: the target keeps its 200 rows
    loaded = ok(sync(config, "p1", ("items",), "--load-only"))
    assert summary(loaded.stdout)[2] == 0
    assert len(target.rows()) == 200
    assert batch_states(config)[sample_id] == "sample"
    got = cli_ok(config, "watermark", "get", "-p", "p1", "-t", "items").stdout
    assert "Pending batches:   0" in got and "Never loaded:      1 sample" in got
    # the next ordinary run takes a whole snapshot
    ok(sync(config))
    assert assert_mirrors(target, mysql_db) == 220
    cleaned = cli_ok(config, "s3clean", "clean", "-p", "p1", "-t", "items")
    assert "deleted 2 batch(es)" in cleaned.stdout and "kept the newest full_sync snapshot" in cleaned.stdout
    assert sample_id not in manifest_ids(storage) and len(manifest_ids(storage)) == 1


@pytest.mark.slow
@pytest.mark.parametrize("kind", TARGETS)
def test_superseded_snapshots_are_never_called_pending(kind: str, mysql: Any, mysql_db: str, tmp_path: Path,
                                                       request: Any) -> None:
    target = make_target(kind, request, tmp_path)
    config, storage = full_sync_table(mysql, mysql_db, target, tmp_path, 50)
    ok(sync(config, "p1", ("items",), "--backup-only"))
    insert_items(mysql, 5)
    ok(sync(config, "p1", ("items",), "--backup-only"))
    old, new = manifest_ids(storage)

    got = cli_ok(config, "watermark", "get", "-p", "p1", "-t", "items").stdout
    assert f"Pending batches:   1 ({new})" in got and "Never loaded:      1 superseded" in got
    dry = ok(sync(config, "p1", ("items",), "--load-only", "--dry-run")).stdout
    assert f"pending batches: {new}  (never loaded: 1 superseded)" in dry
    # a run that extracts too writes a newer snapshot, which supersedes both: it loads only its own
    dry = ok(sync(config, "p1", ("items",), "--dry-run")).stdout
    assert "pending batches: this run's snapshot  (never loaded: 2 superseded)" in dry
    listing = cli_ok(config, "s3clean", "list", "-p", "p1", "-t", "items").stdout
    assert re.search(rf"{old}.*superseded", listing) and re.search(rf"{new}.*pending", listing)

    ok(sync(config, "p1", ("items",), "--load-only"))
    assert [b for b, _ in target.loads()] == [new]
    got = cli_ok(config, "watermark", "get", "-p", "p1", "-t", "items").stdout
    assert "Pending batches:   0" in got and "Never loaded:      1 superseded" in got
    listing = cli_ok(config, "batches", "list", "-p", "p1", "-t", "items").stdout
    assert batch_states(config, listing) == {old: "superseded", new: "loaded"}
    assert f"superseded by snapshot {new}" in listing

    cleaned = cli_ok(config, "s3clean", "clean", "-p", "p1", "-t", "items").stdout
    assert "deleted 1 batch(es)" in cleaned and f"kept the newest full_sync snapshot {new}" in cleaned
    assert manifest_ids(storage) == [new]
    assert assert_mirrors(target, mysql_db) == 55


def _short_lock_timeout(config: Path) -> None:
    path = config / "connections.yml"
    data = yaml.safe_load(path.read_text())
    data["connection_settings"]["default_timeout"] = 2
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _load_lock(target: Target) -> Any:
    """The loader's table lock, held by the test process like a run loading the table."""
    from lakeshift.config.models import ConnectionSettings, DuckDBTarget, PostgresTarget
    from lakeshift.load import open_target

    model = DuckDBTarget(**target.config) if target.kind == "duckdb" else PostgresTarget(**target.config)
    return open_target(model, ConnectionSettings(), lock_timeout=0)


@pytest.mark.slow
@pytest.mark.parametrize("kind", TARGETS)
def test_a_batch_that_can_never_load_is_skipped_and_its_rows_read_again(kind: str, mysql: Any, mysql_db: str,
                                                                       tmp_path: Path, request: Any) -> None:
    target = make_target(kind, request, tmp_path)
    storage = local_storage(tmp_path / "lake")
    create_items(mysql, 30)  # every tenth amount NULL: 10 %
    rule = {"required_columns": ["amount"], "max_null_percentage": 50}
    config = build_config(tmp_path / "config", mysql_db, target.config, storage,
                          {"items": {**HYBRID, "validation": rule}})
    _short_lock_timeout(config)
    ok(sync(config))
    first = manifest_ids(storage)[0]
    with mysql.cursor() as cur:  # ten rows without an amount: 100 % NULL, a batch that can never load
        cur.executemany("INSERT INTO items (name, amount, updated_at) VALUES (%s, NULL, %s)",
                        [(f"late {i}", T0.replace(day=2)) for i in range(10)])
    line = assert_one_line_error(sync(config), "not loaded (kept in the lake)", "`lakeshift batches skip -p p1 -t items")
    bad = manifest_ids(storage)[-1]
    assert bad in line
    assert batch_states(config) == {first: "loaded", bad: "pending"}

    skip = ("batches", "skip", "-p", "p1", "-t", "items")
    assert_one_line_error(run_cli(config, *skip, first, "--reason", "x"), f"batch {first} was loaded at")
    assert_one_line_error(run_cli(config, *skip, "20260101T000000000000Z-abcdef", "--reason", "x"),
                          "no batch '20260101T000000000000Z-abcdef'", "batches list")
    loader = _load_lock(target)
    try:
        with loader.lock("p1", "items"):  # a run is loading the table
            assert_one_line_error(run_cli(config, *skip, bad, "--reason", "x"), "another lakeshift run")
    finally:
        loader.close()
    assert [b for b, _ in target.loads()] == [first]  # none of the refusals recorded anything

    done = cli_ok(config, *skip, bad, "--reason", "amounts missing upstream, ticket 42")
    assert f"Batch {bad} of p1.items (10 rows, pending) recorded as skipped" in done.stdout
    reread = re.search(r"`(lakeshift watermark set -p p1 -t items --timestamp 2026-03-01T12:00:10.123456 --id 30)`",
                       done.stderr)
    assert reread and "missing from the target" in done.stderr, done.stderr
    assert target.query(f'SELECT "mode", "rows", "note" FROM {target.name("_lakeshift_loads")} '
                        f"WHERE batch_id = '{bad}'") == [("skipped", 0, "amounts missing upstream, ticket 42")]
    assert batch_states(config) == {first: "loaded", bad: "skipped"}
    assert_one_line_error(run_cli(config, *skip, bad, "--reason", "again"), "already skipped")
    assert (tmp_path / "lake" / "p1" / "items" / "_manifests" / f"{bad}.json").exists()  # the lake keeps it

    # runs go on; the skipped rows are missing until read again, as the warning says
    assert summary(ok(sync(config)).stdout)[:2] == ("ok", 0)
    assert len(target.rows()) == 30
    assert target.query(f'SELECT "notes" FROM {target.name("_lakeshift_runs")} ORDER BY "started_at" DESC LIMIT 1') \
        == [("no new rows",)]
    with mysql.cursor() as cur:  # fixed upstream (in place: the cursor column does not move)
        cur.execute("UPDATE items SET amount = 7.00 WHERE amount IS NULL AND id > 30")
    cli_ok(config, *shlex.split(reread.group(1))[1:])  # the command it printed
    ok(sync(config))
    assert assert_mirrors(target, mysql_db) == 40
