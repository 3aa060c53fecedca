"""PostgreSQL staging: each part is bulk-loaded with binary COPY through ADBC
as soon as it is handed over, while the batch is still being extracted (a
streamed part: its rows as the extract writes them). The commit then only
moves rows that are already in the database.

The staging table is guarded by a session advisory lock held by its own
session (pg_locks.py): a staging table whose lock is free belongs to a run
that died and is dropped by the next `ensure_state_tables`. A replace batch
whose columns all COPY straight into their target types is staged in those
types, in a logged table, so the commit can swap it in (strategies/swap.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pyarrow as pa

from lakeshift.batch import Column, Manifest
from lakeshift.errors import LoadError
from lakeshift.identifiers import qualified_ansi
from lakeshift.load import arrowio, sql
from lakeshift.load.contracts import LoadContext, Part
from lakeshift.load.naming import stage_name
from lakeshift.load.pg_catalog import read_facts
from lakeshift.load.pg_locks import STAGE_LOCKS, LiveStages, advisory_key
from lakeshift.load.session import Session, translate_errors
from lakeshift.load.strategies import MoveJob, TableFacts
from lakeshift.load.types import classify, postgres_staging_type

# Lake kinds whose ADBC binary COPY lands in the target's own column type (no cast in SQL)
_SWAP_KINDS = frozenset({"int", "uint", "bool", "numeric", "float", "date", "timestamp", "timestamptz", "text", "bytes"})


def swappable(mode: str, columns: list[Column]) -> bool:
    """A replace batch of only such columns can be staged in the target's types and swapped in."""
    return mode == "replace" and all(classify(c).kind in _SWAP_KINDS for c in columns)


