"""The shared test rig: real MariaDB, PostgreSQL, a moto S3 API server on
loopback, temporary DuckDB files, and an in-process CLI runner.

Every test gets uniquely named databases/schemas/buckets and drops them."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
import yaml

# Never look for real cloud credentials or instance metadata.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
for _var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(_var, None)
TEST_AWS_KEY = "testing-key-id"
TEST_AWS_SECRET = "testing-secret-key"
os.environ["AWS_ACCESS_KEY_ID"] = TEST_AWS_KEY
os.environ["AWS_SECRET_ACCESS_KEY"] = TEST_AWS_SECRET
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"

MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"

# Every Parquet part the lake writer closes in the test suite is checked against the lake type
# profile (lakeshift/lake_profile.py: only its logical types); production runs skip the check.
os.environ["LAKESHIFT_CHECK_LAKE_PROFILE"] = "1"


def unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


# ---------------------------------------------------------------- MySQL


def mysql_connect(database: str | None = None, **extra: Any) -> pymysql.connections.Connection:
    return pymysql.connect(**MYSQL, database=database, charset="utf8mb4", autocommit=True, **extra)


@pytest.fixture
def mysql_db() -> Iterator[str]:
    """A fresh, uniquely named MySQL database; dropped afterwards."""
    name = unique("ls_test")
    with mysql_connect() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    try:
        yield name
    finally:
        with mysql_connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def mysql(mysql_db: str) -> Iterator[pymysql.connections.Connection]:
    """A connection (autocommit, UTC session) to `mysql_db`."""
    conn = mysql_connect(mysql_db, init_command="SET time_zone = '+00:00'")
    try:
        yield conn
    finally:
        conn.close()


def mysql_exec(conn: pymysql.connections.Connection, *statements: str, params: Any = None) -> None:
    with conn.cursor() as cur:
        for stmt in statements:
            cur.execute(stmt, params)


# ---------------------------------------------------------------- PostgreSQL


@pytest.fixture
def pg() -> Iterator[psycopg.Connection]:
    conn = psycopg.connect(PG_DSN, autocommit=True)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def pg_schema(pg: psycopg.Connection) -> Iterator[str]:
    """A uniquely named schema name in database `test` (created by the code under test or the test); dropped afterwards."""
    name = unique("ls_test")
    try:
        yield name
    finally:
        pg.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


# ---------------------------------------------------------------- DuckDB


@pytest.fixture
def duckdb_path(tmp_path: Path) -> Path:
    return tmp_path / "target.duckdb"


# ---------------------------------------------------------------- S3 (moto server on loopback)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 API server (moto standalone) on 127.0.0.1, for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    from kit.lake import s3_client

    name = unique("ls-test").replace("_", "-")
    s3_client(s3_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_storage(s3_endpoint: str, s3_bucket: str) -> dict[str, Any]:
    """A `connections.storage` entry for the test bucket."""
    return {
        "type": "s3", "bucket": s3_bucket, "prefix": "lake", "region": "us-east-1",
        "endpoint_url": s3_endpoint, "access_key_id": TEST_AWS_KEY, "secret_access_key": TEST_AWS_SECRET,
    }


# ---------------------------------------------------------------- config folders and the CLI


def write_config(root: Path, files: dict[str, Any]) -> Path:
    """Write {relative path: mapping or text} as a config folder."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False, allow_unicode=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[[dict[str, Any]], Path]:
    def make(files: dict[str, Any]) -> Path:
        return write_config(tmp_path / "config", files)

    return make


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Any]:
    """Run the lakeshift CLI in-process: cli("config", "validate", config_dir=...)."""
    from click.testing import CliRunner

    from lakeshift.cli.main import cli as root

    monkeypatch.chdir(tmp_path)

    def run(*args: str, config_dir: Path | None = None, env: dict[str, str] | None = None, input: str | None = None):
        argv = (["--config-dir", str(config_dir)] if config_dir else []) + list(args)
        return CliRunner().invoke(root, argv, env=env, input=input, catch_exceptions=False)

    return run
