"""The `max_delete_fraction` guard: a source truncated or emptied by mistake must
not empty the warehouse. One rule for a delete batch (hard_deletes on an
incremental table, `verify --repair`: checked before the batch is written) and
for a full_sync with `hard_deletes: soft` (checked in the load transaction,
where the count of rows the snapshot lacks is known; a refusal rolls it back)."""

from __future__ import annotations

from lakeshift.errors import DeletesRefused

FORCE_HINT = ("If MySQL lost them by mistake, restore them; if the deletes are real, run again with --force-deletes "
              "(or raise max_delete_fraction)")


def refused(count: int, target_rows: int, fraction: float, force: bool) -> bool:
    """`count` rows gone are more than `fraction` of the target's `target_rows` (and not forced)."""
    return not force and count > fraction * target_rows


def share(count: int, target_rows: int) -> str:
    return f"{count / target_rows:.0%} of the {target_rows:,}" if target_rows else f"all {target_rows:,}"


def check_delete_fraction(table: str, count: int, target_rows: int, fraction: float, force: bool) -> None:
    """Refuse (one line, naming the table and the count) `count` deleted rows that are more
    than `fraction` of the target's `target_rows`, unless forced (--force-deletes)."""
    if not refused(count, target_rows, fraction, force):
        return
    raise DeletesRefused(
        f"tables.{table}: {count:,} row(s) are gone from MySQL, {share(count, target_rows)} row(s) in the target, "
        f"more than max_delete_fraction {fraction:g} allows; nothing was deleted. {FORCE_HINT}")


def check_snapshot_marks(table: str, marked: int, live_before: int, fraction: float) -> None:
    """full_sync, hard_deletes: soft: refuse a snapshot that lacks more than `fraction` of the
    target's live rows (the load's transaction is rolled back: nothing is marked or replaced)."""
    if not refused(marked, live_before, fraction, False):
        return
    raise DeletesRefused(
        f"tables.{table}: {marked:,} row(s) of the target are not in the new snapshot of MySQL, "
        f"{share(marked, live_before)} live row(s) in the target, more than max_delete_fraction {fraction:g} "
        f"allows; nothing was loaded or marked deleted (the snapshot stays in the lake, replaced by the next "
        f"run's). {FORCE_HINT}")
