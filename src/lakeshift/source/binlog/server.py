"""What the server says about its binary log: whether it can serve binlog CDC
(each refusal one line naming the server variable or grant and the value
needed), where the log is now, and whether a saved position still exists.
Every function takes an open PyMySQL connection (source/client.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lakeshift.batch import BinlogPosition
from lakeshift.errors import SourceError


class BinlogNotReady(SourceError):
    """The server cannot serve binlog CDC as configured: nothing was read or written."""


class PositionLost(SourceError):
    """The saved binlog position is gone (purged, or another server): the changes since are unknowable."""


@dataclass(frozen=True)
class ServerInfo:
    version: str
    mariadb: bool
    variables: dict[str, str]  # lower-case name -> value, as SHOW GLOBAL VARIABLES gives it

    @property
    def identity(self) -> str:
        """The server a position belongs to: MySQL's server_uuid; MariaDB has none, its server_id."""
        uuid = self.variables.get("server_uuid")
        return f"uuid:{uuid}" if uuid else f"server_id:{self.variables.get('server_id', '?')}"


_VARIABLES = ("log_bin", "binlog_format", "binlog_row_image", "binlog_row_metadata", "log_bin_compress",
              "binlog_transaction_compression", "server_uuid", "server_id", "gtid_mode", "gtid_executed",
              "gtid_binlog_pos", "binlog_row_value_options")


def _rows(conn: Any, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in cur.fetchall()]


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, (bytes, bytearray)) else str(v)


def server_info(conn: Any) -> ServerInfo:
    version = _text(_rows(conn, "SELECT VERSION()")[0][0])
    marks = ", ".join(["%s"] * len(_VARIABLES))
    rows = _rows(conn, f"SHOW GLOBAL VARIABLES WHERE Variable_name IN ({marks})", _VARIABLES)
    return ServerInfo(version, "mariadb" in version.lower(), {_text(k).lower(): _text(v) for k, v in rows})


def _version(text: str) -> tuple[int, ...]:
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(x) for x in m.groups()) if m else (0, 0, 0)


def problems(conn: Any, where: str = "") -> list[str]:
    """Why this server cannot serve binlog CDC, one line each (empty: ready);
    each line starts with `where` when given."""
    found = _problems(conn)
    return [f"{where}: {p}" for p in found] if where else found


def _problems(conn: Any) -> list[str]:
    info = server_info(conn)
    v = info.variables
    out = []

    def need(name: str, wanted: str, why: str = "") -> None:
        have = v.get(name)
        if have is None or have.upper() != wanted.upper():
            out.append(f"{name} is {have or 'not set'}; binlog CDC needs {name}={wanted}{why} "
                       f"(set it in the server's configuration and restart, or SET GLOBAL {name}={wanted})")

    if v.get("log_bin", "OFF").upper() not in ("ON", "1"):
        out.append("log_bin is OFF; binlog CDC needs the binary log: start the server with "
                   "--log-bin (and --binlog-format=ROW, --binlog-row-metadata=FULL)")
        return out
    need("binlog_format", "ROW")
    need("binlog_row_image", "FULL")
    if "binlog_row_metadata" not in v:
        out.append(f"server {info.version} has no binlog_row_metadata; binlog CDC needs "
                   f"binlog_row_metadata=FULL (MariaDB 10.5 or later, MySQL 8.0.14 or later)")
    else:
        need("binlog_row_metadata", "FULL", " (the column names come from the log itself)")
    for name in ("log_bin_compress", "binlog_transaction_compression"):  # MariaDB, MySQL
        if v.get(name, "OFF").upper() not in ("OFF", "0"):
            out.append(f"{name} is {v[name]}; binlog CDC needs {name}=OFF "
                       f"(compressed events cannot be read)")
    if "partial_json" in v.get("binlog_row_value_options", "").lower():
        out.append("binlog_row_value_options is PARTIAL_JSON; binlog CDC needs it empty "
                   "(partial JSON updates carry no full row image)")
    out.extend(_grant_problems(conn))
    return out


_ALL = "ALL PRIVILEGES"


