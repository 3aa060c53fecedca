"""PostgreSQL advisory locks: one per pipeline table being loaded, one per live
staging table. Session locks: the server releases them when the session ends,
so a run that dies never blocks the next one, and a staging table whose lock
is free belongs to a run that died."""

from __future__ import annotations

import hashlib
import threading

TABLE_LOCKS = 0x4C530001  # advisory lock namespaces ("LS" + n): loads of a pipeline table
STAGE_LOCKS = 0x4C530002  # a live staging table


def advisory_key(namespace: int, *parts: str) -> tuple[int, int]:
    """The (int4, int4) key of pg_advisory_lock for `parts` in `namespace`."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return _signed32(namespace), int.from_bytes(digest[:4], "big", signed=True)


def _signed32(n: int) -> int:
    return n - (1 << 32) if n >= (1 << 31) else n


class LiveStages:
    """The staging tables a loader's batches are filling: drop_stale_staging passes
    them by without trying their lock."""

    def __init__(self) -> None:
        self._names: set[str] = set()
        self._lock = threading.Lock()

    def add(self, name: str) -> None:
        with self._lock:
            self._names.add(name)

    def discard(self, name: str) -> None:
        with self._lock:
            self._names.discard(name)

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._names
