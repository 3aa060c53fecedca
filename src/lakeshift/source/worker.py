"""connectorx in a child process, its Arrow batches sent back over a pipe.

Why not in-process (measured with connectorx 0.4.6):
- its arrow_stream reader holds the GIL while it waits for MySQL, which stops
  every other Python thread: parallel tables, the staging thread, and the SSH
  tunnel's event loop, so a read through a tunnel deadlocks until the driver
  gives up connecting (30 s);
- every read_sql call leaves 3 idle threads behind for good (r2d2's pool);
- a broken connection is a Rust panic that prints to fd 2.
The child streams (memory bounded by the Arrow batch), the parent blocks in a
pipe read (GIL released), the child's leaked threads die with it (it is
replaced every MAX_QUERIES queries) and its stderr goes nowhere. The URL (with
the password) travels over the pipe, never in argv or the environment. The
parent waits for each frame at most `stall` seconds (connectorx has no read
timeout; see limits.py), then kills the child.

Frames, both directions: 1 byte kind + 8 byte big-endian length + payload.
  parent -> child  b"Q" JSON {url, sql, batch_size, pre}
  child -> parent  b"B" one record batch as an Arrow IPC stream
                   b"D" end of result   b"E" JSON {type, message}
"""

from __future__ import annotations

import json
import os
import select
import struct
import subprocess
import sys
import threading
import weakref
from collections.abc import Iterator
from typing import IO

import pyarrow as pa

CHILD_ALLOCATOR_ENV = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": str(256 * 1024),
                       "ARROW_DEFAULT_MEMORY_POOL": "jemalloc"}
MAX_QUERIES = 100  # leaked threads in the child stay below 3 * MAX_QUERIES
_HEAD = struct.Struct(">cQ")


def write_frame(out: IO[bytes], kind: bytes, payload: bytes | pa.Buffer) -> None:
    out.write(_HEAD.pack(kind, len(payload)))
    out.write(payload)  # type: ignore[arg-type] - a pyarrow Buffer is bytes-like
    out.flush()


def read_frame(inp: IO[bytes]) -> tuple[bytes, bytes] | None:
    head = _read_exact(inp, _HEAD.size)
    if head is None:
        return None
    kind, size = _HEAD.unpack(head)
    payload = _read_exact(inp, size)
    if payload is None:
        return None
    return kind, payload


def _read_exact(inp: IO[bytes], size: int) -> bytearray | None:
    """Read into one buffer (no list of chunks joined into a copy): the record
    batch is then read from it without another copy."""
    buf = bytearray(size)
    view, got = memoryview(buf), 0
    while got < size:
        n = inp.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            return None
        got += n
    return buf


