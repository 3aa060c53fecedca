"""A real SSH server on loopback for tests (asyncssh, own event loop thread).

It accepts one authorized client key (and optionally a password) and allows
local port forwarding (direct-tcpip) to anywhere, so a tunnel through it can
reach the real MariaDB and PostgreSQL on 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import pytest

PASSPHRASE = "correct horse battery staple"
PASSWORD = "tunnel-pass-9f3a"


def _bcrypt() -> bool:
    """Encrypted OpenSSH keys need bcrypt (asyncssh's `bcrypt` extra)."""
    try:
        import bcrypt  # noqa: F401
    except ImportError:
        return False
    return True


HAVE_BCRYPT = _bcrypt()
needs_bcrypt = pytest.mark.skipif(not HAVE_BCRYPT, reason="encrypted OpenSSH keys need the bcrypt package")


@dataclass
class Keys:
    host_key: Path  # server private host key
    host_pub: str  # "ssh-ed25519 AAAA..."
    client_key: Path  # authorized client private key (not encrypted)
    encrypted_key: Path | None  # authorized, encrypted with PASSPHRASE (None without bcrypt)
    other_host_key: Path  # a second host key, to simulate a re-keyed server
    other_client_key: Path  # a key the server does not know
    authorized: Path  # authorized_keys for the server


def make_keys(folder: Path, passphrase: str = PASSPHRASE) -> Keys:
    folder.mkdir(parents=True, exist_ok=True)

    def write(name: str, secret: str | None = None) -> Path:
        key = asyncssh.generate_private_key("ssh-ed25519")
        path = folder / name
        key.write_private_key(str(path), passphrase=secret)
        key.write_public_key(str(path) + ".pub")
        return path

    host = write("host_key")
    client = write("client_key")
    encrypted = write("encrypted_key", passphrase) if HAVE_BCRYPT else None
    authorized = folder / "authorized_keys"
    authorized.write_text("".join(Path(f"{k}.pub").read_text() for k in (client, encrypted) if k))
    return Keys(
        host_key=host,
        host_pub=(folder / "host_key.pub").read_text().strip(),
        client_key=client,
        encrypted_key=encrypted,
        other_host_key=write("other_host_key"),
        other_client_key=write("other_client_key"),
        authorized=authorized,
    )


class _Server(asyncssh.SSHServer):
    password: str | None = None

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return self.password is not None

    def validate_password(self, username: str, password: str) -> bool:
        return password == self.password

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int) -> bool:
        return True  # allow forwarding anywhere: tests forward to loopback only


class SSHServer:
    """`with SSHServer(host_key, authorized_pub) as port:` serves on 127.0.0.1:port."""

    def __init__(self, host_key: Path, authorized_pub: Path, password: str | None = None) -> None:
        self.host_key, self.authorized_pub, self.password = host_key, authorized_pub, password
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: Any = None
        self.port = 0

    def __enter__(self) -> int:
        self.thread.start()
        server_cls = type("Server", (_Server,), {"password": self.password})

        async def start() -> int:
            self.server = await asyncssh.create_server(
                server_cls, "127.0.0.1", 0,
                server_host_keys=[str(self.host_key)],
                authorized_client_keys=str(self.authorized_pub),
            )
            return self.server.sockets[0].getsockname()[1]

        self.port = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        return self.port

    def __exit__(self, *exc: Any) -> None:
        async def stop() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def known_hosts_line(port: int, pub: str) -> str:
    return f"[127.0.0.1]:{port} {pub}\n"


# Fixtures: import them into a test module (`from kit.sshd import ssh_keys, sshd`).


@pytest.fixture(scope="session")
def ssh_keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """Host and client keys (plus one encrypted with PASSPHRASE when bcrypt is there)."""
    return make_keys(tmp_path_factory.mktemp("sshkeys"))


@pytest.fixture(scope="session")
def sshd(ssh_keys: Keys) -> Any:
    """Port of a loopback SSH server accepting the client keys or PASSWORD."""
    with SSHServer(ssh_keys.host_key, ssh_keys.authorized, password=PASSWORD) as port:
        yield port


@pytest.fixture
def known_hosts(tmp_path: Path, sshd: int, ssh_keys: Keys) -> Path:
    """A known_hosts file that trusts the sshd server."""
    path = tmp_path / "known_hosts"
    path.write_text(known_hosts_line(sshd, ssh_keys.host_pub))
    return path
