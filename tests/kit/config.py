"""A config folder for one pipeline from the test MySQL database into a
target and a lake, and edits of its source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from conftest import MYSQL


def build_config(root: Path, mysql_db: str, target: dict[str, Any], storage: dict[str, Any],
                 tables: dict[str, dict[str, Any]], pipeline: str = "p1", **pipeline_extra: Any) -> Path:
    files = {
        "connections.yml": {
            "connections": {
                "sources": {"src": {"type": "mysql", "host": MYSQL["host"], "port": MYSQL["port"],
                                    "database": mysql_db, "username": MYSQL["user"], "password": "${TEST_MYSQL_PASSWORD:-}",
                                    "connection_pool": {"retry_attempts": 1}}},
                "targets": {"dst": target},
                "storage": {"default": storage},
            },
            "connection_settings": {"connection_retry_delay": 0.1, "default_timeout": 20},
        },
        f"pipelines/{pipeline}.yml": {
            "pipeline": {"name": pipeline, "source": "src", "target": "dst", **pipeline_extra},
            "tables": tables,
        },
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return root


def set_source(config: Path, retry_delay: float | None = None, **values: Any) -> None:
    """Change keys of the source `src` of a build_config folder (and the retry delay)."""
    path = config / "connections.yml"
    data = yaml.safe_load(path.read_text())
    data["connections"]["sources"]["src"].update(values)
    if retry_delay is not None:
        data["connection_settings"]["connection_retry_delay"] = retry_delay
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def set_pipeline(config: Path, section: str, values: Any, pipeline: str = "p1") -> None:
    """Set `pipeline.<section>` of a build_config pipeline file (e.g. its binlog block)."""
    path = config / "pipelines" / f"{pipeline}.yml"
    data = yaml.safe_load(path.read_text())
    data["pipeline"][section] = values
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
