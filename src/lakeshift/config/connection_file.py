"""connections.yml: named sources, targets and lakes. A connection whose
variables are unset is kept (listed as not usable) instead of failing the
whole config; anything else wrong is one line naming the file and key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from lakeshift import redact
from lakeshift.config import legacy
from lakeshift.config.envsubst import substitute
from lakeshift.config.errors import format_validation_error, raise_config_error
from lakeshift.config.models import (
    ConnectionSettings,
    DuckDBTarget,
    LocalStorage,
    MySQLSource,
    PostgresTarget,
    RedshiftTarget,
    S3Storage,
    Storage,
    Target,
)
from lakeshift.config.yamlio import deep_merge, read_yaml
from lakeshift.errors import ConfigError, MissingVariableError

_TARGETS = {"postgres": PostgresTarget, "postgresql": PostgresTarget, "redshift": RedshiftTarget, "duckdb": DuckDBTarget}
_STORAGES = {"s3": S3Storage, "local": LocalStorage}
_TARGET_ADAPTER: TypeAdapter[Any] = TypeAdapter(Target)
_STORAGE_ADAPTER: TypeAdapter[Any] = TypeAdapter(Storage)
CONNECTION_KINDS = ("sources", "targets", "storage")


@dataclass
class Connection:
    """A named connection with where it came from and what it is missing."""

    kind: str  # sources | targets | storage
    name: str
    model: Any
    origin: str  # file the connection was declared in, or "built-in (v1.0 .env)"
    unresolved: dict[str, str] = field(default_factory=dict)  # key path -> variable
    declared_type: str | None = None  # the `type:` as written, for listing when model is None

    @property
    def usable(self) -> bool:
        return not self.unresolved

    def require(self) -> Any:
        """The model, or an error naming the first missing variable, file and key."""
        if self.unresolved:
            key, var = next(iter(self.unresolved.items()))
            raise MissingVariableError(
                f"{self.origin}: connections.{self.kind}.{self.name}.{key} uses ${{{var}}}, "
                f"which is not set; set {var} in the environment or in .env"
            )
        if self.model is None:  # only when validation failed for a reason already reported
            raise ConfigError(f"{self.origin}: connections.{self.kind}.{self.name}: not usable")
        for key in ("host", "database", "username"):
            if hasattr(self.model, key) and getattr(self.model, key) in (None, ""):
                raise ConfigError(f"{self.origin}: connections.{self.kind}.{self.name}.{key}: required key is missing")
        tunnel = getattr(self.model, "ssh_tunnel", None)
        if tunnel is not None and tunnel.enabled:
            for key in ("host", "username"):
                if not getattr(tunnel, key):
                    raise ConfigError(
                        f"{self.origin}: connections.{self.kind}.{self.name}.ssh_tunnel.{key}: "
                        "required key is missing (needed when ssh_tunnel.enabled is true)"
                    )
        return self.model

    @property
    def type(self) -> str:
        return str(getattr(self.model, "type", None) or self.declared_type or "?")




def unknown_key(display: str, key: Any, allowed: list[str] | tuple[str, ...], base: str = "") -> ConfigError:
    import difflib

    near = difflib.get_close_matches(str(key), list(allowed), n=1)
    hint = f"did you mean '{near[0]}'?" if near else f"allowed keys: {', '.join(sorted(allowed))}"
    return ConfigError(f"{display}: {base}{key}: unknown key; {hint}")


def substitute_strict(data: Any, env: Mapping[str, str], display: str, base: tuple[str, ...] = ()) -> Any:
    """Substitute variables where an unset one is an error at once (pipelines,
    tables, settings): only connections may be left unusable."""
    result, missing = substitute(data, env, base)
    if missing:
        path, var = next(iter(missing.items()))
        raise MissingVariableError(
            f"{display}: {'.'.join(path)} uses ${{{var}}}, which is not set; set {var} in the environment or in .env"
        )
    return result


def load_connections(
    root: Path, env: Mapping[str, str], overrides: dict[str, Any]
) -> tuple[dict[str, dict[str, Connection]], ConnectionSettings]:
    path = root / "connections.yml"
    display = "connections.yml"
    raw: dict[str, Any] = read_yaml(path, display) if path.exists() else {}
    for key in raw:
        if key not in ("connections", "connection_settings"):
            raise unknown_key(display, key, ("connections", "connection_settings"))
    raw = deep_merge(raw, {k: v for k, v in overrides.items() if k in ("connections", "connection_settings")})
    conns = raw.get("connections") or {}
    if not isinstance(conns, dict):
        raise ConfigError(f"{display}: connections: must be a mapping with sources, targets and storage")
    for key in conns:
        if key not in CONNECTION_KINDS:
            raise unknown_key(display, key, CONNECTION_KINDS, "connections.")

    result: dict[str, dict[str, Connection]] = {k: {} for k in CONNECTION_KINDS}
    for kind in CONNECTION_KINDS:
        section = conns.get(kind) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"{display}: connections.{kind}: must be a mapping of name -> settings")
        for name, body in section.items():
            result[kind][str(name)] = _build_connection(kind, str(name), body, display, env)

    for kind, name, body in legacy.builtin_connections(env):
        if name not in result[kind]:
            result[kind][name] = _build_connection(kind, name, body, legacy.ORIGIN, env)

    settings_raw = raw.get("connection_settings") or {}
    try:
        settings = ConnectionSettings.model_validate(
            substitute_strict(settings_raw, env, display, ("connection_settings",)))
    except ValidationError as exc:
        raise_config_error(exc, display, "connection_settings", ConnectionSettings)
    return result, settings


def _build_connection(kind: str, name: str, body: Any, display: str, env: Mapping[str, str]) -> Connection:
    base = f"connections.{kind}.{name}"
    if not isinstance(body, dict):
        raise ConfigError(f"{display}: {base}: must be a mapping of settings")
    if kind == "sources":
        body = {"type": "mysql", **body}
    data, missing = substitute(body, env)
    unresolved = {".".join(p): var for p, var in missing.items()}
    try:
        if kind == "sources":
            model: Any = MySQLSource.model_validate(data)
        elif kind == "targets":
            model = _TARGET_ADAPTER.validate_python(data)
        else:
            model = _STORAGE_ADAPTER.validate_python(data)
    except ValidationError as exc:
        # A field that failed only because its variable is unset is not a config error.
        tagged = {"sources": None, "targets": _TARGETS, "storage": _STORAGES}[kind]
        bad = [e for e in exc.errors() if _user_path(e["loc"], tagged) not in unresolved]
        if bad:
            msg = format_validation_error(exc, display, base, MySQLSource if kind == "sources" else None, tagged)
            raise ConfigError(msg) from None
        # Keep a model without the unresolved keys so listing can still describe
        # the connection; require() refuses it while `unresolved` is not empty.
        model = _validate_without(kind, data, missing)
    redact.register_model(model)
    declared = body.get("type") if isinstance(body.get("type"), str) else None
    return Connection(kind, name, model, display, unresolved, declared)


def _user_path(loc: tuple[Any, ...], tagged: dict[str, Any] | None) -> str:
    """A pydantic error location as the key path the user wrote (no union tag)."""
    parts = list(loc)
    if tagged and parts and parts[0] in tagged:
        parts = parts[1:]
    return ".".join(str(p) for p in parts if not (isinstance(p, str) and p.startswith("function-")))


def _validate_without(kind: str, data: dict[str, Any], missing: dict[tuple[str, ...], str]) -> Any:
    import copy

    trimmed = copy.deepcopy(data)
    for path in missing:
        node: Any = trimmed
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    try:
        if kind == "sources":
            return MySQLSource.model_validate(trimmed)
        return (_TARGET_ADAPTER if kind == "targets" else _STORAGE_ADAPTER).validate_python(trimmed)
    except ValidationError:
        return None
