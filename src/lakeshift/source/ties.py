"""Checksums of the rows that share one cursor timestamp (a "tie"), computed
in MySQL, so a run can restart right after its watermark when nothing changed
there, and AT its timestamp when something did.

A cursor read can only skip the rows on its watermark's timestamp if they are
exactly the rows it read: a row written later within that same second (or
microsecond) with a smaller id, or a tied row changed in place, would be lost
forever. So each run takes the checksum of the tie at its upper bound BEFORE it
reads (a row changing after it makes the next checksum differ, never the
other way round) and keeps it in the watermark (Cursor.ties). The next run
checksums the rows now at the watermark's timestamp: equal, it starts after
the watermark (no row re-read: a bulk UPDATE that stamped 20k rows with one
timestamp is not read again on every run); different, it starts AT the
timestamp and merges the tie again by key.

The checksum is COUNT(*) and two sums of 60-bit pieces of MD5 over the quoted
bytes of the columns `tie_columns` names (NULL quoted as NULL): order-free,
computed in MySQL (an index range on the cursor, no data sent)."""

from __future__ import annotations

from typing import Any

from lakeshift.source import keys as K
from lakeshift.source.convert import ref


def tie_sum(pool: Any, desc: Any, from_sql: str, ts: K.KeyCol, value: Any,
            upto: tuple[list[K.KeyCol], list[Any]] | None, where: str) -> str:
    """Checksum of the rows with `ts` = `value` (and a position up to `upto`)."""
    quoted = ", ".join(f"QUOTE(CAST({ref(name)} AS BINARY))" for name in tie_columns(desc, ts))
    conds = [f"{ts.sql} = {ts.literal(value)}"] + ([K.upto(*upto)] if upto else [])
    # CONV gives text, which SUM would add as DOUBLE (rounded, and in scan order): cast to
    # integers, whose SUM is an exact DECIMAL.
    sql = ("SELECT COUNT(*), COALESCE(SUM(CAST(CONV(SUBSTRING(h, 1, 15), 16, 10) AS UNSIGNED)), 0), "
           "COALESCE(SUM(CAST(CONV(SUBSTRING(h, 16, 15), 16, 10) AS UNSIGNED)), 0) "
           f"FROM (SELECT MD5(CONCAT_WS(',', {quoted})) AS h FROM {from_sql} WHERE {' AND '.join(conds)}) AS t")
    (count, a, b), = pool.query(sql, None, where)
    return f"{int(count)}:{int(a):x}:{int(b):x}"


def tie_columns(desc: Any, ts: K.KeyCol) -> list[str]:
    """What the checksum covers. A cursor with fractional seconds (or an integer
    one): the cursor and the row's unique key -- rows added to the tie or gone
    from it -- which the cursor's index holds, so no row is fetched (a bulk
    UPDATE's tie of 20,000 rows is read from the index alone). A row changed in
    place without moving its cursor is the documented limit of every cursor
    read. Whole seconds (and DATE): every column, since an update within the
    same second leaves such a cursor as it was; and every column for a table
    without a key."""
    keys = desc.identifying_keys()
    if keys and not ts.info.whole_seconds:
        return [ts.name] + [c for c in keys[0][1] if c != ts.name]
    return [i.name for i in desc.infos]
