"""Fix a run's window before any row is read: the cursor columns, the keyset
order, the upper bound read from the table now, and where the run starts
after its watermark (the rules are in window.py, the tie checksums in ties.py)."""

from __future__ import annotations

from datetime import timedelta

from lakeshift.batch import Cursor
from lakeshift.config.models import TableConfig
from lakeshift.errors import SourceError
from lakeshift.source import keys as K
from lakeshift.source.description import TableDescription
from lakeshift.source.positions import PositionQueries
from lakeshift.source.window import Window

_CURSOR_KINDS = {"ts": {"temporal", "int", "decimal", "string"}, "id": {"int", "decimal", "string", "temporal"}}
_BOUND = {"hybrid": ("ts", "id"), "timestamp_only": ("ts",), "id_only": ("id",), "full_sync": ()}
_SETTING = {"ts": "cdc_timestamp_column", "id": "cdc_id_column"}


def plan_window(positions: PositionQueries, table: TableConfig, desc: TableDescription,
                low: Cursor | None) -> Window:
    """This run's range; `low`: the watermark it starts from (None: from the start)."""
    desc.apply(table)
    strategy = table.cdc_strategy
    bkeys, lookback = _cursor_keys(table, desc)
    bound = [k.name for k in bkeys]
    w = Window(strategy=strategy, low=low, high=None, bound_columns=bound, page_columns=_page_columns(desc, bound),
               watermark=low, lookback=lookback)
    if strategy == "full_sync":
        w.low = w.watermark = None
        return w
    # The upper bound is the greatest row by the whole paging key, so that
    # even rows tying with it on the cursor wait for the next run.
    w.high_columns = w.page_columns or list(bound)
    hkeys = [key_of(desc, c) for c in w.high_columns]
    high = positions.greatest(desc, hkeys)
    if high is None:
        w.empty = True
        return w
    w.high_values = high
    w.high = K.cursor_of(strategy, bkeys, high[:len(bound)])
    if checks_ties(w):  # before any row is read (see ties.py)
        w.high_ties = positions.tie_sum(desc, bkeys[0], high[0], (hkeys, high))
    if low is not None:
        _set_low(positions, w, desc, bkeys, low)
    return w


def checks_ties(w: Window) -> bool:
    """hybrid whose (ts, id) is a unique position, and timestamp_only: a run
    may start right after its watermark when the tie there is unchanged."""
    if w.lookback:
        return False
    return w.strategy == "timestamp_only" or (w.strategy == "hybrid" and w.page_columns == w.bound_columns)


def key_of(desc: TableDescription, name: str) -> K.KeyCol:
    key = K.KeyCol.of(desc.info(name))
    if key is None:
        raise SourceError(f"{desc.full_name}: column {name!r} cannot order a keyset read")
    return key


def _cursor_keys(table: TableConfig, desc: TableDescription) -> tuple[list[K.KeyCol], timedelta | None]:
    """The cursor columns of the strategy, in order (ts, id), and the lookback that applies."""
    strategy = table.cdc_strategy
    names = {"ts": table.cdc_timestamp_column, "id": table.cdc_id_column}
    roles = _BOUND[strategy]
    missing = [_SETTING[r] for r in roles if names[r] is None]
    if missing:
        raise SourceError(f"{desc.full_name}: cdc_strategy {strategy} needs {' and '.join(missing)}")
    # In id_only the id column orders the read, whatever its type; a hybrid whose two settings
    # name one column reads it as the timestamp (as each role's kinds allow).
    keys = [_cursor_key(desc, names[r], "ts" if names[r] == names["ts"] and strategy != "id_only" else "id")
            for r in roles]
    lookback = table.lookback if strategy in ("hybrid", "timestamp_only") else None
    if lookback and keys[0].kind != "temporal":
        raise SourceError(f"{desc.full_name}: lookback needs a DATE/DATETIME/TIMESTAMP cdc_timestamp_column; "
                          f"{keys[0].name!r} is {keys[0].info.column_type}")
    return keys, lookback


def _cursor_key(desc: TableDescription, name: str, role: str) -> K.KeyCol:
    info = desc.info(name)
    key = K.KeyCol.of(info)
    if key is None or key.kind not in _CURSOR_KINDS[role]:
        raise SourceError(f"{desc.full_name}: {_SETTING[role]} {name!r} is {info.column_type}, which cannot order "
                          f"a CDC read; use a DATETIME/TIMESTAMP/integer column")
    return key


def _page_columns(desc: TableDescription, bound: list[str]) -> list[str]:
    """Keyset order: the cursor columns, then the rest of a unique NOT NULL key."""
    usable = [cols for _, cols in desc.identifying_keys()
              if all(K.KeyCol.of(desc.info(c)) is not None for c in cols)]
    for cols in usable:
        if bound and set(cols) <= set(bound):
            return bound
    if usable:
        return bound + [c for c in usable[0] if c not in bound]
    return []


def _set_low(positions: PositionQueries, w: Window, desc: TableDescription, bkeys: list[K.KeyCol],
             low: Cursor) -> None:
    if w.strategy == "id_only":
        if low.id is None:
            raise SourceError(f"{desc.full_name}: the watermark has no id; set one with `lakeshift watermark set`")
        w.low_values = [bkeys[0].from_cursor(low.id)]
        # An id that is a unique key by itself: every row at the watermark was read. Otherwise
        # (the order id of order lines) a run may have stopped inside its rows: read them again.
        w.low_inclusive = [bkeys[0].name] not in [cols for _, cols in desc.identifying_keys()]
        return
    if low.timestamp is None:
        raise SourceError(f"{desc.full_name}: the watermark has no timestamp; "
                          f"set one with `lakeshift watermark set`")
    # hybrid and timestamp_only restart AT the watermark's timestamp: rows there that were not
    # read (a --limit inside a tie, a row written later in the same second) are read now, and
    # those read before are merged again by key -- unless the tie there is exactly the one
    # the watermark was taken on (ties.py): then right after it.
    start = K.shift_iso(low.timestamp, w.lookback) if w.lookback else low.timestamp
    w.low_values = [bkeys[0].from_cursor(start)]
    if w.lookback:
        w.low = Cursor(timestamp=start, id=None)
    elif checks_ties(w) and low.ties is not None and (w.strategy == "timestamp_only" or low.id is not None):
        position = w.low_values + ([bkeys[1].from_cursor(low.id)] if w.strategy == "hybrid" else [])
        upto = (bkeys, position) if w.strategy == "hybrid" else None
        # Nothing beyond the watermark (a run with no change): the upper bound is the watermark's
        # own position, and the tie just checksummed there is the one to compare -- no second query.
        now = w.high_ties if w.high == low and w.high_ties is not None else (
            positions.tie_sum(desc, bkeys[0], w.low_values[0], upto))
        if now == low.ties:
            w.low_values = position
            w.empty = w.high == low  # right after the upper bound itself: no row to read
            return
    w.low_inclusive = True
