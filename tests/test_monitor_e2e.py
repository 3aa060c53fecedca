"""`lakeshift status | freshness | history | metrics` and `sync --json / --metrics-file`
on real services: after a sync, a failed run (its error shown), a --backup-only run
(batches waiting), and on a "new machine" that has only the config (the source
unreachable: everything comes from the lake and the target)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from kit.cli import ok, sync
from kit.config import build_config, set_source
from kit.lake import local_storage
from kit.source import FULL_SYNC, HYBRID, T0, create_items, insert_items
from kit.targets import Target, make_target

TABLES = {
    "items": {**HYBRID, "freshness": {"warn_after": {"count": 2, "period": "hour"}}},  # dbt's shape
    "things": {**FULL_SYNC, "full_name": "things"},
}


def as_json(result: Any) -> dict[str, Any]:
    out = result.stdout
    assert out.strip(), getattr(result, "output", None) or result.stderr
    doc = json.loads(out)  # the whole of stdout is one document
    assert doc["version"] == 1, doc
    return doc


def by_table(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["table"]: t for t in doc["tables"]}


def metric_values(text: str) -> dict[tuple[str, str], float]:
    """(sample name, table) -> value; the Enum's status as ('status=<state>', table)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = f"status={s.labels['lakeshift_table_status']}" if family.name == "lakeshift_table_status" else s.name
            if family.name != "lakeshift_table_status" or s.value == 1:
                out[(key, s.labels["table"])] = s.value
    return out


def utc(text: str | None) -> dt.datetime:
    assert text is not None
    return dt.datetime.fromisoformat(text)


def status(cli: Any, config: Path) -> dict[str, dict[str, Any]]:
    r = cli("status", "-p", "p1", "--json", config_dir=config)
    assert r.exit_code == 0, r.output
    return by_table(as_json(r))


