"""Config problems kept per file instead of failing the whole load: a broken
pipeline (or tables/*.yml, environments entry) breaks only what uses it, and
`config validate` lists every problem with the line YAML gives for its key."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakeshift.config.yamlio import key_lines
from lakeshift.errors import ConfigError

log = logging.getLogger("lakeshift.config")


class ConfigProblems(ConfigError):
    """Several problems found in one go; the message is the first one."""

    def __init__(self, problems: list[str], hint: str = "") -> None:
        self.problems = list(problems)
        more = f" (and {len(problems) - 1} more problem(s){hint})" if len(problems) > 1 else ""
        super().__init__(problems[0] + more)


@dataclass(frozen=True)
class Problem:
    """One line `file: key.path: reason`; `line` where the file's YAML has that key."""

    text: str
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        return self.text + (f" (line {self.line})" if self.line else "")

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "message": self.text}


def lines_of(exc: ConfigError) -> list[str]:
    return list(getattr(exc, "problems", None) or [exc.message])


def located(texts: list[str], display: str, path: Path | None) -> list[Problem]:
    """Attach the line of the key each problem names (`display: a.b.c: ...`)."""
    found = key_lines(path) if path is not None else {}
    out = []
    for text in texts:
        line = None
        file = display if text.startswith(f"{display}: ") else text.split(": ", 1)[0] if ": " in text else None
        if found and text.startswith(f"{display}: "):
            key = text[len(display) + 2:].split(": ", 1)[0]
            while key and line is None:
                line = found.get(key)
                key = key.rpartition(".")[0]
        out.append(Problem(text, file, line))
    return out


def warn_broken(config: Any, used: str | None = None) -> None:
    """One warning line naming the broken config files this run does not use."""
    files = sorted({p.file or "?" for key, problems in config.broken.items() if key != used for p in problems})
    if files:
        log.warning("skipping broken config file(s) this run does not use: %s "
                    "(`lakeshift config validate` lists every problem)", ", ".join(files))
