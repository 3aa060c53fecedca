"""`lakeshift freshness`: is each table loaded recently enough? dbt's source
freshness, with one difference on purpose: the age is the time since the last
successful load, so a run that found no new rows (a quiet source) counts as
fresh. The age of the newest loaded source row (tables with a timestamp cursor)
is reported beside it, and is what `lag` means everywhere."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from lakeshift.monitor.snapshot import TableStatus

Verdict = Literal["pass", "warn", "error", "unchecked"]
EXIT_CODES = {"pass": 0, "unchecked": 0, "warn": 3, "error": 4}  # 1 is a command error


@dataclass(frozen=True)
class Freshness:
    status: TableStatus
    verdict: Verdict
    warn_after: timedelta | None
    error_after: timedelta | None
    load_age_seconds: float | None  # since the last successful load (None: never loaded)
    reason: str


def thresholds(st: TableStatus, warn_after: timedelta | None,
               error_after: timedelta | None) -> tuple[timedelta | None, timedelta | None]:
    """The command line's thresholds win over the table's `freshness` config, each on its own."""
    cfg = st.freshness
    return (warn_after if warn_after is not None else getattr(cfg, "warn_after", None),
            error_after if error_after is not None else getattr(cfg, "error_after", None))


def evaluate(st: TableStatus, now: datetime, warn_after: timedelta | None = None,
             error_after: timedelta | None = None) -> Freshness:
    warn, error = thresholds(st, warn_after, error_after)
    age = (now - st.last_success_at).total_seconds() if st.last_success_at else None
    if warn is None and error is None:
        return Freshness(st, "unchecked", warn, error, age, "no warn_after/error_after for this table")
    if age is None:
        why = "never loaded successfully" + (f" ({st.problems[0]})" if st.problems else "")
        return Freshness(st, "error" if error is not None else "warn", warn, error, None, why)
    for verdict, limit in (("error", error), ("warn", warn)):
        if limit is not None and age > limit.total_seconds():
            return Freshness(st, verdict, warn, error, age,  # type: ignore[arg-type]
                             f"last successful load {human(age)} ago, more than {verdict}_after {human(limit.total_seconds())}")
    return Freshness(st, "pass", warn, error, age, f"last successful load {human(age)} ago")


def exit_code(results: list[Freshness]) -> int:
    return max((EXIT_CODES[r.verdict] for r in results), default=0)


def human(seconds: float) -> str:
    """90061 -> '1d1h1m'; under a minute, '42s'."""
    rest = int(round(seconds))
    if rest < 60:
        return f"{rest}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        n, rest = divmod(rest, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)
