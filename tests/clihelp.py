"""Assertions shared by the CLI tests."""

from __future__ import annotations

from typing import Any


def one_error_line(result: Any) -> str:
    """The CLI failed the expected way: exit 1 and exactly one 'Error: ...' line
    on stderr (nothing else there). Returns the message after 'Error: '."""
    assert result.exit_code == 1, f"exit {result.exit_code}: {result.output}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    return lines[0][len("Error: "):]
