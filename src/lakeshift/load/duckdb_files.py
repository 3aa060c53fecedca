"""Opening a DuckDB target file. DuckDB refuses to attach one file twice in one
process, and names a file's catalog after its stem, which a target schema of
the same name makes ambiguous: such files are attached once per process under
a fixed catalog name and shared (see _SharedFileConnection)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

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


def open_file(duckdb: Any, path: Path, schema: str) -> Any:
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
