"""YAML reading with file names and line numbers in every error."""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from lakeshift.errors import ConfigError

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _DuplicateKey(Exception):
    def __init__(self, key: Any, mapping: MappingNode, first: int, second: int) -> None:
        super().__init__(key)
        self.key, self.mapping, self.first, self.second = key, mapping, first, second


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping (PyYAML keeps
    the last one silently, so a setting the user reads is not the one used).
    Keys brought in by a `<<` merge may still be overridden, as YAML intends."""

    def construct_document(self, node: Node) -> Any:
        self.root_node = node  # to name the key path of a duplicate
        return super().construct_document(node)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> Any:  # type: ignore[override]
        if isinstance(node, MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, Hashable):
                    continue  # the base class reports unhashable keys
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise _DuplicateKey(key, node, seen[key], line)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _path_to(root: Node, target: Node) -> list[str] | None:
    """Key path from the document root to `target` (names and list indexes)."""
    stack: list[tuple[Node, list[str]]] = [(root, [])]
    visited: set[int] = set()
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        if id(node) in visited:  # aliases may make the tree a graph
            continue
        visited.add(id(node))
        if isinstance(node, MappingNode):
            stack.extend((value, path + [str(key.value)]) for key, value in node.value)
        elif isinstance(node, SequenceNode):
            stack.extend((value, path + [str(i)]) for i, value in enumerate(node.value))
    return None


def _decode(raw: bytes, display: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            f"{display}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line}, column {column}, "
            f"byte offset {exc.start}); save it as UTF-8"
        ) from None


def read_text_file(path: Path, display: str) -> str:
    """A config text file as UTF-8, or one line naming the file and what to do."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{display}: cannot read file ({exc.strerror})") from None
    return _decode(raw, display)


def read_yaml(path: Path, display: str) -> dict[str, Any]:
    """Parse one YAML file into a mapping; an empty file is an empty mapping."""
    text = read_text_file(path, display)
    loader = _StrictLoader(text)
    try:
        data = loader.get_single_data()
    except _DuplicateKey as dup:
        where = _path_to(loader.root_node, dup.mapping) or []
        key = ".".join(where + [str(dup.key)])
        raise ConfigError(
            f"{display}: duplicate key {key} at lines {dup.first} and {dup.second}; keep one of them"
        ) from None
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
    finally:
        loader.dispose()
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


def key_lines(path: Path) -> dict[str, int]:
    """{dotted key path: line} of a YAML file's mapping keys, for error messages;
    empty when the file cannot be parsed (its syntax error already has a line)."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    lines: dict[str, int] = {}
    stack: list[tuple[Node | None, str]] = [(root, "")]
    while stack:
        node, prefix = stack.pop()
        if isinstance(node, MappingNode):
            for key, value in node.value:
                dotted = f"{prefix}.{key.value}" if prefix else str(key.value)
                lines.setdefault(dotted, key.start_mark.line + 1)
                stack.append((value, dotted))
        elif isinstance(node, SequenceNode):
            stack.extend((value, f"{prefix}.{i}") for i, value in enumerate(node.value))
    return lines
