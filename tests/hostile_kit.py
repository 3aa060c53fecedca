"""Helpers for the hostile-input, exact-type and security suites:

- `Tgt`: a PostgreSQL schema or a DuckDB file as an end-to-end target, with
  row reads for comparisons and raw queries (counts, run history);
- a certificate authority and server certificates made with `cryptography`;
- throwaway servers the tests start and stop themselves: a MariaDB (optional
  TLS, an OS time zone of choice) and a PostgreSQL cluster (TLS, scram
  passwords) on free loopback ports;
- `RedshiftEmulator`: a recording fake Redshift connection for in-process
  syncs into an S3 lake; COPY is "run" by reading the COPY manifest the loader
  wrote to the S3 server and counting the Parquet rows it lists."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pymysql
import pyarrow.parquet as pq
from lake_profile_kit import assert_copy_accepts, staging_columns

from conftest import PG_DSN
from e2e_kit import duckdb_rows, duckdb_target, pg_rows, pg_target, qualify

# ---------------------------------------------------------------- targets


@dataclass
class Tgt:
    kind: str  # postgres | duckdb
    config: dict[str, Any]
    schema: str
    path: Path | None = None

    def rows(self, table: str, columns: list[str], order_by: str) -> list[tuple[Any, ...]]:
        if self.kind == "postgres":
            return pg_rows(self.schema, table, columns, order_by)
        assert self.path is not None
        return duckdb_rows(self.path, self.schema, table, columns, order_by)

    def raw_rows(self, table: str, columns: list[str], order_by: str) -> list[tuple[Any, ...]]:
        """The driver's own values, not normalised (decimals keep their scale)."""
        cols = ", ".join(f'"{c}"' for c in columns)
        return self.query(f"SELECT {cols} FROM {self.name(table)} ORDER BY {order_by}")

    def name(self, table: str) -> str:
        return f'{qualify(self.schema)}."{table}"'

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.kind == "postgres":
            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                return [tuple(r) for r in conn.execute(sql).fetchall()]
        assert self.path is not None
        con = duckdb.connect(str(self.path), read_only=True)
        try:
            return [tuple(r) for r in con.execute(sql).fetchall()]
        finally:
            con.close()

    def exists(self, table: str) -> bool:
        if self.kind == "postgres":
            return bool(self.query(f"SELECT 1 FROM information_schema.tables WHERE table_schema = '{self.schema}' "
                                   f"AND table_name = '{table}'"))
        if self.path is None or not self.path.exists():
            return False
        return bool(self.query(f"SELECT 1 FROM information_schema.tables WHERE table_schema = '{self.schema}' "
                               f"AND table_name = '{table}'"))

    def count(self, table: str, distinct: str | None = None) -> int:
        what = f"COUNT(DISTINCT {distinct})" if distinct else "COUNT(*)"
        return int(self.query(f"SELECT {what} FROM {self.name(table)}")[0][0])

    def runs(self) -> list[tuple[Any, ...]]:
        """(status, rows_extracted, rows_loaded, error) of every run, oldest first."""
        return self.query(f'SELECT "status", "rows_extracted", "rows_loaded", "error" FROM {self.name("_lakeshift_runs")} '
                          'ORDER BY "started_at", "finished_at"')

    def loads(self) -> list[tuple[Any, ...]]:
        """(batch_id, rows) of every loaded batch."""
        return self.query(f'SELECT "batch_id", "rows" FROM {self.name("_lakeshift_loads")} ORDER BY "batch_id"')


def make_tgt(kind: str, request: Any, tmp_path: Path, duck_schema: str = "lake") -> Tgt:
    if kind == "postgres":
        schema = request.getfixturevalue("pg_schema")
        return Tgt("postgres", pg_target(schema), schema)
    path = tmp_path / "target.duckdb"
    return Tgt("duckdb", duckdb_target(path, duck_schema), duck_schema, path)


