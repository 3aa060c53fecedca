"""Load a config folder: connections.yml, pipelines/*.yml, tables/*.yml and
environments/<env>.yml (deep-merged over everything), plus `.env`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lakeshift.config import legacy
from lakeshift.config.connection_file import (CONNECTION_KINDS, Connection, load_connections, substitute_strict,
                                              unknown_key)
from lakeshift.config.errors import raise_config_error
from lakeshift.config.problems import ConfigProblems, Problem, lines_of, located
from lakeshift.config.models import (
    ConnectionSettings,
    DuckDBTarget,
    LocalStorage,
    MySQLSource,
    PipelineConfig,
    PostgresTarget,
    RedshiftTarget,
    S3Storage,
    TableConfig,
)
from lakeshift.config.yamlio import deep_merge, read_text_file, read_yaml
from lakeshift.errors import ConfigError
from lakeshift.identifiers import split_table_name


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
    # pipeline key -> its problems: a broken pipeline file (or a broken tables/*.yml or
    # environments entry it uses) fails only the commands that use that pipeline
    broken: dict[str, list[Problem]] = field(default_factory=dict)
    broken_tables: dict[str, list[Problem]] = field(default_factory=dict)  # tables/<name>.yml, env tables.<name>
    problems: list[Problem] = field(default_factory=list)  # problems that break no pipeline (reported by validate)
    legacy_in_use: bool = True  # the v1.0 variables are set: show the built-in `default` connections

    # ---------------------------------------------------------------- lookups
    def connection(self, kind: str, name: str) -> Connection:
        table = getattr(self, kind)
        if name in table:
            return table[name]
        other = next((k for k in CONNECTION_KINDS if k != kind and name in getattr(self, k)), None)
        singular = {"sources": "source", "targets": "target", "storage": "storage"}
        shown = [n for n, c in table.items() if self.legacy_in_use or c.origin != legacy.ORIGIN or c.usable]
        declared = f"{kind} in connections.yml: {', '.join(sorted(shown)) or '(none)'}"
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
        if key in self.broken:
            raise ConfigProblems([p.text for p in self.broken[key]], "; `lakeshift config validate` lists them")
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
        if bare in self.broken_tables:
            raise ConfigProblems([p.text for p in self.broken_tables[bare]])
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


def _display(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


@dataclass
class _Found:
    """Problems met while loading, kept so that only what uses them fails."""

    pipelines: dict[str, list[Problem]] = field(default_factory=dict)
    tables: dict[str, list[Problem]] = field(default_factory=dict)
    other: list[Problem] = field(default_factory=list)

    def add(self, where: dict[str, list[Problem]], name: Any, exc: ConfigError | str, display: str,
            path: Path | None) -> None:
        texts = [exc] if isinstance(exc, str) else lines_of(exc)
        where.setdefault(str(name), []).extend(located(texts, display, path))


def _env_overrides(root: Path, env_name: str | None, found: _Found) -> dict[str, Any]:
    """The environment file; a broken `pipelines.<p>` or `tables.<t>` entry breaks only
    that pipeline or the pipelines with that table. A file that cannot be read at all
    (syntax, unknown top-level key) fails every command: nothing it sets can be trusted."""
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
            raise unknown_key(display, key, allowed)
    for key in ("pipelines", "pipeline", "tables"):
        if key in data and not isinstance(data[key], dict):
            raise ConfigError(f"{display}: {key}: must be a mapping")
    pipelines = dict(data.get("pipelines") or {})
    for name, body in list(pipelines.items()):
        problem = None
        if not isinstance(body, dict):
            problem = f"{display}: pipelines.{name}: must be a mapping with pipeline and/or tables"
        else:
            bad = next((k for k in body if k not in ("pipeline", "tables")), None)
            if bad is not None:
                problem = unknown_key(display, bad, ("pipeline", "tables"), f"pipelines.{name}.").message
        if problem:
            found.add(found.pipelines, name, problem, display, path)
            del pipelines[name]
    tables = dict(data.get("tables") or {})
    for name, body in list(tables.items()):
        try:
            _check_table_override(body, display, f"tables.{name}")
        except ConfigError as exc:
            found.add(found.tables, name, exc, display, path)
            del tables[name]
    data.update(pipelines=pipelines, tables=tables, _display=display, _path=path)
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


def _load_table_overrides(root: Path, env: Mapping[str, str], found: _Found) -> dict[str, dict[str, Any]]:
    folder = root / "tables"
    overrides: dict[str, dict[str, Any]] = {}
    if not folder.is_dir():
        return overrides
    for path in sorted(folder.glob("*.y*ml")):
        display = _display(root, path)
        try:
            data = substitute_strict(read_yaml(path, display), env, display)
            _check_table_override(data, display, "")  # validated alone so errors name this file
        except ConfigError as exc:
            found.add(found.tables, path.stem, exc, display, path)
            continue
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
            raise unknown_key(display, k, ("pipeline", "tables"))
    raw = substitute_strict(raw, env, display)
    env_tables = substitute_strict(env_tables or {}, env, display, ("tables",))
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
    """The config folder. connections.yml (and an unreadable environment file) must be
    right; a broken pipeline, tables/*.yml or environment entry is kept in `broken`."""
    environ = os.environ if environ is None else environ
    root = Path(root or environ.get("LAKESHIFT_CONFIG_DIR") or "config")
    env_name = env_name or environ.get("LAKESHIFT_ENV") or None
    if not root.is_dir() and root != Path("config"):
        raise ConfigError(f"config folder {root} does not exist; pass --config-dir or run `lakeshift config init`")
    found = _Found()
    overrides = _env_overrides(root, env_name, found)
    connections, settings = load_connections(root, environ, overrides)
    table_overrides = _table_overrides(root, environ, overrides, found)
    pipelines: dict[str, PipelineConfig] = {}
    for stem, display, path in _pipeline_files(root, overrides, found):
        if stem in found.pipelines:
            continue  # its environment entry is broken
        try:
            raw = read_yaml(path, display) if path is not None else legacy.DEFAULT_PIPELINE
            names = raw.get("tables") if isinstance(raw.get("tables"), dict) else {}
            used = [p for n in names for p in found.tables.get(str(n), [])]  # broken tables/*.yml it uses
            if used:
                found.pipelines[stem] = used
                continue
            pipelines[stem] = _pipeline_from_raw(stem, raw, display, overrides, table_overrides, environ)
        except ConfigError as exc:
            found.add(found.pipelines, stem, exc, display, path)
    return Config(
        root=root,
        env_name=env_name,
        sources=connections["sources"],
        targets=connections["targets"],
        storage=connections["storage"],
        settings=settings,
        pipelines=pipelines,
        table_overrides=table_overrides,
        broken=found.pipelines,
        broken_tables=found.tables,
        problems=found.other,
        legacy_in_use=legacy.in_use(environ),
    )


def _table_overrides(root: Path, environ: Mapping[str, str], overrides: dict[str, Any],
                     found: _Found) -> dict[str, dict[str, Any]]:
    """tables/*.yml with the environment's `tables:` entries merged over them (a broken entry is kept in `found`)."""
    table_overrides = _load_table_overrides(root, environ, found)
    for name, body in (overrides.get("tables") or {}).items():
        try:
            env_table = substitute_strict(body, environ, overrides["_display"], ("tables", str(name)))
        except ConfigError as exc:
            found.add(found.tables, name, exc, overrides["_display"], overrides["_path"])
            continue
        table_overrides[str(name)] = deep_merge(table_overrides.get(str(name), {}), env_table)
    return table_overrides


def _pipeline_files(root: Path, overrides: dict[str, Any], found: _Found) -> list[tuple[str, str, Path | None]]:
    """(key, display name, path) of every pipeline file, plus the built-in v1.0 `default`; an
    environment entry naming no pipeline is a problem in `found`."""
    folder = root / "pipelines"
    files = sorted(folder.glob("*.y*ml")) if folder.is_dir() else []
    sources: list[tuple[str, str, Path | None]] = [(path.stem, _display(root, path), path) for path in files]
    if not any(stem == "default" for stem, _, _ in sources):
        sources.append(("default", legacy.ORIGIN, None))
    stems = {stem for stem, _, _ in sources}
    for name in overrides.get("pipelines") or {}:
        if name not in stems:
            found.other.extend(located([f"{overrides['_display']}: pipelines.{name}: no such pipeline (no "
                                        f"pipelines/{name}.yml); pipelines: {', '.join(sorted(stems))}"],
                                       overrides["_display"], overrides["_path"]))
    return sources


def _pipeline_from_raw(stem: str, raw: dict[str, Any], display: str, overrides: dict[str, Any],
                       table_overrides: dict[str, dict[str, Any]], environ: Mapping[str, str]) -> PipelineConfig:
    if "pipeline" in overrides:  # the environment's `pipeline:` applies to every pipeline
        raw = deep_merge(raw, {"pipeline": overrides["pipeline"]})
    mine = (overrides.get("pipelines") or {}).get(stem) or {}
    raw = deep_merge(raw, {k: v for k, v in mine.items() if k != "tables"})
    return _load_pipeline(stem, raw, display, table_overrides, environ, mine.get("tables"))
