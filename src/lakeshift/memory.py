"""Keep a sync's memory flat: allocator settings applied once, before the
first table runs (see docs/benchmarks.md, "Memory").

Measured on a 2M-row full sync: Arrow's own allocated bytes never pass ~60 MB,
yet the process grew to 400+ MB. The rest was memory freed but kept by the
allocators: glibc's per-thread arenas (connectorx, ADBC and pyarrow each
allocate from threads of their own; malloc_stats showed 181 MB held for 20 MB
in use) and mimalloc's per-thread pages behind pyarrow's default pool. So:

- glibc: at most 2 arenas, and a fixed mmap threshold of 256 KiB, so large
  buffers (Arrow batches, COPY buffers) are mapped and unmapped instead of
  raising the dynamic threshold and staying in an arena after they are freed;
- pyarrow: jemalloc, not mimalloc (reading a Parquet part held +21 MB with
  jemalloc, +38 MB with the system allocator, +54 MB with mimalloc).

Each is left alone when the user set it (MALLOC_ARENA_MAX,
MALLOC_MMAP_THRESHOLD_, ARROW_DEFAULT_MEMORY_POOL) or LAKESHIFT_ALLOCATOR=default."""

from __future__ import annotations

import ctypes
import logging
import os
import sys

log = logging.getLogger("lakeshift")

_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
ARENA_MAX = 2
MMAP_THRESHOLD = 256 * 1024

_done = False


def tune_allocators() -> None:
    """Idempotent; a no-op outside Linux/glibc."""
    global _done
    if _done:
        return
    _done = True
    if os.environ.get("LAKESHIFT_ALLOCATOR", "").lower() == "default":
        return
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6")
            if "MALLOC_ARENA_MAX" not in os.environ:
                libc.mallopt(_M_ARENA_MAX, ARENA_MAX)
            if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
                libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        except (OSError, AttributeError) as exc:  # not glibc (musl, ...): nothing to tune
            log.debug("allocator settings not applied: %s", exc)
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        import pyarrow as pa

        try:
            pa.set_memory_pool(pa.jemalloc_memory_pool())
        except NotImplementedError:  # a pyarrow built without jemalloc
            pa.set_memory_pool(pa.system_memory_pool())
