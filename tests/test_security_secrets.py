"""Case 21: no password, key, token or DSN with a password ever appears in
what lakeshift prints (stdout, stderr, logs, `--debug` tracebacks), writes
(every file in the working folders, every object in the S3 lake) or records
(`_lakeshift_runs` / `_lakeshift_loads` in the target).

The secrets are real: a MySQL user created with a password, a PostgreSQL
cluster started by the test that only takes TLS + scram passwords, S3 keys and
a session token for the S3 API server, a Redshift password, SSH tunnel
password and passphrase. Every command runs for real in a subprocess, with and
without --debug, including failures: a wrong MySQL password, a wrong
PostgreSQL password, an unreachable S3 endpoint, a Redshift host that refuses.
The secrets hold characters that URLs escape, and both forms are searched."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
import yaml
from kit.cli import run_cli
from kit.lake import s3_client
from kit.net import free_port
from kit.servers import start_pg_cluster

from conftest import MYSQL, mysql_connect, mysql_exec

pytestmark = pytest.mark.slow  # a throwaway PostgreSQL cluster and CLI subprocesses

TAG = secrets.token_hex(4)
SECRETS = {
    "LS_MYSQL_PW": f"My$ql:P@ss/w%rd-{TAG}",
    "LS_MYSQL_WRONG": f"Wr0ng:My$ql@Pw-{TAG}",
    "LS_PG_PW": f"Pg:S3cret@pw/{TAG}",
    "LS_PG_WRONG": f"Wr0ng-Pg:pw@{TAG}",
    "LS_S3_KEY_ID": f"AKIALSTEST{TAG.upper()}",
    "LS_S3_SECRET": f"s3/Secret+Key={TAG}abcdefghijklmnop",
    "LS_S3_TOKEN": f"FwoGZXIvYXdzEToken{TAG}//xyz==",
    "LS_RS_PW": f"Redsh1ft:pw@{TAG}",
    "LS_SSH_PW": f"Ssh-pw:{TAG}",
    "LS_SSH_PASSPHRASE": f"Ssh-passphrase/{TAG}",
    "LS_URL_PW": f"UrlPw{TAG}secret",  # a password inside a URL (endpoint_url with user:password@)
}


def forms(value: str) -> list[bytes]:
    """Every way a secret could be printed: as is, URL-escaped (DSNs, connectorx URLs)."""
    out = {value, quote(value, safe=""), quote(value), quote(value, safe="").lower()}
    return [v.encode() for v in out]


def find_secrets(blob: bytes, where: str) -> list[str]:
    found = []
    for name, value in SECRETS.items():
        for form in forms(value):
            if form in blob:
                found.append(f"{name} ({form.decode()}) in {where}")
    return found


@pytest.fixture(scope="module")
def secret_pg() -> Any:
    server = start_pg_cluster(superuser_password="super-" + secrets.token_hex(8))
    try:
        server.execute(f"CREATE ROLE loader LOGIN PASSWORD '{SECRETS['LS_PG_PW']}'",
                       "CREATE DATABASE lake OWNER loader")
        yield server
    finally:
        server.stop()


@pytest.fixture
def mysql_user(mysql_db: str, mysql: Any) -> Any:
    user = f"ls_sec_{TAG}"
    try:
        with mysql_connect() as root:
            for host in ("127.0.0.1", "localhost", "%"):
                mysql_exec(root, f"CREATE USER '{user}'@'{host.replace('%', '%%')}' IDENTIFIED BY %s",
                           params=(SECRETS["LS_MYSQL_PW"],))
                mysql_exec(root, f"GRANT ALL ON `{mysql_db}`.* TO '{user}'@'{host}'")
        yield user
    finally:
        with mysql_connect() as root:
            for host in ("127.0.0.1", "localhost", "%"):
                mysql_exec(root, f"DROP USER IF EXISTS '{user}'@'{host}'")


def closed_port() -> int:
    port = free_port()
    with socket.socket() as s:  # nothing listens there: connection refused at once
        assert s.connect_ex(("127.0.0.1", port)) != 0
    return port


def write_config(root: Path, mysql_db: str, user: str, pg: Any, s3_endpoint: str, bucket: str) -> Path:
    def source(pw_var: str) -> dict[str, Any]:
        return {"type": "mysql", "host": MYSQL["host"], "port": MYSQL["port"], "database": mysql_db,
                "username": user, "password": "${" + pw_var + "}", "connection_pool": {"retry_attempts": 0},
                "ssh_tunnel": {"enabled": False, "host": "bastion.invalid", "username": "u",
                               "password": "${LS_SSH_PW}", "private_key_passphrase": "${LS_SSH_PASSPHRASE}"}}

    def target(pw_var: str) -> dict[str, Any]:
        return {"type": "postgres", "host": "127.0.0.1", "port": pg.port, "database": "lake", "username": "loader",
                "password": "${" + pw_var + "}", "schema": "dw",
                "ssl": {"mode": "verify-full", "ca": str(pg.tls.ca)}}

    def storage(endpoint: str) -> dict[str, Any]:
        return {"type": "s3", "bucket": bucket, "prefix": "lake", "region": "us-east-1", "endpoint_url": endpoint,
                "access_key_id": "${LS_S3_KEY_ID}", "secret_access_key": "${LS_S3_SECRET}",
                "session_token": "${LS_S3_TOKEN}"}

    files = {
        "connections.yml": {
            "connections": {
                "sources": {"src": source("LS_MYSQL_PW"), "src_wrong": source("LS_MYSQL_WRONG")},
                "targets": {"dst": target("LS_PG_PW"), "dst_wrong": target("LS_PG_WRONG"),
                            "rs": {"type": "redshift", "host": "127.0.0.1", "port": closed_port(), "database": "dev",
                                   "username": "loader", "password": "${LS_RS_PW}", "connect_timeout": 3,
                                   "iam_role": "arn:aws:iam::123456789012:role/copy"}},
                "storage": {"lake": storage(s3_endpoint),
                            "lake_dead": storage(f"http://127.0.0.1:{closed_port()}"),
                            "lake_urlpw": storage(f"http://minio:${{LS_URL_PW}}@127.0.0.1:{closed_port()}")},
            },
            "connection_settings": {"connection_retry_delay": 0, "default_timeout": 5},
        },
    }
    table = {"items": {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}}
    for key, (src, dst, lake) in {"p1": ("src", "dst", "lake"), "p_badsrc": ("src_wrong", "dst", "lake"),
                                  "p_badpg": ("src", "dst_wrong", "lake"), "p_deads3": ("src", "dst", "lake_dead"),
                                  "p_rs": ("src", "rs", "lake"), "p_urlpw": ("src", "dst", "lake_urlpw")}.items():
        files[f"pipelines/{key}.yml"] = {"pipeline": {"source": src, "target": dst, "s3": {"storage": lake}},
                                         "tables": table}
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return root


# (arguments, expected exit code)
COMMANDS: list[tuple[tuple[str, ...], int]] = [
    (("config", "validate"), 0),
    (("config", "list-pipelines"), 0),
    (("config", "show-pipeline", "p1"), 0),
    (("config", "validate-pipeline", "p1"), 0),
    (("connections", "list"), 0),
    *[(("connections", "info", name), 0) for name in ("src", "src_wrong", "dst", "dst_wrong", "rs", "lake", "lake_dead",
                                                     "lake_urlpw")],
    (("connections", "test", "src"), 0),
    (("connections", "test", "dst"), 0),
    (("connections", "test", "lake"), 0),
    (("connections", "test", "src_wrong"), 1),
    (("connections", "test", "dst_wrong"), 1),
    (("connections", "test", "rs"), 1),
    (("connections", "test", "lake_dead"), 1),
    (("connections", "test", "lake_urlpw"), 1),
    (("connections", "test", "--all"), 1),
    (("sync", "pipeline", "-p", "p1", "-t", "items", "--dry-run"), 0),
    (("sync", "pipeline", "-p", "p1", "-t", "items"), 0),
    (("sync", "pipeline", "-p", "p_badsrc", "-t", "items"), 1),
    (("sync", "pipeline", "-p", "p_badpg", "-t", "items"), 1),
    (("sync", "pipeline", "-p", "p_deads3", "-t", "items"), 1),
    (("sync", "pipeline", "-p", "p_rs", "-t", "items"), 1),
    (("sync", "pipeline", "-p", "p_urlpw", "-t", "items"), 1),
    (("sync", "pipeline", "-p", "p_urlpw", "-t", "items", "--dry-run"), 1),
    (("sync", "pipeline", "-p", "p_badpg", "-t", "items", "--load-only"), 1),
    (("sync", "pipeline", "-p", "p_badsrc", "-t", "items", "--dry-run"), 1),
    (("watermark", "get", "-p", "p1", "-t", "items"), 0),
    (("watermark", "get", "-p", "p_badpg", "-t", "items"), 0),
    (("watermark", "get", "-p", "p_deads3", "-t", "items"), 1),
    (("s3clean", "list", "-p", "p1", "-t", "items"), 0),
    (("s3clean", "list", "-p", "p_badpg", "-t", "items"), 1),
    (("s3clean", "clean", "-p", "p1", "-t", "items", "--dry-run"), 0),
]


def test_no_secret_is_ever_printed_written_or_recorded(mysql: Any, mysql_db: str, mysql_user: str, secret_pg: Any,
                                                      s3_endpoint: str, s3_bucket: str, tmp_path: Path) -> None:
    mysql_exec(mysql, "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20), updated_at DATETIME(6) NOT NULL)",
               "INSERT INTO items VALUES (1, 'a', '2026-01-01'), (2, 'b', '2026-01-02')")
    work = tmp_path / "work"
    work.mkdir()
    config = write_config(tmp_path / "config", mysql_db, mysql_user, secret_pg, s3_endpoint, s3_bucket)
    assert not find_secrets(b"".join(p.read_bytes() for p in config.rglob("*.yml")), "the config")  # only ${VAR}s

    leaks: list[str] = []
    outputs: list[str] = []
    for debug in (False, True):
        for args, code in COMMANDS:
            full = (("--debug",) if debug else ()) + args
            result = run_cli(config, *full, env=SECRETS, cwd=work, timeout=120)
            outputs.append(f"$ lakeshift {' '.join(full)}\n{result.stdout}{result.stderr}")
            leaks += find_secrets(result.stdout.encode(), f"stdout of {' '.join(full)}")
            leaks += find_secrets(result.stderr.encode(), f"stderr of {' '.join(full)}")
            assert result.returncode == code, (full, result.stdout, result.stderr)
            if code == 1:  # the failure says what went wrong, in one line
                errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
                assert len(errors) == 1, (full, result.stderr)
            if debug and code == 1 and args[0] == "sync":
                assert "Traceback (most recent call last)" in result.stderr, (full, result.stderr)
        mysql_exec(mysql, "INSERT INTO items VALUES (%s, 'more', '2026-02-01')", params=(3 if not debug else 4,))

    text = "\n".join(outputs)
    # the runs really happened: rows loaded over TLS with the password; each failure says why without the secret
    assert "password authentication failed for user \"loader\"" in text
    assert "Access denied for user" in text
    assert "password:    set" in text and "secret_access_key:" in text
    with psycopg.connect(host="127.0.0.1", port=secret_pg.port, user="loader", password=SECRETS["LS_PG_PW"],
                         dbname="lake", sslmode="verify-full", sslrootcert=str(secret_pg.tls.ca)) as conn:
        assert conn.execute('SELECT COUNT(*) FROM dw."items"').fetchone() == (3,)  # row 4 came after the last sync
        history = conn.execute('SELECT * FROM dw."_lakeshift_runs"').fetchall()
        loads = conn.execute('SELECT * FROM dw."_lakeshift_loads"').fetchall()
        tables = conn.execute("SELECT string_agg(t::text, '|') FROM dw.items t").fetchone()
    assert any(r[4] == "failed" for r in history) and any(r[4] == "ok" for r in history)
    leaks += find_secrets(repr(history).encode(), "_lakeshift_runs")
    leaks += find_secrets(repr(loads).encode(), "_lakeshift_loads")
    leaks += find_secrets(repr(tables).encode(), "the target table")

    # every file written anywhere under the test folder (config, working folder, ...) and every lake object
    for path in tmp_path.rglob("*"):
        if path.is_file():
            leaks += find_secrets(path.read_bytes(), str(path))
    s3 = s3_client(s3_endpoint)
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket)
            for o in page.get("Contents", [])]
    assert any(k.endswith(".parquet") for k in keys) and any("/_manifests/" in k for k in keys)
    for key in keys:
        leaks += find_secrets(s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read(), f"s3://{s3_bucket}/{key}")
    assert not leaks, "\n".join(leaks)
