"""The `lakeshift` command: a thin layer over the library with ONE error handler.

Expected errors (LakeshiftError) print one red line on stderr and exit 1;
anything else is a bug: one line plus a hint, or the traceback under --debug.
Every message passes through `redact` first."""

from __future__ import annotations

import logging
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any

import click

from lakeshift import __version__, redact
from lakeshift.errors import LakeshiftError, one_line


@dataclass
class App:
    config_dir: str | None
    env_name: str | None
    debug: bool
    _config: Any = field(default=None, repr=False)

    @property
    def config(self) -> Any:
        if self._config is None:
            from lakeshift.config.loader import load_config, load_dotenv_file

            load_dotenv_file()
            self._config = load_config(self.config_dir, self.env_name)
        return self._config


def echo_error(message: str) -> None:
    """Every failure is ONE line, whatever text a driver put into it."""
    click.secho(f"Error: {one_line(redact.redact(message))}", fg="red", err=True)


class LakeshiftGroup(click.Group):
    """Root group: the one place errors become messages and exit codes. Its commands
    are imported when asked for (see _register_commands)."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            _register_commands(_OWN_MODULE.get(cmd_name))
            if cmd_name not in self.commands:
                _register_commands()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        _register_commands()
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LakeshiftError as exc:
            if ctx.find_object(App) and ctx.find_object(App).debug:  # type: ignore[union-attr]
                click.echo(redact.redact(traceback.format_exc()), err=True)
            echo_error(exc.message)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            # Ctrl-C: the run was recorded as `interrupted`; one line, and the shell's code for it.
            echo_error("interrupted (SIGINT); run again to carry on")
            ctx.exit(130)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:  # a bug, or a driver error we did not classify
            app = ctx.find_object(App)
            if app and app.debug:
                click.echo(redact.redact(traceback.format_exc()), err=True)
            echo_error(f"{type(exc).__name__}: {exc}" + ("" if app and app.debug else " (run with --debug for the traceback)"))
            ctx.exit(1)


def _setup_logging(debug: bool, quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(redact.RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("lakeshift")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)
    root.propagate = False


@click.group(cls=LakeshiftGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lakeshift")
@click.option("--config-dir", type=click.Path(file_okay=False), envvar="LAKESHIFT_CONFIG_DIR",
              help="Config folder (default ./config, or $LAKESHIFT_CONFIG_DIR).")
@click.option("--env", "env_name", envvar="LAKESHIFT_ENV",
              help="Environment whose environments/ENV.yml overrides the config (or $LAKESHIFT_ENV).")
@click.option("--debug", is_flag=True, help="Verbose logs and tracebacks (secrets stay redacted).")
@click.option("--quiet", "-q", is_flag=True, help="Only warnings and errors in the log.")
@click.pass_context
def cli(ctx: click.Context, config_dir: str | None, env_name: str | None, debug: bool, quiet: bool) -> None:
    """lakeshift: MySQL/MariaDB -> Parquet lake (S3 or local) -> Redshift, PostgreSQL or DuckDB."""
    _setup_logging(debug, quiet)
    ctx.obj = App(config_dir=config_dir, env_name=env_name, debug=debug)


# Each command imports only its own module: `lakeshift status` (budget 1.5 s over 50 tables, most
# of it start-up) does not import the sync, verify and config machinery, nor `sync` the config
# commands'. An unknown name (and `--help`) loads all.
_OWN_MODULE = {"status": "monitor_cmd", "freshness": "monitor_cmd", "history": "monitor_cmd",
               "metrics": "monitor_cmd", "config": "config_cmd", "connections": "connections_cmd",
               "sync": "sync_cmd", "watermark": "watermark_cmd", "batches": "batches_cmd",
               "s3clean": "s3clean_cmd", "demo": "demo_cmd", "lake": "lake_cmd", "verify": "verify_cmd"}
_loaded: set[str] = set()


def _register_commands(only: str | None = None) -> None:
    """Import the command modules (or just `only`) and add their commands; idempotent."""
    if "config_cmd" not in _loaded and only in (None, "config_cmd"):
        from lakeshift.cli import config_cmd

        cli.add_command(config_cmd.config)
        _loaded.add("config_cmd")
    for module_name in ("connections_cmd", "sync_cmd", "watermark_cmd", "batches_cmd", "s3clean_cmd",
                        "demo_cmd", "lake_cmd", "verify_cmd", "monitor_cmd"):
        if module_name in _loaded or (only is not None and module_name != only):
            continue
        _loaded.add(module_name)
        try:
            module = __import__(f"lakeshift.cli.{module_name}", fromlist=["commands"])
        except ModuleNotFoundError as exc:
            if exc.name != f"lakeshift.cli.{module_name}":
                raise
            continue
        for command in module.commands:
            cli.add_command(command)



def main() -> None:
    cli.main(prog_name="lakeshift", windows_expand_args=False)


if __name__ == "__main__":
    main()
