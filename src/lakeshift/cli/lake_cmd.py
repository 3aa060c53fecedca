"""`lakeshift lake ddl`: the CREATE EXTERNAL TABLE (or DuckDB view) that reads a
table's lake folder as it is, with the exact column types."""

from __future__ import annotations

import click

from lakeshift.cli.options import pipeline_table
from lakeshift.engine.tables import TableHandle
from lakeshift.errors import LakeshiftError


@click.group()
def lake() -> None:
    """Read the lake with other engines (Athena, Redshift Spectrum, Snowflake, DuckDB)."""


@lake.command("ddl")
@pipeline_table
@click.option("--dialect", required=True, type=click.Choice(["athena", "spectrum", "snowflake", "duckdb"]),
              help="The engine the statement is for.")
@click.option("--name", "table_name", help="Name of the external table or view (default: the target table's).")
@click.option("--schema", help="Database/schema it goes in (Spectrum: the external schema, default 'spectrum').")
@click.option("--stage", default="lakeshift_lake", show_default=True,
              help="Snowflake: the external stage that points at the lake's root.")
def ddl(h: TableHandle, dialect: str, table_name: str | None, schema: str | None, stage: str) -> None:
    """Print the CREATE EXTERNAL TABLE (DuckDB: CREATE VIEW) for the table's lake folder, with the
    columns of its newest batch in the engine's exact types (docs/types.md)."""
    from lakeshift.lake.ddl import external_table

    tl = h.table_lake
    manifests = tl.manifests()
    if not manifests:
        raise LakeshiftError(f"{tl.uri()} holds no batch yet; sync the table first (e.g. --backup-only)")
    click.echo(external_table(manifests[-1], tl.uri(), dialect, table_name or h.target_table, schema, stage,
                              rel=tl.base) + ";")


commands = [lake]
