"""`lakeshift demo`: the README's first command."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from lakeshift.cli.output import console


@click.command()
@click.option("--workdir", type=click.Path(file_okay=False), default="demo-run", show_default=True,
              help="Folder for the demo's config, lake and DuckDB file (recreated).")
@click.option("--mysql-host", default="127.0.0.1", show_default=True, help="Local MySQL/MariaDB host.")
@click.option("--mysql-port", default=3306, show_default=True, type=int, help="Local MySQL/MariaDB port.")
@click.option("--mysql-user", default="root", show_default=True, help="MySQL user allowed to create a database.")
@click.option("--mysql-password", envvar="LAKESHIFT_DEMO_MYSQL_PASSWORD", default="", show_default=False,
              help="Password (or $LAKESHIFT_DEMO_MYSQL_PASSWORD; empty by default).")
@click.option("--database", default="lakeshift_demo", show_default=True, help="Sample database to (re)create.")
@click.pass_obj
def demo(app, workdir: str, mysql_host: str, mysql_port: int, mysql_user: str, mysql_password: str,
         database: str) -> None:
    """Create a sample shop database, sync it into DuckDB, change rows, sync again."""
    import os

    from lakeshift.cli.sync_cmd import show_summary
    from lakeshift.config.loader import load_config
    from lakeshift.demo.shop import DemoSettings, change_some_rows, compare_counts, create_database, write_config
    from lakeshift.engine.plan import Stages, build_plan
    from lakeshift.engine.runner import run_plan
    from lakeshift.cli.sync_cmd import SyncFailed

    s = DemoSettings(Path(workdir).resolve(), mysql_host, mysql_port, mysql_user, mysql_password, database)
    if s.workdir.exists():
        shutil.rmtree(s.workdir)
    counts = create_database(s)
    console.print(f"1. Created MySQL database {database}: " + ", ".join(f"{n:,} {t}" for t, n in counts.items()))
    root = write_config(s)
    console.print(f"2. Wrote the config folder {root} (local lake {s.workdir / 'lake'}, DuckDB {s.workdir / 'shop.duckdb'})")
    env = {**os.environ, "LAKESHIFT_DEMO_MYSQL_PASSWORD": mysql_password}
    for step, title in ((3, "Full sync"), (5, "Incremental sync")):
        if step == 5:
            console.print(f"4. Changed the source: {change_some_rows(s)}")
        cfg = load_config(root, environ=env)
        pipeline = cfg.pipeline("shop")
        console.print(f"{step}. {title}: lakeshift --config-dir {root} sync pipeline -p shop --all")
        report = run_plan(build_plan(cfg, pipeline, list(pipeline.tables), Stages()))
        show_summary(report)
        if not report.ok:
            raise SyncFailed("the demo sync failed; see the summary above")
    console.print("6. MySQL vs DuckDB row counts:")
    for table, src, dst in compare_counts(s):
        console.print(f"   {table:12} {src:>7,} {dst:>7,}  {'equal' if src == dst else 'DIFFERENT'}")
    console.print(f"Try: lakeshift --config-dir {root} watermark get -p shop -t orders")


commands = [demo]
