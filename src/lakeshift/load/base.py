"""What every target loader shares: its state tables, the checks before a batch
is begun, and the context its staged batches get. A target module says how to
connect, how to lock a table, and how rows reach staging (its `Staging`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from lakeshift.batch import Manifest
from lakeshift.identifiers import qualified_ansi
from lakeshift.load import scd2_sql, sql
from lakeshift.load.checks import check_batch
from lakeshift.load.contracts import LoadContext, StagedBatch
from lakeshift.load.dialects import TypeDialect
from lakeshift.load.session import Session
from lakeshift.load.state import LoadRecord, RunRecord
from lakeshift.load.state_tables import StateTables




class LoaderBase:
    """A TargetLoader (load/contracts.py) without its target's specifics."""

    dialect: TypeDialect
    create_primary_key = False
    state_locks_table = False  # the state tables include _lakeshift_locks (a target without advisory locks)

    def __init__(self, schema: str, describe: str, lock_timeout: float) -> None:
        self.schema = schema
        self.describe = describe  # "PostgreSQL target host:port/db" for messages
        self.lock_timeout = lock_timeout
        self._mutex = threading.RLock()  # the main session is shared by the engine's threads
        self.state = StateTables(schema, self.dialect, describe, self._using, with_locks=self.state_locks_table)

    # -- to implement
    def connect(self) -> Session:
        """A new session of its own."""
        raise NotImplementedError

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

    def _begin(self, ctx: LoadContext, head: Manifest, target_table: str) -> StagedBatch:
        """The target's staged batch for a checked batch."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # -- shared
    def begin(self, manifest_head: Manifest, target_table: str, *,
              max_delete_fraction: float | None = None) -> StagedBatch:
        """Start staging the batch `manifest_head` describes (its files may still be
        coming) for `target_table`; names and mode are checked first.
        `max_delete_fraction`: the guard of a soft full_sync (None: no limit, --force-deletes)."""
        check_batch(self.dialect, self.schema, manifest_head, target_table)
        return self._begin(self.context(max_delete_fraction), manifest_head, target_table)

    def context(self, max_delete_fraction: float | None = None) -> LoadContext:
        return LoadContext(self.schema, self.describe, self.dialect, self.create_primary_key, self.connect,
                           self.ensure_state_ready, self.dependent_views, max_delete_fraction)

    def ensure_state_tables(self) -> None:
        self.state.ensure()

    def assume_state_ready(self) -> None:
        self.state.ready = True

    def ensure_state_ready(self) -> None:
        """ensure_state_tables(), unless this loader made sure of them already."""
        if not self.state.ready:
            self.ensure_state_tables()

    def loaded_batches(self, pipeline: str, table: str) -> dict[str, LoadRecord]:
        return self.state.loaded_batches(pipeline, table)

    def record_skip(self, manifest: Manifest, pipeline: str, table: str, target_table: str,
                    reason: str) -> LoadRecord:
        """Record a batch as skipped, so no run loads it; its files stay in the lake. Call under `lock()`."""
        self.ensure_state_ready()
        return self.state.record_skip(manifest, pipeline, table, target_table, reason)

    def record_run(self, run: RunRecord) -> None:
        self.ensure_state_ready()
        self.state.record_run(run)

    def last_runs(self, pipeline: str, table: str, n: int = 10) -> list[RunRecord]:
        return self.state.last_runs(pipeline, table, n)

    def target_columns(self, target_table: str) -> list[str]:
        """The target table's column names, [] when it does not exist. Creates nothing."""
        with self._using() as s:
            rows = s.query(sql.table_columns(s.placeholder), (self.dialect.catalog_name(self.schema),
                                                              self.dialect.catalog_name(target_table)))
        return [r[0] for r in rows]

    def live_rows(self, target_table: str) -> int:
        """The target table's rows not marked deleted (hard_deletes: soft), a history's live current
        versions; 0 when it does not exist."""
        columns = {self.dialect.fold(c) for c in self.target_columns(target_table)}
        if not columns:
            return 0
        name = qualified_ansi(self.schema, target_table)
        history = self.dialect.fold(scd2_sql.IS_CURRENT) in columns  # scd_type: type_2: its live current versions
        with self._using() as s:
            (n,), = s.query(scd2_sql.count_live(name) if history else sql.count_rows(
                name, live=self.dialect.fold(sql.DELETED_AT_COLUMN) in columns))
        return int(n)

    def repeated_keys(self, target_table: str, key: list[str]) -> int:
        """How many values of `key` more than one live row of the target table holds (duplicate_check)."""
        columns = {self.dialect.fold(c) for c in self.target_columns(target_table)}
        if not columns:
            return 0
        with self._using() as s:
            (n,), = s.query(sql.repeated_keys(qualified_ansi(self.schema, target_table), key,
                                              sql.live_condition(columns, self.dialect.fold)))
        return int(n)

    def dependent_views(self, s: Session, target_table: str) -> list[str]:
        """Views that keep a DROP of the table from working (none on DuckDB, whose views bind when queried)."""
        return []
