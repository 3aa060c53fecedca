"""A small DAG executor: one worker runs tables in order; a pool runs
independent tables concurrently. A failed table skips everything downstream;
unrelated tables go on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, TypeVar

R = TypeVar("R")


@dataclass
class Outcome(Generic[R]):
    name: str
    status: str  # ok | failed | skipped
    result: R | None = None
    error: BaseException | None = None
    blocked_by: str | None = None


def run_dag(
    nodes: Sequence[tuple[str, Sequence[str]]],
    task: Callable[[str], R],
    workers: int = 1,
    on_done: Callable[[Outcome[R]], None] | None = None,
) -> list[Outcome[R]]:
    """Run `task(name)` for every node after its dependencies. `nodes` must be in
    a dependency order. Returns outcomes in the order of `nodes`."""
    deps = {name: set(d) for name, d in nodes}
    outcomes: dict[str, Outcome[R]] = {}

    def finish(outcome: Outcome[R]) -> None:
        outcomes[outcome.name] = outcome
        if on_done:
            on_done(outcome)

    def blocked(name: str) -> str | None:
        return next((d for d in deps[name] if d in outcomes and outcomes[d].status != "ok"), None)

    def attempt(name: str) -> Outcome[R]:
        try:
            return Outcome(name, "ok", result=task(name))
        except Exception as exc:  # noqa: BLE001 - recorded, reported, and turned into the exit code
            return Outcome(name, "failed", error=exc)

    pending = [name for name, _ in nodes]
    if workers <= 1:
        for name in pending:
            cause = blocked(name)
            finish(Outcome(name, "skipped", blocked_by=cause) if cause else attempt(name))
        return [outcomes[n] for n, _ in nodes]

    running: dict[Future[Outcome[R]], str] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lakeshift-table") as pool:
        while pending or running:
            for name in list(pending):
                if len(running) >= workers:
                    break
                cause = blocked(name)
                if cause:
                    pending.remove(name)
                    finish(Outcome(name, "skipped", blocked_by=cause))
                elif deps[name] <= set(outcomes):
                    pending.remove(name)
                    running[pool.submit(attempt, name)] = name
            if not running:
                if pending and not any(deps[n] <= set(outcomes) or blocked(n) for n in pending):
                    raise RuntimeError("dependency order is not satisfiable")  # a bug: plans are validated
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                running.pop(fut)
                finish(fut.result())
    return [outcomes[n] for n, _ in nodes]
