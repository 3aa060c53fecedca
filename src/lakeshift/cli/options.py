"""Options shared by the per-table inspection commands (watermark, s3clean)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from lakeshift.engine.tables import resolve_table


def pipeline_table(f: Callable[..., Any]) -> Callable[..., Any]:
    """Add -t/--table and -p/--pipeline and pass the resolved table as `h`."""

    @click.option("--table", "-t", required=True, help="Table (as named in the pipeline, or db.table).")
    @click.option("--pipeline", "-p", default="default", show_default=True, help="Pipeline name.")
    @click.pass_obj
    @functools.wraps(f)
    def wrapper(app: Any, table: str, pipeline: str, **kwargs: Any) -> Any:
        return f(resolve_table(app.config, pipeline, table), **kwargs)

    return wrapper
