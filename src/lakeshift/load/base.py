"""What every target shares: a thin SQL session, schema evolution, and the
one-transaction commit of a batch (staging -> merge/replace/append -> load
record). Target modules only say how rows reach staging and how to connect."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pyarrow.fs as pafs

from lakeshift import faults
from lakeshift.batch import BatchFile, Column, Cursor, Manifest
from lakeshift.batch_state import SKIPPED_MODE
from lakeshift.config.models import TableConfig
from lakeshift.errors import LakeshiftError, LoadError, SchemaChangeError
from lakeshift.identifiers import check_identifier, qualified_ansi, quote_ansi
from lakeshift.load import sql
from lakeshift.load.state import (
    ERROR_MAX_CHARS,
    NOTE_MAX_CHARS,
    NOTES_MAX_CHARS,
    LoadRecord,
    LoadResult,
    RunRecord,
    as_utc,
    cursor_to_text,
    load_record_from_row,
    run_record_from_row,
)
from lakeshift.load.types import TType, TypeDialect, compare
from lakeshift.redact import redact

log = logging.getLogger("lakeshift.load")
_QUOTED = re.compile(r'"[^"]*"')  # a quoted identifier (identifiers never contain '"')

# ---------------------------------------------------------------- sessions


class Session:
    """Statements on one DB-API connection in autocommit mode; transactions are
    explicit BEGIN/COMMIT/ROLLBACK statements, so what is sent is what a test
    (or Redshift) sees."""

    placeholder = "%s"

    def __init__(self, conn: Any, describe: str) -> None:
        self.conn = conn
        self.describe = describe

    @staticmethod
    def _prepare(statement: str, params: Sequence[Any] | None) -> str:
        """With parameters, psycopg reads every % as a placeholder: double the
        ones inside quoted identifiers (a column may be called "rate %")."""
        if params is None or "%" not in statement:
            return statement
        return _QUOTED.sub(lambda m: m.group(0).replace("%", "%%"), statement)

    def _run(self, cur: Any, statement: str, params: Sequence[Any] | None) -> None:
        if params is None:
            cur.execute(statement)
        else:
            cur.execute(self._prepare(statement, params), params)

    def execute(self, statement: str, params: Sequence[Any] | None = None) -> int:
        with translate_errors(self.describe):
            cur = self.conn.cursor()
            try:
                self._run(cur, statement, params)
                return getattr(cur, "rowcount", -1)
            finally:
                cur.close()

    def query(self, statement: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        with translate_errors(self.describe):
            cur = self.conn.cursor()
            try:
                self._run(cur, statement, params)
                return [tuple(r) for r in cur.fetchall()]
            finally:
                cur.close()

    def begin(self) -> None:
        self.execute("BEGIN")

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        """Best effort: the connection may already be gone."""
        try:
            self.execute("ROLLBACK")
        except Exception as exc:  # noqa: BLE001
            log.debug("rollback failed: %s", redact(str(exc)))

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass


@contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Driver errors become LoadError with secrets removed (and the original,
    which may quote a DSN or a COPY with keys, dropped); ours pass through."""
    try:
        yield
    except LakeshiftError:
        raise
    except Exception as exc:
        err = LoadError(redact(f"{what}: {_first_lines(exc)}"))
        err.sqlstate = getattr(exc, "sqlstate", None)  # type: ignore[attr-defined]
        try:  # the original stays reachable as __context__ (never printed: `from None`); scrub it anyway
            exc.args = tuple(redact(str(a)) for a in exc.args)
        except Exception:  # noqa: BLE001
            pass
        raise err from None


