"""`sync pipeline --follow`: a binlog pipeline kept current. Each cycle is an
ordinary run (every table reads the changes since its saved position, at most
`max_changes` per batch, ending at a commit, and loads them with the position
in one transaction), then the next starts after `interval` (at once while a
table had more changes than one batch takes).

SIGTERM and SIGINT end it after the current cycle: nothing is cut in the
middle, and the next start resumes from the last committed position. A
second signal interrupts at once (the batch is then redone by the next run:
runs converge). A cycle that fails (a dropped connection, the server
restarting) is retried from the last committed position after the interval;
`retries` failures in a row stop following with the last error."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lakeshift.engine.plan import Plan
from lakeshift.errors import ConfigError, LakeshiftError

log = logging.getLogger("lakeshift.engine")


class FollowFailed(LakeshiftError):
    """Following stopped: cycles failed in a row."""


@dataclass
class FollowReport:
    cycles: int = 0
    failed_cycles: int = 0
    stopped_by: str = ""  # the signal's name
    notes: list[str] = field(default_factory=list)


def check_followable(plan: Plan) -> None:
    """Only binlog tables can be followed (a cursor table would rescan its index every interval)."""
    others = [t.name for t in plan.tables if t.config.cdc_strategy != "binlog"]
    if others:
        raise ConfigError(f"pipelines/{plan.pipeline.key}.yml: --follow reads the binlog only, but table(s) "
                          f"{', '.join(others)} use another cdc_strategy; sync them without --follow (-t TABLE), "
                          f"or set cdc_strategy: binlog")
    if not (plan.stages.extract and plan.stages.load):
        raise ConfigError("--follow extracts and loads: it cannot be combined with --backup-only or --load-only")


class Stopper:
    """SIGTERM/SIGINT ask to stop after the current cycle; a second one interrupts at once."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal = ""
        self._old: dict[int, Any] = {}

    def __enter__(self) -> Stopper:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name
        log.warning("%s: stopping after the current batch (again to interrupt now)", self.signal)
        self.event.set()


def follow(plan: Plan, run_cycle: Callable[[Plan], Any], interval: float, retries: int = 3) -> FollowReport:
    """Run cycles until a signal; `run_cycle` runs one and returns its report (`.ok`, `.outcomes`)."""
    check_followable(plan)
    report = FollowReport()
    in_a_row = 0
    with Stopper() as stop:
        while not stop.event.is_set():
            try:
                result = run_cycle(plan)
                error = None if result.ok else next(
                    (f"{o.name}: {o.error}" for o in result.outcomes if o.status == "failed"), "a table failed")
            except LakeshiftError as exc:
                result, error = None, str(exc)
            report.cycles += 1
            if error is not None:
                report.failed_cycles += 1
                in_a_row += 1
                if in_a_row > retries:
                    raise FollowFailed(f"--follow stopped after {in_a_row} failed cycles in a row; the last: {error}")
                log.warning("cycle failed (%d of %d in a row; retrying from the last committed position in %gs): %s",
                            in_a_row, retries + 1, interval, error)
            else:
                in_a_row = 0
            if error is None and _more_waiting(result):
                continue  # a batch was cut at max_changes: the rest is read at once
            stop.event.wait(interval)
        report.stopped_by = stop.signal
    return report


def _more_waiting(result: Any) -> bool:
    return any(o.result is not None and "more changes wait" in " ".join(o.result.notes) for o in result.outcomes)
