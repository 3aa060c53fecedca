"""v1.0 compatibility: the built-in `default` connections and pipeline that map
the v1.0 `.env` variables, and `lakeshift config init` that writes them out."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from lakeshift.errors import ConfigError

ORIGIN = "built-in default (v1.0 .env variables)"

DEFAULT_PIPELINE: dict[str, Any] = {
    "pipeline": {
        "name": "default_legacy",
        "version": "1.0.0",
        "description": "Legacy v1.0.0 compatibility pipeline",
        "source": "default",
        "target": "default",
        "processing": {"strategy": "sequential"},
        "s3": {"isolation_prefix": "", "partition_strategy": "datetime"},
        "default_table_config": {"backup_strategy": "sequential", "watermark_strategy": "automatic"},
    },
    "tables": {},
}

# v1.0 behaviour for `sync -t db.table` on a table the default pipeline does not declare
LEGACY_TABLE: dict[str, Any] = {"cdc_strategy": "timestamp_only", "cdc_timestamp_column": "updated_at"}
# spec defaults for `sync connections` (ad-hoc pipelines)
ADHOC_TABLE: dict[str, Any] = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}


def _source() -> dict[str, Any]:
    return {
        "type": "mysql",
        "host": "${MYSQL_HOST}",
        "port": "${MYSQL_PORT:-3306}",
        "database": "${MYSQL_DATABASE}",
        "username": "${MYSQL_USERNAME}",
        "password": "${MYSQL_PASSWORD:-}",
        "description": "Legacy v1.0.0 connection",
    }


def _target(env: Mapping[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "redshift",
        "host": "${REDSHIFT_HOST}",
        "port": "${REDSHIFT_PORT:-5439}",
        "database": "${REDSHIFT_DATABASE}",
        "username": "${REDSHIFT_USERNAME}",
        "password": "${REDSHIFT_PASSWORD:-}",
        "schema": "${REDSHIFT_SCHEMA:-public}",
        "description": "Legacy v1.0.0 Redshift target",
    }
    if env.get("REDSHIFT_IAM_ROLE"):
        body["iam_role"] = "${REDSHIFT_IAM_ROLE}"
    if env.get("SSH_HOST"):
        body["ssh_tunnel"] = {
            "enabled": True,
            "host": "${SSH_HOST}",
            "port": "${SSH_PORT:-22}",
            "username": "${SSH_USER}",
            "private_key_path": "${SSH_KEY_PATH}",
        }
    return body


def _storage(env: Mapping[str, str]) -> dict[str, Any]:
    bucket_var = next((v for v in ("S3_BUCKET_NAME", "S3_BUCKET") if env.get(v)), None)
    if not bucket_var:
        return {"type": "local", "path": "./lake", "description": "built-in local lake folder"}
    body: dict[str, Any] = {"type": "s3", "bucket": f"${{{bucket_var}}}", "prefix": "${S3_PREFIX:-}"}
    region_var = next((v for v in ("AWS_REGION", "AWS_DEFAULT_REGION") if env.get(v)), None)
    if region_var:
        body["region"] = f"${{{region_var}}}"
    if env.get("AWS_ACCESS_KEY_ID"):
        body["access_key_id"] = "${AWS_ACCESS_KEY_ID}"
        body["secret_access_key"] = "${AWS_SECRET_ACCESS_KEY}"
    return body


def builtin_connections(env: Mapping[str, str]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(kind, name, raw settings) of the v1.0 `default` connections."""
    yield "sources", "default", _source()
    yield "targets", "default", _target(env)
    yield "storage", "default", _storage(env)


def write_config(root: Path, env: Mapping[str, str], force: bool = False) -> list[Path]:
    """Write a config folder from the v1.0 variables. Secrets stay `${VAR}` references."""
    files = {
        root / "connections.yml": {
            "connections": {
                "sources": {"default": _source()},
                "targets": {"default": _target(env)},
                "storage": {"default": _storage(env)},
            },
            "connection_settings": {"default_timeout": 30, "connection_retry_delay": 5},
        },
        root / "pipelines" / "default.yml": DEFAULT_PIPELINE,
    }
    existing = [p for p in files if p.exists()]
    if existing and not force:
        raise ConfigError(f"{existing[0]} already exists; pass --force to overwrite it")
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        header = "# Written by `lakeshift config init` from the v1.0 environment.\n" \
                 "# Secrets stay ${VAR} references, resolved from the environment or .env at run time.\n"
        path.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    for sub in ("tables", "environments"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return list(files)


V1_VARIABLES = ("MYSQL_HOST", "MYSQL_DATABASE", "REDSHIFT_HOST", "S3_BUCKET_NAME", "S3_BUCKET")


def in_use(env: Mapping[str, str]) -> bool:
    """The user set v1.0 variables: the built-in `default` connections are theirs to see."""
    return any(env.get(v) for v in V1_VARIABLES)
