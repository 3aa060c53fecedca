"""Case 22: SSH tunnels refuse an unknown or changed host key by default.

tests/test_ssh_tunnel.py proves it for the tunnel itself (unknown key, missing
known_hosts, changed key, changed pinned key, the opt-out's warning) and
tests/test_connections_cli.py for `connections test`. Here the same refusal
through a whole `lakeshift sync`: a MySQL source and a PostgreSQL target
behind a loopback SSH server, one line on stderr, nothing read or loaded --
and, as the control, the same sync with the right key works."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kit.config import build_config
from kit.lake import local_storage
from kit.source import source_rows
from kit.sshd import PASSWORD, Keys, known_hosts, known_hosts_line, ssh_keys, sshd  # noqa: F401
from kit.targets import make_target

from conftest import mysql_exec

pytestmark = pytest.mark.slow  # CLI subprocesses through SSH tunnels

TABLE = {"items": {"cdc_strategy": "full_sync"}}


def tunnel(port: int, **extra: Any) -> dict[str, Any]:
    return {"enabled": True, "host": "127.0.0.1", "port": port, "username": "tester", "password": PASSWORD, **extra}


def setup(mysql: Any, mysql_db: str, tmp_path: Path, request: Any, src_tunnel: dict[str, Any] | None,
          dst_tunnel: dict[str, Any] | None) -> tuple[Path, Any, Path]:
    mysql_exec(mysql, "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(10))", "INSERT INTO items VALUES (1, 'a')")
    tgt = make_target("postgres", request, tmp_path)
    target = {**tgt.config, **({"ssh_tunnel": dst_tunnel} if dst_tunnel else {})}
    lake = tmp_path / "lake"
    config = build_config(tmp_path / "config", mysql_db, target, local_storage(lake), TABLE)
    if src_tunnel:
        import yaml

        path = config / "connections.yml"
        data = yaml.safe_load(path.read_text())
        data["connections"]["sources"]["src"]["ssh_tunnel"] = src_tunnel
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return config, tgt, lake


def sync(cli: Any, config: Path) -> Any:
    return cli("sync", "pipeline", "-p", "p1", "-t", "items", config_dir=config)


def one_error(result: Any) -> str:
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert PASSWORD not in result.output + result.stderr
    return errors[0]


def test_a_sync_through_tunnels_with_known_host_keys_works(mysql: Any, mysql_db: str, tmp_path: Path, cli: Any,
                                                           request: pytest.FixtureRequest, sshd: int,
                                                           known_hosts: Path) -> None:
    t = tunnel(sshd, known_hosts=str(known_hosts))
    config, tgt, _ = setup(mysql, mysql_db, tmp_path, request, t, t)
    result = sync(cli, config)
    assert result.exit_code == 0, result.output + result.stderr
    assert tgt.rows("items", ["id", "name"], "id") == source_rows(mysql_db, "items", ["id", "name"], "id")


def test_an_unknown_host_key_stops_the_sync_before_anything_is_read(mysql: Any, mysql_db: str, tmp_path: Path,
                                                                    cli: Any, request: pytest.FixtureRequest,
                                                                    sshd: int) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    config, tgt, lake = setup(mysql, mysql_db, tmp_path, request, tunnel(sshd, known_hosts=str(empty)), None)
    err = one_error(sync(cli, config))
    assert f"SSH host 127.0.0.1:{sshd}: unknown host key (not in {empty}); refusing to connect" in err
    assert not list(lake.rglob("*.parquet")) and not tgt.exists("items")


def test_a_changed_host_key_stops_the_sync(mysql: Any, mysql_db: str, tmp_path: Path, cli: Any,
                                           request: pytest.FixtureRequest, sshd: int, ssh_keys: Keys) -> None:
    other = Path(str(ssh_keys.other_host_key) + ".pub").read_text().strip()
    kh = tmp_path / "known_hosts"
    kh.write_text(known_hosts_line(sshd, other))  # what a re-keyed server or a man in the middle looks like
    config, tgt, lake = setup(mysql, mysql_db, tmp_path, request, tunnel(sshd, known_hosts=str(kh)), None)
    err = one_error(sync(cli, config))
    assert f"SSH host 127.0.0.1:{sshd}: HOST KEY CHANGED" in err
    assert not list(lake.rglob("*.parquet")) and not tgt.exists("items")


def test_a_changed_pinned_key_on_the_target_tunnel_stops_the_load(mysql: Any, mysql_db: str, tmp_path: Path,
                                                                  cli: Any, request: pytest.FixtureRequest, sshd: int,
                                                                  ssh_keys: Keys) -> None:
    other = Path(str(ssh_keys.other_host_key) + ".pub").read_text().strip()
    config, tgt, lake = setup(mysql, mysql_db, tmp_path, request, None, tunnel(sshd, host_key=other))
    err = one_error(sync(cli, config))
    assert "HOST KEY CHANGED" in err and "ssh_tunnel.host_key" in err
    assert not tgt.exists("items")
