"""YAML reading with file names and line numbers in every error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lakeshift.errors import ConfigError


def read_yaml(path: Path, display: str) -> dict[str, Any]:
    """Parse one YAML file into a mapping; an empty file is an empty mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{display}: cannot read file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = exc.problem or exc.context or "syntax error"
        # The error is found where parsing fails; the cause is often where the
        # enclosing block started (an unclosed '{', '[' or quote), so name both.
        ctx = exc.context_mark
        if exc.problem and exc.context and ctx is not None and mark is not None and ctx.line != mark.line:
            problem += f" ({exc.context} at line {ctx.line + 1}, column {ctx.column + 1})"
        raise ConfigError(f"{display}: YAML syntax error at {where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{display}: YAML error: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{display}: the top level must be a mapping (key: value), not {type(data).__name__}")
    return data


def deep_merge(base: Any, override: Any) -> Any:
    """Merge mappings recursively; anything else in `override` replaces `base`."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return override
