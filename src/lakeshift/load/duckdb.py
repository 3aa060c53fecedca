"""DuckDB target, the embedded default. Parts are read with pyarrow through the
lake's filesystem (S3 works without DuckDB's httpfs extension) and scanned by
DuckDB as Arrow streams into a TEMP staging table inside the batch's one
transaction.

A DuckDB file can be open for writing in one process only, so the loader opens
it per operation (state queries, one batch commit) and closes it right after;
another process waiting for the file retries until the lock timeout."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

from lakeshift.batch import Manifest
from lakeshift.config.models import ConnectionSettings, DuckDBTarget, TableConfig
from lakeshift.errors import LoadError, LockBusyError
from lakeshift.identifiers import quote_ansi
from lakeshift.load import arrowio, sql
from lakeshift.load.base import LoaderBase, Session, StagedLoadBase, translate_errors, wait_loop
from lakeshift.load.types import DuckDBTypes
from lakeshift.redact import redact

log = logging.getLogger("lakeshift.load")
DUCKDB_MEMORY_LIMIT = "128MB"  # per process, for lakeshift's own DuckDB connections to a target file


class DuckDBSession(Session):
    placeholder = "?"

    def execute(self, statement: str, params: Sequence[Any] | None = None) -> int:
        with translate_errors(self.describe):
            result = self.conn.execute(statement, params) if params is not None else self.conn.execute(statement)
            try:
                rows = result.fetchall()
            except Exception:  # noqa: BLE001 - statements without a result
                return -1
            if len(rows) == 1 and len(rows[0]) == 1 and isinstance(rows[0][0], int):
                return rows[0][0]  # DML returns its row count
            return -1

    def query(self, statement: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        with translate_errors(self.describe):
            result = self.conn.execute(statement, params) if params is not None else self.conn.execute(statement)
            return [tuple(r) for r in result.fetchall()]


def _is_lock_conflict(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set lock" in text)


class DuckDBLoader(LoaderBase):
    dialect = DuckDBTypes()

    def __init__(self, target: DuckDBTarget, settings: ConnectionSettings, *,
                 connection_factory: Callable[[], Any] | None = None, lock_timeout: float | None = None) -> None:
        super().__init__()
        self.target = target
        self.path = Path(os.path.expanduser(target.path))
        self.schema = target.schema_
        self.describe = f"DuckDB target {self.path}"
        self.lock_timeout = float(settings.default_timeout if lock_timeout is None else lock_timeout)
        self._factory = connection_factory
        self._memory: Any = None  # ":memory:" lives as long as the loader: one database, a cursor per use
        self._memory_locks: dict[tuple[str, str], threading.Lock] = {}
        if target.path == ":memory:":
            import duckdb

            self._memory = duckdb.connect(":memory:")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def connect(self) -> DuckDBSession:
        """Open the file, waiting while another process has it open."""
        import duckdb

        if self._factory:
            return DuckDBSession(self._factory(), self.describe)
        if self._memory is not None:
            return DuckDBSession(self._memory.cursor(), self.describe)
        holder: list[Any] = []
        last: list[BaseException] = []

        def attempt() -> bool:
            try:
                holder.append(_open_file(duckdb, self.path, self.schema))
                return True
            except Exception as exc:  # noqa: BLE001
                if not _is_lock_conflict(exc):
                    raise LoadError(redact(f"cannot open {self.describe}: {exc}")) from None
                last.append(exc)
                return False

        if not wait_loop(self.lock_timeout, attempt, poll=0.25):
            raise LockBusyError(f"{self.describe} is held by another process ({last[-1] if last else ''}); "
                                f"waited {self.lock_timeout:g}s")
        con = holder[0]
        # DuckDB may use 80% of the machine's memory by default, and a batch's staging
        # table grew with the table (740 MB for 2M rows): bounded, it spills to
        # <file>.tmp instead, and memory stays flat (docs/benchmarks.md).
        con.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
        return DuckDBSession(con, self.describe)

    @contextmanager
    def _using(self) -> Iterator[Session]:
        s = self.connect()
        try:
            yield s
        finally:
            s.close()

    def _main(self) -> Session:  # pragma: no cover - DuckDB never keeps a session open
        raise NotImplementedError

    def lock_path(self, pipeline: str, table: str) -> Path:
        digest = hashlib.sha256(f"{self.path.resolve()}\x1f{self.schema}\x1f{pipeline}\x1f{table}".encode()).hexdigest()[:24]
        return self.path.with_name(self.path.name + ".locks") / f"{digest}.lock"

    @contextmanager
    def lock(self, pipeline: str, table: str) -> Iterator[None]:
        """flock on a file next to the database: released when the block ends or
        the process dies. flock locks belong to the open file, so two loaders in
        one process exclude each other too."""
        if self._memory is not None:  # a private database: only this loader's threads can load into it
            with self._memory_lock(pipeline, table):
                yield
            return
        path = self.lock_path(pipeline, table)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            def attempt() -> bool:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    return False

            if not wait_loop(self.lock_timeout, attempt):
                raise LockBusyError(f"{pipeline}.{table}: another lakeshift run is loading this table into "
                                    f"{self.describe} (schema {self.schema}); waited {self.lock_timeout:g}s for it "
                                    "to finish. Try again when it is done.")
            try:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()} {pipeline}.{table}\n".encode())
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @contextmanager
    def _memory_lock(self, pipeline: str, table: str) -> Iterator[None]:
        with self._mutex:
            lock = self._memory_locks.setdefault((pipeline, table), threading.Lock())
        if not lock.acquire(timeout=self.lock_timeout):
            raise LockBusyError(f"{pipeline}.{table}: another load into {self.describe} holds this table; "
                                f"waited {self.lock_timeout:g}s")
        try:
            yield
        finally:
            lock.release()

    def begin(self, manifest_head: Manifest, target_table: str, table_cfg: TableConfig) -> DuckDBStagedLoad:
        return DuckDBStagedLoad(self, manifest_head, target_table, table_cfg)

    def close(self) -> None:
        if self._memory is not None:  # files: nothing is kept open
            self._memory.close()
            self._memory = None


class DuckDBStagedLoad(StagedLoadBase):
    """add_part only records the part: the file is opened once, at commit, for
    the whole transaction (staging a part while extracting would hold the
    file for the whole extraction)."""

    loader: DuckDBLoader

    def __init__(self, loader: DuckDBLoader, head: Manifest, target_table: str, table_cfg: TableConfig) -> None:
        super().__init__(loader, head, target_table, table_cfg)
        self.name = "_ls_stage_" + hashlib.sha256(
            f"{head.pipeline}\x1f{head.table}\x1f{head.batch_id}".encode()).hexdigest()[:24]
        self._sess: DuckDBSession | None = None

    @property
    def stage_sql(self) -> str:
        return quote_ansi(self.name)

    def _session(self) -> Session:
        if self._sess is None:
            self._sess = self.loader.connect()
        return self._sess

    def _stage_in_transaction(self, s: Session, manifest: Manifest) -> None:
        columns = manifest.columns
        base = pa.schema([pa.field(c.name, arrowio.parse_arrow(c.arrow_type)) for c in columns])
        schema = base.append(pa.field(sql.ORDINAL_COLUMN, pa.int64()))
        created = False
        offset = 0
        for part in sorted(self.parts, key=lambda p: _file_index(manifest, p.file.path)):
            failure: list[BaseException] = []

            def batches(part: Any = part, start: int = offset, failure: list[BaseException] = failure
                        ) -> Iterator[pa.RecordBatch]:
                n = start
                try:
                    for b in arrowio.read_part(part.path, part.filesystem, columns):
                        yield arrowio.add_ordinal(arrowio.conform(b, base), n)
                        n += b.num_rows
                except BaseException as exc:  # DuckDB would wrap it in its own error
                    failure.append(exc)
                    raise

            reader = pa.RecordBatchReader.from_batches(schema, batches())
            s.conn.register("_ls_part", reader)
            try:
                verb = "INSERT INTO {} SELECT * FROM _ls_part" if created else "CREATE TEMP TABLE {} AS SELECT * FROM _ls_part"
                s.execute(verb.format(self.stage_sql))
                created = True
            except BaseException:
                if failure:
                    raise failure[0] from None
                raise
            finally:
                try:
                    s.conn.unregister("_ls_part")
                except Exception:  # noqa: BLE001 - an aborted transaction refuses it; the error above matters
                    pass
            offset += part.file.rows

    def _staged_rows(self, s: Session) -> int:
        return int(s.query(sql.count_rows(self.stage_sql))[0][0])

    def _cleanup(self) -> None:
        if self._sess is not None:
            self._sess.close()
            self._sess = None


def _file_index(manifest: Manifest, path: str) -> int:
    for i, f in enumerate(manifest.files):
        if f.path == path:
            return i
    return len(manifest.files)


_shared_lock = threading.Lock()
_shared: dict[str, list[Any]] = {}  # resolved path -> [hub connection, sessions open]


def _catalog(schema: str) -> str:
    return "lakeshift_target" if schema.casefold() != "lakeshift_target" else "lakeshift_target_db"


class _SharedFileConnection:
    """A connection to a DuckDB file attached once per process. DuckDB refuses
    to attach one file twice in one process ("already attached"), so parallel
    tables share one in-memory hub with the file attached, each through its
    own cursor (own transaction, TEMP tables and registrations); the file is
    detached and closed with its last session, so another process can open it."""

    def __init__(self, key: str, cursor: Any) -> None:
        self._key, self._cursor, self._closed = key, cursor, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def execute(self, *args: Any) -> Any:
        return self._cursor.execute(*args)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._cursor.close()
        finally:
            with _shared_lock:
                entry = _shared.get(self._key)
                if entry is not None:
                    entry[1] -= 1
                    if entry[1] <= 0:
                        del _shared[self._key]
                        entry[0].close()


def _open_file(duckdb: Any, path: Path, schema: str) -> Any:
    """Open the target file. DuckDB names the file's catalog after its stem,
    so a target schema with the same name (shop.duckdb + schema shop) makes
    every `"shop"."t"` ambiguous: only then is the file attached under a fixed
    catalog name instead, through one attachment shared by this process
    (see _SharedFileConnection). Otherwise a plain connect, which shares
    DuckDB's per-process instance with anything else that has the file open."""
    if path.stem.casefold() != schema.casefold():
        con = duckdb.connect(str(path))
        catalog = con.execute("SELECT current_database()").fetchone()[0]
        if catalog.casefold() != schema.casefold():
            return con
        con.close()
    catalog = _catalog(schema)
    key = f"{path.resolve()}\x1f{catalog}"
    with _shared_lock:
        entry = _shared.get(key)
        if entry is None:
            hub = duckdb.connect(":memory:")
            try:
                literal = str(path).replace("'", "''")
                hub.execute(f"ATTACH '{literal}' AS \"{catalog}\"")
            except BaseException:
                hub.close()
                raise
            entry = _shared[key] = [hub, 0]
        cur = entry[0].cursor()
        entry[1] += 1
    con = _SharedFileConnection(key, cur)
    try:
        cur.execute(f'USE "{catalog}"')
    except BaseException:
        con.close()
        raise
    return con
