"""Read one table's changes from the binary log, from a saved position up to
the position the run fixed at its start, ending only at a transaction's
commit. Every event is understood or the read fails: an event the library
does not decode (compressed events, unknown types), a partial row image, a
statement that touches the table outside a row event (DDL, TRUNCATE, a
statement-logged DML) or a row image whose columns are not the table's stops
the table with one line instead of being skipped."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa
import pymysql
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication import event as ev
from pymysqlreplication import row_event as rev

from lakeshift.batch import TRUNCATE_OP as TRUNCATE
from lakeshift.batch import BinlogPosition
from lakeshift.errors import SourceError
from lakeshift.source.binlog.decode import RowDecoder
from lakeshift.source.binlog.server import PositionLost, gtid_domains
from lakeshift.source.description import TableDescription

BATCH_ROWS = 16_384  # changes per Arrow batch handed to the writer (memory, not the lake batch's size)
_ROWS = (rev.WriteRowsEvent, rev.UpdateRowsEvent, rev.DeleteRowsEvent)
# Events that carry nothing for a row-based reader: positions, GTIDs, checksums, annotations.
_HARMLESS = (ev.RotateEvent, ev.FormatDescriptionEvent, ev.GtidEvent, ev.MariadbGtidEvent, ev.MariadbGtidListEvent,
             ev.MariadbBinLogCheckPointEvent, ev.PreviousGtidsEvent, ev.HeartbeatLogEvent, ev.StopEvent,
             ev.IntvarEvent, ev.RandEvent, ev.UserVarEvent, ev.MariadbAnnotateRowsEvent, ev.RowsQueryLogEvent,
             ev.MariadbStartEncryptionEvent, rev.TableMapEvent)
_EVERY_EVENT = (*_ROWS, *_HARMLESS, ev.QueryEvent, ev.XidEvent, ev.NotImplementedEvent, ev.XAPrepareEvent,
                ev.BeginLoadQueryEvent, ev.ExecuteLoadQueryEvent, rev.PartialUpdateRowsEvent)
_ANONYMOUS_GTID = 34  # MySQL without GTIDs: a transaction's header, nothing else
_COMMITS = ("COMMIT", "ROLLBACK")  # ROLLBACK: the rows of non-transactional tables it logged stay applied
RECONNECTS = 3  # a dropped binlog connection is opened again from the last commit read, this often per run
POSITION_LOST_ERROR = 1236  # the server cannot send from the requested position
_ALTER = re.compile(r"\s*ALTER\s+(?:ONLINE\s+|IGNORE\s+)*TABLE\b", re.IGNORECASE)
# ALTER TABLE t RENAME [TO|AS] u: the table is gone under its name (RENAME COLUMN/INDEX/KEY are not)
_RENAMES_TABLE = re.compile(r"\bRENAME\s+(?!COLUMN\b|INDEX\b|KEY\b)", re.IGNORECASE)


class _Dropped(Exception):
    """The binlog connection dropped while reading."""


@dataclass(frozen=True)
class ReadTarget:
    """What one read is about: the table, its merge key, its options, and the replica id to read under."""

    desc: TableDescription
    key: list[str]
    zero_dates: str
    server_id: int
    truncate: bool = False  # a TRUNCATE of the table is applied (hard_deletes set) instead of stopping it
    # MariaDB, the saved position's file/offset unknown on this server (a promoted replica): read from its
    # GTID. Otherwise by file/offset (a dropped connection resumes reliably; the GTID is followed all the same)
    by_gtid: bool = False
    max_changes: int | None = None  # end the read at the first commit past this many changes (--follow)


class ChangeRead:
    """The changes of one table between two positions, as Arrow batches in the
    change schema; `position` is where the read ended (a commit), once it has."""

    def __init__(self, connect: Callable[[], Any], target: ReadTarget, start: BinlogPosition,
                 end: BinlogPosition) -> None:
        self.connect, self.t, self.start, self.end = connect, target, start, end
        self.position = start
        self.changes = 0
        self.where = f"binlog of {target.desc.full_name}"
        self._decoder = RowDecoder(target.desc.full_name, target.desc.columns, target.zero_dates)
        self._names = [c.name for c in target.desc.columns]
        self._gone: list[str] = []
        self._seen: tuple[Any, dict[str, list[str]]] = (None, {})  # the last row images' columns checked, SET orders
        self.truncated = False  # a TRUNCATE was read (the delete guard then applies)
        self.cut = False  # the read ended at max_changes, before `end`
        self.notes: list[str] = []
        # the table's name in a statement, with the schema that qualifies it, if any
        self._mention = re.compile(r"(?:`?([\w$]+)`?\s*\.\s*)?(?<![\w$])`?" + re.escape(target.desc.table)
                                   + r"`?(?![\w$])", re.IGNORECASE)

    def batches(self) -> Generator[pa.RecordBatch, None, None]:
        if self.start.key() >= self.end.key():
            return  # nothing was committed since the saved position
        for attempt in range(RECONNECTS + 1):
            since = self.position  # the last commit read: a dropped connection resumes from it
            stream = self._open(since)
            try:
                yield from self._read(stream, since)
                return
            except _Dropped:
                self.notes.append(f"the binlog connection dropped after {since.file}:{since.pos}; read again "
                                  f"from that commit")
            except pymysql.err.OperationalError as exc:
                if exc.args and exc.args[0] == POSITION_LOST_ERROR:
                    raise PositionLost(f"{self.where}: the server cannot send from {since.describe()}: "
                                       f"{exc.args[1]}") from None
                raise
            finally:
                stream.close()
        raise SourceError(f"{self.where}: the binlog connection dropped {RECONNECTS + 1} times in this run; "
                          f"nothing was loaded, run it again")

    def _open(self, start: BinlogPosition) -> BinLogStreamReader:
        streams = []

        def wrapper(**settings: Any) -> Any:
            if settings.get("cursorclass") is None:  # the stream, not the library's control connection
                if streams:
                    # the library reconnects by itself from the last event read (by GTID: from the start
                    # again); this reader resumes from the last commit instead: nothing read twice
                    raise _Dropped()
                streams.append(True)
            conn = self.connect()
            if settings.get("cursorclass") is not None:  # the library's control connection
                conn.cursorclass = settings["cursorclass"]
            return conn

        where = dict(auto_position=start.gtid, is_mariadb=True) if self.t.by_gtid else dict(
            log_file=start.file, log_pos=start.pos, resume_stream=True)
        return BinLogStreamReader(
            connection_settings={}, server_id=self.t.server_id, **where, blocking=False,
            only_events=list(_EVERY_EVENT), filter_non_implemented_events=False, freeze_schema=True,
            only_schemas=[self.t.desc.schema], only_tables=[self.t.desc.table], pymysql_wrapper=wrapper,
            enable_logging=False)

    def _read(self, stream: BinLogStreamReader, since: BinlogPosition) -> Iterator[pa.RecordBatch]:
        tx: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, list[str]]]] = []
        gtids = gtid_domains(since.gtid or "")  # MariaDB: the GTID position is followed while reading
        servers: dict[int, int] = {}
        pending: Any = None
        for event in iter(stream.fetchone, None):
            if isinstance(event, _ROWS):
                tx.extend(self._changes(event))
                continue
            query = _text(event.query).strip() if isinstance(event, ev.QueryEvent) else None
            if isinstance(event, ev.MariadbGtidEvent):
                pending = event
            elif _may_change_tables(event, query):
                stream.table_map.clear()  # see _may_change_tables
            if not self._commits(event, query, tx):
                continue
            if pending is not None:  # the GTID set after this transaction
                gtids[pending.domain_id], servers[pending.domain_id] = pending.gtid_seq_no, pending.server_id
                pending = None
            committed = dt.datetime.fromtimestamp(event.timestamp, dt.timezone.utc)
            for op, values, nones, sets in tx:
                self._decoder.add(op, self.start.seq + self.changes, committed, values, nones, sets)
                self.changes += 1
            tx = []
            self.position = replace(self.end, file=stream.log_file, pos=stream.log_pos,
                                    seq=self.start.seq + self.changes, gtid=_gtid_text(gtids, servers, since))
            if len(self._decoder) >= BATCH_ROWS:
                yield self._decoder.flush()
            if self.position.key() >= self.end.key():
                break
            if self.t.max_changes and self.changes >= self.t.max_changes:
                self.cut = True  # at a commit: the rest is the next batch's
                break
        else:
            if BinlogPosition(stream.log_file or "", stream.log_pos or 0, "").key() >= self.end.key():
                self.position = replace(self.end, seq=self.start.seq + self.changes)  # no commit after the last
            if self.position.key() < self.end.key():
                raise SourceError(f"{self.where}: the log ended at {stream.log_file}:{stream.log_pos}, before "
                                  f"{self.end.file}:{self.end.pos} where this run meant to stop; run it again")
        if self.position.key() == self.end.key():
            self.position = replace(self.position, gtid=self.end.gtid)
        if len(self._decoder):
            yield self._decoder.flush()

    def _commits(self, event: Any, query: str | None, tx: list[Any]) -> bool:
        """True at the end of a transaction; raises on an event this reader does not understand.
        `query`: a QueryEvent's statement, stripped. A TRUNCATE of the table (hard_deletes set) is a
        change of its own: every row deleted."""
        if isinstance(event, ev.XidEvent):
            return True
        if query is not None:
            word = query.split(None, 1)[0].upper() if query else ""
            if word in ("BEGIN", "XA"):
                if word == "XA":
                    raise SourceError(f"{self.where}: XA transactions are not supported by binlog CDC yet "
                                      f"({query[:80]!r} at {self._at(event)})")
                return False
            if word in _COMMITS:
                return True
            if self._names_table(query, _text(event.schema or "")):
                if _ALTER.match(query) and not _RENAMES_TABLE.search(query):
                    return True  # its effect is in the columns this run read the table with (binlog_schema.py)
                if word == "TRUNCATE" and self.t.truncate:
                    tx.append((TRUNCATE, {}, {}, {}))
                    self.truncated = True
                    return True
                raise SourceError(
                    f"{self.where}: a statement changed the table outside the row events at {self._at(event)} "
                    f"({' '.join(query.split())[:120]!r}); binlog CDC cannot follow TRUNCATE (without hard_deletes), "
                    f"DROP/RENAME TABLE or statement-logged changes. Way out: `lakeshift watermark reset` for this "
                    f"table (the next run takes a new snapshot)")
            return True  # DDL of other tables commits implicitly
        if isinstance(event, _HARMLESS):
            return False
        if isinstance(event, ev.NotImplementedEvent) and event.packet.event_type == _ANONYMOUS_GTID:
            return False
        kind = getattr(getattr(event, "packet", None), "event_type", "?")
        raise SourceError(f"{self.where}: event type {kind} ({type(event).__name__}) at {self._at(event)} is not "
                          f"understood by binlog CDC (a compressed binlog, partial JSON updates or XA); nothing "
                          f"was loaded. Turn it off on the server (log_bin_compress / "
                          f"binlog_transaction_compression / binlog_row_value_options) and `lakeshift watermark "
                          f"reset` this table")

    def _names_table(self, query: str, default_schema: str) -> bool:
        """The statement names this table: qualified by its schema, or unqualified while that
        schema is the session's (or the session had none). Same-named tables elsewhere do not count."""
        for m in self._mention.finditer(query):
            schema = m.group(1) or default_schema
            if not schema or schema == self.t.desc.schema:
                return True
        return False

    def _changes(self, event: Any) -> Iterator[tuple[str, dict[str, Any], dict[str, Any], dict[str, list[str]]]]:
        """(op, values, none reasons, SET orders) per change; an update of the key is a delete and an insert."""
        if event.schema != self.t.desc.schema or event.table != self.t.desc.table:
            return  # the library's filter let it through: another table of the same name elsewhere
        if event.columns is not self._seen[0]:  # a table map not seen yet (the stream parses each once)
            self._check_columns(event)
            self._seen = (event.columns, {c.name: list(c.set_values) for c in event.columns
                                          if getattr(c, "set_values", None)})
        sets, key = self._seen[1], self.t.key
        op = "insert" if isinstance(event, rev.WriteRowsEvent) else \
            "delete" if isinstance(event, rev.DeleteRowsEvent) else None
        for row in event.rows:
            image = row.get("values") or row["after_values"]
            if any(image.get(k) is None for k in key):
                raise SourceError(f"{self.where}: a change at {self._at(event)} has a NULL in the key "
                                  f"({', '.join(key)}); it cannot be applied by key. Set primary_key to "
                                  f"columns that are never NULL")
            if op is not None:
                yield op, image, row["none_sources"], sets
            else:
                before = row["before_values"]
                if any(before.get(k) != image.get(k) for k in key):
                    yield "delete", before, row["before_none_sources"], sets
                yield "update", image, row["after_none_sources"], sets

    def _check_columns(self, event: Any) -> None:
        """Images written before a schema change the run's columns already show: a column added
        since is NULL in them, one dropped since is not kept (engine/binlog_schema.py). Images
        without column names (logged before binlog_row_metadata=FULL) or without the key stop."""
        names = [c.name for c in event.columns]
        if names == self._names:
            return
        missing = [k for k in self.t.key if k not in names]
        if missing or any(not isinstance(n, str) for n in names):
            raise SourceError(
                f"{self.where}: the row images at {self._at(event)} have the columns {', '.join(map(str, names))} "
                f"but the table's key is {', '.join(self.t.key)}; they cannot be applied by key. Way out: "
                f"`lakeshift watermark reset` for this table (the next run takes a new snapshot)")
        gone = [n for n in names if n not in self._names]
        if gone and gone != self._gone:
            self._gone = gone
            self.notes.append(f"column(s) {', '.join(gone)} of changes before {self._at(event)} are not kept "
                              f"(gone from the table since)")

    @staticmethod
    def _at(event: Any) -> str:
        return f"position {getattr(event.packet, 'log_pos', '?')}"


def _may_change_tables(event: Any, query: str | None) -> bool:
    """The stream parses a table's map once per table id (freeze_schema: the parse is most of the
    library's time when transactions are small) and forgets the maps here: at a statement other than
    BEGIN/COMMIT/ROLLBACK (DDL is one) and at a new log file (a restarted server numbers its tables
    anew). A table id names one definition of one table while the server runs, so between these
    the maps read once are the maps the server would send again."""
    if query is not None:  # a QueryEvent's statement, stripped
        return query.upper() not in ("BEGIN", *_COMMITS)
    return isinstance(event, (ev.FormatDescriptionEvent, ev.RotateEvent))


def _gtid_text(gtids: dict[int, int], servers: dict[int, int], start: BinlogPosition) -> str | None:
    """MariaDB's GTID position after the transactions read: the start's, moved on per domain."""
    if not gtids:
        return None
    known = {int(p.split("-")[0]): p for p in (start.gtid or "").split(",") if p}
    for domain, seq in gtids.items():
        if domain in servers:
            known[domain] = f"{domain}-{servers[domain]}-{seq}"
    return ",".join(known[d] for d in sorted(known))


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, (bytes, bytearray)) else str(v)
