"""Every CLI command and option has help text, and `--help` works everywhere."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest

from lakeshift.cli.main import cli as root


def walk(command: click.Command, path: tuple[str, ...] = ("lakeshift",)) -> Iterator[tuple[str, click.Command]]:
    yield " ".join(path), command
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in sorted(command.list_commands(ctx)):  # the root group imports its commands when asked
            yield from walk(command.get_command(ctx, name), path + (name,))  # type: ignore[arg-type]


COMMANDS = list(walk(root))


def test_the_tree_has_the_spec_commands() -> None:
    names = {name for name, _ in COMMANDS}
    for expected in ("lakeshift connections list", "lakeshift connections test", "lakeshift connections info",
                     "lakeshift config list-pipelines", "lakeshift config show-pipeline",
                     "lakeshift config validate-pipeline", "lakeshift config validate", "lakeshift config init"):
        assert expected in names


def missing_help(name: str, command: click.Command) -> list[str]:
    problems = [] if (command.help or "").strip() else [f"`{name}` has no help text (give it a docstring)"]
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden and not (param.help or "").strip():
            problems.append(f"`{name}` option {'/'.join(param.opts)} has no help text")
    return problems


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_command_and_options_have_help(name: str, command: click.Command) -> None:
    assert missing_help(name, command) == []


def test_the_check_catches_missing_help() -> None:
    @click.command()
    @click.option("--flag", is_flag=True)
    def bare(flag: bool) -> None:
        pass

    assert missing_help("bare", bare) == ["`bare` has no help text (give it a docstring)",
                                          "`bare` option --flag has no help text"]


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_help_runs(cli, name: str, command: click.Command) -> None:
    r = cli(*name.split()[1:], "--help")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("Usage: ")