def _first_lines(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(line.strip() for line in text.splitlines()[:3] if line.strip())


# ---------------------------------------------------------------- schema evolution


@dataclass
class TablePlan:
    """How the target table must change before this batch goes in."""

    exists: bool
    create: str | None = None
    before_transaction: list[str] = field(default_factory=list)  # Redshift: ALTER COLUMN TYPE
    in_transaction: list[str] = field(default_factory=list)
    types: dict[str, TType] = field(default_factory=dict)  # column -> type the target holds after the plan
    recreate: str = ""  # a replace batch the table's types cannot take: why it is dropped and created again


def plan_table(dialect: TypeDialect, schema: str, table: str, manifest: Manifest,
               existing: list[tuple[Any, ...]], *, primary_key: bool) -> TablePlan:
    """Compare the batch's columns with the target's (from information_schema).
    New columns are added, safe widenings applied, anything else refused with
    the way out -- except for a replace batch (full_sync), which replaces every
    row anyway: the table is then recreated with the new types. Columns only in
    the target are left alone (NULL for new rows)."""
    wanted = [(c, dialect.target_type(c)) for c in manifest.columns]
    append = manifest.mode == "append"
    if not existing:
        return _create_plan(dialect, schema, table, manifest, wanted, primary_key)
    have = {dialect.fold(r[0]): dialect.parse(r[1], r[2], r[3], r[4]) for r in existing}
    plan = TablePlan(True)
    incompatible = []
    for col, new in wanted:
        old = have.get(dialect.fold(col.name))
        if old is None:
            plan.in_transaction.append(sql.add_column(schema, table, col.name, dialect.render(new)))
            plan.types[col.name] = new
            continue
        change = compare(old, new)
        if change == "same":
            plan.types[col.name] = old
        elif change == "widen" and dialect.can_widen(old, new):
            stmt = sql.alter_column_type(schema, table, col.name, dialect.render(new))
            (plan.in_transaction if dialect.widen_in_transaction else plan.before_transaction).append(stmt)
            plan.types[col.name] = new
        elif manifest.mode == "replace":
            incompatible.append(f"column {col.name!r} {dialect.render(old)} -> {dialect.render(new)}")
        else:
            raise schema_change_error(dialect, schema, table, col.name, dialect.render(old), dialect.render(new),
                                      col.mysql_type, change, manifest)
    if incompatible:
        recreated = _create_plan(dialect, schema, table, manifest, wanted, primary_key)
        recreated.recreate = ", ".join(incompatible)
        return recreated
    if append and dialect.fold(sql.BATCH_ID_COLUMN) not in have:
        plan.in_transaction.append(
            sql.add_column(schema, table, sql.BATCH_ID_COLUMN, dialect.render(TType("text", 128))))
    return plan


def _create_plan(dialect: TypeDialect, schema: str, table: str, manifest: Manifest,
                 wanted: list[tuple[Column, TType]], primary_key: bool) -> TablePlan:
    cols = [(c.name, dialect.render(t)) for c, t in wanted]
    if manifest.mode == "append":
        cols.append((sql.BATCH_ID_COLUMN, dialect.render(TType("text", 128))))
    key = manifest.primary_key if primary_key and manifest.mode != "append" else ()
    return TablePlan(False, sql.create_table(schema, table, cols, key), types={c.name: t for c, t in wanted})


def schema_change_error(dialect: TypeDialect, schema: str, table: str, column: str, old: str, new: str,
                        mysql_type: str, change: str, manifest: Manifest) -> SchemaChangeError:
    why = ("a widening Redshift cannot apply in place (it can only widen VARCHAR)" if change == "widen"
           else "not a safe widening")
    return SchemaChangeError(
        f"{dialect.name} table {schema}.{table}: column {column!r} is {old} but the source now needs {new} "
        f"(MySQL {mysql_type}, batch {manifest.batch_id}); {why}, so the batch was not loaded. "
        + (f"Way out: drop the target table {schema}.{table} and sync again: the full_sync rebuilds it"
           if manifest.strategy == "full_sync" else
           f"Way out: drop the target table {schema}.{table}, run `lakeshift watermark reset -p {manifest.pipeline} "
           f"-t {manifest.table}` so the next run re-reads every row like a full_sync, and sync again")
        + " (or change the column in the target yourself and run again)."
    )


# ---------------------------------------------------------------- loaders


@dataclass
class Part:
    path: str
    filesystem: pafs.FileSystem
    uri: str
    file: BatchFile


class LoaderBase:
    """The API the engine uses (see lakeshift.load.__init__)."""

    dialect: TypeDialect
    schema: str
    describe: str  # "PostgreSQL target host:port/db" for messages
    lock_timeout: float
    create_primary_key = False

    def __init__(self) -> None:
        self._mutex = threading.RLock()  # the main session is shared by the engine's threads
        self._state_ready = False

    # -- to implement
    def _main(self) -> Session:
        """The loader's own session for state queries (kept open)."""
        raise NotImplementedError

    @contextmanager
    def _using(self) -> Iterator[Session]:
        """A session for one state operation; DuckDB overrides this to open the
        file only for the operation (another process may need it between)."""
        with self._mutex:
            yield self._main()

    def lock(self, pipeline: str, table: str) -> AbstractContextManager[None]:
        raise NotImplementedError

    def begin(self, manifest_head: Manifest, target_table: str, table_cfg: TableConfig) -> StagedLoadBase:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # -- shared
    def _state_ddl(self) -> list[str]:
        return [sql.create_schema(self.schema), *sql.state_tables(self.schema)]

    def ensure_state_tables(self) -> None:
        with self._using() as s:
            for stmt in self._state_ddl():
                _retry_ddl(s, stmt)
            self._migrate_state(s)
        self._state_ready = True

    def _state_columns(self, s: Session) -> dict[str, set[str]]:
        """State table -> its column names (lower case); a table not there yet is left out."""
        present: dict[str, set[str]] = {}
        for table, column in s.query(sql.state_columns(s.placeholder),
                                     (self.dialect.catalog_name(self.schema), sql.LOADS_TABLE, sql.RUNS_TABLE)):
            present.setdefault(str(table).lower(), set()).add(str(column).lower())
        return present

    def _migrate_state(self, s: Session) -> None:
        """Add the state columns a target made by an older release lacks. Two runs may
        race: an ALTER that fails while the column now exists lost that race, harmlessly."""
        for stmt in sql.state_migrations(self.schema, self._state_columns(s)):
            try:
                s.execute(stmt)
                log.info("%s: %s", self.describe, stmt)
            except LoadError:
                if stmt in sql.state_migrations(self.schema, self._state_columns(s)):
                    raise

    def _state_gaps(self, s: Session) -> dict[str, list[str]] | None:
        """For reads that create nothing: None when the state tables do not exist yet,
        else per table the added columns it still lacks (read as NULL until a run adds them)."""
        if self._state_ready:
            return {}
        present = self._state_columns(s)
        if sql.LOADS_TABLE not in present:
            return None
        return {t: [c for table, c, _ in sql.ADDED_STATE_COLUMNS if table == t and c not in cols]
                for t, cols in present.items()}

    def loaded_batches(self, pipeline: str, table: str) -> dict[str, LoadRecord]:
        """Batches recorded in the target: loaded, or skipped (mode 'skipped').
        Creates nothing (dry runs call this)."""
        with self._using() as s:
            gaps = self._state_gaps(s)
            if gaps is None:
                return {}
            rows = s.query(sql.select_loads(self.schema, s.placeholder, absent=gaps.get(sql.LOADS_TABLE, [])),
                           (pipeline, table))
            return {r[2]: load_record_from_row(r) for r in rows}

    def record_skip(self, manifest: Manifest, pipeline: str, table: str, target_table: str,
                    reason: str) -> LoadRecord:
        """Record a batch as skipped (mode 'skipped', 0 rows, the reason), so no run
        loads it; its files stay in the lake. Call under `lock()`. A batch already
        recorded (loaded or skipped) is refused, checked inside the transaction."""
        if not self._state_ready:
            self.ensure_state_tables()
        m = manifest
        params = (pipeline, table, m.batch_id, target_table, SKIPPED_MODE, 0, 0, 0, cursor_to_text(m.watermark_low),
                  cursor_to_text(m.watermark_high), datetime.now(timezone.utc), redact(reason)[:NOTE_MAX_CHARS])
        with self._using() as s:
            s.begin()
            try:
                if s.query(sql.select_loads(self.schema, s.placeholder, batch=True), (pipeline, table, m.batch_id)):
                    raise LoadError(f"{pipeline}.{table}: batch {m.batch_id} is already recorded in "
                                    f"{self.schema}.{sql.LOADS_TABLE}; not skipped")
                s.execute(sql.insert_load(self.schema, s.placeholder), params)
                s.commit()
            except BaseException:
                s.rollback()
                raise
        return load_record_from_row(params)

    def record_run(self, run: RunRecord) -> None:
        """One row of run history; the error and notes are redacted and truncated."""
        error = redact(run.error)[:ERROR_MAX_CHARS] if run.error else None
        notes = redact(run.notes)[:NOTES_MAX_CHARS] if run.notes else None
        params = (run.pipeline, run.table, as_utc(run.started_at), as_utc(run.finished_at), run.status,
                  int(run.rows_extracted), int(run.rows_loaded), int(run.batches), error, notes)
        if not self._state_ready:
            self.ensure_state_tables()
        try:
            with self._using() as s:
                s.execute(sql.insert_run(self.schema, s.placeholder), params)
        except LoadError:
            # The kept session may have died with the server (a restart is often why the run
            # failed); it only shows when used. Once more: _using() replaces a broken session.
            with self._using() as s:
                s.execute(sql.insert_run(self.schema, s.placeholder), params)

    def target_columns(self, target_table: str) -> list[str]:
        """The target table's column names, [] when it does not exist. Creates nothing."""
        with self._using() as s:
            rows = s.query(sql.table_columns(s.placeholder), (self.dialect.catalog_name(self.schema),
                                                              self.dialect.catalog_name(target_table)))
        return [r[0] for r in rows]

    def dependent_views(self, s: Session, target_table: str) -> list[str]:
        """Views that keep a DROP of the table from working (none on DuckDB, whose views bind when queried)."""
        return []

    def last_runs(self, pipeline: str, table: str, n: int = 10) -> list[RunRecord]:
        with self._using() as s:
            gaps = self._state_gaps(s)
            if gaps is None or (not self._state_ready and sql.RUNS_TABLE not in gaps):
                return []
            rows = s.query(sql.select_runs(self.schema, s.placeholder, n, absent=gaps.get(sql.RUNS_TABLE, [])),
                           (pipeline, table))
            return [run_record_from_row(r) for r in rows]

    def _check_begin(self, manifest: Manifest, target_table: str) -> None:
        check_identifier(target_table, "target table")
        self.dialect.check_name(target_table, "target table")
        self.dialect.check_name(self.schema, "target schema")
        if self.dialect.fold(target_table).startswith(sql.RESERVED_TABLE_PREFIX):
            raise LoadError(f"{manifest.table}: target table {target_table!r} starts with "
                            f"{sql.RESERVED_TABLE_PREFIX!r}, which lakeshift reserves for its own tables; set "
                            "target_name to another name")
        names = [c.name for c in manifest.columns]
        if not names:
            raise LoadError(f"batch {manifest.batch_id} of {manifest.table} has no columns")
        for c in manifest.columns:
            check_identifier(c.name, "column")
            self.dialect.check_name(c.name, f"column of {target_table}")
            if c.name in sql.RESERVED_COLUMNS:
                raise LoadError(f"{manifest.table}: source column {c.name!r} collides with lakeshift's own column; rename it")
        folded = [self.dialect.fold(n) for n in names]
        if len(set(folded)) != len(folded):
            raise LoadError(f"{manifest.table}: column names that differ only by case cannot coexist in {self.dialect.name}")
        if manifest.mode not in ("merge", "replace", "append"):
            raise LoadError(f"batch {manifest.batch_id}: unknown mode {manifest.mode!r}")
        if manifest.mode == "merge" and not manifest.primary_key:
            raise LoadError(f"batch {manifest.batch_id} of {manifest.table}: mode merge needs a primary key")
        for k in manifest.primary_key:
            if k not in names:
                raise LoadError(f"batch {manifest.batch_id} of {manifest.table}: merge key column {k!r} is not in the batch")


def _retry_ddl(s: Session, stmt: str, attempts: int = 3) -> None:
    """CREATE ... IF NOT EXISTS from two sessions at once can still collide on
    the catalogue (unique violation); the second attempt sees the object."""
    for i in range(attempts):
        try:
            s.execute(stmt)
            return
        except LoadError:
            if i == attempts - 1:
                raise
            time.sleep(0.05 * (i + 1))


class StagedLoadBase:
    """One batch on its way into one target table.

    Subclasses provide `_session()` (the session that runs the transaction),
    `_stage_in_transaction()` (DuckDB/Redshift fill staging here; PostgreSQL
    already did during add_part), `_staged_rows()` and `_cleanup()`."""

    ordinal = True  # staging carries _lakeshift_ord (file order) for de-duplication

    def __init__(self, loader: LoaderBase, head: Manifest, target_table: str, table_cfg: TableConfig) -> None:
        loader._check_begin(head, target_table)
        self.loader = loader
        self.head = head
        self.target_table = target_table
        self.table_cfg = table_cfg
        self.parts: list[Part] = []
        self._done = False
        self._lock = threading.Lock()

    # -- to implement
    @property
    def stage_sql(self) -> str:
        raise NotImplementedError

    def _session(self) -> Session:
        raise NotImplementedError

    def _stage_in_transaction(self, s: Session, manifest: Manifest) -> None:
        pass

    def _staged_rows(self, s: Session) -> int:
        raise NotImplementedError

    def _drop_stage_in_transaction(self, s: Session) -> None:
        s.execute(sql.drop_table(self.stage_sql))

    def _cleanup(self) -> None:
        pass

    def add_part(self, path: str, filesystem: pafs.FileSystem, uri: str, file: BatchFile) -> None:
        with self._lock:
            if self._done:
                raise LoadError(f"batch {self.head.batch_id}: add_part after commit/abort")
            self.parts.append(Part(path, filesystem, uri, file))

    # -- shared
    @property
    def target_sql(self) -> str:
        return qualified_ansi(self.loader.schema, self.target_table)

    def abort(self) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        try:
            self._cleanup()
        except Exception as exc:  # noqa: BLE001 - abort runs on error paths; never mask the cause
            log.warning("%s: could not drop staging: %s", self.head.table, redact(str(exc)))

    def _check_manifest(self, manifest: Manifest) -> None:
        h = self.head
        if manifest.batch_id != h.batch_id or [c.name for c in manifest.columns] != [c.name for c in h.columns]:
            raise LoadError(f"commit of batch {manifest.batch_id} on a staging begun for batch {h.batch_id} "
                            "with other columns")
        got = sorted((p.file.path, p.file.rows) for p in self.parts)
        want = sorted((f.path, f.rows) for f in manifest.files)
        if got != want:
            raise LoadError(
                f"batch {manifest.batch_id} of {manifest.table}: the staged parts ({len(got)}) are not the "
                f"manifest's files ({len(want)}); not loading a partial batch")
        if sum(f.rows for f in manifest.files) != manifest.rows:
            raise LoadError(f"batch {manifest.batch_id}: the files hold {sum(f.rows for f in manifest.files)} rows "
                            f"but the manifest says {manifest.rows}")
        for k in manifest.primary_key:
            if manifest.null_counts.get(k, 0):
                raise LoadError(f"batch {manifest.batch_id} of {manifest.table}: merge key column {k!r} has "
                                f"{manifest.null_counts[k]} NULL value(s); rows without a key cannot be merged")

    def _already_loaded(self, s: Session, m: Manifest) -> bool:
        return bool(s.query(sql.select_loads(self.loader.schema, s.placeholder, batch=True),
                            (m.pipeline, m.table, m.batch_id)))

    def commit(self, manifest: Manifest) -> LoadResult:
        """ONE transaction: schema changes, staging -> target, the load record."""
        with self._lock:
            if self._done:
                raise LoadError(f"batch {manifest.batch_id}: commit after commit/abort")
            self._done = True
        started = time.monotonic()
        loader, dialect, m = self.loader, self.loader.dialect, manifest
        s: Session | None = None
        in_txn = False
        try:
            self._check_manifest(m)
            if not loader._state_ready:
                loader.ensure_state_tables()
            s = self._session()
            if self._already_loaded(s, m):
                log.info("%s: batch %s already loaded; skipped", m.table, m.batch_id)
                return LoadResult(m.batch_id, "skipped")
            existing = s.query(sql.table_columns(s.placeholder),
                               (dialect.catalog_name(loader.schema), self._catalog_name()))
            plan = plan_table(dialect, loader.schema, self.target_table, m, existing,
                              primary_key=loader.create_primary_key)
            for stmt in plan.before_transaction:
                self._ddl(s, stmt)
            s.begin()
            in_txn = True
            if self._already_loaded(s, m):  # a concurrent run got there first
                s.rollback()
                in_txn = False
                return LoadResult(m.batch_id, "skipped")
            notes = [self._drop_to_recreate(s, plan)] if plan.recreate else []
            if plan.create:
                s.execute(plan.create)
            for stmt in plan.in_transaction:
                self._ddl(s, stmt)
            staged = 0
            if m.files:
                self._stage_in_transaction(s, m)
                staged = self._staged_rows(s)
                if staged != m.rows:
                    raise LoadError(f"batch {m.batch_id} of {m.table}: staging holds {staged} rows, "
                                    f"the manifest says {m.rows}; not loading it")
            deleted, inserted = self._move_rows(s, m, plan, has_rows=bool(m.files))
            s.execute(sql.insert_load(loader.schema, s.placeholder), (
                m.pipeline, m.table, m.batch_id, self.target_table, m.mode, inserted, len(m.files), m.bytes,
                cursor_to_text(m.watermark_low), cursor_to_text(m.watermark_high), datetime.now(timezone.utc), None))
            faults.checkpoint("in_load_transaction")
            if m.files:
                self._drop_stage_in_transaction(s)
            s.commit()
            in_txn = False
            log.info("%s: batch %s loaded into %s (%s rows, mode %s)", m.table, m.batch_id, self.target_table,
                     inserted, m.mode)
            return LoadResult(m.batch_id, "loaded", inserted, deleted, time.monotonic() - started, tuple(notes))
        except BaseException:
            if s is not None and in_txn:
                s.rollback()
            raise
        finally:
            try:
                self._cleanup()
            except Exception as exc:  # noqa: BLE001
                log.warning("%s: could not drop staging: %s", m.table, redact(str(exc)))

    def _ddl(self, s: Session, stmt: str) -> None:
        """A schema change the target refuses (e.g. PostgreSQL: a view uses the
        column) is a SchemaChangeError with the way out, not a bare driver error."""
        try:
            s.execute(stmt)
        except LoadError as exc:
            if " ALTER COLUMN " not in stmt:
                raise
            raise SchemaChangeError(
                f"{self.loader.dialect.name} table {self.loader.schema}.{self.target_table}: could not widen a column "
                f"for batch {self.head.batch_id} ({exc}). Way out: drop or change what depends on the column "
                "(e.g. a view), let the load widen it, then recreate it.") from None

    def _drop_to_recreate(self, s: Session, plan: TablePlan) -> str:
        """Drop the target (in the batch's transaction) so plan.create makes it
        again with the replace batch's types; returns the note for the run history."""
        loader, m = self.loader, self.head
        what = f"{loader.dialect.name} table {loader.schema}.{self.target_table}"
        views = loader.dependent_views(s, self.target_table)
        if views:
            raise SchemaChangeError(
                f"{what}: {plan.recreate} (batch {m.batch_id}); the full_sync recreates the table with the new "
                f"types, but {_views(views)} on it, so the batch was not loaded. Way out: drop the "
                f"view{'s' if len(views) > 1 else ''}, sync again, then create {'them' if len(views) > 1 else 'it'} "
                "again.")
        try:
            s.execute(f"DROP TABLE {self.target_sql}")
        except LoadError as exc:
            raise SchemaChangeError(
                f"{what}: could not drop it to recreate it with the new column types ({plan.recreate}) for batch "
                f"{m.batch_id}: {exc}. Way out: drop what depends on the table, sync again, then create it "
                "again.") from None
        done = (f"recreated for the new column types ({plan.recreate}); indexes, grants or triggers made on it "
                "by hand must be made again")
        log.info("%s: %s %s", m.table, what, done)
        return "table " + done

    def _catalog_name(self) -> str:
        return self.loader.dialect.catalog_name(self.target_table)

    def _insert_select(self, m: Manifest, plan: TablePlan) -> tuple[list[str], list[str], list[str]]:
        """The batch's column names, the staging expressions that give the target's
        types, and the cursor columns that pick the newest of a repeated key."""
        names = [c.name for c in m.columns]
        exprs = [self.loader.dialect.insert_expr(c, f'"_lakeshift_s".{quote_ansi(c.name)}', plan.types[c.name])
                 for c in m.columns]
        order = list(dict.fromkeys(c for c in (m.cursor_timestamp_column, m.cursor_id_column) if c and c in names))
        return names, exprs, order

    def _move_rows(self, s: Session, m: Manifest, plan: TablePlan, *, has_rows: bool) -> tuple[int, int]:
        target, stage = self.target_sql, self.stage_sql
        names, exprs, order = self._insert_select(m, plan)
        deleted = inserted = 0
        if m.mode == "replace":
            deleted = s.execute(sql.delete_all(target))
            if has_rows:
                inserted = s.execute(sql.insert_rows(target, stage, names, exprs, m.primary_key, order,
                                                     ordinal=self.ordinal))
        elif not has_rows:
            pass
        elif m.mode == "merge":
            if plan.exists:
                deleted = s.execute(sql.delete_matching(target, stage, m.primary_key))
            inserted = s.execute(sql.insert_rows(target, stage, names, exprs, m.primary_key, order,
                                                 ordinal=self.ordinal))
        else:  # append: the batch id goes into every row so a batch can be found and removed
            window = self._append_window(s, m, plan) if plan.exists else None
            if window is not None:
                deleted = s.execute(*window)
            inserted = s.execute(sql.insert_rows(target, stage, names, exprs,
                                                 extra=[(sql.BATCH_ID_COLUMN, s.placeholder)]), (m.batch_id,))
        return max(deleted, 0), max(inserted, 0)

    def _append_window(self, s: Session, m: Manifest, plan: TablePlan) -> tuple[str, tuple[Any, ...]] | None:
        """An append batch (a timestamp_only table without a key) holds every
        source row of its window, from its low watermark (inclusive: rows
        committed later with that same timestamp are not lost) or from the start
        (a first run, a `watermark reset`, an ad-hoc `sync connections`) up to the
        last timestamp it read. Without a key to merge by, the target's rows in
        that window are deleted in the same transaction and the batch inserted:
        a window is replaced, never appended a second time."""
        col = m.cursor_timestamp_column
        if m.strategy != "timestamp_only" or not col or col not in plan.types:
            return None
        kind = plan.types[col].kind
        if kind not in ("date", "timestamp", "timestamptz", "int", "uint", "numeric"):
            raise LoadError(f"batch {m.batch_id} of {m.table}: cannot replace its window in the target: the cursor "
                            f"column {col!r} is {self.loader.dialect.render(plan.types[col])}, which the target "
                            "does not order like MySQL; set primary_key (or use a DATETIME/TIMESTAMP/integer "
                            "cdc_timestamp_column)")
        low = _window_value(m.watermark_low, kind)
        high = _window_value(m.watermark_high, kind)
        cast = f"CAST({s.placeholder} AS {self.loader.dialect.render(plan.types[col])})"
        ref = quote_ansi(col)
        if low is not None:  # a run whose tie at the watermark was unchanged started after it
            where, params = f"{ref} {'>=' if m.low_inclusive else '>'} {cast}", [low]
            if high is not None:
                where, params = f"{where} AND {ref} <= {cast}", [low, high]
        else:  # from the start: zero dates were read too, and the target holds them as NULL
            where, params = (f"({ref} IS NULL OR {ref} <= {cast})", [high]) if high is not None else (
                f"{ref} IS NULL", [])
        return f"DELETE FROM {self.target_sql} WHERE {where}", tuple(params)


def _window_value(cursor: Cursor | None, kind: str) -> str | None:
    """A window bound as text for CAST(... AS target type); None for no bound
    (no cursor, or a zero date, which sorts before every date)."""
    if cursor is None or cursor.timestamp is None:
        return None
    text = str(cursor.timestamp)
    if kind in ("date", "timestamp", "timestamptz"):
        try:
            datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    return text


def _views(names: list[str]) -> str:
    return f"view {names[0]} depends" if len(names) == 1 else f"views {', '.join(names)} depend"


def wait_loop(timeout: float, attempt: Callable[[], bool], poll: float = 0.2) -> bool:
    """Call `attempt` until it returns True or `timeout` seconds passed."""
    deadline = time.monotonic() + timeout
    delay = min(poll, 0.05)
    while True:
        if attempt():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, poll)
