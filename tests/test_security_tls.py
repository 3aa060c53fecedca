"""Case 23: TLS, against servers the tests start with their own CA
(tests/kit/servers.py): a PostgreSQL cluster that accepts only TLS
(`hostssl`, scram passwords) and a MariaDB whose user REQUIREs SSL. Both
listen on 127.0.0.1 (in the certificate) and 127.0.0.2 (not in it).

Through real syncs (and `connections test`):
- verify-full with the right CA works (the rows arrive; the servers refuse
  anything but TLS, so both the control connections and the connectorx reader
  and the ADBC staging connection really use it);
- a wrong CA fails, a host name outside the certificate fails verify-full but
  passes verify-ca, each with one line on stderr and nothing loaded;
- a CA configured with mode require/prefer still verifies (documented);
- require without a CA encrypts without verifying; disable is refused by a
  server that wants TLS;
- the reader's connectorx connections check the host name themselves.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from kit.cli import run_cli
from kit.servers import start_mariadb, start_pg_cluster

from conftest import mysql_exec

pytestmark = pytest.mark.slow  # a throwaway TLS MariaDB and PostgreSQL cluster

PG_PW = "pg-tls-" + secrets.token_hex(6)
MY_PW = "my-tls-" + secrets.token_hex(6)


@pytest.fixture(scope="module")
def tls_pg() -> Any:
    server = start_pg_cluster(superuser_password=PG_PW)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tls_mariadb() -> Any:
    server = start_mariadb(tls=True)
    try:
        with server.connect() as root:
            mysql_exec(root, "CREATE DATABASE shop CHARACTER SET utf8mb4",
                       "CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(20), updated_at DATETIME(6) NOT NULL)",
                       "INSERT INTO shop.items VALUES (1, 'a', '2026-01-01'), (2, 'ü', '2026-01-02'), (3, NULL, '2026-01-03')",
                       f"CREATE USER 'tls'@'%' IDENTIFIED BY '{MY_PW}' REQUIRE SSL",
                       "GRANT ALL ON shop.* TO 'tls'@'%'")
        yield server
    finally:
        server.stop()


def config_for(root: Path, my: Any, pg: Any, *, src_ssl: dict[str, Any] | None, dst_ssl: dict[str, Any] | None,
               src_host: str = "127.0.0.1", dst_host: str = "127.0.0.1", schema: str = "dw") -> Path:
    source = {"type": "mysql", "host": src_host, "port": my.port, "database": "shop", "username": "tls",
              "password": "${LS_MY_PW}", "connection_pool": {"retry_attempts": 0}}
    target = {"type": "postgres", "host": dst_host, "port": pg.port, "database": "postgres", "username": "postgres",
              "password": "${LS_PG_PW}", "schema": schema}
    if src_ssl is not None:
        source["ssl"] = src_ssl
    if dst_ssl is not None:
        target["ssl"] = dst_ssl
    files = {
        "connections.yml": {"connections": {"sources": {"src": source}, "targets": {"dst": target},
                                            "storage": {"default": {"type": "local", "path": str(root / "lake")}}},
                            "connection_settings": {"connection_retry_delay": 0, "default_timeout": 10}},
        "pipelines/p1.yml": {"pipeline": {"source": "src", "target": "dst"},
                             "tables": {"items": {"cdc_strategy": "full_sync"}}},
    }
    for rel, data in files.items():
        path = root / "config" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return root / "config"


ENV = {"LS_MY_PW": MY_PW, "LS_PG_PW": PG_PW}


def sync(config: Path) -> Any:
    return run_cli(config, "sync", "pipeline", "-p", "p1", "-t", "items", env=ENV, timeout=120)


LOG_LINE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} (INFO|WARNING|ERROR) lakeshift\.")


def one_error(result: Any) -> str:
    """Exit 1 and one error line; anything else on stderr is a log line."""
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert all(line.startswith("Error: ") or LOG_LINE.match(line) for line in lines), result.stderr
    return errors[0]


def target_rows(pg: Any, schema: str) -> list[tuple[Any, ...]] | None:
    with psycopg.connect(**pg.params("postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = 'items'",
                            (schema,)).fetchone():
            return None
        return [tuple(r) for r in conn.execute(f'SELECT id, name FROM "{schema}".items ORDER BY id').fetchall()]


def verified(tls: Any, mode: str = "verify-full", ca: Path | None = None) -> dict[str, Any]:
    return {"mode": mode, "ca": str(ca or tls.ca)}


WANT = [(1, "a"), (2, "ü"), (3, None)]


def test_verify_full_with_the_right_ca_syncs_over_tls(tls_mariadb: Any, tls_pg: Any, tmp_path: Path) -> None:
    config = config_for(tmp_path, tls_mariadb, tls_pg, src_ssl=verified(tls_mariadb.tls), dst_ssl=verified(tls_pg.tls),
                        schema="ok_full")
    for name in ("src", "dst"):
        probe = run_cli(config, "connections", "test", name, env=ENV)
        assert probe.returncode == 0 and ": OK (" in probe.stdout, probe.stdout + probe.stderr
    result = sync(config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert target_rows(tls_pg, "ok_full") == WANT
    # the target only speaks TLS, and the MySQL user only logs in over TLS: prove both refuse plain text
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(host="127.0.0.1", port=tls_pg.port, user="postgres", password=PG_PW, dbname="postgres",
                        sslmode="disable").close()
    import pymysql

    with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
        pymysql.connect(host="127.0.0.1", port=tls_mariadb.port, user="tls", password=MY_PW,
                        ssl_disabled=True).close()


@pytest.mark.parametrize("side", ["source", "target"])
def test_a_wrong_ca_is_refused_in_one_line(side: str, tls_mariadb: Any, tls_pg: Any, tmp_path: Path) -> None:
    my_ssl = verified(tls_mariadb.tls, ca=tls_mariadb.tls.wrong_ca if side == "source" else None)
    pg_ssl = verified(tls_pg.tls, ca=tls_pg.tls.wrong_ca if side == "target" else None)
    schema = f"wrong_ca_{side}"
    config = config_for(tmp_path, tls_mariadb, tls_pg, src_ssl=my_ssl, dst_ssl=pg_ssl, schema=schema)
    err = one_error(sync(config))
    assert "certificate verify failed" in err or "certificate" in err.lower(), err
    assert target_rows(tls_pg, schema) is None
    probe = run_cli(config, "connections", "test", "src" if side == "source" else "dst", env=ENV)
    assert "certificate" in one_error(probe).lower()


@pytest.mark.parametrize("side", ["source", "target"])
def test_a_host_name_outside_the_certificate_fails_verify_full_but_not_verify_ca(side: str, tls_mariadb: Any,
                                                                                  tls_pg: Any, tmp_path: Path) -> None:
    hosts = {"src_host": "127.0.0.2"} if side == "source" else {"dst_host": "127.0.0.2"}
    full = config_for(tmp_path / "full", tls_mariadb, tls_pg, src_ssl=verified(tls_mariadb.tls),
                      dst_ssl=verified(tls_pg.tls), schema=f"name_full_{side}", **hosts)
    err = one_error(sync(full))
    assert any(w in err.lower() for w in ("hostname", "host name", "match", "ip address")), err
    assert target_rows(tls_pg, f"name_full_{side}") is None

    ca_only = config_for(tmp_path / "ca", tls_mariadb, tls_pg, src_ssl=verified(tls_mariadb.tls, "verify-ca"),
                         dst_ssl=verified(tls_pg.tls, "verify-ca"), schema=f"name_ca_{side}", **hosts)
    result = sync(ca_only)
    assert result.returncode == 0, result.stdout + result.stderr
    assert target_rows(tls_pg, f"name_ca_{side}") == WANT


@pytest.mark.parametrize("mode", ["require", "prefer"])
def test_a_configured_ca_is_always_verified(mode: str, tls_mariadb: Any, tls_pg: Any, tmp_path: Path) -> None:
    """ssl: {mode: require|prefer, ca: ...}: the CA is checked, so a wrong one fails (both sides)."""
    for side in ("source", "target"):
        schema = f"ca_{mode}_{side}"
        my = {"mode": mode, "ca": str(tls_mariadb.tls.wrong_ca if side == "source" else tls_mariadb.tls.ca)}
        pg = {"mode": mode, "ca": str(tls_pg.tls.wrong_ca if side == "target" else tls_pg.tls.ca)}
        config = config_for(tmp_path / side, tls_mariadb, tls_pg, src_ssl=my, dst_ssl=pg, schema=schema)
        err = one_error(sync(config))
        assert "certificate" in err.lower(), (side, err)
        assert target_rows(tls_pg, schema) is None


def test_require_without_a_ca_encrypts_without_verifying(tls_mariadb: Any, tls_pg: Any, tmp_path: Path) -> None:
    config = config_for(tmp_path, tls_mariadb, tls_pg, src_ssl={"mode": "require"}, dst_ssl={"mode": "require"},
                        schema="req")
    result = sync(config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert target_rows(tls_pg, "req") == WANT


@pytest.mark.parametrize("side", ["source", "target"])
def test_disable_against_a_server_that_wants_tls_is_one_line(side: str, tls_mariadb: Any, tls_pg: Any,
                                                             tmp_path: Path) -> None:
    my = {"mode": "disable"} if side == "source" else verified(tls_mariadb.tls)
    pg = {"mode": "disable"} if side == "target" else verified(tls_pg.tls)
    config = config_for(tmp_path, tls_mariadb, tls_pg, src_ssl=my, dst_ssl=pg, schema=f"off_{side}")
    err = one_error(sync(config))
    assert ("Access denied" in err) if side == "source" else ("no encryption" in err), err
    assert MY_PW not in err and PG_PW not in err


@pytest.mark.slow  # connectorx's pool retries a refused certificate on its own for 30 s before it reports it
def test_connectorx_checks_the_host_name_itself_and_a_refused_certificate_is_not_retried(tls_mariadb: Any) -> None:
    """verify-full reaches connectorx as ssl-mode VERIFY_IDENTITY, which checks
    the host name (OpenSSL): the reader's own connection to a name outside the
    certificate is refused, whatever the control connection did. A refused
    certificate is the same on every attempt: one line, no retry (it was
    retried as a connection timeout). verify-ca accepts that name.
    (This test once pinned the opposite: its connectorx read went to the
    endpoint of a pool opened for 127.0.0.1, a name in the certificate.)"""
    from lakeshift.config.models import ConnectionSettings, MySQLSource
    from lakeshift.errors import SourceError, TransientSourceError
    from lakeshift.source import MySQLPool
    from lakeshift.source.cx import Connectorx
    from source_kit import Sleeps

    settings = ConnectionSettings(default_timeout=3, connection_retry_delay=0.01)

    def read(host: str, mode: str, sleeps: Sleeps) -> list[Any]:
        # statement_timeout 0: connectorx then needs no control connection (for the server version) first
        src = MySQLSource(host=host, port=tls_mariadb.port, username="tls", password=MY_PW, database="shop",
                          ssl={"mode": mode, "ca": str(tls_mariadb.tls.ca)}, connection_pool={"retry_attempts": 2},
                          statement_timeout=0)
        pool = MySQLPool(src, settings, sleep=sleeps)
        cx = Connectorx(src, settings, pool)
        try:
            return pool.retry(lambda: cx.fetch("SELECT 1 AS x", 10, "probe"), "probe")
        finally:
            cx.close()
            pool.close()

    assert read("127.0.0.1", "verify-full", Sleeps())[0].to_pylist() == [{"x": 1}]
    assert read("127.0.0.2", "verify-ca", Sleeps())[0].to_pylist() == [{"x": 1}]
    sleeps = Sleeps()
    with pytest.raises(SourceError) as err:
        read("127.0.0.2", "verify-full", sleeps)
    assert sleeps == [] and not isinstance(err.value, TransientSourceError), (sleeps, err.value)
    assert re.search(r"^probe: TLS: .*certificate verify failed.*IP address mismatch", str(err.value)), err.value
    assert "\n" not in str(err.value) and MY_PW not in str(err.value)


def test_a_certificate_the_control_connection_refuses_is_not_retried(tls_mariadb: Any) -> None:
    """PyMySQL reports a refused certificate as 2003 "Can't connect", which
    reads like an unreachable server: it is neither retried nor taken for a
    source that is down (it was both)."""
    from lakeshift.config.models import ConnectionSettings, MySQLSource
    from lakeshift.errors import LakeshiftError
    from lakeshift.source import MySQLPool
    from lakeshift.source.errors import is_unreachable
    from source_kit import Sleeps

    src = MySQLSource(host="127.0.0.2", port=tls_mariadb.port, username="tls", password=MY_PW, database="shop",
                      ssl={"mode": "verify-full", "ca": str(tls_mariadb.tls.ca)}, connection_pool={"retry_attempts": 2})
    sleeps = Sleeps()
    with MySQLPool(src, ConnectionSettings(default_timeout=3, connection_retry_delay=0.01), sleep=sleeps) as pool:
        for _ in range(2):  # the second attempt is not refused as "down" but checked again
            with pytest.raises(LakeshiftError, match="certificate verify failed") as err:
                pool.query("SELECT 1")
            assert not is_unreachable(err.value) and "giving up" not in str(err.value)
    assert sleeps == []
