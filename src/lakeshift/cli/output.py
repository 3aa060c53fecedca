"""Rich output for every command: sized at print time (the terminal's width, or
wide enough when piped, so table cells are never cut to 'custom…'), and with
markup off, because table and column names are data, not styles."""

from __future__ import annotations

import sys

from rich.console import Console


class Output:
    def print(self, *args: object) -> None:
        width = None if sys.stdout.isatty() else 200
        Console(highlight=False, soft_wrap=True, markup=False, width=width).print(*args)


console = Output()
