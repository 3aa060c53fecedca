"""Throwaway servers a test starts, restarts and stops itself, on free
loopback ports with their own data folders: a MariaDB (optional TLS, an OS
time zone of choice) and a PostgreSQL cluster (trust, or TLS-only with scram
passwords). They listen on 127.0.0.1 and 127.0.0.2: a certificate names only
localhost and 127.0.0.1, so 127.0.0.2 is the same server under a name the
certificate does not hold."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
import pymysql

from kit.certs import TLSFiles, make_certificates
from kit.net import free_port
from kit.wait import wait_for


def shared_dir(prefix: str, owner: str) -> Path:
    """A folder under /tmp the server's own OS user can use (pytest's tmp
    folders are private to root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    shutil.chown(path, owner, owner)
    return path


def pg_bin(name: str) -> str:
    for base in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (base / name).exists():
            return str(base / name)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found")
    return found


# ---------------------------------------------------------------- MariaDB


@dataclass
class MariaDBServer:
    port: int
    folder: Path
    tls: TLSFiles | None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    host: str = "127.0.0.1"

    def connect(self, **extra: Any) -> pymysql.connections.Connection:
        return pymysql.connect(host=self.host, port=self.port, user="root", password="", charset="utf8mb4",
                               autocommit=True, **extra)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)