def summary_extracted(output: str, table: str) -> int:
    """Rows extracted for `table` from the sync summary printed on stdout."""
    for line in output.splitlines():
        cells = [c.strip() for c in line.replace("│", "|").replace("┃", "|").split("|") if c.strip()]
        if len(cells) >= 3 and cells[0] == table and cells[1] in ("ok", "failed", "skipped"):
            return int(cells[2].replace(",", ""))
    raise AssertionError(f"no summary row for {table!r} in:\n{output}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], bool], attempts: int = 150, delay: float = 0.1) -> bool:
    for _ in range(attempts):
        if check():
            return True
        time.sleep(delay)
    return False


# ---------------------------------------------------------------- certificates


@dataclass
class TLSFiles:
    ca: Path  # the CA that signed the server certificate
    cert: Path
    key: Path
    wrong_ca: Path  # another CA: verification against it must fail


def make_certificates(folder: Path, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> TLSFiles:
    """A CA, a server certificate for `hosts` signed by it, and an unrelated CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)

    def key() -> Any:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def ca(name: str) -> tuple[Any, Any]:
        k = key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(k.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now)
                .not_valid_after(now + dt.timedelta(days=2))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                             crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(k.public_key()), critical=False)
                .sign(k, hashes.SHA256()))
        return k, cert

    ca_key, ca_cert = ca("lakeshift test CA")
    _, wrong_cert = ca("some other CA")
    server_key = key()
    sans: list[Any] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
              .issuer_name(ca_cert.subject).public_key(server_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now)
              .not_valid_after(now + dt.timedelta(days=2))
              .add_extension(x509.SubjectAlternativeName(sans), critical=False)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    files = TLSFiles(folder / "ca.pem", folder / "server.pem", folder / "server.key", folder / "wrong-ca.pem")
    files.ca.write_bytes(ca_cert.public_bytes(pem))
    files.wrong_ca.write_bytes(wrong_cert.public_bytes(pem))
    files.cert.write_bytes(server.public_bytes(pem))
    files.key.write_bytes(server_key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL,
                                                   serialization.NoEncryption()))
    return files


def _shared_dir(prefix: str, owner: str) -> Path:
    """A folder under /tmp the server's own OS user can use (pytest's tmp
    folders are private to root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    shutil.chown(path, owner, owner)
    return path


# ---------------------------------------------------------------- a throwaway MariaDB


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
    """mariadbd on a free loopback port with its own data folder, as user
    mysql; `tz` is the server's OS time zone (its time_zone stays SYSTEM).
    `server_args` are added to the server's command line; with a --log-bin
    among them the server keeps a binary log (else it runs without one).
    It listens on 127.0.0.1 and 127.0.0.2: the certificate (with `tls`) names
    only localhost and 127.0.0.1, so 127.0.0.2 is the same server under a
    name the certificate does not hold."""
    folder = _shared_dir("ls-mariadb-", "mysql")
    files = None
    args = []
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

        if not wait_until(up, attempts=300):
            raise RuntimeError("the throwaway MariaDB did not start: " + (folder / "server.log").read_text()[-2000:])
        return server
    except BaseException:
        server.stop()
        raise


# ---------------------------------------------------------------- a throwaway PostgreSQL cluster


@dataclass
class PostgresServer:
    port: int
    folder: Path
    tls: TLSFiles
    superuser_password: str
    host: str = "127.0.0.1"

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def dsn(self, **extra: Any) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "user": "postgres", "password": self.superuser_password,
                "dbname": "postgres", "sslmode": "verify-full", "sslrootcert": str(self.tls.ca), **extra}

    def execute(self, *statements: str) -> None:
        with psycopg.connect(**self.dsn(), autocommit=True) as conn:
            for s in statements:
                conn.execute(s)  # type: ignore[arg-type]

    def stop(self) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", _pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate",
                        "-w", "-t", "60", "stop"], capture_output=True, timeout=90)
        shutil.rmtree(self.folder, ignore_errors=True)


def _pg_bin(name: str) -> str:
    for base in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (base / name).exists():
            return str(base / name)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found")
    return found


def start_postgres(superuser_password: str) -> PostgresServer:
    """A PostgreSQL cluster on a free loopback port that only accepts TLS
    connections (`hostssl ... scram-sha-256`; plain TCP is rejected), on
    127.0.0.1 and on 127.0.0.2 (a name its certificate does not hold)."""
    folder = _shared_dir("ls-pg-", "postgres")
    tls = make_certificates(folder / "tls")
    server = PostgresServer(free_port(), folder, tls, superuser_password)
    started = False
    try:
        for p in (tls.ca, tls.cert, tls.wrong_ca):
            p.chmod(0o644)
        shutil.chown(tls.key, "postgres", "postgres")
        tls.key.chmod(0o600)
        pwfile = folder / "pw"
        pwfile.write_text(superuser_password + "\n")
        shutil.chown(pwfile, "postgres", "postgres")
        subprocess.run(["runuser", "-u", "postgres", "--", _pg_bin("initdb"), "-D", str(server.data), "-U", "postgres",
                        "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"],
                       check=True, capture_output=True, timeout=120)
        pwfile.unlink()
        (server.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            "hostssl all all 127.0.0.0/8 scram-sha-256\n"
            "hostnossl all all 0.0.0.0/0 reject\n")
        with open(server.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nlisten_addresses = '127.0.0.1,127.0.0.2'\nport = {server.port}\nunix_socket_directories = '{folder}'\n"
                       f"ssl = on\nssl_cert_file = '{tls.cert}'\nssl_key_file = '{tls.key}'\n"
                       "password_encryption = 'scram-sha-256'\nmax_connections = 40\nshared_buffers = 16MB\n"
                       "fsync = off\n")
        subprocess.run(["runuser", "-u", "postgres", "--", _pg_bin("pg_ctl"), "-D", str(server.data), "-l",
                        str(folder / "server.log"), "-w", "-t", "60", "start"], check=True, capture_output=True,
                       timeout=90)
        started = True
        return server
    except BaseException:
        if started:
            server.stop()
        else:
            shutil.rmtree(folder, ignore_errors=True)
        raise


