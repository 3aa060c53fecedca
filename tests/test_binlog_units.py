"""Pure parts of binlog CDC: MariaDB GTID positions followed while reading, and the
--follow loop (signals, retries, refusals), without a server."""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace
from typing import Any

import pytest

from lakeshift.batch import BinlogPosition
from lakeshift.engine.follow import FollowFailed, check_followable, follow
from lakeshift.errors import ConfigError, LakeshiftError
from lakeshift.source.binlog.server import gtid_domains
from lakeshift.source.binlog.stream import _gtid_text


def test_a_gtid_position_moves_on_per_domain() -> None:
    assert gtid_domains("0-1-5, 1-2-7,0-3-9") == {0: 9, 1: 7}
    assert gtid_domains("") == {}
    start = BinlogPosition("mysql-bin.000002", 400, "server_id:1", "0-1-5,1-2-7")
    assert _gtid_text({0: 12, 1: 7}, {0: 5}, start) == "0-5-12,1-2-7"  # domain 1 saw no transaction
    assert _gtid_text({}, {}, start) is None


def plan(*strategies: str, extract: bool = True, load: bool = True) -> Any:
    tables = [SimpleNamespace(name=f"t{i}", config=SimpleNamespace(cdc_strategy=s)) for i, s in enumerate(strategies)]
    return SimpleNamespace(tables=tables, pipeline=SimpleNamespace(key="p1"),
                           stages=SimpleNamespace(extract=extract, load=load))


def report(ok: bool = True, notes: tuple[str, ...] = ()) -> Any:
    outcome = SimpleNamespace(name="t0", status="ok" if ok else "failed", error=None if ok else "connection lost",
                              result=SimpleNamespace(notes=list(notes)))
    return SimpleNamespace(ok=ok, outcomes=[outcome])


def test_follow_refuses_tables_of_other_strategies_and_half_runs() -> None:
    with pytest.raises(ConfigError, match=r"pipelines/p1.yml: --follow reads the binlog only, but table\(s\) t1 use"):
        check_followable(plan("binlog", "hybrid"))
    with pytest.raises(ConfigError, match="cannot be combined with --backup-only or --load-only"):
        check_followable(plan("binlog", load=False))


def test_sigterm_ends_following_after_the_current_cycle() -> None:
    cycles: list[int] = []

    def cycle(_: Any) -> Any:
        cycles.append(1)
        if len(cycles) == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # mid-cycle: this cycle still ends normally
        return report(notes=("more changes wait",) if len(cycles) == 1 else ())

    done = follow(plan("binlog"), cycle, interval=30)  # the first cycle cut at max_changes: no wait
    assert (done.cycles, done.stopped_by, len(cycles)) == (2, "SIGTERM", 2)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # restored


def test_failed_cycles_are_retried_then_following_stops_with_the_last_error() -> None:
    outcomes = iter([report(ok=False), report(), report(ok=False)] + [report(ok=False)] * 3)

    def cycle(_: Any) -> Any:
        return next(outcomes)

    with pytest.raises(FollowFailed, match="after 4 failed cycles in a row; the last: t0: connection lost"):
        follow(plan("binlog"), cycle, interval=0)

    def raising(_: Any) -> Any:
        raise LakeshiftError("server gone")

    with pytest.raises(FollowFailed, match="the last: server gone"):
        follow(plan("binlog"), raising, interval=0, retries=1)