class PgStaging:
    """The StreamingStaging (load/contracts.py) of PostgreSQL."""

    def __init__(self, ctx: LoadContext, head: Manifest, target_table: str, *, adbc_connect: Callable[[], Any],
                 live: LiveStages) -> None:
        self.ctx, self.head, self.target_table = ctx, head, target_table
        self.name = stage_name(head)
        self.stage_sql = qualified_ansi(ctx.schema, self.name)
        self.swap = swappable(head.mode, head.columns)
        self.ordinal = not self.swap
        self._key = advisory_key(STAGE_LOCKS, ctx.schema, self.name)
        self._adbc_connect, self._live = adbc_connect, live
        self._sess: Session | None = None
        self._adbc: Any = None
        self._created = False
        self._closed = False
        self._rows = 0
        self._staged_xid: int | None = None  # the newest transaction that COPYed rows into staging
        self._ingest_lock = threading.Lock()

    # -- the parts
    def accept(self, part: Part) -> None:
        """Binary COPY of the part, read from the lake, into staging right away."""
        rows = self.copy_batches(arrowio.read_part(part.path, part.filesystem, self.head.columns),
                                 f"COPY of {part.path}")
        _check_rows(part, rows)

    def accept_stream(self, batches: Iterable[pa.RecordBatch], part: Callable[[], Part]) -> Part:
        where = "COPY of a part being written"
        rows = self.copy_batches(self._checked(batches, where), where)
        done = part()
        _check_rows(done, rows)
        return done

    def _checked(self, batches: Iterable[pa.RecordBatch], where: str) -> Iterator[pa.RecordBatch]:
        first = True
        for b in batches:
            if first:
                arrowio.check_schema(b.schema, self.head.columns, where)
                first = False
            yield b

    # -- the commit's side
    def session(self) -> Session:
        if self._sess is None:
            self._sess = self.ctx.connect()
        return self._sess

    def fill(self, s: Session, manifest: Manifest, parts: Iterable[Part]) -> None:
        pass  # every part was COPYed when it was handed over

    def rows(self, s: Session) -> int:
        return self._rows

    def facts(self, s: Session, job: MoveJob, known: TableFacts) -> TableFacts:
        return read_facts(s, job, known, swap_staged=self.swap, staged_xid=self._staged_xid)

    def close(self) -> None:
        self._closed = True  # without the ingest lock: a COPY still running must not block an abort
        if self._adbc is not None:
            try:
                self._adbc.close()
            except Exception:  # noqa: BLE001
                pass
            self._adbc = None
        if self._sess is not None:
            try:
                if self._created:
                    self._sess.execute(sql.drop_table(self.stage_sql))
                    self._sess.query("SELECT pg_advisory_unlock(%s, %s)", self._key)
            finally:
                self._sess.close()
                self._sess = None
                self._live.discard(self.name)

    # -- the COPY
    def _ingest_schema(self) -> pa.Schema:
        schema = arrowio.postgres_schema(self.head.columns)
        return schema if self.ordinal else schema.remove(len(schema) - 1)

    def _create_stage(self) -> None:
        s = self.session()
        # The lock first: a staging table is never visible without its owner's lock.
        s.query("SELECT pg_advisory_lock(%s, %s)", self._key)
        self._live.add(self.name)
        s.execute(sql.create_schema(self.ctx.schema))
        s.execute(sql.drop_table(self.stage_sql))  # a leftover of this very batch from a killed run
        if self.swap:  # it may become the target: logged, in the target's own types
            dialect = self.ctx.dialect
            cols = [(c.name, dialect.render(dialect.target_type(c))) for c in self.head.columns]
            s.execute(sql.create_table(self.ctx.schema, self.name, cols))
        else:
            cols = [(f.name, postgres_staging_type(f.type)) for f in self._ingest_schema()]
            s.execute(sql.create_table(self.ctx.schema, self.name, cols, unlogged=True))
        self._created = True

    def copy_batches(self, batches: Iterable[pa.RecordBatch], what: str) -> int:
        """COPY lake-schema record batches into staging (no Python per row); returns the rows copied."""
        with self._ingest_lock:
            if self._closed:
                raise LoadError(f"batch {self.head.batch_id}: COPY after commit/abort")
            if not self._created:
                self._create_stage()
            if self._adbc is None:
                self._adbc = self._adbc_connect()
            copied: list[int] = [0]
            failure: list[BaseException] = []
            reader = pa.RecordBatchReader.from_batches(self._ingest_schema(), self._converted(batches, copied, failure))
            try:
                rows = self._ingest(reader, what)
            except BaseException:
                try:
                    self._adbc.rollback()
                except Exception:  # noqa: BLE001
                    pass
                if failure:  # ADBC replaced the reader's own error with a generic one
                    raise failure[0] from None
                raise
            if rows is not None and rows >= 0 and rows != copied[0]:
                raise LoadError(f"{what}: PostgreSQL took {rows} rows of {copied[0]}")
            self._rows += copied[0]
            return copied[0]

    def _converted(self, batches: Iterable[pa.RecordBatch], copied: list[int],
                   failure: list[BaseException]) -> Iterator[pa.RecordBatch]:
        """The batches as ADBC can COPY them; counts them in `copied`, keeps an error in `failure`."""
        columns, schema, start = self.head.columns, self._ingest_schema(), self._rows
        try:
            for b in batches:
                if not b.num_rows:
                    continue
                out = arrowio.for_postgres(b, columns, self.target_table)
                if self.ordinal:
                    out = arrowio.add_ordinal(out, start + copied[0])
                copied[0] += b.num_rows
                yield arrowio.conform(out, schema)
        except BaseException as exc:
            failure.append(exc)
            raise

    def _ingest(self, reader: pa.RecordBatchReader, what: str) -> int | None:
        with translate_errors(f"{self.ctx.describe}: {what} into staging"):
            cur = self._adbc.cursor()
            try:
                rows = cur.adbc_ingest(self.name, reader, mode="append", db_schema_name=self.ctx.schema)
                if self.swap:  # which snapshots can see these rows (see pg_catalog._old_snapshots)
                    cur.execute("SELECT txid_current()")
                    self._staged_xid = max(self._staged_xid or 0, int(cur.fetchone()[0]))
            finally:
                cur.close()
            self._adbc.commit()
        return rows


def _check_rows(part: Part, rows: int) -> None:
    if rows != part.file.rows:
        raise LoadError(f"part {part.path}: {rows} rows copied but the batch says {part.file.rows}")
