"""The CLI as users run it: `python -m lakeshift` in a real subprocess (so
SIGKILL fault points work), and the checks on what it printed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def cli_env(**extra: str) -> dict[str, str]:
    """The test's environment for a CLI run: unbuffered, no fault point unless `extra` sets one."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("LAKESHIFT_FAULT", None)
    env.update(extra)
    return env


def _argv(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "lakeshift", "--config-dir", str(config), *args]


def run_cli(config_dir: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_argv(config_dir, *args), capture_output=True, text=True, env=cli_env(**(env or {})),
                          cwd=cwd or config_dir.parent, timeout=timeout)


def _sync_args(pipeline: str, tables: tuple[str, ...], extra: tuple[str, ...]) -> list[str]:
    return ["sync", "pipeline", "-p", pipeline, *[a for t in tables for a in ("-t", t)], *extra]


def sync_argv(config: Path, pipeline: str = "p1", tables: tuple[str, ...] = ("items",), *extra: str) -> list[str]:
    return _argv(config, *_sync_args(pipeline, tables, extra))


def sync(config: Path, pipeline: str = "p1", tables: tuple[str, ...] = ("items",), *extra: str,
         fault: str | None = None, env: dict[str, str] | None = None, cwd: Path | None = None,
         timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """`lakeshift sync pipeline` in a real subprocess; `fault` sets LAKESHIFT_FAULT."""
    env = {**(env or {}), **({"LAKESHIFT_FAULT": fault} if fault else {})}
    return run_cli(config, *_sync_args(pipeline, tables, extra), env=env, cwd=cwd, timeout=timeout)


def start_sync(config: Path, pipeline: str = "p1", tables: tuple[str, ...] = ("items",), *extra: str,
               env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(sync_argv(config, pipeline, tables, *extra), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=cli_env(**(env or {})), cwd=cwd or config.parent)


@contextmanager
def running(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """Never leave a started process behind (SIGCONT first: it may be stopped)."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    proc.send_signal(sig)
                except ProcessLookupError:
                    pass
        try:
            proc.communicate(timeout=60)
        except (subprocess.TimeoutExpired, ValueError):
            pass


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def killed(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == -signal.SIGKILL, (
        f"expected the fault point to SIGKILL the run, got exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 1, exactly one `Error:` line naming every fragment, no traceback."""
    assert result.returncode == 1, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "panicked" not in result.stderr, result.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


def summary(output: str, table: str = "items") -> tuple[str, int, int]:
    """(status, extracted, loaded) of `table` in the sync summary."""
    for line in output.splitlines():
        cells = [c.strip() for c in line.replace("│", "|").replace("┃", "|").split("|") if c.strip()]
        if len(cells) >= 4 and cells[0] == table and cells[1] in ("ok", "failed", "skipped"):
            num = lambda s: int(s.replace(",", "")) if s not in ("-", "") else -1  # noqa: E731
            return cells[1], num(cells[2]), num(cells[3])
    raise AssertionError(f"no summary row for {table!r} in:\n{output}")


def one_error_line(result: Any) -> str:
    """An in-process CLI run (fixture `cli`) failed the expected way: exit 1 and
    exactly one 'Error: ...' line on stderr (nothing else there). Returns the
    message after 'Error: '."""
    assert result.exit_code == 1, f"exit {result.exit_code}: {result.output}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    return lines[0][len("Error: "):]
