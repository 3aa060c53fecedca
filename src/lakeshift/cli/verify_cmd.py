"""`lakeshift verify`: compare a pipeline's tables in MySQL with their target
(lakeshift.verify). Exit 0 when every table is equal, 3 when one differs, 1 on
an error (the one handler in main.py)."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from lakeshift.errors import LakeshiftError

from lakeshift.cli.output import console


class DifferencesFound(LakeshiftError):
    """The target differs from MySQL; see the summary above."""

    exit_code = 3


@click.command()
@click.option("--pipeline", "-p", required=True, help="Pipeline name (pipelines/NAME.yml).")
@click.option("--table", "-t", "tables", multiple=True, help="Table of the pipeline (repeatable).")
@click.option("--all", "all_tables", is_flag=True, help="Every table of the pipeline.")
@click.option("--deep", is_flag=True, help="Compare every column, not only the keys (finds changed values).")
@click.option("--repair", is_flag=True, help="Mend what differs through the lake: missing and different rows read "
              "again from MySQL as a batch, extra keys as a delete batch; both loaded, then verified again.")
@click.option("--force-deletes", is_flag=True, help="With --repair: delete extra keys even beyond the table's "
              "max_delete_fraction of the target.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON document.")
@click.pass_obj
def verify(app: Any, pipeline: str, tables: tuple[str, ...], all_tables: bool, deep: bool, repair: bool,
           force_deletes: bool, as_json: bool) -> None:
    """Prove each table's target equals MySQL: row counts and checksums per window
    on both sides, the rows of differing windows compared by key. Rows beyond
    the watermark the target has loaded are `pending`, not differences.
    Exit codes: 0 equal (or repaired), 3 differences found, 1 error."""
    from lakeshift.verify.pipeline import verify_pipeline

    cfg = app.config
    p = cfg.pipeline(pipeline)
    if all_tables and tables:
        raise click.UsageError("pass either -t TABLE ... or --all, not both")
    names = list(p.tables) if all_tables else list(tables)
    if force_deletes and not repair:
        raise click.UsageError("--force-deletes applies to --repair only")
    reports = verify_pipeline(cfg, p, names, deep=deep, repair=repair, force_deletes=force_deletes)
    if as_json:
        click.echo(json.dumps({"pipeline": p.key, "deep": deep, "repair": repair, "equal": all(r.equal for r in reports),
                               "tables": [r.to_dict() for r in reports]}, ensure_ascii=False, indent=2))
    else:
        show(reports, deep)
    differing = [r.table for r in reports if not r.equal]
    if differing:
        raise DifferencesFound(f"{len(differing)} of {len(reports)} table(s) differ from MySQL"
                               + (" after the repair" if repair else "") + f": {', '.join(differing)}")


def show(reports: list[Any], deep: bool) -> None:
    table = Table("table", "source rows", "target rows", "missing", "extra", "different" if deep else "different (--deep)",
                  "pending", "windows", "seconds", title="Verify" + (" --deep" if deep else " (keys only)"))
    for r in reports:
        table.add_row(r.table, f"{r.source_rows:,}", f"{r.target_rows:,}", f"{r.missing:,}", f"{r.extra:,}",
                      f"{r.different:,}" if deep else "-", f"{r.pending:,}",
                      f"{r.windows_differing:,}/{r.windows:,}", f"{r.seconds:.2f}")
    console.print(table)
    for r in reports:
        if r.repaired_rows or r.repaired_deletes:
            console.print(f"{r.table}: repaired: {r.repaired_rows:,} row(s) read again from MySQL and merged, "
                          f"{r.repaired_deletes:,} extra key(s) deleted; the summary is the verify after the repair")
        for kind, keys in r.examples.items():
            shown = "; ".join(", ".join(f"{c}={v!r}" for c, v in k.items()) for k in keys)
            console.print(f"{r.table}: {kind} (first {len(keys)}): {shown}")
        for note in r.notes:
            console.print(f"{r.table}: {note}")
    equal = sum(1 for r in reports if r.equal)
    console.print(f"{equal} of {len(reports)} table(s) equal")


commands = [verify]
