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
from lakeshift.config.models import ConnectionSettings, DuckDBTarget
from lakeshift.errors import LoadError, LockBusyError, one_line
from lakeshift.identifiers import quote_ansi
from lakeshift.load import arrowio, sql
from lakeshift.load.base import LoaderBase
from lakeshift.load.contracts import LoadContext, Part
from lakeshift.load.dialects import DuckDBTypes
from lakeshift.load.duckdb_files import open_file
from lakeshift.load.locking import busy_message, wait_loop
from lakeshift.load.naming import stage_name
from lakeshift.load.session import Session, translate_errors
from lakeshift.load.staged import StagedLoad
from lakeshift.load.strategies import MoveJob, TableFacts
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
        self.target = target
        self.path = Path(os.path.expanduser(target.path))
        super().__init__(target.schema_, f"DuckDB target {self.path}",
                         float(settings.default_timeout if lock_timeout is None else lock_timeout))
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
                holder.append(open_file(duckdb, self.path, self.schema))
                return True
            except Exception as exc:  # noqa: BLE001
                if not _is_lock_conflict(exc):
                    raise LoadError(redact(f"cannot open {self.describe}: {exc}")) from None
                last.append(exc)
                return False

        def waiting() -> None:
            log.warning("%s is open in another process (DuckDB allows one writer per file: %s); waiting up to "
                        "%gs for it to close", self.describe, one_line(str(last[-1])) if last else "", self.lock_timeout)

        if not wait_loop(self.lock_timeout, attempt, poll=0.25, on_wait=waiting):
            raise LockBusyError(f"{self.describe} is held by another process ({last[-1] if last else ''}); "
                                f"waited {self.lock_timeout:g}s")
        con = holder[0]
        # DuckDB may use 80% of the machine's memory by default, and a batch's staging
        # table grows with the table: bounded, it spills to <file>.tmp instead, and
        # memory stays flat (docs/benchmarks.md, finding 11).
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

            def waiting() -> None:
                log.warning("%s.%s: another lakeshift run is loading this table into %s; waiting up to %gs for it",
                            pipeline, table, self.describe, self.lock_timeout)

            if not wait_loop(self.lock_timeout, attempt, on_wait=waiting):
                raise LockBusyError(busy_message(pipeline, table, self.describe, self.schema, self.lock_timeout))
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
            raise LockBusyError(busy_message(pipeline, table, self.describe, self.schema, self.lock_timeout))
        try:
            yield
        finally:
            lock.release()

    def _begin(self, ctx: LoadContext, head: Manifest, target_table: str) -> StagedLoad:
        return StagedLoad(ctx, head, target_table, DuckDBStaging(ctx, head))

    def close(self) -> None:
        if self._memory is not None:  # files: nothing is kept open
            self._memory.close()
            self._memory = None


class DuckDBStaging:
    """The Staging (load/contracts.py) of DuckDB. A part handed over is only
    recorded: the file is opened once, at commit, for the whole transaction
    (staging a part while extracting would hold the file for the whole
    extraction), and the parts are scanned as Arrow streams into a TEMP table."""

    ordinal = True

    def __init__(self, ctx: LoadContext, head: Manifest) -> None:
        self.ctx = ctx
        self.name = stage_name(head)
        self.stage_sql = quote_ansi(self.name)
        self._sess: Session | None = None

    def accept(self, part: Part) -> None:
        pass

    def session(self) -> Session:
        if self._sess is None:
            self._sess = self.ctx.connect()
        return self._sess

    def fill(self, s: Session, manifest: Manifest, parts: Sequence[Part]) -> None:
        columns = manifest.columns
        base = pa.schema([pa.field(c.name, arrowio.parse_arrow(c.arrow_type)) for c in columns])
        schema = base.append(pa.field(sql.ORDINAL_COLUMN, pa.int64()))
        offset = 0
        for i, part in enumerate(sorted(parts, key=lambda p: _file_index(manifest, p.file.path))):
            failure: list[BaseException] = []
            reader = pa.RecordBatchReader.from_batches(schema, _with_ordinal(part, columns, base, offset, failure))
            verb = "INSERT INTO {} SELECT * FROM _ls_part" if i else "CREATE TEMP TABLE {} AS SELECT * FROM _ls_part"
            s.conn.register("_ls_part", reader)
            try:
                s.execute(verb.format(self.stage_sql))
            except BaseException:
                if failure:  # DuckDB wrapped the reader's own error in one of its own
                    raise failure[0] from None
                raise
            finally:
                try:
                    s.conn.unregister("_ls_part")
                except Exception:  # noqa: BLE001 - an aborted transaction refuses it; the error above matters
                    pass
            offset += part.file.rows

    def rows(self, s: Session) -> int:
        return int(s.query(sql.count_rows(self.stage_sql))[0][0])

    def facts(self, s: Session, job: MoveJob, known: TableFacts) -> TableFacts:
        return known

    def close(self) -> None:
        if self._sess is not None:
            self._sess.close()
            self._sess = None


def _with_ordinal(part: Part, columns: Any, base: pa.Schema, start: int,
                  failure: list[BaseException]) -> Iterator[pa.RecordBatch]:
    """The part's rows with _lakeshift_ord from `start` on; an error is kept in `failure`."""
    n = start
    try:
        for b in arrowio.read_part(part.path, part.filesystem, columns):
            yield arrowio.add_ordinal(arrowio.conform(b, base), n)
            n += b.num_rows
    except BaseException as exc:
        failure.append(exc)
        raise


def _file_index(manifest: Manifest, path: str) -> int:
    for i, f in enumerate(manifest.files):
        if f.path == path:
            return i
    return len(manifest.files)
