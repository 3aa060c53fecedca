"""Load a config folder: connections.yml, pipelines/*.yml, tables/*.yml and
environments/<env>.yml (deep-merged over everything), plus `.env`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from lakeshift.config import legacy
from lakeshift.config.envsubst import substitute
from lakeshift.config.errors import format_validation_error, raise_config_error
from lakeshift.config.models import (
    ConnectionSettings,
    DuckDBTarget,
    LocalStorage,
    MySQLSource,
    PipelineConfig,
    PostgresTarget,
    RedshiftTarget,
    S3Storage,
    Storage,
    TableConfig,
    Target,
)
from lakeshift.config.yamlio import deep_merge, read_text_file, read_yaml
from lakeshift import redact
from lakeshift.errors import ConfigError, MissingVariableError
from lakeshift.identifiers import split_table_name

_TARGETS = {"postgres": PostgresTarget, "postgresql": PostgresTarget, "redshift": RedshiftTarget, "duckdb": DuckDBTarget}
_STORAGES = {"s3": S3Storage, "local": LocalStorage}
_TARGET_ADAPTER: TypeAdapter[Any] = TypeAdapter(Target)
_STORAGE_ADAPTER: TypeAdapter[Any] = TypeAdapter(Storage)
_CONNECTION_KINDS = ("sources", "targets", "storage")


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


@dataclass
class Config:
    root: Path
    env_name: str | None
    sources: dict[str, Connection]
    targets: dict[str, Connection]
    storage: dict[str, Connection]
    settings: ConnectionSettings
    pipelines: dict[str, PipelineConfig]
    table_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    # ---------------------------------------------------------------- lookups
    def connection(self, kind: str, name: str) -> Connection:
        table = getattr(self, kind)
        if name in table:
            return table[name]
        other = next((k for k in _CONNECTION_KINDS if k != kind and name in getattr(self, k)), None)
        singular = {"sources": "source", "targets": "target", "storage": "storage"}
        declared = f"{kind} in connections.yml: {', '.join(sorted(table)) or '(none)'}"
        if other:
            raise ConfigError(f"'{name}' is a {singular[other]}, not a {singular[kind]} ({declared})")
        import difflib

        near = difflib.get_close_matches(name, list(table), n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise ConfigError(f"unknown {singular[kind]} '{name}'{hint} ({declared})")

    def source(self, name: str) -> MySQLSource:
        return self.connection("sources", name).require()

    def target(self, name: str) -> PostgresTarget | RedshiftTarget | DuckDBTarget:
        return self.connection("targets", name).require()

    def storage_for(self, name: str) -> S3Storage | LocalStorage:
        return self.connection("storage", name).require()

    def pipeline(self, key: str) -> PipelineConfig:
        if key in self.pipelines:
            return self.pipelines[key]
        by_name = [p for p in self.pipelines.values() if p.name == key]
        if len(by_name) == 1:
            return by_name[0]
        import difflib

        near = difflib.get_close_matches(key, list(self.pipelines), n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise ConfigError(
            f"unknown pipeline '{key}' (no {self.root}/pipelines/{key}.yml){hint} "
            f"available: {', '.join(sorted(self.pipelines)) or '(none)'}"
        )


    def table(self, pipeline: PipelineConfig, name: str, legacy_ok: bool = False) -> TableConfig:
        """A pipeline's table; on the default pipeline (v1.0 `sync -t db.table`)
        an undeclared table gets the v1.0 behaviour (timestamp_only on updated_at)."""
        if name in pipeline.tables:
            return pipeline.tables[name]
        if legacy_ok:
            return self._table_from(legacy.LEGACY_TABLE, name, f"table '{name}'")
        import difflib

        near = difflib.get_close_matches(name, list(pipeline.tables), n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise ConfigError(
            f"pipelines/{pipeline.key}.yml: table '{name}' is not declared under tables{hint} "
            f"(declared: {', '.join(pipeline.tables) or '(none)'})"
        )

    def _table_from(self, defaults: dict[str, Any], name: str, display: str) -> TableConfig:
        _, bare = split_table_name(name)
        body = deep_merge(deep_merge(defaults, {"full_name": name}), self.table_overrides.get(bare, {}))
        try:
            return TableConfig.model_validate(body)
        except ValidationError as exc:
            raise_config_error(exc, display, "", TableConfig)
        raise AssertionError("unreachable")

    def adhoc_pipeline(self, source: str, target: str, tables: list[str]) -> PipelineConfig:
        """`sync connections -s S -r R -t T`: the spec's ad-hoc pipeline."""
        self.connection("sources", source)
        self.connection("targets", target)
        key = f"adhoc_{source}_{target}"
        return PipelineConfig.model_validate(
            {
                "key": key,
                "pipeline": {
                    "name": key,
                    "description": f"Ad-hoc pipeline from {source} to {target}",
                    "source": source,
                    "target": target,
                    "s3": {"isolation_prefix": key, "partition_strategy": "hybrid"},
                },
                "tables": {t: self._table_from(legacy.ADHOC_TABLE, t, f"table '{t}'").model_dump(by_alias=True)
                           for t in tables},
            }
        )


