"""A stream read ahead in a thread of its own: MySQL's keys in key order for hard_deletes
(keystream.source_keys), a target's rows for the Arrow comparison (arrow_cols.py).

hard_deletes starts the read when the run's extract starts, under the table's extract lock it
holds until the comparison ends, so MySQL streams its keys while the batch is read, written
and loaded instead of after (docs/benchmarks.md: the check's time was mostly waiting for
them). The keys may then be older than the batch: a row inserted after the read began may be
in the batch and not in the keys, so no key of this run's batch is deleted by this run
(engine/deletes.keys_not_in); a key the target holds from an earlier batch and MySQL's keys
lack was deleted in MySQL before they were read. A row deleted after the batch read it is
deleted by the next run. Another run cannot make a batch in between (the lock).

Ahead of the comparison at most AHEAD chunks are held; when they are, the read stops
and is started again after the last key held once the comparison reaches it, so memory
stays bounded and MySQL never waits on a client that does not read (net_write_timeout).
Once the comparison reads, the thread stays one chunk ahead."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, suppress
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

AHEAD = 16  # chunks held before the comparison starts (keystream.CHUNK keys each: 32 MB of 64-bit keys)


@dataclass(frozen=True)
class _Resume:
    after: Any  # the last key held: read again from the next one


class ReadAhead:
    """`open_stream(after)`: the stream's chunks after the key `after` (None: from the start), e.g. MySQL's
    key chunks in key order above it; only a read that may stop ahead (not `reading`) opens it again."""

    def __init__(self, open_stream: Callable[[Any], Iterator[pa.Array]], ahead: int = AHEAD,
                 reading: bool = False) -> None:
        """`reading`: the comparison reads at once (held: at most `ahead`, never stopped)."""
        self._open, self._ahead = open_stream, ahead
        self._reading = threading.Event()  # set: the comparison reads (no more stopping when full)
        if reading:
            self._reading.set()
        self._stop = threading.Event()
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start(None, ahead)

    def _start(self, after: Any, limit: int) -> None:
        self._queue = queue.Queue(maxsize=limit + 1)  # + 1: room for the end, an error or a resume
        self._thread = threading.Thread(target=self._produce, args=(after, self._queue), daemon=True,
                                        name="lakeshift-keys-mysql")
        self._thread.start()

    def chunks(self) -> Iterator[pa.Array]:
        """The chunks in order, to the end (a read stopped ahead is started again where it stopped)."""
        self._reading.set()
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, _Resume):
                self._join()
                self._start(item.after, 1)
                continue
            yield item

    def close(self) -> None:
        """Stop the read (its stream closed) and wait for the thread."""
        self._stop.set()
        self._join()

    def _join(self) -> None:
        while self._thread is not None and self._thread.is_alive():
            with suppress(queue.Empty):
                self._queue.get(timeout=0.1)  # a producer waiting for room sees the stop

    def _produce(self, after: Any, chunks: queue.Queue[Any]) -> None:
        """Chunks into `chunks`, then None, a _Resume (held enough before the comparison reads)
        or the error (raised by the consumer)."""
        try:
            with closing(self._open(after)) as stream:  # type: ignore[type-var]
                for chunk in stream:
                    if not self._put(chunks, chunk):
                        return
                    if not self._reading.is_set() and chunks.qsize() >= self._ahead:
                        self._put(chunks, _Resume(chunk[-1].as_py()))
                        return
            self._put(chunks, None)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._put(chunks, exc)

    def _put(self, chunks: queue.Queue[Any], item: Any) -> bool:
        while not self._stop.is_set():
            with suppress(queue.Full):
                chunks.put(item, timeout=0.5)
                return True
        return False

