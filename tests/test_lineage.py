"""lakeshift[openlineage]: per table a START and a COMPLETE (or FAIL) run event,
received by a local HTTP endpoint: inputs the MySQL table and the lake folder,
output the target table with its schema and row count; an unreachable endpoint
leaves the sync green (one warning line)."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

if os.environ.get("LAKESHIFT_TEST_EXTRAS"):
    import openlineage.client  # noqa: F401  # scripts/test.sh's extras stage: never skipped there
pytest.importorskip("openlineage.client")

from kit.config import build_config  # noqa: E402
from kit.lake import local_storage  # noqa: E402
from kit.net import free_port  # noqa: E402
from kit.source import HYBRID, create_items  # noqa: E402
from kit.targets import duck_target  # noqa: E402
from lakeshift.engine.sync_api import sync_tables  # noqa: E402


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """An OpenLineage HTTP endpoint on loopback; yields the events it received."""
    events: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            events.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("OPENLINEAGE_URL", f"http://127.0.0.1:{server.server_port}")
    try:
        yield events
    finally:
        server.shutdown()


def test_start_and_complete_per_table_with_inputs_outputs_and_facets(endpoint: list[dict[str, Any]], mysql: Any,
                                                                     mysql_db: str, tmp_path: Path) -> None:
    target = duck_target(tmp_path / "t.duckdb")
    create_items(mysql, 12)
    create_items(mysql, 3, table="gone")
    config = build_config(tmp_path / "config", mysql_db, target.config, local_storage(tmp_path / "lake"),
                          {"items": HYBRID, "gone": HYBRID})
    mysql.cursor().execute("DROP TABLE gone")
    report = sync_tables(config, "p1")
    assert [o.status for o in report.outcomes] == ["ok", "failed"]
    by_job = {(e["job"]["name"], e["eventType"]): e for e in endpoint}
    assert set(by_job) == {("p1.items", "START"), ("p1.items", "COMPLETE"), ("p1.gone", "START"), ("p1.gone", "FAIL")}
    done = by_job[("p1.items", "COMPLETE")]
    assert done["run"]["runId"] == by_job[("p1.items", "START")]["run"]["runId"]
    assert done["job"]["namespace"] == "lakeshift/p1"
    src = done["inputs"][0]
    assert (src["namespace"], src["name"]) == ("mysql://127.0.0.1:3306", f"{mysql_db}.items")
    assert done["inputs"][1]["namespace"] == "file" and done["inputs"][1]["name"].endswith("/p1/items")
    (out,) = done["outputs"]
    assert out["namespace"] == f"duckdb://{tmp_path / 't.duckdb'}" and out["name"] == "lake.items"
    assert [f["name"] for f in out["facets"]["schema"]["fields"]] == ["id", "name", "amount", "updated_at"]
    assert out["outputFacets"]["outputStatistics"]["rowCount"] == 12
    fail = by_job[("p1.gone", "FAIL")]
    assert "gone does not exist" in fail["run"]["facets"]["errorMessage"]["message"]


def test_an_unreachable_endpoint_leaves_the_sync_green(monkeypatch: pytest.MonkeyPatch, mysql: Any, mysql_db: str,
                                                        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("OPENLINEAGE_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens
    target = duck_target(tmp_path / "t.duckdb")
    create_items(mysql, 5)
    config = build_config(tmp_path / "config", mysql_db, target.config, local_storage(tmp_path / "lake"),
                          {"items": HYBRID})
    with caplog.at_level(logging.WARNING, logger="lakeshift.lineage"):
        report = sync_tables(config, "p1")
    assert report.ok and target.count() == 5
    warnings = [r.getMessage() for r in caplog.records if r.name == "lakeshift.lineage"]
    assert warnings and all("\n" not in w and "not sent" in w for w in warnings), warnings
