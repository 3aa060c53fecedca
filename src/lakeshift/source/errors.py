"""What a MySQL/MariaDB error means: its number, whether a retry can help,
whether the server is unreachable, and one redacted line that says it. The
same rules for PyMySQL's errors and connectorx's (Rust) ones."""

from __future__ import annotations

import re

import pymysql

from lakeshift import redact
from lakeshift.errors import LakeshiftError, SourceError, TransientSourceError

# Worth a retry: the server or network hiccupped, or we lost a lock race.
TRANSIENT_CODES = frozenset({
    1040,  # too many connections
    1053,  # server shutdown in progress
    1158, 1159, 1160, 1161,  # network read/write error or timeout
    1205,  # lock wait timeout
    1213,  # deadlock
    1317,  # query interrupted (KILL QUERY, e.g. by a watchdog)
    1927,  # MariaDB: connection was killed
    2002, 2003,  # cannot connect (socket / TCP refused)
    2006,  # server has gone away
    2013,  # lost connection during query
    2055,  # lost connection (system error)
})
# Never retried: the same statement fails the same way again.
PERMANENT_CODES = frozenset({1044, 1045, 1049, 1054, 1064, 1142, 1143, 1146, 1227, 1370})
# The server cannot be reached at all (refused, no route, unknown host, connect timeout): not one
# table's problem, so once retries run out the run's other tables need not try again (MySQLPool).
UNREACHABLE_CODES = frozenset({2002, 2003, 2005})
TLS_REFUSED_BY_SERVER = 2026  # PyMySQL: the server offers no TLS


def error_code(exc: BaseException) -> int | None:
    """The MySQL error number of a PyMySQL or connectorx error, if any."""
    if isinstance(exc, pymysql.err.MySQLError) and exc.args and isinstance(exc.args[0], int):
        return exc.args[0]
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    text = str(exc)
    m = re.search(r"ERROR (\d{4})\b", text)
    if m:
        return int(m.group(1))
    # connectorx/Rust driver errors carry no number for socket-level failures
    if re.search(r"Connection refused|Could not connect to address", text, re.I):
        return 2003
    # (connectorx says "IoError { server disconnected }" when the server ends the
    # connection mid-query, e.g. KILL CONNECTION or a restart)
    if re.search(r"Connection reset|Broken pipe|Lost connection|connection was killed|unexpected EOF|"
                 r"server has gone away|ConnectionReset|UnexpectedEof|server disconnected", text, re.I):
        return 2013
    return None


def is_certificate_refused(exc: BaseException) -> bool:
    """TLS verification refused the server's certificate (chain or host name):
    PyMySQL reports it as 2003 "Can't connect", connectorx as a connection
    timeout, yet the same certificate is refused on every attempt."""
    return "certificate verify failed" in str(exc).lower()


def is_unreachable(exc: BaseException) -> bool:
    """The server could not be reached (as opposed to a query or a login failing)."""
    return error_code(exc) in UNREACHABLE_CODES and not is_certificate_refused(exc)


def is_transient(exc: BaseException) -> bool:
    if is_certificate_refused(exc):
        return False
    if isinstance(exc, TransientSourceError):
        return True
    if isinstance(exc, LakeshiftError):
        return bool(getattr(exc, "transient", False))
    if isinstance(exc, (pymysql.err.OperationalError, pymysql.err.InternalError, pymysql.err.InterfaceError,
                        RuntimeError, OSError)) or type(exc).__name__ == "PanicException":
        return error_code(exc) in TRANSIENT_CODES
    return False


def describe_error(exc: BaseException) -> str:
    """One line: '(1146) Table ... doesn't exist', secrets removed."""
    if isinstance(exc, pymysql.err.MySQLError) and len(exc.args) >= 2:
        text = f"({exc.args[0]}) {exc.args[1]}"
    else:
        text = str(exc).strip()
        m = re.search(r"ERROR (\d{4}) \(\w+\): (.*?)(?: \}|$)", text, re.S)
        if m:
            text = f"({m.group(1)}) {m.group(2)}"
        text = text.splitlines()[0] if text else type(exc).__name__
    return redact.redact(text)


def source_error(exc: BaseException, where: str) -> SourceError:
    """Wrap a driver error: TransientSourceError when worth a retry."""
    cls = TransientSourceError if is_transient(exc) else SourceError
    err = cls(redact.redact(f"{where}: {describe_error(exc)}"))
    err.code = error_code(exc)  # type: ignore[attr-defined]
    return err