# ---------------------------------------------------------------- a fake Redshift for in-process syncs


class RedshiftEmulator:
    """Records every statement (and its parameters) of every connection the
    Redshift loader opens; answers catalogue/state queries as for an empty
    cluster; COPY counts the rows of the Parquet files its manifest lists."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self.log: list[tuple[str, tuple[Any, ...] | None]] = []
        self.staged = 0
        self.copy_error: str | None = None  # set: COPY fails like Redshift, echoing the statement ({statement})

    def statements(self) -> list[str]:
        return [s for s, _ in self.log]

    def connect(self) -> Any:
        return _FakeConn(self)

    def _copy(self, statement: str) -> None:
        url = statement.split(" FROM '", 1)[1].split("'", 1)[0]
        bucket, key = url[len("s3://"):].split("/", 1)
        manifest = json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        stage = statement.split(" ", 2)[1]
        create = [s for s in self.statements() if s.startswith(f"CREATE TEMP TABLE {stage} (")][-1]
        rows = 0
        for entry in manifest["entries"]:
            b, k = entry["url"][len("s3://"):].split("/", 1)
            body = self.s3.get_object(Bucket=b, Key=k)["Body"].read()
            assert len(body) == entry["meta"]["content_length"]
            import io

            part = pq.ParquetFile(io.BytesIO(body))
            assert_copy_accepts(staging_columns(create), part.schema, entry["url"])
            rows += part.metadata.num_rows
        self.staged = rows

    def respond(self, statement: str, params: Any) -> tuple[list[tuple[Any, ...]], int]:
        self.log.append((statement, tuple(params) if params is not None else None))
        if statement.startswith("COPY "):
            if self.copy_error is not None:
                import psycopg

                raise psycopg.errors.InternalError_(self.copy_error.format(statement=statement))
            self._copy(statement)
            return [], self.staged
        if "information_schema.columns" in statement:
            return [], -1
        if statement.startswith("SELECT COUNT(*) FROM stv_sessions"):
            return [(0,)], 1
        if statement.startswith("SELECT COUNT(*)"):
            return [(self.staged,)], 1
        if statement.startswith("SELECT"):
            return [], -1
        if statement.startswith("INSERT INTO") and " SELECT " in statement:
            return [], self.staged
        return [], 0


class _FakeCursor:
    def __init__(self, db: RedshiftEmulator) -> None:
        self.db, self.rows, self.rowcount = db, [], -1

    def execute(self, statement: str, params: Any = None) -> None:
        self.rows, self.rowcount = self.db.respond(statement, params)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows

    def close(self) -> None:
        pass


class _FakeConn:
    closed = False
    broken = False

    def __init__(self, db: RedshiftEmulator) -> None:
        self.db = db

    def cursor(self) -> _FakeCursor:
        return _FakeCursor(self.db)

    def close(self) -> None:
        pass


def redshift_config(**extra: Any) -> dict[str, Any]:
    return {"type": "redshift", "host": "rs.invalid", "database": "dev", "username": "loader",
            "schema": "analytics", **extra}


def patch_redshift(monkeypatch: Any, emulator: RedshiftEmulator) -> None:
    """Every Redshift loader of this process talks to `emulator`."""
    from lakeshift.load.redshift import RedshiftLoader

    monkeypatch.setattr(RedshiftLoader, "_raw_connect", lambda self: emulator.connect())


def s3_client(endpoint: str) -> Any:
    import boto3

    from conftest import TEST_AWS_KEY, TEST_AWS_SECRET

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=TEST_AWS_KEY,
                        aws_secret_access_key=TEST_AWS_SECRET, region_name="us-east-1")


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative path -> content)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def iter_files(folder: Path) -> Iterator[Path]:
    yield from (p for p in sorted(folder.rglob("*")) if p.is_file())
