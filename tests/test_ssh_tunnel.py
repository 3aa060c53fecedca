"""SSH tunnels against a real asyncssh server on loopback, forwarding to the
real PostgreSQL and MariaDB."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from kit.sshd import PASSPHRASE, PASSWORD, Keys, known_hosts, known_hosts_line, needs_bcrypt, ssh_keys, sshd  # noqa: F401

from lakeshift.config.models import SSHTunnel
from lakeshift.connections import ssh
from lakeshift.errors import ConfigError, ConnectionFailed



@pytest.fixture
def keys(ssh_keys: Keys) -> Keys:
    return ssh_keys


def cfg(port: int, **extra: Any) -> SSHTunnel:
    body = {"enabled": True, "host": "127.0.0.1", "port": port, "username": "tester"}
    return SSHTunnel.model_validate({**body, **extra})


def pg_select_one(host: str, port: int) -> int:
    with psycopg.connect(host=host, port=port, user="postgres", dbname="test", connect_timeout=5) as conn:
        return conn.execute("SELECT 1").fetchone()[0]


def test_key_auth_tunnel_reaches_postgres(sshd: int, keys: Keys, known_hosts: Path) -> None:
    c = cfg(sshd, private_key_path=str(keys.client_key), known_hosts=str(known_hosts))
    with ssh.tunnel(c, "127.0.0.1", 5432) as (host, port):
        assert host == "127.0.0.1" and port not in (5432, sshd)
        assert pg_select_one(host, port) == 1
        assert pg_select_one(host, port) == 1  # a second connection through the same tunnel


@needs_bcrypt
def test_encrypted_key_tunnel_reaches_mariadb(sshd: int, keys: Keys, known_hosts: Path) -> None:
    c = cfg(sshd, private_key_path=str(keys.encrypted_key), private_key_passphrase=PASSPHRASE,
            known_hosts=str(known_hosts))
    with ssh.tunnel(c, "127.0.0.1", 3306) as (host, port):
        conn = pymysql.connect(host=host, port=port, user="root", password="", connect_timeout=5)
        with conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)


def test_password_auth(sshd: int, known_hosts: Path) -> None:
    with ssh.tunnel(cfg(sshd, password=PASSWORD, known_hosts=str(known_hosts)), "127.0.0.1", 5432) as (h, p):
        assert pg_select_one(h, p) == 1


def test_pinned_host_key(sshd: int, keys: Keys) -> None:
    c = cfg(sshd, password=PASSWORD, host_key=keys.host_pub, known_hosts="/nonexistent/known_hosts")
    with ssh.tunnel(c, "127.0.0.1", 5432) as (h, p):
        assert pg_select_one(h, p) == 1


def test_unknown_host_key_refused(sshd: int, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(ConnectionFailed) as err:
        with ssh.tunnel(cfg(sshd, password=PASSWORD, known_hosts=str(empty)), "127.0.0.1", 5432):
            pass
    assert str(err.value) == (
        f"SSH host 127.0.0.1:{sshd}: unknown host key (not in {empty}); refusing to connect. "
        f"Add it with `ssh-keyscan -p {sshd} 127.0.0.1 >> {empty}` after checking its fingerprint, "
        "or pin it with ssh_tunnel.host_key"
    )


def test_missing_known_hosts_file_refused(sshd: int, tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "known_hosts"
    with pytest.raises(ConnectionFailed, match=r"known_hosts file .* does not exist; add the key with `ssh-keyscan -p"):
        with ssh.tunnel(cfg(sshd, password=PASSWORD, known_hosts=str(missing)), "127.0.0.1", 5432):
            pass


def test_default_known_hosts_is_home(sshd: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConnectionFailed, match=r">> ~/.ssh/known_hosts"):
        with ssh.tunnel(cfg(sshd, password=PASSWORD), "127.0.0.1", 5432):
            pass


def test_changed_host_key_refused(sshd: int, keys: Keys, tmp_path: Path) -> None:
    # known_hosts holds another key for this host:port, as after a re-key or a MITM
    other_pub = Path(str(keys.other_host_key) + ".pub").read_text().strip()
    kh = tmp_path / "known_hosts"
    kh.write_text(known_hosts_line(sshd, other_pub))
    with pytest.raises(ConnectionFailed) as err:
        with ssh.tunnel(cfg(sshd, password=PASSWORD, known_hosts=str(kh)), "127.0.0.1", 5432):
            pass
    msg = str(err.value)
    assert msg.startswith(f"SSH host 127.0.0.1:{sshd}: HOST KEY CHANGED: the server's key does not match the one in {kh}")
    assert f"ssh-keygen -R '[127.0.0.1]:{sshd}'" in msg and f"ssh-keyscan -p {sshd} 127.0.0.1" in msg


def test_changed_pinned_key_refused(sshd: int, keys: Keys) -> None:
    other_pub = Path(str(keys.other_host_key) + ".pub").read_text().strip()
    with pytest.raises(ConnectionFailed, match="HOST KEY CHANGED.*ssh_tunnel.host_key"):
        with ssh.tunnel(cfg(sshd, password=PASSWORD, host_key=other_pub), "127.0.0.1", 5432):
            pass


def test_wrong_client_key_refused(sshd: int, keys: Keys, known_hosts: Path) -> None:
    c = cfg(sshd, private_key_path=str(keys.other_client_key), known_hosts=str(known_hosts))
    with pytest.raises(ConnectionFailed) as err:
        with ssh.tunnel(c, "127.0.0.1", 5432):
            pass
    assert str(err.value) == (
        f"SSH host 127.0.0.1:{sshd}: authentication failed for user 'tester' "
        "(check private_key_path, private_key_passphrase or password)"
    )


@needs_bcrypt
def test_wrong_passphrase_is_a_config_error(sshd: int, keys: Keys, known_hosts: Path) -> None:
    c = cfg(sshd, private_key_path=str(keys.encrypted_key), private_key_passphrase="wrong-passphrase",
            known_hosts=str(known_hosts))
    with pytest.raises(ConfigError, match=r"ssh_tunnel.private_key_path: cannot load key .*passphrase"):
        with ssh.tunnel(c, "127.0.0.1", 5432):
            pass


def test_missing_key_file(sshd: int, tmp_path: Path, known_hosts: Path) -> None:
    c = cfg(sshd, private_key_path=str(tmp_path / "id_missing"), known_hosts=str(known_hosts))
    with pytest.raises(ConfigError, match=r"^ssh_tunnel.private_key_path: file .*id_missing does not exist$"):
        with ssh.tunnel(c, "127.0.0.1", 5432):
            pass


def test_opt_out_warns_and_connects(sshd: int, caplog: pytest.LogCaptureFixture) -> None:
    c = cfg(sshd, password=PASSWORD, strict_host_key_checking=False, known_hosts="/nonexistent")
    logger = logging.getLogger("lakeshift")
    logger.addHandler(caplog.handler)  # the CLI sets propagate=False on "lakeshift"
    try:
        with caplog.at_level(logging.DEBUG), ssh.tunnel(c, "127.0.0.1", 5432) as (h, p):
            assert pg_select_one(h, p) == 1
    finally:
        logger.removeHandler(caplog.handler)
    assert "SSH host key checking is OFF for 127.0.0.1" in caplog.text
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize("missing", ["host", "username"])
def test_missing_host_or_user(missing: str) -> None:
    c = SSHTunnel.model_validate({"enabled": True, "host": "h", "username": "u", missing: None})
    with pytest.raises(ConfigError) as err:
        with ssh.tunnel(c, "127.0.0.1", 5432):
            pass
    assert str(err.value) == f"ssh_tunnel.{missing}: required key is missing (needed when ssh_tunnel.enabled is true)"


def test_unreachable_ssh_host(known_hosts: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionFailed, match=rf"^SSH host 127.0.0.1:{port}: cannot connect: "):
        with ssh.tunnel(cfg(port, password=PASSWORD, known_hosts=str(known_hosts)), "127.0.0.1", 5432, timeout=5):
            pass


def test_endpoint_direct_when_disabled() -> None:
    with ssh.endpoint(None, "db", 5432) as ep:
        assert ep == ("db", 5432)
    with ssh.endpoint(SSHTunnel(enabled=False, host="x"), "db", 5432) as ep:
        assert ep == ("db", 5432)


def test_shared_endpoint_reused(sshd: int, known_hosts: Path) -> None:
    c = cfg(sshd, password=PASSWORD, known_hosts=str(known_hosts))
    try:
        first = ssh.shared_endpoint(c, "127.0.0.1", 5432)
        assert ssh.shared_endpoint(c, "127.0.0.1", 5432) == first
        assert pg_select_one(*first) == 1
    finally:
        ssh.close_shared()
