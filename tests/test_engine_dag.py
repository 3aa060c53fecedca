"""The DAG executor: order, parallelism, and skipping downstream of failures."""

from __future__ import annotations

import threading
import time

import pytest

from lakeshift.engine.dag import run_dag

NODES = [("customers", []), ("products", []), ("orders", ["customers"]), ("order_items", ["orders", "products"])]


@pytest.mark.parametrize("workers", [1, 3])
def test_dependencies_run_first(workers: int) -> None:
    finished: list[str] = []
    lock = threading.Lock()

    def task(name: str) -> str:
        time.sleep(0.01)
        with lock:
            finished.append(name)
        return name.upper()

    outcomes = run_dag(NODES, task, workers=workers)
    assert [o.status for o in outcomes] == ["ok"] * 4
    assert [o.result for o in outcomes] == ["CUSTOMERS", "PRODUCTS", "ORDERS", "ORDER_ITEMS"]
    for name, deps in NODES:
        for dep in deps:
            assert finished.index(dep) < finished.index(name)


@pytest.mark.parametrize("workers", [1, 2])
def test_failure_skips_dependents_only(workers: int) -> None:
    def task(name: str) -> str:
        if name == "orders":
            raise RuntimeError("boom")
        return name

    outcomes = {o.name: o for o in run_dag(NODES, task, workers=workers)}
    assert outcomes["orders"].status == "failed"
    assert str(outcomes["orders"].error) == "boom"
    assert outcomes["order_items"].status == "skipped"
    assert outcomes["order_items"].blocked_by == "orders"
    assert outcomes["customers"].status == "ok"
    assert outcomes["products"].status == "ok"


def test_parallel_runs_independent_tables_concurrently() -> None:
    running, peak = 0, 0
    lock = threading.Lock()
    barrier = threading.Barrier(3, timeout=5)

    def task(name: str) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        barrier.wait()  # all three must be in flight at once, or this times out
        with lock:
            running -= 1

    outcomes = run_dag([("a", []), ("b", []), ("c", [])], task, workers=3)
    assert [o.status for o in outcomes] == ["ok", "ok", "ok"]
    assert peak == 3


def test_sequential_never_overlaps() -> None:
    running, peak = 0, 0

    def task(name: str) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        time.sleep(0.005)
        running -= 1

    run_dag([("a", []), ("b", []), ("c", [])], task, workers=1)
    assert peak == 1
