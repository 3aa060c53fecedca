"""`${VAR}` and `${VAR:-default}` substitution in string values, after parsing.

Substituting after parsing means a value can never change the YAML structure.
An unset variable without a default does not fail the load: the value becomes
None and its key path is recorded, so only the connection that uses it is
unusable (and says which variable is missing when it is used)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\$")

Path = tuple[str, ...]


def substitute(
    data: Any, env: Mapping[str, str] | None = None, path: Path = ()
) -> tuple[Any, dict[Path, str]]:
    """Return (data with variables replaced, {key path: missing variable})."""
    env = os.environ if env is None else env
    missing: dict[Path, str] = {}

    def walk(node: Any, where: Path) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, where + (str(k),)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, where + (str(i),)) for i, v in enumerate(node)]
        if isinstance(node, str) and "$" in node:
            unset: list[str] = []

            def repl(m: re.Match[str]) -> str:
                if m.group(0) == "$$":
                    return "$"
                name, default = m.group(1), m.group(2)
                value = env.get(name)
                if value is None or (value == "" and default is not None):
                    if default is not None:
                        return default
                    unset.append(name)
                    return ""
                return value

            result = _VAR.sub(repl, node)
            if unset:
                missing[where] = unset[0]
                return None
            return result
        return node

    return walk(data, path), missing


def references(value: str) -> list[str]:
    """Names of the variables a string refers to."""
    return [m.group(1) for m in _VAR.finditer(value) if m.group(1)]
