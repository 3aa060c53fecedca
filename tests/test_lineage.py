"""OpenLineage events of a real sync (lakeshift[openlineage], lakeshift/lineage.py),
received by an HTTP endpoint on loopback: a START and a COMPLETE/FAIL per table
with the MySQL table and the lake batches as inputs and the target table as
output, with schema and row-count facets. A lineage endpoint that cannot be
reached leaves the sync green with one warning; without any OpenLineage
config nothing is sent and the client is never imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import MYSQL
from kit.cli import cli_env, sync_argv
from kit.config import build_config
from kit.lake import local_storage
from kit.net import free_port
from kit.source import HYBRID, create_items
from kit.targets import make_target

pytestmark = pytest.mark.slow  # CLI subprocesses


class Collector:
    """An OpenLineage HTTP endpoint: keeps the JSON body of every POST."""

    def __init__(self) -> None:
        events: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                events.append({"path": self.path, **json.loads(body)})
                self.send_response(201)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.events = events
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of(self, job_suffix: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["job"]["name"].endswith(job_suffix)]


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.server.shutdown()
    c.server.server_close()


def no_lineage_env() -> dict[str, str]:
    """The test's environment without any OpenLineage setting (a developer's shell may have some)."""
    return {k: v for k, v in cli_env().items() if not k.startswith("OPENLINEAGE")}


def run_sync(config: Path, env: dict[str, str], *tables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(sync_argv(config, "p1", tables), capture_output=True, text=True, timeout=240,
                          env=env, cwd=config.parent)


def fields(dataset: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["type"] for f in dataset["facets"]["schema"]["fields"]}


@pytest.mark.parametrize("target_kind,lake_kind", [("postgres", "local"), ("duckdb", "s3")])
def test_a_sync_sends_start_and_complete_or_fail_per_table(target_kind: str, lake_kind: str, mysql: Any,
                                                           mysql_db: str, tmp_path: Path, collector: Collector,
                                                           request: pytest.FixtureRequest) -> None:
    target = make_target(target_kind, request, tmp_path)
    lake = tmp_path / "lake"
    storage = request.getfixturevalue("s3_storage") if lake_kind == "s3" else local_storage(lake)
    create_items(mysql, 30)
    tables = {"items": HYBRID, "ghost": {"cdc_strategy": "full_sync", "full_name": "no_such_table"}}
    config = build_config(tmp_path / "config", mysql_db, target.config, storage, tables)
    r = run_sync(config, {**no_lineage_env(), "OPENLINEAGE_URL": collector.url}, "items", "ghost")
    assert r.returncode != 0, r.stderr  # ghost fails; items loads
    assert "OpenLineage" not in r.stderr, r.stderr

    items = collector.of("p1.items")
    assert [e["eventType"] for e in items] == ["START", "COMPLETE"]
    assert items[0]["run"]["runId"] == items[1]["run"]["runId"]
    assert all(e["path"] == "/api/v1/lineage" for e in collector.events)
    done = items[1]
    assert done["job"]["namespace"] == "lakeshift"
    src = done["inputs"][0]
    assert (src["namespace"], src["name"]) == (f"mysql://{MYSQL['host']}:{MYSQL['port']}", f"{mysql_db}.items")
    assert fields(src) == {"id": "bigint(20) unsigned", "name": "varchar(60)", "amount": "decimal(12,2)",
                           "updated_at": "datetime(6)"}
    assert src["inputFacets"]["inputStatistics"]["rowCount"] == 30
    batches = done["inputs"][1:]
    assert len(batches) == 1 and "/batch=" in batches[0]["name"]
    if lake_kind == "s3":
        assert batches[0]["namespace"] == f"s3://{storage['bucket']}"
        assert batches[0]["name"].startswith("lake/p1/items/year=")
    else:
        assert batches[0]["namespace"] == "file"
        assert batches[0]["name"].startswith(f"{lake.resolve()}/p1/items/year=")
    assert batches[0]["inputFacets"]["inputStatistics"]["rowCount"] == 30
    assert set(fields(batches[0])) == {"id", "name", "amount", "updated_at"}
    [out] = done["outputs"]
    if target_kind == "postgres":
        assert (out["namespace"], out["name"]) == ("postgres://127.0.0.1:5432", f"test.{target.schema}.items")
    else:
        assert (out["namespace"], out["name"]) == (f"duckdb://{target.path}", f"{target.path.stem}.{target.schema}.items")
    assert out["outputFacets"]["outputStatistics"]["rowCount"] == 30
    assert fields(out)["name"].lower().startswith("varchar")
    assert items[0]["outputs"][0]["name"] == out["name"]  # START names the same datasets

    ghost = collector.of("p1.ghost")
    assert [e["eventType"] for e in ghost] == ["START", "FAIL"]
    assert ghost[0]["run"]["runId"] == ghost[1]["run"]["runId"] != items[0]["run"]["runId"]
    assert "no_such_table" in ghost[1]["run"]["facets"]["errorMessage"]["message"]
    assert ghost[1]["inputs"][0]["name"] == f"{mysql_db}.no_such_table"


def test_an_unreachable_endpoint_leaves_the_sync_green_with_one_warning(mysql: Any, mysql_db: str, tmp_path: Path,
                                                                        request: pytest.FixtureRequest) -> None:
    target = make_target("duckdb", request, tmp_path)
    create_items(mysql, 10)
    config = build_config(tmp_path / "config", mysql_db, target.config, local_storage(tmp_path / "lake"),
                          {"items": HYBRID, "more": {**HYBRID, "full_name": "items", "target_name": "more"}})
    ol = tmp_path / "ol.yml"  # the client's own yaml config: a closed port, no retries
    ol.write_text(yaml.safe_dump({"transport": {"type": "http", "url": f"http://127.0.0.1:{free_port()}",
                                                "auth": {"type": "api_key", "apiKey": "ol-s3cret-key"},
                                                "retry": {"total": 0}}}))
    r = run_sync(config, {**no_lineage_env(), "OPENLINEAGE_CONFIG": str(ol)}, "items", "more")
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if "OpenLineage" in line]
    assert len(warnings) == 1 and "could not send" in warnings[0], r.stderr
    assert "ol-s3cret-key" not in r.stderr + r.stdout
    assert target.count("items") == 10 and target.count("more") == 10


def test_without_config_nothing_is_sent_and_openlineage_is_never_imported(mysql: Any, mysql_db: str, tmp_path: Path,
                                                                          collector: Collector,
                                                                          request: pytest.FixtureRequest) -> None:
    target = make_target("duckdb", request, tmp_path)
    create_items(mysql, 5)
    config = build_config(tmp_path / "config", mysql_db, target.config, local_storage(tmp_path / "lake"),
                          {"items": HYBRID})
    argv = ["lakeshift", *sync_argv(config, "p1", ("items",))[3:]]  # after `python -m lakeshift`
    script = (f"import sys\nsys.argv = {argv!r}\nfrom lakeshift.cli.main import main\ncode = 0\n"
              "try:\n    main()\nexcept SystemExit as e:\n    code = e.code or 0\n"
              "print('IMPORTED' if any(m.split('.')[0] == 'openlineage' for m in sys.modules) else 'CLEAN')\n"
              "sys.exit(code)\n")
    env = {**no_lineage_env(), "HOME": str(tmp_path)}  # no ~/.openlineage/openlineage.yml either
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240, env=env,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "CLEAN"
    assert target.count("items") == 5
    assert collector.events == []


def test_a_bad_lineage_config_is_one_warning_and_no_lineage(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    from lakeshift.lineage import open_lineage

    ol = tmp_path / "openlineage.yml"
    ol.write_text("transport:\n  type: no_such_transport\n  url: http://127.0.0.1:1\n")
    monkeypatch.chdir(tmp_path)  # found as ./openlineage.yml, as the client looks for it
    for k in [k for k in os.environ if k.startswith("OPENLINEAGE")]:
        monkeypatch.delenv(k)
    with caplog.at_level("WARNING"):
        assert open_lineage(None, None) is None  # type: ignore[arg-type]
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "OpenLineage: could not set up the client (Failed to import no_such_transport); "
        "no lineage is sent for this run"]


def test_redshift_and_mysql_dataset_names() -> None:
    from types import SimpleNamespace

    from lakeshift.lineage import source_dataset, target_dataset

    rs = SimpleNamespace(type="redshift", host="analytics.c0ffee.eu-west-1.redshift.amazonaws.com", port=5439,
                         database="dev", schema_="sales")
    assert target_dataset(rs, "orders") == ("redshift://analytics.eu-west-1:5439", "dev.sales.orders")
    assert target_dataset(SimpleNamespace(**{**vars(rs), "host": "10.0.0.5"}), "orders") == (
        "redshift://10.0.0.5:5439", "dev.sales.orders")
    src = SimpleNamespace(host="db1", port=3306, database="shop")
    table = SimpleNamespace(source_table="orders")
    assert source_dataset(src, table) == ("mysql://db1:3306", "shop.orders")  # type: ignore[arg-type]
    assert source_dataset(src, SimpleNamespace(source_table="crm.leads")) == (  # type: ignore[arg-type]
        "mysql://db1:3306", "crm.leads")