def start_mariadb(tz: str | None = None, tls: bool = False, server_args: Sequence[str] = ()) -> MariaDBServer:
    """mariadbd as user mysql; `tz` is the server's OS time zone (its
    time_zone stays SYSTEM). `server_args` are added to the server's command
    line; with a --log-bin among them the server keeps a binary log (else it
    runs without one)."""
    folder = shared_dir("ls-mariadb-", "mysql")
    files = None
    args: list[str] = []
    if tls:
        files = make_certificates(folder / "tls")
        for p in (files.ca, files.cert, files.key, files.wrong_ca):
            p.chmod(0o644)
        args = [f"--ssl-ca={files.ca}", f"--ssl-cert={files.cert}", f"--ssl-key={files.key}"]
    args += list(server_args)
    log_bin = [] if any(a.startswith("--log-bin") for a in server_args) else ["--skip-log-bin"]
    server = MariaDBServer(free_port(), folder, files)
    try:
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={folder / 'data'}", "--user=mysql",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True, timeout=120)
        env = {**os.environ, **({"TZ": tz} if tz else {})}
        log = open(folder / "server.log", "wb")  # noqa: SIM115 - closed with the process
        server.process = subprocess.Popen(
            ["/usr/sbin/mariadbd", "--no-defaults", f"--datadir={folder / 'data'}", f"--port={server.port}",
             "--bind-address=127.0.0.1,127.0.0.2", f"--socket={folder / 'mysqld.sock'}", f"--pid-file={folder / 'mysqld.pid'}",
             "--user=mysql", *log_bin, "--innodb-buffer-pool-size=32M", "--skip-name-resolve", *args],
            stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()

        def up() -> bool:
            if server.process is not None and server.process.poll() is not None:
                raise RuntimeError("the throwaway MariaDB exited: " + (folder / "server.log").read_text()[-2000:])
            try:
                server.connect().close()
                return True
            except pymysql.MySQLError:
                return False

        wait_for(up, "the throwaway MariaDB to accept connections", attempts=300, delay=0.1)
        return server
    except BaseException:
        server.stop()
        raise


# ---------------------------------------------------------------- PostgreSQL


@dataclass
class PgCluster:
    """A PostgreSQL cluster with database `test` that a test may restart or
    stop without hurting the shared server other tests use. Without `tls`:
    trust auth. With `tls`: only TLS connections with the superuser's scram
    `password` (`hostssl ... scram-sha-256`; plain TCP is rejected)."""

    port: int
    folder: Path
    tls: TLSFiles | None = None
    password: str | None = None
    host: str = "127.0.0.1"
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.folder / "server.log"

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def params(self, dbname: str = "test", **extra: Any) -> dict[str, Any]:
        """psycopg.connect() keywords as the superuser (verified TLS on a TLS cluster)."""
        tls = {"password": self.password, "sslmode": "verify-full", "sslrootcert": str(self.tls.ca)} if self.tls else {}
        return {"host": self.host, "port": self.port, "user": "postgres", "dbname": dbname, **tls, **extra}

    @property
    def dsn(self) -> str:
        """The conninfo string of database `test` (trust clusters)."""
        return make_conninfo(**self.params())

    def execute(self, *statements: str, dbname: str = "test") -> None:
        with psycopg.connect(**self.params(dbname), autocommit=True) as conn:
            for s in statements:
                conn.execute(s)  # type: ignore[arg-type]

    def _ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["runuser", "-u", "postgres", "--", pg_bin("pg_ctl"), "-D", str(self.data), *args],
                              capture_output=True, timeout=120, check=check)

    def start(self) -> None:
        self._ctl("-l", str(self.log), "-w", "-t", "60", "start")
        self.wait_up()

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every session is ended, the server comes back."""
        self._ctl("-l", str(self.log), "-m", "fast", "-w", "-t", "60", "restart")
        self.wait_up()

    def halt(self) -> None:
        """`pg_ctl stop -m fast`: down until start()."""
        self._ctl("-m", "fast", "-w", "-t", "60", "stop")

    def wait_up(self) -> None:
        def up() -> bool:
            try:
                psycopg.connect(**self.params("postgres"), connect_timeout=2).close()
                return True
            except psycopg.Error:
                return False

        wait_for(up, f"PostgreSQL on port {self.port} to accept connections", attempts=300, delay=0.1)

    def stop(self) -> None:
        self._ctl("-m", "immediate", "-w", "-t", "60", "stop", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


def start_pg_cluster(superuser_password: str | None = None) -> PgCluster:
    """initdb + start as user postgres; with `superuser_password`, TLS-only (see PgCluster)."""
    folder = shared_dir("ls-pg-", "postgres")
    tls = make_certificates(folder / "tls") if superuser_password is not None else None
    cluster = PgCluster(free_port(), folder, tls, superuser_password)
    try:
        auth = ["--auth=trust"]
        if tls is not None:
            auth = _tls_auth(folder, tls, superuser_password or "")
        subprocess.run(["runuser", "-u", "postgres", "--", pg_bin("initdb"), "-D", str(cluster.data), "-U", "postgres",
                        *auth], check=True, capture_output=True, timeout=120)
        (folder / "pw").unlink(missing_ok=True)
        conf = (f"\nlisten_addresses = '127.0.0.1,127.0.0.2'\nport = {cluster.port}\nunix_socket_directories = '{folder}'\n"
                "max_connections = 40\nshared_buffers = 16MB\nfsync = off\n")
        if tls is not None:
            (cluster.data / "pg_hba.conf").write_text(
                "local all all trust\n"
                "hostssl all all 127.0.0.0/8 scram-sha-256\n"
                "hostnossl all all 0.0.0.0/0 reject\n")
            conf += (f"ssl = on\nssl_cert_file = '{tls.cert}'\nssl_key_file = '{tls.key}'\n"
                     "password_encryption = 'scram-sha-256'\n")
        with open(cluster.data / "postgresql.conf", "a") as f:
            f.write(conf)
        cluster.start()
        cluster.execute("CREATE DATABASE test", dbname="postgres")
        return cluster
    except BaseException:
        cluster.stop()
        raise


def _tls_auth(folder: Path, tls: TLSFiles, password: str) -> list[str]:
    """Files readable by the server's user, and initdb's scram arguments."""
    for p in (tls.ca, tls.cert, tls.wrong_ca):
        p.chmod(0o644)
    shutil.chown(tls.key, "postgres", "postgres")
    tls.key.chmod(0o600)
    pwfile = folder / "pw"
    pwfile.write_text(password + "\n")
    shutil.chown(pwfile, "postgres", "postgres")
    return ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
