"""TLS for the control connections: the configured mode as PyMySQL settings,
one SSLContext per setting for the whole process, and whether a connection
really negotiated TLS.

PyMySQL builds a context per connection and loads the system CA bundle each
time; a context is safe to share, so one is built per distinct setting."""

from __future__ import annotations

import ssl as ssl_lib
import threading
from typing import Any

import pymysql.connections
from pymysql.constants import CLIENT

from lakeshift.config.models import MySQLSource, TLSSettings
from lakeshift.errors import ConnectionFailed

REQUIRED_MODES = ("require", "verify-ca", "verify-full")


def tls_mode(src: MySQLSource) -> str:
    return (src.ssl or TLSSettings()).mode


def pymysql_ssl(tls: TLSSettings | None) -> dict[str, Any] | None:
    """PyMySQL's `ssl` dict (PyMySQL then insists on TLS; connect() falls back
    to plain text for 'prefer'). A configured CA is always verified."""
    tls = tls or TLSSettings()
    if tls.mode == "disable":
        return None
    verify = tls.mode in ("verify-ca", "verify-full") or tls.ca is not None
    out: dict[str, Any] = {
        "check_hostname": tls.mode == "verify-full",
        "verify_mode": ssl_lib.CERT_REQUIRED if verify else ssl_lib.CERT_NONE,
    }
    if tls.ca:
        out["ca"] = tls.ca
    elif verify:
        paths = ssl_lib.get_default_verify_paths()  # system roots when no CA is named
        out["ca"] = paths.cafile
        out["capath"] = paths.capath
    if tls.cert:
        out["cert"] = tls.cert
    if tls.key:
        out["key"] = tls.key
    return out


def build_context(params: dict[str, Any]) -> ssl_lib.SSLContext:
    """The context PyMySQL builds from an `ssl` dict of pymysql_ssl()."""
    ca, capath = params.get("ca"), params.get("capath")
    no_ca = ca is None and capath is None
    ctx = ssl_lib.create_default_context(cafile=ca, capath=capath)
    # Python 3.13 verifies strictly by default, which the certificates MySQL generates for itself fail
    ctx.verify_flags &= ~ssl_lib.VERIFY_X509_STRICT
    ctx.check_hostname = not no_ca and params.get("check_hostname", True)  # before verify_mode: CERT_NONE needs it off
    ctx.verify_mode = params["verify_mode"]
    if "cert" in params:
        ctx.load_cert_chain(params["cert"], keyfile=params.get("key"))
    ctx.options |= ssl_lib.OP_NO_SSLv2 | ssl_lib.OP_NO_SSLv3
    return ctx


class _Contexts:
    """SSLContexts by setting, built once per process and shared by threads."""

    def __init__(self) -> None:
        self._built: dict[tuple[tuple[str, Any], ...], ssl_lib.SSLContext] = {}
        self._lock = threading.Lock()

    def get(self, params: dict[str, Any]) -> ssl_lib.SSLContext:
        key = tuple(sorted(params.items()))
        with self._lock:
            ctx = self._built.get(key)
            if ctx is None:
                ctx = self._built[key] = build_context(params)
        return ctx


_CONTEXTS = _Contexts()


def ssl_context(tls: TLSSettings | None) -> ssl_lib.SSLContext | None:
    """The shared SSLContext for a TLS setting; None for 'disable'."""
    params = pymysql_ssl(tls)
    return None if params is None else _CONTEXTS.get(params)


# Endpoints that offered no TLS to a 'prefer' connection (this process): the next
# connection there goes plain at once instead of failing TLS first again.
NO_TLS: set[tuple[str, int]] = set()


def uses_tls(conn: pymysql.connections.Connection) -> bool:
    """Whether the connection negotiated TLS: PyMySQL upgrades the socket when
    it was given TLS settings and the server offers TLS (else it fails)."""
    return bool(conn.open and conn.ssl and conn.server_capabilities & CLIENT.SSL)


def check_tls(conn: pymysql.connections.Connection, src: MySQLSource, where: str) -> None:
    """Close and refuse a connection without TLS when the mode requires it."""
    if tls_mode(src) in REQUIRED_MODES and not uses_tls(conn):
        conn.close()
        raise ConnectionFailed(f"MySQL {where}: ssl.mode is {tls_mode(src)} but the server does not offer TLS")
