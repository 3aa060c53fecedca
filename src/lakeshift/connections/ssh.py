"""SSH local port forwarding with asyncssh, its event loop in a background thread.

Database drivers here are blocking, so the tunnel runs on its own loop in a
daemon thread and the caller only sees a local (host, port) to connect to.
Host keys are verified by default (known_hosts or a pinned `host_key`); an
unknown or changed key refuses the connection. Passwords and passphrases are
never logged: they only reach asyncssh.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lakeshift.config.models import SSHTunnel
from lakeshift.errors import ConfigError, ConnectionFailed

log = logging.getLogger("lakeshift.ssh")

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
LOCALHOST = "127.0.0.1"


def check_settings(cfg: SSHTunnel, where: str = "ssh_tunnel") -> None:
    """Missing host/username is a config problem, not a network one."""
    for key in ("host", "username"):
        if not getattr(cfg, key):
            raise ConfigError(f"{where}.{key}: required key is missing (needed when ssh_tunnel.enabled is true)")


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def _known_hosts_path(cfg: SSHTunnel) -> Path:
    return Path(os.path.expanduser(cfg.known_hosts or DEFAULT_KNOWN_HOSTS))


def _keyscan_hint(cfg: SSHTunnel) -> str:
    port = f"-p {cfg.port} " if cfg.port != 22 else ""
    return f"ssh-keyscan {port}{cfg.host} >> {cfg.known_hosts or DEFAULT_KNOWN_HOSTS}"


def _trust(cfg: SSHTunnel) -> Any:
    """The `known_hosts` argument for asyncssh: None disables checking."""
    import asyncssh

    if not cfg.strict_host_key_checking:
        log.warning(
            "SSH host key checking is OFF for %s:%s (strict_host_key_checking: false); "
            "the tunnel is open to man-in-the-middle attacks", cfg.host, cfg.port,
        )
        return None
    if cfg.host_key:
        try:
            key = asyncssh.import_public_key(cfg.host_key)
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise ConfigError(f"ssh_tunnel.host_key: not an OpenSSH public key ({exc})") from None
        return ([key], [], [])
    path = _known_hosts_path(cfg)
    if not path.is_file():
        raise ConnectionFailed(
            f"SSH host {cfg.host}:{cfg.port}: cannot verify its host key: known_hosts file {path} does not exist; "
            f"add the key with `{_keyscan_hint(cfg)}` (after checking its fingerprint), "
            "or pin it with ssh_tunnel.host_key"
        )
    return str(path)


def _known_keys(cfg: SSHTunnel) -> list[Any]:
    """Keys trusted for this host, to tell an unknown host from a changed key."""
    import asyncssh

    if cfg.host_key:
        return [cfg.host_key]
    try:
        known = asyncssh.read_known_hosts(str(_known_hosts_path(cfg)))
        try:
            addr = socket.gethostbyname(cfg.host or "")
        except OSError:
            addr = ""
        return list(known.match(cfg.host or "", addr, cfg.port)[0])
    except (OSError, ValueError, asyncssh.Error):
        return []


def _host_key_error(cfg: SSHTunnel) -> ConnectionFailed:
    where = f"SSH host {cfg.host}:{cfg.port}"
    if _known_keys(cfg):
        source = "ssh_tunnel.host_key" if cfg.host_key else str(_known_hosts_path(cfg))
        return ConnectionFailed(
            f"{where}: HOST KEY CHANGED: the server's key does not match the one in {source}; refusing to connect "
            "(possible man-in-the-middle). If the server was really re-keyed, remove the old entry with "
            f"`ssh-keygen -R {_host_pattern(cfg)} -f {_known_hosts_path(cfg)}` and add the new one with "
            f"`{_keyscan_hint(cfg)}`"
        )
    return ConnectionFailed(
        f"{where}: unknown host key (not in {_known_hosts_path(cfg)}); refusing to connect. "
        f"Add it with `{_keyscan_hint(cfg)}` after checking its fingerprint, or pin it with ssh_tunnel.host_key"
    )


def _host_pattern(cfg: SSHTunnel) -> str:
    return f"'[{cfg.host}]:{cfg.port}'" if cfg.port != 22 else str(cfg.host)


def _client_keys(cfg: SSHTunnel) -> list[Any] | None:
    import asyncssh

    if not cfg.private_key_path:
        return None
    path = os.path.expanduser(cfg.private_key_path)
    try:
        return [asyncssh.read_private_key(path, _secret(cfg.private_key_passphrase))]
    except FileNotFoundError:
        raise ConfigError(f"ssh_tunnel.private_key_path: file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"ssh_tunnel.private_key_path: cannot read {path} ({exc.strerror})") from None
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError, ValueError) as exc:
        hint = " (wrong or missing private_key_passphrase?)" if "passphrase" in str(exc).lower() or isinstance(
            exc, asyncssh.KeyEncryptionError) else ""
        raise ConfigError(f"ssh_tunnel.private_key_path: cannot load key {path}: {exc}{hint}") from None


class Tunnel:
    """One SSH connection forwarding a local port to remote_host:remote_port."""

    def __init__(self, cfg: SSHTunnel, remote_host: str, remote_port: int, timeout: float = 30) -> None:
        check_settings(cfg)
        self.cfg = cfg
        self.remote = (remote_host, remote_port)
        self.timeout = timeout
        self.local: tuple[str, int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._conn: Any = None
        self._listener: Any = None

    def _options(self) -> dict[str, Any]:
        """asyncssh.connect's options: trust, keys and password from the configuration only."""
        options: dict[str, Any] = {
            "port": self.cfg.port,
            "username": self.cfg.username,
            "known_hosts": _trust(self.cfg),
            "config": None,  # settings come from lakeshift's YAML only, not ~/.ssh/config
            "connect_timeout": self.timeout,
            "keepalive_interval": 30,
        }
        keys = _client_keys(self.cfg)
        password = _secret(self.cfg.password)
        if keys is not None or password is not None:
            options.update(client_keys=keys or [], agent_path=None)
        if password is not None:
            options["password"] = password
        return options

    def open(self) -> tuple[str, int]:
        import asyncssh

        options = self._options()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"ssh-{self.cfg.host}", daemon=True)
        self._thread.start()
        try:
            future = asyncio.run_coroutine_threadsafe(self._start(asyncssh, options), self._loop)
            self.local = future.result(self.timeout + 5)
        except asyncssh.HostKeyNotVerifiable:
            self.close()
            raise _host_key_error(self.cfg) from None
        except asyncssh.KeyExchangeFailed as exc:
            self.close()
            if options["known_hosts"] is not None and _known_keys(self.cfg):
                raise _host_key_error(self.cfg) from None  # known keys of another type only
            raise ConnectionFailed(f"SSH host {self.cfg.host}:{self.cfg.port}: key exchange failed: {exc}") from None
        except asyncssh.PermissionDenied:
            self.close()
            raise ConnectionFailed(
                f"SSH host {self.cfg.host}:{self.cfg.port}: authentication failed for user '{self.cfg.username}' "
                "(check private_key_path, private_key_passphrase or password)"
            ) from None
        except asyncssh.ChannelListenError as exc:
            self.close()
            raise ConnectionFailed(f"SSH tunnel: cannot listen on a local port: {exc}") from None
        except (OSError, asyncssh.Error, TimeoutError, asyncio.TimeoutError) as exc:
            self.close()
            reason = str(exc) or type(exc).__name__
            raise ConnectionFailed(f"SSH host {self.cfg.host}:{self.cfg.port}: cannot connect: {reason}") from None
        except BaseException:
            self.close()
            raise
        log.info(
            "SSH tunnel %s:%s -> %s@%s:%s -> %s:%s", *self.local, self.cfg.username, self.cfg.host, self.cfg.port,
            *self.remote,
        )
        return self.local

    async def _start(self, asyncssh: Any, options: dict[str, Any]) -> tuple[str, int]:
        self._conn = await asyncssh.connect(self.cfg.host, **options)
        self._listener = await self._conn.forward_local_port(LOCALHOST, 0, *self.remote)
        return LOCALHOST, self._listener.get_port()

    async def _stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
        if self._conn is not None:
            self._conn.close()
            await self._conn.wait_closed()

    @property
    def is_open(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        if self._loop is None or self._thread is None or not self._thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(5)
        except Exception:  # closing a broken connection must not mask the real error
            log.debug("SSH tunnel close failed", exc_info=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()


@contextmanager
def tunnel(cfg: SSHTunnel, remote_host: str, remote_port: int, timeout: float = 30) -> Iterator[tuple[str, int]]:
    """Forward a local port to remote_host:remote_port through `cfg`'s SSH host;
    yields ('127.0.0.1', local_port). Closed on exit."""
    t = Tunnel(cfg, remote_host, remote_port, timeout)
    t.open()
    try:
        yield t.local  # type: ignore[misc]
    finally:
        t.close()


@contextmanager
def endpoint(cfg: SSHTunnel | None, host: str, port: int, timeout: float = 30) -> Iterator[tuple[str, int]]:
    """(host, port) to connect to: through a tunnel when `cfg` is enabled, else direct."""
    if cfg is None or not cfg.enabled:
        yield host, port
        return
    with tunnel(cfg, host, port, timeout) as local:
        yield local


# A tunnel shared by every connection to the same remote for the life of the
# process: drivers and pools hand out connections that outlive any `with`.
_shared: dict[tuple[Any, ...], Tunnel] = {}
_shared_lock = threading.Lock()


def shared_endpoint(cfg: SSHTunnel | None, host: str, port: int, timeout: float = 30) -> tuple[str, int]:
    """Like `endpoint` but kept open until the process exits (or close_shared())."""
    if cfg is None or not cfg.enabled:
        return host, port
    key = (cfg.host, cfg.port, cfg.username, cfg.private_key_path, host, port)
    with _shared_lock:
        t = _shared.get(key)
        if t is None or not t.is_open:
            t = Tunnel(cfg, host, port, timeout)
            t.open()
            _shared[key] = t
        return t.local  # type: ignore[return-value]


@atexit.register
def close_shared() -> None:
    with _shared_lock:
        for t in _shared.values():
            t.close()
        _shared.clear()
