"""`lakeshift connections list | test | info` against the real MariaDB,
PostgreSQL, DuckDB files, the moto S3 server, local folders and a loopback SSH server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb
from kit.cli import one_error_line
from kit.sshd import PASSPHRASE, PASSWORD, Keys, known_hosts, ssh_keys, sshd  # noqa: F401

SECRET = "Sup3r-s3cret-pw!"

OK = re.compile(r": OK \(\d+ ms\)")


def mysql(database: str, **extra: Any) -> dict[str, Any]:
    return {"type": "mysql", "host": "127.0.0.1", "port": 3306, "database": database, "username": "root", **extra}


def pg_target(**extra: Any) -> dict[str, Any]:
    return {"type": "postgres", "host": "127.0.0.1", "port": 5432, "database": "test", "username": "postgres", **extra}


def conns(sources: dict | None = None, targets: dict | None = None, storage: dict | None = None) -> dict:
    return {"connections.yml": {"connections": {"sources": sources or {}, "targets": targets or {},
                                                "storage": storage or {}}}}


# ---------------------------------------------------------------- list


def test_list_groups_and_marks_unusable(cli, make_config, tmp_path: Path) -> None:
    root = make_config(conns(
        sources={"sales_mysql": mysql("sales", password=SECRET, description="Sales DB"),
                 "inv": {"host": "${INV_HOST}", "database": "inv", "username": "${INV_USER}", "password": "${INV_PW}"}},
        targets={"rs": {"type": "redshift", "host": "rs.example.com", "database": "dw", "username": "u",
                        "password": SECRET, "iam_role": "arn:aws:iam::1:role/copy", "ssl": {"mode": "require"},
                        "ssh_tunnel": {"enabled": True, "host": "bastion.example.com", "username": "ec2-user"}},
                 "duck": {"type": "duckdb", "path": str(tmp_path / "t.duckdb")}},
        storage={"lake": {"type": "s3", "bucket": "my-bucket", "prefix": "raw/", "region": "eu-west-1"},
                 "local_lake": {"type": "local", "path": "./lake"}},
    ))
    r = cli("connections", "list", config_dir=root, env={"INV_HOST": None, "INV_USER": None, "INV_PW": None})
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert out.index("Sources") < out.index("sales_mysql") < out.index("Targets") < out.index("rs.example.com") \
        < out.index("Storage") < out.index("s3://my-bucket/raw")
    assert re.search(r"sales_mysql +mysql +127\.0\.0\.1:3306/sales\n +Sales DB", out)
    assert re.search(r"inv +mysql +\$\{INV_HOST\}:3306/inv +\[not usable: needs \$INV_HOST, \$INV_PW, \$INV_USER\]", out)
    assert re.search(r"rs +redshift +rs\.example\.com:5439/dw +\[schema=public; SSH via bastion\.example\.com; "
                     r"TLS require; IAM role\]", out)
    assert "s3://my-bucket/raw  [region=eu-west-1]" in out
    assert re.search(r"local_lake +local +\./lake", out)
    assert SECRET not in r.output


def test_list_works_with_a_broken_connection_variable_only(cli, make_config) -> None:
    root = make_config(conns(targets={"t": {"type": "redshift", "host": "h", "port": "${RS_PORT}",
                                            "database": "d", "username": "u"}}))
    r = cli("connections", "list", config_dir=root, env={"RS_PORT": None})
    assert r.exit_code == 0
    assert re.search(r"t +redshift +h:\$\{RS_PORT\}/d +\[schema=public; not usable: needs \$RS_PORT\]", r.stdout)


# ---------------------------------------------------------------- test: databases


def test_mysql_ok(cli, make_config, mysql_db: str) -> None:
    root = make_config(conns(sources={"src": mysql(mysql_db)}))
    r = cli("connections", "test", "src", config_dir=root)
    assert r.exit_code == 0, r.output
    assert re.fullmatch(r"source src: OK \(\d+ ms\)\n", r.stdout)


def test_mysql_wrong_password_one_line_no_secret(cli, make_config, mysql_db: str) -> None:
    root = make_config(conns(sources={"src": mysql(mysql_db, password=SECRET)}))
    r = cli("connections", "test", "src", config_dir=root)
    line = one_error_line(r)
    assert line.startswith("source src: cannot connect to ")
    assert "127.0.0.1:3306" in line and "1045" in line and "Access denied for user 'root'" in line
    assert line.endswith("(using password: YES)")  # MySQL's words kept: they hold no secret
    assert SECRET not in r.output


def test_mysql_unknown_user_without_password_keeps_mysql_words(cli, make_config, mysql_db: str) -> None:
    root = make_config(conns(sources={"src": {**mysql(mysql_db), "username": "no_such_user_x"}}))
    line = one_error_line(cli("connections", "test", "src", config_dir=root))
    assert "Access denied for user 'no_such_user_x'@" in line and line.endswith("(using password: NO)"), line


def test_mysql_refused(cli, make_config) -> None:
    root = make_config(conns(sources={"src": mysql("x", port=1)}))
    line = one_error_line(cli("connections", "test", "src", config_dir=root))
    assert line.startswith("source src: cannot connect to ")
    assert "127.0.0.1:1" in line and "2003" in line and "Connection refused" in line


def test_postgres_ok_and_schema_note(cli, make_config, pg_schema: str, pg) -> None:
    root = make_config(conns(targets={"t": pg_target(schema=pg_schema)}))
    r = cli("connections", "test", "t", config_dir=root)
    assert r.exit_code == 0, r.output
    assert re.fullmatch(rf"target t: OK \(\d+ ms\); schema {pg_schema} does not exist yet \(created on first load\)\n",
                        r.stdout)
    pg.execute(f'CREATE SCHEMA "{pg_schema}"')
    r = cli("connections", "test", "t", config_dir=root)
    assert re.fullmatch(r"target t: OK \(\d+ ms\)\n", r.stdout)


def test_postgres_bad_database(cli, make_config) -> None:
    root = make_config(conns(targets={"t": pg_target(database="no_such_db_ls", password=SECRET)}))
    r = cli("connections", "test", "t", config_dir=root)
    line = one_error_line(r)
    assert line.startswith("target t: cannot connect to 127.0.0.1:5432: ")
    assert 'database "no_such_db_ls" does not exist' in line
    assert SECRET not in r.output


def test_postgres_with_a_ca_is_tested_with_verify_full_like_a_load(cli, make_config, tmp_path: Path) -> None:
    """ssl {mode: prefer, ca: ...}: a load verifies the server (verify-full), so the
    test must too. The PostgreSQL here has no TLS: `prefer` alone falls back to
    plain text and passes, verify-full fails; a test that passed would be a lie."""
    ca = tmp_path / "ca.pem"
    ca.write_text("not used: the server offers no TLS\n")
    root = make_config(conns(targets={"tls": pg_target(ssl={"mode": "prefer", "ca": str(ca)}),
                                      "plain": pg_target(ssl={"mode": "prefer"})}))
    line = one_error_line(cli("connections", "test", "tls", config_dir=root))
    assert line.startswith("target tls: cannot connect to 127.0.0.1:5432: ") and "SSL" in line, line
    r = cli("connections", "test", "plain", config_dir=root)
    assert r.exit_code == 0 and OK.search(r.stdout), r.output


def test_redshift_type_uses_postgres_protocol(cli, make_config) -> None:
    # no Redshift here: a redshift-typed target pointed at PostgreSQL proves the driver path
    root = make_config(conns(targets={"rs": {**pg_target(), "type": "redshift", "port": 5432}}))
    r = cli("connections", "test", "rs", config_dir=root)
    assert r.exit_code == 0 and OK.search(r.stdout), r.output


def test_duckdb_existing_missing_and_unwritable(cli, make_config, duckdb_path: Path, tmp_path: Path) -> None:
    root = make_config(conns(targets={"d": {"type": "duckdb", "path": str(duckdb_path)},
                                      "bad": {"type": "duckdb", "path": "/proc/nope/x.duckdb"}}))
    r = cli("connections", "test", "d", config_dir=root)
    assert r.exit_code == 0
    assert r.stdout.endswith(f"does not exist yet (created on first load)\n")
    assert not duckdb_path.exists()  # a test never creates the file
    duckdb.connect(str(duckdb_path)).close()
    r = cli("connections", "test", "d", config_dir=root)
    assert re.fullmatch(r"target d: OK \(\d+ ms\)\n", r.stdout)
    line = one_error_line(cli("connections", "test", "bad", config_dir=root))
    assert line.startswith("target bad: DuckDB file /proc/nope/x.duckdb does not exist and cannot be created: "
                           "/proc is not writable (")


def test_duckdb_not_a_database(cli, make_config, tmp_path: Path) -> None:
    junk = tmp_path / "junk.duckdb"
    junk.write_text("not a database")
    root = make_config(conns(targets={"d": {"type": "duckdb", "path": str(junk)}}))
    assert one_error_line(cli("connections", "test", "d", config_dir=root)).startswith(
        f"target d: cannot open DuckDB file {junk}: ")


# ---------------------------------------------------------------- test: storage


def test_local_storage(cli, make_config, tmp_path: Path) -> None:
    (tmp_path / "lake").mkdir()
    (tmp_path / "afile").write_text("x")
    root = make_config(conns(storage={"ok": {"type": "local", "path": str(tmp_path / "lake")},
                                      "new": {"type": "local", "path": str(tmp_path / "new" / "lake")},
                                      "file": {"type": "local", "path": str(tmp_path / "afile")}}))
    r = cli("connections", "test", "ok", config_dir=root)
    assert re.fullmatch(r"storage ok: OK \(\d+ ms\)\n", r.stdout)
    assert list((tmp_path / "lake").iterdir()) == []  # the probe file is gone
    r = cli("connections", "test", "new", config_dir=root)
    assert r.exit_code == 0 and "does not exist yet (created on first write)" in r.stdout
    assert not (tmp_path / "new").exists()
    assert one_error_line(cli("connections", "test", "file", config_dir=root)) == \
        f"storage file: lake folder {tmp_path / 'afile'} is a file, not a folder"
    root = make_config(conns(storage={"under_file": {"type": "local", "path": str(tmp_path / "afile" / "lake")}}))
    assert one_error_line(cli("connections", "test", "under_file", config_dir=root)) == (
        f"storage under_file: lake folder {tmp_path / 'afile' / 'lake'} does not exist and cannot be created: "
        f"{tmp_path / 'afile'} is not a folder")


def test_s3_storage(cli, make_config, s3_storage: dict[str, Any]) -> None:
    missing = {**s3_storage, "bucket": "ls-no-such-bucket"}
    root = make_config(conns(storage={"lake": s3_storage, "gone": missing}))
    r = cli("connections", "test", "lake", config_dir=root)
    assert r.exit_code == 0, r.output
    assert re.fullmatch(rf"storage lake: OK \(\d+ ms\); 0 entries under s3://{s3_storage['bucket']}/lake\n", r.stdout)
    line = one_error_line(cli("connections", "test", "gone", config_dir=root))
    assert line == "storage gone: bucket ls-no-such-bucket does not exist (or is not visible to these credentials)"
    assert s3_storage["secret_access_key"] not in r.output


# ---------------------------------------------------------------- test: names, --all, variables


def test_unknown_name_suggests(cli, make_config, mysql_db: str) -> None:
    root = make_config(conns(sources={"sales_mysql": mysql(mysql_db)}))
    line = one_error_line(cli("connections", "test", "sales_mysq", config_dir=root))
    assert line == "unknown connection 'sales_mysq'; did you mean 'sales_mysql'? (declared: default, sales_mysql)"


def test_name_or_all_is_a_usage_error(cli, make_config) -> None:
    root = make_config(conns())
    assert cli("connections", "test", config_dir=root).exit_code == 2
    assert cli("connections", "test", "x", "--all", config_dir=root).exit_code == 2


def test_missing_variable_names_variable_file_and_key(cli, make_config) -> None:
    root = make_config(conns(sources={"sales": {"host": "${SALES_HOST}", "database": "s", "username": "u"}}))
    line = one_error_line(cli("connections", "test", "sales", config_dir=root, env={"SALES_HOST": None}))
    assert line == ("connections.yml: connections.sources.sales.host uses ${SALES_HOST}, which is not set; "
                    "set SALES_HOST in the environment or in .env")


def test_all(cli, make_config, mysql_db: str, tmp_path: Path) -> None:
    good = conns(sources={"a": mysql(mysql_db), "needs_var": {"host": "${NOPE_HOST}", "database": "d",
                                                               "username": "u"}},
                 targets={"t": pg_target()}, storage={"l": {"type": "local", "path": str(tmp_path)}})
    root = make_config(good)
    env = {"NOPE_HOST": None, "MYSQL_HOST": None, "REDSHIFT_HOST": None}
    r = cli("connections", "test", "--all", config_dir=root, env=env)
    assert r.exit_code == 0, r.output
    assert "source needs_var: skipped: not usable: needs $NOPE_HOST" in r.stdout
    assert re.search(r"source a: OK .*\ntarget t: OK", r.stdout, re.S)
    # the built-in v1.0 `default` source and target are hidden: MYSQL_HOST and REDSHIFT_HOST are not set
    assert r.stdout.splitlines()[-1] == "4 OK, 1 skipped (variables not set)"

    good["connections.yml"]["connections"]["sources"]["b"] = mysql("x", port=1)
    root = make_config(good)
    r = cli("connections", "test", "--all", config_dir=root, env=env)
    line = one_error_line(r)
    assert line.startswith("1 of 6 connection(s) failed; first: source b: cannot connect to ")
    assert "source b: FAILED: cannot connect" in r.stdout and "source a: OK" in r.stdout


def test_default_name_tests_every_kind(cli, make_config, mysql_db: str, tmp_path: Path) -> None:
    root = make_config(conns(sources={"default": mysql(mysql_db)}, targets={"default": pg_target()},
                             storage={"default": {"type": "local", "path": str(tmp_path)}}))
    r = cli("connections", "test", "default", config_dir=root)
    assert r.exit_code == 0, r.output
    assert [line.split(":")[0] for line in r.stdout.splitlines()] == ["source default", "target default",
                                                                      "storage default", "3 OK"]
    r = cli("connections", "test", "default", "--kind", "target", config_dir=root)
    assert re.fullmatch(r"target default: OK \(\d+ ms\)\n", r.stdout)


# ---------------------------------------------------------------- SSH through the CLI


def test_through_ssh_tunnel(cli, make_config, mysql_db: str, sshd: int, ssh_keys: Keys, known_hosts: Path) -> None:
    key = ssh_keys.encrypted_key or ssh_keys.client_key  # the encrypted one needs bcrypt
    tunnel = {"enabled": True, "host": "127.0.0.1", "port": sshd, "username": "tester",
              "private_key_path": str(key), "private_key_passphrase": "${KEY_PASS}",
              "known_hosts": str(known_hosts)}
    root = make_config(conns(sources={"m": mysql(mysql_db, ssh_tunnel=tunnel)},
                             targets={"p": pg_target(ssh_tunnel={**tunnel, "private_key_path": None,
                                                          "password": PASSWORD})}))
    env = {"KEY_PASS": PASSPHRASE}
    r = cli("connections", "test", "m", config_dir=root, env=env)
    assert re.fullmatch(r"source m: OK \(\d+ ms\)\n", r.stdout), r.output
    r = cli("connections", "test", "p", config_dir=root, env=env)
    assert re.fullmatch(r"target p: OK \(\d+ ms\); schema public does not exist yet.*\n|target p: OK \(\d+ ms\)\n",
                        r.stdout), r.output
    r = cli("--debug", "connections", "info", "m", config_dir=root, env=env)
    assert f"ssh tunnel:   tester@127.0.0.1:{sshd}" in r.stdout
    assert "passphrase set" in r.stdout
    assert PASSPHRASE not in r.output and PASSWORD not in r.output


def test_ssh_unknown_host_key_through_cli(cli, make_config, mysql_db: str, sshd: int, tmp_path: Path) -> None:
    empty = tmp_path / "kh"
    empty.write_text("")
    tunnel = {"enabled": True, "host": "127.0.0.1", "port": sshd, "username": "tester", "password": PASSWORD,
              "known_hosts": str(empty)}
    root = make_config(conns(sources={"m": mysql(mysql_db, ssh_tunnel=tunnel)}))
    r = cli("connections", "test", "m", config_dir=root)
    line = one_error_line(r)
    assert line.startswith(f"source m: SSH host 127.0.0.1:{sshd}: unknown host key")
    assert PASSWORD not in r.output


def test_ssh_enabled_without_host(cli, make_config, mysql_db: str) -> None:
    root = make_config(conns(sources={"m": mysql(mysql_db, ssh_tunnel={"enabled": True, "username": "u"})}))
    assert one_error_line(cli("connections", "test", "m", config_dir=root)) == (
        "connections.yml: connections.sources.m.ssh_tunnel.host: required key is missing "
        "(needed when ssh_tunnel.enabled is true)")


# ---------------------------------------------------------------- info


def test_info_never_shows_secrets(cli, make_config) -> None:
    root = make_config(conns(
        sources={"s": mysql("sales", password=SECRET, description="Sales",
                            connection_pool={"min_connections": 2, "max_connections": 10, "retry_attempts": 3},
                            ssl={"mode": "verify-full", "ca": "/etc/ca.pem"})},
        targets={"t": pg_target(schema="reporting")},
        storage={"lake": {"type": "s3", "bucket": "b", "access_key_id": "AKIAEXAMPLE1234",
                          "secret_access_key": SECRET}},
    ))
    r = cli("connections", "info", "s", config_dir=root)
    assert r.exit_code == 0
    expected = [
        "name:        s", "kind:        source", "type:        mysql", "host:        127.0.0.1",
        "port:        3306", "database:    sales", "username:    root", "description: Sales",
        "password:    set", "ssh tunnel:  no", "tls:         mode verify-full, ca /etc/ca.pem",
        "pool:        min 2, max 10, retry_attempts 3",
    ]
    assert r.stdout.splitlines()[: len(expected)] == expected
    assert "status:      usable" in r.stdout
    r2 = cli("connections", "info", "t", config_dir=root)
    assert re.search(r"password: +not set", r2.stdout) and re.search(r"schema: +reporting", r2.stdout)
    r3 = cli("connections", "info", "lake", config_dir=root)
    assert re.search(r"secret_access_key: +set", r3.stdout)
    for res in (r, r2, r3):
        assert SECRET not in res.output and "AKIAEXAMPLE1234" not in res.output


def test_info_unknown(cli, make_config) -> None:
    root = make_config(conns())
    assert one_error_line(cli("connections", "info", "nope", "--kind", "target", config_dir=root)) == \
        "unknown target 'nope' (declared: default)"


# ---------------------------------------------------------------- six at once


def test_six_connections_open_at_once(make_config, mysql_db: str, pg_schema: str, tmp_path: Path) -> None:
    """The spec promises 5+ simultaneous connections: open 7 of 4 kinds, use them interleaved."""
    import psycopg
    import pymysql

    from lakeshift.config import load_config
    from lakeshift.source import connect

    root = make_config(conns(
        sources={f"m{i}": mysql(mysql_db) for i in range(3)},
        targets={**{f"p{i}": pg_target(schema=pg_schema) for i in range(2)},
                 **{f"d{i}": {"type": "duckdb", "path": str(tmp_path / f"d{i}.duckdb")} for i in range(2)}},
    ))
    cfg = load_config(root)
    opened: list[tuple[str, Any]] = []
    for name in ("m0", "m1", "m2"):
        opened.append(("mysql", connect(cfg.source(name), cfg.settings)))
    for name in ("p0", "p1"):
        t = cfg.target(name)
        opened.append(("pg", psycopg.connect(host=t.host, port=t.port, user=t.username, dbname=t.database,
                                             autocommit=True)))
    for name in ("d0", "d1"):
        opened.append(("duck", duckdb.connect(cfg.target(name).path)))
    try:
        # each connection keeps its own session state while the others work
        for i, (kind, conn) in enumerate(opened):
            if kind == "mysql":
                with conn.cursor() as cur:
                    cur.execute("SET @me = %s", (i,))
            elif kind == "pg":
                conn.execute(f"SET application_name = 'ls{i}'")
            else:
                conn.execute(f"CREATE TABLE me AS SELECT {i} AS i")
        for i, (kind, conn) in enumerate(opened):
            if kind == "mysql":
                with conn.cursor() as cur:
                    cur.execute("SELECT @me, @@session.time_zone")
                    assert cur.fetchone() == (i, "+00:00")
            elif kind == "pg":
                assert conn.execute("SHOW application_name").fetchone()[0] == f"ls{i}"
            else:
                assert conn.execute("SELECT i FROM me").fetchone()[0] == i
        assert len({id(c) for _, c in opened}) == 7
    finally:
        for _, conn in opened:
            conn.close()
    assert isinstance(opened[0][1], pymysql.connections.Connection)
