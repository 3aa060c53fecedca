"""Loopback networking for tests: a free port, and a TCP proxy a test can cut."""

from __future__ import annotations

import select
import socket
import struct
import threading
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TcpProxy:
    """Loopback TCP proxy to `upstream_port`. `cut()` is an outage as clients
    see it: the listening socket closes and every open connection is reset
    (RST), so even kept-alive HTTP connections die; `restore()` listens again on
    the same port. The server behind it keeps running and keeps its data.

    With `stall_after`, a connection that has brought the client that many
    bytes from the server stops forwarding anything, both ends left open (a
    server or network that stopped answering), until `cut()`; `stalled` counts
    such connections."""

    def __init__(self, upstream_port: int, stall_after: int | None = None) -> None:
        self.upstream = upstream_port
        self.stall_after = stall_after
        self.stalled = 0
        self._cutting = threading.Event()
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._threads: list[Any] = []
        self.restore()

    def restore(self) -> None:
        self._cutting.clear()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.2)
        self.port = listener.getsockname()[1]
        self._listener = listener
        t = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        t.start()
        self._threads.append(t)

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    server.close()
                    return
                self._conns += [client, server]
            t = threading.Thread(target=self._pump, args=(client, server), daemon=True)
            t.start()
            self._threads.append(t)

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        to_client = 0
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 0.5)
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        return
                    peers[s].sendall(data)
                    to_client += len(data) if s is b else 0
                if self.stall_after is not None and to_client >= self.stall_after:
                    with self._lock:
                        self.stalled += 1
                    self._cutting.wait(300)  # forward nothing more; the sockets stay open
                    return
        except (OSError, ValueError):
            return
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    def cut(self) -> None:
        self._cutting.set()
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            listener.close()
        for s in conns:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(5)
        self._threads = [t for t in self._threads if t.is_alive()]

    close = cut
