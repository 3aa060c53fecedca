"""Which MySQL rows the target should hold: those up to the watermark of the
newest batch loaded into it (its `_lakeshift_loads`, as `watermark get`
reads it). Rows beyond are pending: the next run brings them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lakeshift.batch import Cursor
from lakeshift.batch_state import SKIPPED_MODE
from lakeshift.source import keys as K
from lakeshift.source.window_plan import key_of

if TYPE_CHECKING:
    from lakeshift.config.models import TableConfig
    from lakeshift.source import TableDescription

NOTHING_LOADED = "1 = 0"


def loaded_watermark(records: Mapping[str, Any]) -> Cursor | None:
    """The upper watermark of the newest batch loaded (skipped ones load nothing)."""
    loaded = [r for r in records.values() if r.mode != SKIPPED_MODE and r.watermark_high is not None]
    return max(loaded, key=lambda r: r.batch_id).watermark_high if loaded else None


def synced_condition(desc: TableDescription, table: TableConfig, loaded: Cursor | None) -> str | None:
    """MySQL condition true for the rows at or before `loaded` in the table's
    CDC order; None for full_sync (the target is the whole last snapshot)."""
    strategy = table.cdc_strategy
    if strategy == "full_sync":
        return None
    if loaded is None:
        return NOTHING_LOADED
    if strategy == "id_only":
        names, values = [table.cdc_id_column], [loaded.id]
    elif strategy == "timestamp_only" or table.cdc_id_column in (None, table.cdc_timestamp_column):
        names, values = [table.cdc_timestamp_column], [loaded.timestamp]
    else:
        names, values = [table.cdc_timestamp_column, table.cdc_id_column], [loaded.timestamp, loaded.id]
    if any(v is None for v in values) or any(n is None for n in names):
        return NOTHING_LOADED
    keys = [key_of(desc, str(n)) for n in names]
    return K.upto(keys, [k.from_cursor(v) for k, v in zip(keys, values)])
