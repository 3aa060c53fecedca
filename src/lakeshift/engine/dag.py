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
    run = _Run(nodes, task, on_done)
    if workers <= 1:
        run.one_by_one()
    else:
        run.in_parallel(workers)
    return [run.outcomes[n] for n, _ in nodes]


class _Run(Generic[R]):
    def __init__(self, nodes: Sequence[tuple[str, Sequence[str]]], task: Callable[[str], R],
                 on_done: Callable[[Outcome[R]], None] | None) -> None:
        self.deps = {name: set(d) for name, d in nodes}
        self.pending = [name for name, _ in nodes]
        self.task, self.on_done = task, on_done
        self.outcomes: dict[str, Outcome[R]] = {}

    def finish(self, outcome: Outcome[R]) -> None:
        self.outcomes[outcome.name] = outcome
        if self.on_done:
            self.on_done(outcome)

    def blocked(self, name: str) -> str | None:
        return next((d for d in self.deps[name] if d in self.outcomes and self.outcomes[d].status != "ok"), None)

    def ready(self, name: str) -> bool:
        return self.deps[name] <= set(self.outcomes)

    def attempt(self, name: str) -> Outcome[R]:
        try:
            return Outcome(name, "ok", result=self.task(name))
        except Exception as exc:  # noqa: BLE001 - recorded, reported, and turned into the exit code
            return Outcome(name, "failed", error=exc)

    def one_by_one(self) -> None:
        for name in self.pending:
            cause = self.blocked(name)
            self.finish(Outcome(name, "skipped", blocked_by=cause) if cause else self.attempt(name))

    def in_parallel(self, workers: int) -> None:
        pending = self.pending
        running: dict[Future[Outcome[R]], str] = {}
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lakeshift-table") as pool:
            while pending or running:
                for name in list(pending):
                    if len(running) >= workers:
                        break
                    cause = self.blocked(name)
                    if cause:
                        pending.remove(name)
                        self.finish(Outcome(name, "skipped", blocked_by=cause))
                    elif self.ready(name):
                        pending.remove(name)
                        running[pool.submit(self.attempt, name)] = name
                if not running:
                    if pending and not any(self.ready(n) or self.blocked(n) for n in pending):
                        raise RuntimeError("dependency order is not satisfiable")  # a bug: plans are validated
                    continue
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    running.pop(fut)
                    self.finish(fut.result())