def _unknown_key(display: str, key: Any, allowed: list[str] | tuple[str, ...], base: str = "") -> ConfigError:
    import difflib

    near = difflib.get_close_matches(str(key), list(allowed), n=1)
    hint = f"did you mean '{near[0]}'?" if near else f"allowed keys: {', '.join(sorted(allowed))}"
    return ConfigError(f"{display}: {base}{key}: unknown key; {hint}")


def _substitute_strict(data: Any, env: Mapping[str, str], display: str, base: tuple[str, ...] = ()) -> Any:
    """Substitute variables where an unset one is an error at once (pipelines,
    tables, settings): only connections may be left unusable."""
    result, missing = substitute(data, env, base)
    if missing:
        path, var = next(iter(missing.items()))
        raise MissingVariableError(
            f"{display}: {'.'.join(path)} uses ${{{var}}}, which is not set; set {var} in the environment or in .env"
        )
    return result


def _display(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _env_overrides(root: Path, env_name: str | None) -> dict[str, Any]:
    if not env_name:
        return {}
    env_dir = root / "environments"
    path = env_dir / f"{env_name}.yml"
    if not path.exists():
        alt = env_dir / f"{env_name}.yaml"
        if not alt.exists():
            known = sorted(p.stem for p in env_dir.glob("*.y*ml")) if env_dir.is_dir() else []
            raise ConfigError(
                f"environment '{env_name}' has no file environments/{env_name}.yml; "
                f"known environments: {', '.join(known) or '(none)'}"
            )
        path = alt
    display = _display(root, path)
    data = read_yaml(path, display)
    allowed = ("connections", "connection_settings", "pipelines", "pipeline", "tables")
    for key in data:
        if key not in allowed:
            raise _unknown_key(display, key, allowed)
    for key in ("pipelines", "pipeline", "tables"):
        if key in data and not isinstance(data[key], dict):
            raise ConfigError(f"{display}: {key}: must be a mapping")
    for name, body in (data.get("pipelines") or {}).items():
        if not isinstance(body, dict):
            raise ConfigError(f"{display}: pipelines.{name}: must be a mapping with pipeline and/or tables")
        for key in body:
            if key not in ("pipeline", "tables"):
                raise _unknown_key(display, key, ("pipeline", "tables"), f"pipelines.{name}.")
    for name, body in (data.get("tables") or {}).items():
        _check_table_override(body, display, f"tables.{name}")
    data["_display"] = display
    return data


def _check_table_override(body: Any, display: str, base: str) -> None:
    """Validate a partial table override alone, so its errors name its own file."""
    if not isinstance(body, dict):
        raise ConfigError(f"{display}: {base}: must be a mapping of settings" if base else
                          f"{display}: must be a mapping of table settings")
    try:
        TableConfig.model_validate(body)
    except ValidationError as exc:
        raise_config_error(exc, display, base, TableConfig)


def _load_connections(
    root: Path, env: Mapping[str, str], overrides: dict[str, Any]
) -> tuple[dict[str, dict[str, Connection]], ConnectionSettings]:
    path = root / "connections.yml"
    display = "connections.yml"
    raw: dict[str, Any] = read_yaml(path, display) if path.exists() else {}
    for key in raw:
        if key not in ("connections", "connection_settings"):
            raise _unknown_key(display, key, ("connections", "connection_settings"))
    raw = deep_merge(raw, {k: v for k, v in overrides.items() if k in ("connections", "connection_settings")})
    conns = raw.get("connections") or {}
    if not isinstance(conns, dict):
        raise ConfigError(f"{display}: connections: must be a mapping with sources, targets and storage")
    for key in conns:
        if key not in _CONNECTION_KINDS:
            raise _unknown_key(display, key, _CONNECTION_KINDS, "connections.")

    result: dict[str, dict[str, Connection]] = {k: {} for k in _CONNECTION_KINDS}
    for kind in _CONNECTION_KINDS:
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
            _substitute_strict(settings_raw, env, display, ("connection_settings",)))
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