def _grant_problems(conn: Any) -> list[str]:
    """REPLICATION SLAVE (to read the log) and REPLICATION CLIENT (MariaDB: BINLOG
    MONITOR; to see where it is) on *.*. Grants through a role are not resolved
    here: the stream itself refuses then."""
    grants = [_text(r[0]).upper() for r in _rows(conn, "SHOW GRANTS")]
    global_ = " ".join(g for g in grants if " ON *.* " in g)
    if any(re.match(r"GRANT [`'\"]?\w", g) and " ON " not in g for g in grants):
        return []  # a role is granted: its privileges are not listed here
    out = []
    user = _text(_rows(conn, "SELECT CURRENT_USER()")[0][0])
    if _ALL not in global_ and "REPLICATION SLAVE" not in global_:
        out.append(f"user {user} lacks REPLICATION SLAVE; binlog CDC needs GRANT REPLICATION SLAVE ON *.* "
                   f"TO {user}")
    if _ALL not in global_ and not any(p in global_ for p in ("REPLICATION CLIENT", "BINLOG MONITOR", "SUPER")):
        out.append(f"user {user} lacks REPLICATION CLIENT; binlog CDC needs GRANT REPLICATION CLIENT ON *.* "
                   f"TO {user}")
    return out


def readiness(conn: Any) -> str:
    """For `connections test`: whether the source can serve cdc_strategy binlog, in one line."""
    found = problems(conn)
    if not found:
        return "ready for binlog CDC"
    return "not ready for binlog CDC: " + found[0] + (f" (and {len(found) - 1} more)" if len(found) > 1 else "")


def check_ready(conn: Any, where: str) -> ServerInfo:
    """Raise BinlogNotReady (the first problem, and how many more) unless the server is ready."""
    found = problems(conn, where)
    if found:
        more = f" (and {len(found) - 1} more problem(s); `lakeshift connections test` lists them)" \
            if len(found) > 1 else ""
        raise BinlogNotReady(found[0] + more)
    return server_info(conn)


def current_position(conn: Any, info: ServerInfo, seq: int = 0) -> BinlogPosition:
    """The end of the last committed transaction in the log, now."""
    try:
        rows = _rows(conn, "SHOW BINARY LOG STATUS")
    except Exception:  # noqa: BLE001 - before MySQL 8.2 and on MariaDB: the old name
        rows = _rows(conn, "SHOW MASTER STATUS")
    if not rows:
        raise BinlogNotReady("the server shows no binary log position (SHOW MASTER STATUS is empty); "
                             "binlog CDC needs --log-bin")
    file, pos = _text(rows[0][0]), int(rows[0][1])
    if info.mariadb:  # the GTID position of exactly this file/offset (a run resumes from it)
        gtid = _rows(conn, "SELECT BINLOG_GTID_POS(%s, %s)", (file, pos))[0][0]
        gtid = _text(gtid) if gtid is not None else None
    else:  # MySQL: recorded (at about this position), not resumed from
        again = server_info(conn).variables
        gtid = again.get("gtid_executed") if again.get("gtid_mode", "OFF").upper() == "ON" else None
    return BinlogPosition(file, pos, info.identity, gtid or None, seq)


def gtid_domains(gtid: str) -> dict[int, int]:
    """MariaDB's 'domain-server-seq,...' -> the highest seq per domain."""
    out: dict[int, int] = {}
    for part in filter(None, (p.strip() for p in gtid.split(","))):
        domain, _, seq = part.split("-")
        out[int(domain)] = max(out.get(int(domain), 0), int(seq))
    return out


def holds_gtid(conn: Any, gtid: str) -> bool:
    """MariaDB: the server's binlog history includes every transaction up to `gtid` (another
    server of the same replication topology, e.g. a promoted replica); purged files show later."""
    state = gtid_domains(_text(_rows(conn, "SELECT @@GLOBAL.gtid_binlog_state")[0][0] or ""))
    return all(state.get(d, -1) >= seq for d, seq in gtid_domains(gtid).items())


def binary_logs(conn: Any) -> dict[str, int]:
    """The log files the server still has, and their sizes."""
    return {_text(r[0]): int(r[1]) for r in _rows(conn, "SHOW BINARY LOGS")}


def lost_reason(conn: Any, info: ServerInfo, saved: BinlogPosition) -> str:
    """Why `saved` can no longer be read from ('' = it can)."""
    if saved.server != info.identity:
        return f"the server is another one now ({info.identity}, the position was taken on {saved.server})"
    logs = binary_logs(conn)
    if saved.file not in logs:
        oldest = min(logs, key=lambda f: BinlogPosition(f, 0, "").file_index) if logs else "none"
        return f"binlog file {saved.file} was purged (the oldest the server has is {oldest})"
    if saved.pos > logs[saved.file]:
        return f"binlog file {saved.file} is shorter ({logs[saved.file]} bytes) than the position {saved.pos}"
    return ""
