"""`sync pipeline --follow`: each cycle's summary, one line per cycle that loaded something."""

from __future__ import annotations

from typing import Any

import click

from lakeshift.cli.output import console
from lakeshift.config.models import parse_duration
from lakeshift.engine.plan import Plan


def run_follow(plan: Plan, interval: str) -> None:
    from lakeshift.engine.follow import check_followable, follow
    from lakeshift.engine.runner import run_plan

    try:
        seconds = parse_duration(interval).total_seconds()
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--interval") from None
    check_followable(plan)
    p = plan.pipeline
    console.print(f"Following pipeline {p.key}: {p.pipeline.source} -> {p.pipeline.target} "
                  f"({len(plan.tables)} table(s), a batch every {interval}); SIGTERM or Ctrl-C ends it")

    def cycle(pl: Plan) -> Any:
        report = run_plan(pl, live_progress=False)
        for o in report.outcomes:
            r = o.result
            if o.status == "ok" and r is not None and (r.batches_loaded or r.batches_written):
                console.print(f"{o.name}: {r.rows_extracted:,} change(s) read, {r.rows_loaded:,} row(s) loaded"
                              + (f" ({', '.join(r.notes)})" if r.notes else ""))
            elif o.status != "ok":
                console.print(f"{o.name}: {o.status}: {str(o.error).splitlines()[0] if o.error else ''}")
        return report

    report = follow(plan, cycle, seconds)
    console.print(f"Stopped by {report.stopped_by or 'request'} after {report.cycles} cycle(s)"
                  + (f", {report.failed_cycles} failed and retried" if report.failed_cycles else ""))
