"""What `config validate` and `config list-pipelines` report over a whole config
folder: every problem of every file at once, broken pipelines included."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lakeshift.config import legacy
from lakeshift.config.connection_file import Connection
from lakeshift.config.loader import Config
from lakeshift.config.problems import Problem, located
from lakeshift.config.validate import pipeline_errors
from lakeshift.errors import ConfigError


@dataclass
class ValidationResult:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # pipelines not checked against MySQL, and why
    pipelines: dict[str, str] = field(default_factory=dict)  # key -> ok | broken | invalid

    @property
    def notes(self) -> list[str]:
        return [f"warning: {w}" for w in self.warnings] + self.unchecked

    def add(self, problems: list[Problem]) -> None:
        seen = {p.text for p in self.problems}  # a tables/*.yml used by two pipelines is one problem
        self.problems.extend(p for p in problems if p.text not in seen)


def visible_connections(config: Config) -> list[Connection]:
    """Every connection, without the built-in v1.0 `default` ones nobody set up
    (they would only show as 'not usable' to a user who never declared them)."""
    return [c for kind in ("sources", "targets", "storage") for c in getattr(config, kind).values()
            if config.legacy_in_use or c.origin != legacy.ORIGIN or c.usable]


def _pipeline_file(config: Config, key: str) -> tuple[str, Any]:
    for ext in ("yml", "yaml"):
        path = config.root / "pipelines" / f"{key}.{ext}"
        if path.exists():
            return f"pipelines/{key}.{ext}", path
    return legacy.ORIGIN, None


def validate_config(config: Config, live: bool) -> ValidationResult:
    result = ValidationResult()
    for c in visible_connections(config):
        if c.usable:  # a connection with unset variables is listed as not usable, not failed
            try:
                c.require()
            except ConfigError as exc:
                result.add(located([exc.message], "connections.yml", config.root / "connections.yml"))
    result.add(config.problems)
    keys = sorted(set(config.pipelines) | set(config.broken))
    for key in keys:
        if key in config.broken:
            result.add(config.broken[key])
            result.pipelines[key] = "broken"
            continue
        p = config.pipelines[key]
        display, path = _pipeline_file(config, key)
        errors = pipeline_errors(config, p)
        result.add(located(errors, display, path))
        result.pipelines[key] = "invalid" if errors else "ok"
        if live and not errors and p.tables:
            from lakeshift.engine.table_checks import check_against_source

            report = check_against_source(config, p)
            result.add(located(report.problems, display, path))
            result.pipelines[key] = "invalid" if report.problems else "ok"
            result.warnings.extend(report.warnings)
            result.unchecked.extend(report.unchecked)
    for problems in config.broken_tables.values():  # table files no pipeline uses are still wrong
        result.add(problems)
    return result


def pipeline_rows(config: Config) -> list[dict[str, Any]]:
    """One row per pipeline for `config list-pipelines`, broken ones included."""
    rows = []
    for key in sorted(set(config.pipelines) | set(config.broken)):
        p = config.pipelines.get(key)
        if p is None:
            problems = [str(x) for x in config.broken[key]]
            rows.append({"pipeline": key, "name": None, "source": None, "target": None, "tables": None,
                         "description": None, "status": "broken", "problems": problems})
            continue
        display, path = _pipeline_file(config, key)
        problems = [str(x) for x in located(pipeline_errors(config, p), display, path)]
        rows.append({"pipeline": key, "name": p.name, "source": p.pipeline.source, "target": p.pipeline.target,
                     "tables": len(p.tables), "description": p.pipeline.description,
                     "status": "invalid" if problems else "ok", "problems": problems})
    return rows