def batch_bytes(batch: pa.RecordBatch) -> pa.Buffer:
    """The batch as an Arrow IPC stream, written to the pipe as it is (no copy
    into Python bytes: that doubled the child's memory per batch)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue()


# ---------------------------------------------------------------- child


def serve(inp: IO[bytes], out: IO[bytes]) -> None:
    import connectorx

    while (frame := read_frame(inp)) is not None:
        request = json.loads(frame[1])
        try:
            reader = connectorx.read_sql(request["url"], request["sql"], return_type="arrow_stream",
                                         batch_size=request["batch_size"], pre_execution_query=request["pre"])
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                write_frame(out, b"B", batch_bytes(batch))
            write_frame(out, b"D", b"")
        except BrokenPipeError:
            return
        except BaseException as exc:  # noqa: BLE001 - Rust panics are BaseException; all go to the parent
            write_frame(out, b"E", json.dumps({"type": type(exc).__name__, "message": str(exc)}).encode())


# ---------------------------------------------------------------- parent


class WorkerError(RuntimeError):
    """An error from connectorx in the child, its text as connectorx gave it."""


class WorkerLost(RuntimeError):
    """The child died or stopped answering (the text reads as a lost connection)."""


class WorkerStalled(RuntimeError):
    """The child sent nothing for `waited` seconds; it has been killed."""

    def __init__(self, waited: float) -> None:
        super().__init__(f"no data for {waited:g}s")
        self.waited = waited


class Worker:
    """One child process; one query at a time (callers hold `lock`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self.queries = 0
        self._finalizer: weakref.finalize | None = None

    def start(self) -> subprocess.Popen[bytes]:
        """Start (a new) child process."""
        env = {**os.environ, "RUST_BACKTRACE": "0", "RUST_LOG": "off"}
        # The child's allocators kept freed memory just like the parent's (lakeshift/memory.py):
        # the same limits, as the environment glibc and pyarrow read at start (the user's win).
        for name, value in CHILD_ALLOCATOR_ENV.items():
            env.setdefault(name, value)
        # The file itself as a script (it imports only pyarrow and connectorx, not lakeshift);
        # -P: its folder is not put on sys.path, where our types.py would shadow the stdlib.
        proc = subprocess.Popen([sys.executable, "-P", os.path.abspath(__file__)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, bufsize=0)
        _widen_pipe(proc.stdout)
        self.proc, self.queries = proc, 0
        self._finalizer = weakref.finalize(self, _kill, proc)
        return proc

    def query(self, url: str, sql: str, batch_size: int, pre: list[str],
              stall: float | None = None) -> Iterator[pa.RecordBatch]:
        """Batches of one query. Closing the iterator early kills the child
        (it would go on sending the rest of the result). When the child sends
        nothing for `stall` seconds (connectorx has no read timeout: a dead
        socket blocks it for ever) it is killed and WorkerStalled raised."""
        proc = self.proc
        if proc is None or proc.poll() is not None or self.queries >= MAX_QUERIES:
            self.close()
            proc = self.start()
        self.queries += 1
        done = False
        try:
            request = json.dumps({"url": url, "sql": sql, "batch_size": batch_size, "pre": pre}).encode()
            try:
                write_frame(proc.stdin, b"Q", request)  # type: ignore[arg-type]
            except OSError:
                raise WorkerLost("Lost connection: the connectorx worker process is gone") from None
            while True:
                if stall is not None and not _readable(proc.stdout, stall):  # type: ignore[arg-type]
                    raise WorkerStalled(stall)
                frame = read_frame(proc.stdout)  # type: ignore[arg-type]
                if frame is None:
                    raise WorkerLost("Lost connection: the connectorx worker process died "
                                     f"(exit code {proc.poll()})")
                kind, payload = frame
                if kind == b"B":
                    yield pa.ipc.open_stream(payload).read_next_batch()
                elif kind == b"D":
                    done = True
                    return
                else:
                    done = True  # the child is ready for the next query
                    error = json.loads(payload)
                    raise WorkerError(error["message"] or error["type"])
        finally:
            if not done:
                self.close()

    def close(self) -> None:
        if self.proc is not None:
            _kill(self.proc)
            if self._finalizer is not None:
                self._finalizer.detach()
            self.proc = None


def _readable(pipe: IO[bytes], timeout: float) -> bool:
    """Whether the pipe has data (or EOF) within `timeout` seconds. The pipe is
    unbuffered (bufsize=0), so nothing waits in a Python buffer unseen."""
    ready, _, _ = select.select([pipe], [], [], timeout)
    return bool(ready)


PIPE_BYTES = 1 << 20  # Linux's default limit for an unprivileged pipe (/proc/sys/fs/pipe-max-size)


def _widen_pipe(pipe: IO[bytes] | None) -> None:
    """A 1 MiB pipe instead of 64 KiB: a 16k-row batch crosses in a few reads
    instead of dozens, each of which costs the parent CPU (docs/benchmarks.md, 10)."""
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)  # type: ignore[union-attr, attr-defined]
    except (ImportError, AttributeError, OSError, ValueError):  # not Linux, or a lower limit: keep the default
        pass


class WorkerPool:
    """Children shared by the readers of one run (the run's MySQLPool holds
    them, see engine/runner.py): a reader borrows a child for each query and gives it
    back, so a run of 20 tables starts as many children as tables read at once,
    not 20: starting one (it imports pyarrow and connectorx) is the dearest part
    of a run that finds nothing to do (docs/benchmarks.md, 9)."""

    def __init__(self) -> None:
        self._idle: list[Worker] = []
        self._lock = threading.Lock()
        self._closed = False

    def prestart(self) -> None:
        """Start a child now: it imports pyarrow and connectorx while the parent
        describes the table and takes its locks, instead of after."""
        worker = Worker()
        worker.start()
        self.release(worker)

    def acquire(self) -> Worker:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return Worker()

    def release(self, worker: Worker) -> None:
        with self._lock:
            if not self._closed and worker.proc is not None and worker.proc.poll() is None:
                self._idle.append(worker)
                return
        worker.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.close()


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    for f in (proc.stdin, proc.stdout):
        try:
            if f is not None:
                f.close()
        except OSError:
            pass


def main() -> None:
    serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