@pytest.mark.slow  # CLI subprocesses
def test_status_freshness_history_metrics(mysql: Any, mysql_db: str, tmp_path: Path, cli: Any,
                                          request: pytest.FixtureRequest) -> None:
    target = make_target("postgres", request, tmp_path)
    storage = local_storage(tmp_path / "lake")
    create_items(mysql, 30)
    create_items(mysql, 12, table="things")
    config = build_config(tmp_path / "config", mysql_db, target.config, storage, TABLES,
                          default_table_config={"freshness": {"error_after": "6h"}}, run_history_days=30)

    # ---- before any run: every table known, nothing run
    before = status(cli, config)
    assert before["items"]["last_run"] is None and before["items"]["last_success_at"] is None
    r = cli("freshness", "-p", "p1", "--json", config_dir=config)
    assert r.exit_code == 4 and {t["status"] for t in as_json(r)["tables"]} == {"error"}  # never loaded

    # ---- a real sync, with --json and --metrics-file
    metrics_path = tmp_path / "prom" / "lakeshift.prom"
    metrics_path.parent.mkdir()
    run = ok(sync(config, "p1", ("items", "things"), "--json", "--metrics-file", str(metrics_path)))
    doc = as_json(run)
    assert (doc["kind"], doc["pipeline"], doc["ok"], doc["stages"]) == (
        "sync", "p1", True, {"extract": True, "load": True})
    summary = by_table(doc)
    assert {k: summary["items"][k] for k in ("status", "rows_extracted", "rows_loaded", "rows_deleted",
                                             "batches_written", "batches_loaded", "error")} == {
        "status": "ok", "rows_extracted": 30, "rows_loaded": 30, "rows_deleted": 0, "batches_written": 1,
        "batches_loaded": 1, "error": None}
    assert summary["things"]["rows_loaded"] == 12
    assert "Pipeline p1" in run.stderr and "Summary" not in run.stdout
    prom = metric_values(metrics_path.read_text())
    assert [p for p in metrics_path.parent.iterdir()] == [metrics_path]  # the temporary file was renamed
    assert prom[("lakeshift_table_rows_extracted", "items")] == 30
    assert prom[("lakeshift_table_rows_loaded", "things")] == 12
    assert ("status=ok", "items") in prom and ("status=ok", "things") in prom
    assert prom[("lakeshift_table_batches_waiting", "items")] == 0
    newest = T0 + dt.timedelta(seconds=30 // 3)  # the newest updated_at loaded (naive DATETIME, read as UTC)
    lag = dt.datetime.now(dt.timezone.utc).timestamp() - newest.replace(tzinfo=dt.timezone.utc).timestamp()
    assert abs(prom[("lakeshift_table_lag_seconds", "items")] - lag) < 120
    assert ("lakeshift_table_lag_seconds", "things") not in prom  # full_sync: no timestamp cursor, no lag
    last_ok = prom[("lakeshift_table_last_success_timestamp_seconds", "items")]

    st = status(cli, config)
    items = st["items"]
    assert (items["strategy"], items["target_table"], items["batches_waiting"], items["last_error"],
            items["problems"]) == ("hybrid", "items", 0, None, [])
    assert {k: items["last_run"][k] for k in ("status", "rows_extracted", "rows_loaded", "rows_deleted",
                                              "error")} == {"status": "ok", "rows_extracted": 30,
                                                            "rows_loaded": 30, "rows_deleted": 0, "error": None}
    assert items["last_run"]["seconds"] >= 0 and utc(items["last_success_at"]).timestamp() == pytest.approx(last_ok)
    assert items["watermark"] == {"timestamp": newest.isoformat(), "id": 30}
    assert utc(items["newest_loaded_timestamp"]) == newest.replace(tzinfo=dt.timezone.utc)
    assert st["things"]["watermark"] is None and st["things"]["lag_seconds"] is None

    # ---- freshness: per-table config (dbt shape; default_table_config), then the command line's thresholds
    fresh = by_table(as_json(cli("freshness", "-p", "p1", "--json", config_dir=config)))
    assert (fresh["items"]["status"], fresh["items"]["warn_after_seconds"], fresh["items"]["error_after_seconds"]) == (
        "pass", 7200, 21600)
    assert (fresh["things"]["status"], fresh["things"]["warn_after_seconds"]) == ("pass", None)
    for args, code, verdict in ((("--warn-after", "1h"), 0, "pass"), (("--warn-after", "1ms"), 3, "warn"),
                                (("--warn-after", "1ms", "--error-after", "2ms"), 4, "error")):
        r = cli("freshness", "-p", "p1", "--json", *args, config_dir=config)
        assert r.exit_code == code, r.output
        assert {t["status"] for t in as_json(r)["tables"]} == {verdict} and as_json(r)["exit_code"] == code
    plain = cli("freshness", "-p", "p1", "--warn-after", "1ms", config_dir=config)
    assert plain.exit_code == 3 and "warn" in plain.stdout
    bad = cli("freshness", "--warn-after", "soon", config_dir=config)
    assert bad.exit_code == 1 and "--warn-after: 'soon' is not a duration" in bad.stderr

    # ---- a failed run: its error shown, the last success kept
    with mysql.cursor() as cur:
        cur.execute("DROP TABLE things")
    failed = sync(config, "p1", ("items", "things"), "--json")
    assert failed.returncode == 1 and by_table(as_json(failed))["things"]["status"] == "failed"
    assert "things" in by_table(as_json(failed))["things"]["error"]
    st = status(cli, config)
    things = st["things"]
    assert things["last_run"]["status"] == "failed" and "things" in things["last_error"]
    assert "\n" not in things["last_error"] and things["last_error"] == things["last_run"]["error"]
    assert things["last_success_at"] is not None and utc(things["last_success_at"]) < utc(things["last_run"]["started_at"])
    assert st["items"]["last_error"] is None and st["items"]["last_run"]["status"] == "ok"
    text = cli("status", "-p", "p1", config_dir=config)
    assert text.exit_code == 0 and "failed" in text.stdout and "things" in text.stdout
    after = cli("freshness", "-p", "p1", "--warn-after", "1h", "--json", config_dir=config)
    assert after.exit_code == 0, after.output  # a failure leaves the last success, and its age, as they were
    assert by_table(as_json(after))["things"]["last_success_at"] == things["last_success_at"]
    prom = metric_values(cli("metrics", "-p", "p1", config_dir=config).stdout)
    assert ("status=failed", "things") in prom and ("status=ok", "items") in prom

    # ---- a --backup-only run: the batch waits in the lake
    insert_items(mysql, 7, at=T0 + dt.timedelta(days=1))
    ok(sync(config, "p1", ("items",), "--backup-only", "--metrics-file", str(metrics_path)))
    prom = metric_values(metrics_path.read_text())
    assert ("status=extracted", "items") in prom and prom[("lakeshift_table_batches_waiting", "items")] == 1
    st = status(cli, config)
    assert (st["items"]["batches_waiting"], st["items"]["rows_waiting"]) == (1, 7)
    assert st["items"]["watermark"]["timestamp"] == (T0 + dt.timedelta(days=1)).isoformat()
    assert st["items"]["watermark_source"] == "state"
    assert utc(st["items"]["newest_loaded_timestamp"]) == newest.replace(tzinfo=dt.timezone.utc)  # not loaded yet

    # ---- a new machine: only the config, the source unreachable; the same answers
    elsewhere = tmp_path / "elsewhere" / "config"
    shutil.copytree(config, elsewhere)
    set_source(elsewhere, port=1)
    moved = status(cli, elsewhere)
    for t in (st, moved):
        for row in t.values():
            row.pop("lag_seconds")
    assert moved == st

    # ---- the target down: status shows what the lake knows and says why; freshness cannot tell: exit 1
    conns = yaml.safe_load((elsewhere / "connections.yml").read_text())
    conns["connections"]["targets"]["dst"]["port"] = 1
    (elsewhere / "connections.yml").write_text(yaml.safe_dump(conns))
    down = cli("status", "-p", "p1", "--json", config_dir=elsewhere)
    assert down.exit_code == 0, down.output
    doc = as_json(down)
    items = by_table(doc)["items"]
    assert doc["pipelines"][0]["target_error"] and items["problems"][0].startswith("target: ")
    assert (items["last_run"], items["batches_waiting"]) == (None, None)  # unknown, not "every batch waits"
    assert items["watermark"] == st["items"]["watermark"]  # the lake is still read
    blind = cli("freshness", "-p", "p1", config_dir=elsewhere)
    assert blind.exit_code == 1 and "pipeline p1: the target could not be read" in blind.stderr

    # ---- history: newest first, per table, limited
    runs = as_json(cli("history", "-p", "p1", "--json", config_dir=config))["runs"]
    assert [(r["table"], r["status"]) for r in runs] in (
        [("things", "failed"), ("items", "ok"), ("things", "ok"), ("items", "ok")],
        [("items", "ok"), ("things", "failed"), ("things", "ok"), ("items", "ok")],
        [("things", "failed"), ("items", "ok"), ("items", "ok"), ("things", "ok")],
        [("items", "ok"), ("things", "failed"), ("items", "ok"), ("things", "ok")])
    one = as_json(cli("history", "-p", "p1", "-t", "things", "--limit", "1", "--json", config_dir=config))["runs"]
    assert [(r["table"], r["status"], r["rows_loaded"]) for r in one] == [("things", "failed", 0)]
    assert "things" in one[0]["error"]
    typo = cli("history", "-p", "p1", "-t", "thngs", config_dir=config)
    assert typo.exit_code == 1 and "did you mean 'things'" in typo.stderr


def test_in_process_sync_then_status_metrics_and_pruning_on_duckdb(mysql: Any, mysql_db: str, tmp_path: Path,
                                                                   cli: Any, request: pytest.FixtureRequest) -> None:
    """The quick loop's check (no subprocess): a run prunes runs older than run_history_days and
    leaves the younger ones; status, metrics and history read a DuckDB target."""
    target = make_target("duckdb", request, tmp_path)
    create_items(mysql, 5)
    config = build_config(tmp_path / "config", mysql_db, target.config, local_storage(tmp_path / "lake"),
                          {"items": HYBRID}, run_history_days=30)
    first = cli("sync", "pipeline", "-p", "p1", "-t", "items", config_dir=config)
    assert first.exit_code == 0, first.output
    now = dt.datetime.now(dt.timezone.utc)
    _insert_old_runs(target, now)
    prom_file = tmp_path / "m.prom"
    second = cli("sync", "pipeline", "-p", "p1", "-t", "items", "--json", "--metrics-file", str(prom_file),
                 config_dir=config)
    assert second.exit_code == 0, second.output
    assert by_table(as_json(second))["items"]["rows_extracted"] == 0  # nothing new: still a successful load
    left = sorted(r[0] for r in target.query(f'SELECT "status" FROM {target.name("_lakeshift_runs")}'))
    assert left == ["kept", "ok", "ok"], left  # the 31-day-old run went, the 29-day-old one stayed
    prom = metric_values(prom_file.read_text())
    assert ("status=ok", "items") in prom and prom[("lakeshift_table_rows_extracted", "items")] == 0
    assert prom[("lakeshift_table_last_success_timestamp_seconds", "items")] >= now.timestamp() - 1
    items = status(cli, config)["items"]
    assert (items["last_run"]["status"], items["last_run"]["rows_extracted"], items["batches_waiting"]) == ("ok", 0, 0)
    assert items["watermark"] == {"timestamp": (T0 + dt.timedelta(seconds=5 // 3)).isoformat(), "id": 5}
    stored = metric_values(cli("metrics", config_dir=config).stdout)
    assert stored[("lakeshift_table_rows_loaded", "items")] == 0 and ("status=ok", "items") in stored
    runs = as_json(cli("history", "--json", config_dir=config))["runs"]
    assert [r["status"] for r in runs] == ["ok", "ok", "kept"]
    typo = cli("sync", "pipeline", "-p", "p1", "-t", "items", "--metrics-file", str(tmp_path / "nope" / "m.prom"),
               config_dir=config)
    assert typo.exit_code == 1 and "--metrics-file" in typo.stderr and "does not exist" in typo.stderr
    assert len(as_json(cli("history", "--json", config_dir=config))["runs"]) == 3  # refused before it ran
    r = cli("freshness", "--warn-after", "1h", "--json", config_dir=config)  # the 0-row run counts as fresh
    assert r.exit_code == 0 and by_table(as_json(r))["items"]["status"] == "pass", r.output
    assert utc(by_table(as_json(r))["items"]["last_success_at"]) >= now
    r = cli("freshness", "--error-after", "1ms", config_dir=config)
    assert r.exit_code == 4 and "error" in r.stdout


def _insert_old_runs(target: Target, now: dt.datetime) -> None:
    """Two runs as if from 31 and 29 days ago (statuses 'gone' and 'kept', to tell them apart)."""
    import duckdb

    assert target.path is not None
    with duckdb.connect(str(target.path)) as conn:
        for days, status in ((31, "gone"), (29, "kept")):
            conn.execute(f'INSERT INTO {target.name("_lakeshift_runs")} ("pipeline", "table_name", "started_at", '
                         '"finished_at", "status") VALUES (?, ?, ?, ?, ?)',
                         ("p1", "items", now - dt.timedelta(days=days), now - dt.timedelta(days=days), status))


def test_freshness_config_is_a_table_key_everywhere(make_config: Any, cli: Any) -> None:
    """pipeline tables, tables/*.yml, default_table_config and environment overrides all take it."""
    from lakeshift.config.loader import load_config

    conn = {"connections": {"sources": {"s": {"type": "mysql", "host": "h", "database": "d", "username": "u"}},
                            "targets": {"t": {"type": "duckdb", "path": "x.duckdb"}},
                            "storage": {"default": {"type": "local", "path": "lake"}}}}
    root = make_config({
        "connections.yml": conn,
        "pipelines/p.yml": {"pipeline": {"source": "s", "target": "t",
                                         "default_table_config": {"freshness": {"error_after": "1d"}}},
                            "tables": {"a": {"cdc_strategy": "full_sync"},
                                       "b": {"cdc_strategy": "full_sync", "freshness": {"warn_after": "30m"}},
                                       "c": {"cdc_strategy": "full_sync"}}},
        "tables/c.yml": {"freshness": {"warn_after": {"count": 3, "period": "hour"}}},
        "environments/prod.yml": {"tables": {"a": {"freshness": {"warn_after": 60}}}},
    })
    p = load_config(root, "prod").pipeline("p")
    got = {n: (t.freshness.warn_after, t.freshness.error_after) for n, t in p.tables.items()}
    assert got == {"a": (dt.timedelta(minutes=1), dt.timedelta(days=1)),
                   "b": (dt.timedelta(minutes=30), dt.timedelta(days=1)),
                   "c": (dt.timedelta(hours=3), dt.timedelta(days=1))}
    (root / "tables/c.yml").write_text(yaml.safe_dump({"freshness": {"warn_after": "2d"}}))
    r = cli("config", "validate", config_dir=root)
    assert r.exit_code == 1 and "freshness" in r.stderr and "warn_after must not be longer than error_after" in r.stderr


def test_status_on_redshift_sends_three_pipeline_wide_queries(tmp_path: Path, cli: Any, monkeypatch: Any) -> None:
    """The exact SQL (sqlglot's redshift dialect parses it; the PostgreSQL test above runs the same text)."""
    import sqlglot

    from kit.redshift import FakeRedshift, patch_redshift, redshift_config

    fake = FakeRedshift()
    patch_redshift(monkeypatch, fake)
    config = build_config(tmp_path / "config", "db", redshift_config(password="pw"), local_storage(tmp_path / "lake"),
                          {"items": HYBRID, "things": FULL_SYNC})
    r = cli("status", "-p", "p1", "--json", config_dir=config)
    assert r.exit_code == 0, r.output
    assert [(t["table"], t["last_run"], t["batches_waiting"]) for t in as_json(r)["tables"]] == [
        ("items", None, 0), ("things", None, 0)]
    sent = [s for s in fake.statements() if "_lakeshift_" in s and "information_schema" not in s]
    runs, loads = '"analytics"."_lakeshift_runs"', '"analytics"."_lakeshift_loads"'
    cols = ('"pipeline", "table_name", "started_at", "finished_at", "status", "rows_extracted", "rows_loaded", '
            '"batches", "error", "notes", "rows_deleted", "quality"')
    assert sent == [
        f'SELECT {cols} FROM (SELECT {cols}, ROW_NUMBER() OVER (PARTITION BY "table_name" ORDER BY "started_at" DESC) '
        f'AS "_lakeshift_rn" FROM {runs} WHERE "pipeline" = %s) AS r WHERE "_lakeshift_rn" <= 20 '
        'ORDER BY "table_name", "started_at" DESC',
        f'SELECT "table_name", MAX("finished_at") FROM {runs} WHERE "pipeline" = %s AND "status" = %s '
        'GROUP BY "table_name"',
        'SELECT "pipeline", "table_name", "batch_id", "target_table", "mode", "rows", "files", "bytes", '
        f'"watermark_low", "watermark_high", "loaded_at", "note", "deleted" FROM {loads} WHERE "pipeline" = %s '
        'ORDER BY "table_name", "batch_id"',
    ]
    from lakeshift.load import sql

    for stmt in [*sent, sql.prune_runs("analytics", "%s")]:
        assert not isinstance(sqlglot.parse_one(stmt.replace("%s", "'x'"), read="redshift"), sqlglot.exp.Command)