def _load_table_overrides(root: Path, env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    folder = root / "tables"
    overrides: dict[str, dict[str, Any]] = {}
    if not folder.is_dir():
        return overrides
    for path in sorted(folder.glob("*.y*ml")):
        display = _display(root, path)
        data = _substitute_strict(read_yaml(path, display), env, display)
        _check_table_override(data, display, "")  # validated alone so errors name this file
        overrides[path.stem] = data
    return overrides


def _load_pipeline(
    key: str,
    raw: dict[str, Any],
    display: str,
    table_overrides: dict[str, dict[str, Any]],
    env: Mapping[str, str],
    env_tables: dict[str, Any] | None = None,
) -> PipelineConfig:
    """Merge order per table: default_table_config < the pipeline's table <
    tables/<name>.yml < environment `tables` < environment `pipelines.<key>.tables`."""
    for k in raw:
        if k not in ("pipeline", "tables"):
            raise _unknown_key(display, k, ("pipeline", "tables"))
    raw = _substitute_strict(raw, env, display)
    env_tables = _substitute_strict(env_tables or {}, env, display, ("tables",))
    section = raw.get("pipeline") or {}
    tables_raw = raw.get("tables") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{display}: pipeline: must be a mapping")
    if not isinstance(tables_raw, dict):
        raise ConfigError(f"{display}: tables: must be a mapping of table name -> settings")
    defaults = section.get("default_table_config") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"{display}: pipeline.default_table_config: must be a mapping")
    try:
        TableConfig.model_validate(defaults)
    except ValidationError as exc:
        raise_config_error(exc, display, "pipeline.default_table_config", TableConfig)
    tables: dict[str, Any] = {}
    for name, body in tables_raw.items():
        body = body or {}
        if not isinstance(body, dict):
            raise ConfigError(f"{display}: tables.{name}: must be a mapping of settings")
        merged = deep_merge(deep_merge(defaults, body), table_overrides.get(str(name), {}))
        merged = deep_merge(merged, env_tables.get(str(name)) or {})
        merged.setdefault("full_name", str(name))
        tables[str(name)] = merged
    for name in env_tables:
        if str(name) not in tables:
            raise ConfigError(
                f"{display}: the environment overrides table '{name}', which this pipeline does not declare "
                f"(tables: {', '.join(tables) or '(none)'})"
            )
    try:
        return PipelineConfig.model_validate({"key": key, "pipeline": section, "tables": tables})
    except ValidationError as exc:
        raise_config_error(exc, display, "", PipelineConfig)
    raise AssertionError("unreachable")


def load_dotenv_file(path: Path = Path(".env")) -> None:
    """v1.0 users keep settings in .env; real environment variables win."""
    if path.is_file():
        import io

        from dotenv import load_dotenv

        text = read_text_file(path, str(path))  # a latin-1 .env is one line, not a UnicodeDecodeError
        load_dotenv(stream=io.StringIO(text), override=False)


def load_config(
    root: str | Path | None = None, env_name: str | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    environ = os.environ if environ is None else environ
    root = Path(root or environ.get("LAKESHIFT_CONFIG_DIR") or "config")
    env_name = env_name or environ.get("LAKESHIFT_ENV") or None
    if not root.is_dir() and root != Path("config"):
        raise ConfigError(f"config folder {root} does not exist; pass --config-dir or run `lakeshift config init`")
    overrides = _env_overrides(root, env_name)
    connections, settings = _load_connections(root, environ, overrides)
    table_overrides = _load_table_overrides(root, environ)
    if overrides.get("tables"):
        env_tables = _substitute_strict(overrides["tables"], environ, overrides["_display"], ("tables",))
        table_overrides = deep_merge(table_overrides, env_tables)

    pipelines: dict[str, PipelineConfig] = {}
    folder = root / "pipelines"
    files = sorted(folder.glob("*.y*ml")) if folder.is_dir() else []
    sources = [(path.stem, _display(root, path), path) for path in files]
    if not any(stem == "default" for stem, _, _ in sources):
        sources.append(("default", legacy.ORIGIN, None))
    per_pipeline = overrides.get("pipelines") or {}
    for name in per_pipeline:
        if name not in {stem for stem, _, _ in sources}:
            raise ConfigError(
                f"{overrides['_display']}: pipelines.{name}: no such pipeline (no pipelines/{name}.yml); "
                f"pipelines: {', '.join(sorted(stem for stem, _, _ in sources))}"
            )
    for stem, display, path in sources:
        raw = read_yaml(path, display) if path is not None else legacy.DEFAULT_PIPELINE
        if "pipeline" in overrides:  # the environment's `pipeline:` applies to every pipeline
            raw = deep_merge(raw, {"pipeline": overrides["pipeline"]})
        mine = per_pipeline.get(stem) or {}
        raw = deep_merge(raw, {k: v for k, v in mine.items() if k != "tables"})
        pipelines[stem] = _load_pipeline(stem, raw, display, table_overrides, environ, mine.get("tables"))
    return Config(
        root=root,
        env_name=env_name,
        sources=connections["sources"],
        targets=connections["targets"],
        storage=connections["storage"],
        settings=settings,
        pipelines=pipelines,
        table_overrides=table_overrides,
    )
