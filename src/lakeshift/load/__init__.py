"""The load stage: batches from the lake into Redshift, PostgreSQL or DuckDB.

    loader = open_target(target, settings, lake_credentials=storage)
    loader.ensure_state_tables()
    with loader.lock(pipeline, table):
        staged = loader.begin(manifest_head, target_table)
        staged.add_part(path, filesystem, uri, batch_file)   # per part, may overlap extraction
        result = staged.commit(manifest)                     # ONE transaction; result.skipped if loaded before
    loader.record_run(RunRecord(...)); loader.close()

The contracts are in load/contracts.py; how a batch's rows get into the table
(upsert, DELETE + INSERT, swap, replace, append) in load/strategies/.
Drivers are imported lazily: DuckDB-only installs never import psycopg/ADBC."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lakeshift.config.models import ConnectionSettings, DuckDBTarget, PostgresTarget, RedshiftTarget
from lakeshift.load.contracts import Part, StagedBatch, StreamingStagedBatch, TargetLoader
from lakeshift.load.state import LoadRecord, LoadResult, RunRecord
from lakeshift.load.validation import validate_batch


def open_target(target: PostgresTarget | RedshiftTarget | DuckDBTarget, settings: ConnectionSettings, *,
                lake_credentials: Any = None, connection_factory: Callable[[], Any] | None = None,
                lock_timeout: float | None = None) -> TargetLoader:
    """A loader for `target`. `connection_factory()` (tests) returns a DB-API
    connection in autocommit mode used instead of a real one; `lake_credentials`
    (the lake's storage config) gives Redshift COPY its keys when the target
    has no iam_role; `lock_timeout` (default settings.default_timeout seconds)
    is how long `lock()` waits before LockBusyError."""
    if isinstance(target, DuckDBTarget):
        from lakeshift.load.duckdb import DuckDBLoader

        return DuckDBLoader(target, settings, connection_factory=connection_factory, lock_timeout=lock_timeout)
    if isinstance(target, RedshiftTarget) or getattr(target, "type", None) == "redshift":
        from lakeshift.load.redshift import RedshiftLoader

        return RedshiftLoader(target, settings, lake_credentials=lake_credentials,
                              connection_factory=connection_factory, lock_timeout=lock_timeout)
    from lakeshift.load.postgres import PostgresLoader

    return PostgresLoader(target, settings, connection_factory=connection_factory, lock_timeout=lock_timeout)


__all__ = ["open_target", "TargetLoader", "StagedBatch", "StreamingStagedBatch", "Part", "LoadRecord", "LoadResult",
           "RunRecord", "validate_batch"]
