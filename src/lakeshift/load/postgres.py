"""PostgreSQL target: parts are COPYed into staging while the batch is still
being extracted (pg_ingest.py); the commit (commit.py) runs through psycopg in
one transaction, by upsert, DELETE + INSERT or table swap as the planner picks
from the catalogue (pg_catalog.py, strategies/). Loads of a pipeline table are
serialised by a session advisory lock (pg_locks.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lakeshift.batch import Manifest
from lakeshift.errors import ConnectionFailed, LoadError, LockBusyError, one_line
from lakeshift.identifiers import qualified_ansi
from lakeshift.load import sql
from lakeshift.load.contracts import LoadContext
from lakeshift.load.dialects import PostgresTypes
from lakeshift.load.locking import busy_message
from lakeshift.load.naming import STAGE_PREFIX
from lakeshift.load.pg_base import PgProtocolLoader
from lakeshift.load.pg_ingest import PgStaging
from lakeshift.load.pg_locks import STAGE_LOCKS, TABLE_LOCKS, LiveStages, advisory_key
from lakeshift.load.session import sqlstate
from lakeshift.load.staged import StreamingStagedLoad
from lakeshift.redact import redact

log = logging.getLogger("lakeshift.load")


class PostgresLoader(PgProtocolLoader):
    dialect = PostgresTypes()
    create_primary_key = True  # an index for the merge's DELETE ... USING, and a guard against duplicates

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.live_stages = LiveStages()

    def adbc_connect(self) -> Any:
        import adbc_driver_postgresql.dbapi as adbc
        from psycopg.conninfo import make_conninfo

        try:
            return adbc.connect(make_conninfo("", **{k: str(v) for k, v in self.params.items()}))
        except Exception as exc:  # noqa: BLE001
            raise ConnectionFailed(
                redact(f"cannot open the ADBC connection to {self.describe}: {one_line(str(exc))}")) from None

    def ensure_state_tables(self) -> None:
        super().ensure_state_tables()
        self.drop_stale_staging()

    def drop_stale_staging(self) -> list[str]:
        """Drop staging tables left by runs that died (their advisory lock is free)."""
        dropped = []
        with self._mutex:
            s = self._main()
            rows = s.query(
                "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind = 'r' AND c.relname LIKE %s",
                (self.schema, STAGE_PREFIX.replace("_", "\\_") + "%"))
            for (name,) in rows:
                if name in self.live_stages:
                    continue
                key = advisory_key(STAGE_LOCKS, self.schema, name)
                if s.query("SELECT pg_try_advisory_lock(%s, %s)", key)[0][0]:
                    try:
                        s.execute(sql.drop_table(qualified_ansi(self.schema, name)))
                        dropped.append(name)
                    finally:
                        s.query("SELECT pg_advisory_unlock(%s, %s)", key)
        if dropped:
            log.info("dropped %d staging table(s) left by interrupted runs in %s", len(dropped), self.schema)
        return dropped

    @contextmanager
    def lock(self, pipeline: str, table: str) -> Iterator[None]:
        """A session advisory lock on a dedicated connection: released when the
        block ends or when the process dies (the server ends the session)."""
        s = self.connect()
        key = advisory_key(TABLE_LOCKS, self.schema, pipeline, table)
        try:
            if self.lock_timeout <= 0:
                got = s.query("SELECT pg_try_advisory_lock(%s, %s)", key)[0][0]
            else:
                s.execute(f"SET lock_timeout = {max(1, int(self.lock_timeout * 1000))}")
                try:
                    s.query("SELECT pg_advisory_lock(%s, %s)", key)
                    got = True
                except LoadError as exc:
                    if sqlstate(exc) != "55P03":
                        raise
                    got = False
            if not got:
                raise LockBusyError(busy_message(pipeline, table, self.describe, self.schema, self.lock_timeout))
            try:
                yield
            finally:
                try:
                    s.query("SELECT pg_advisory_unlock(%s, %s)", key)
                except LoadError:
                    pass  # closing the session releases it anyway
        finally:
            s.close()

    def _begin(self, ctx: LoadContext, head: Manifest, target_table: str) -> StreamingStagedLoad:
        staging = PgStaging(ctx, head, target_table, adbc_connect=self.adbc_connect, live=self.live_stages)
        return StreamingStagedLoad(ctx, head, target_table, staging)
