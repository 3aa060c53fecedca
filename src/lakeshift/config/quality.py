"""`data_quality_checks`: the checks a table's batches must pass before they
are loaded. The spec's list of names keeps working; an item may also be a
mapping {check: settings} for a check with parameters, each with `severity:
error` (default: the batch is not loaded, the table fails) or `warn` (loaded,
reported):

    data_quality_checks:
      - null_check                              # required_columns (else every column), max_null_percentage
      - duplicate_check                         # the merge key
      - null_check: {columns: [email], max_null_percentage: 0, severity: warn}
      - duplicate_check: {columns: [customer_id, day]}
      - row_count_min: 100                      # or {min: 100, severity: warn}
      - accepted_values: {status: [new, paid, shipped], severity: warn}
      - freshness: {column: updated_at, max_age: 2h}
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from lakeshift.config.models import Duration, Identifier  # models.py imports this module lazily

Severity = Literal["error", "warn"]


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid")
    severity: Severity = "error"


class NullCheck(_Check):
    check: Literal["null_check"] = "null_check"
    columns: list[Identifier] | None = Field(None, description="default: validation.required_columns, else every column")
    max_null_percentage: float | None = Field(None, ge=0, le=100,
                                              description="default: validation.max_null_percentage, else 0")


class DuplicateCheck(_Check):
    check: Literal["duplicate_check"] = "duplicate_check"
    columns: list[Identifier] | None = Field(None, description="default: the merge key")


class RowCountMin(_Check):
    check: Literal["row_count_min"] = "row_count_min"
    min: int = Field(..., ge=0)


class AcceptedValues(_Check):
    check: Literal["accepted_values"] = "accepted_values"
    values: dict[Identifier, list[Any]] = Field(..., min_length=1)

    @field_validator("values")
    @classmethod
    def _lists(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for column, allowed in v.items():
            if not allowed:
                raise ValueError(f"column {column!r} lists no accepted value")
        return v


class Freshness(_Check):
    check: Literal["freshness"] = "freshness"
    column: Identifier
    max_age: Duration

    @field_validator("max_age")
    @classmethod
    def _positive(cls, v: timedelta) -> timedelta:
        if v.total_seconds() <= 0:
            raise ValueError("must be more than 0")
        return v


QualityCheck = Annotated[Union[NullCheck, DuplicateCheck, RowCountMin, AcceptedValues, Freshness],
                         Field(discriminator="check")]
CHECK_NAMES = ("null_check", "duplicate_check", "row_count_min", "accepted_values", "freshness")


def normalize_check(item: Any) -> Any:
    """A list item as the typed check's fields: 'name', {name: settings} or {name: n}."""
    if isinstance(item, BaseModel) or (isinstance(item, dict) and "check" in item):
        return item  # already typed, or as model_dump gives it
    if isinstance(item, str):
        if item in ("row_count_min", "accepted_values", "freshness"):
            raise ValueError(f"{item} needs settings, e.g. " + _EXAMPLES[item])
        return {"check": _known(item)}
    if isinstance(item, dict) and len(item) == 1:
        (name, settings), = item.items()
        name = _known(name)
        if name == "row_count_min" and isinstance(settings, int) and not isinstance(settings, bool):
            return {"check": name, "min": settings}
        if settings is None:
            settings = {}
        if not isinstance(settings, dict):
            raise ValueError(f"{name}: settings must be a mapping, e.g. {_EXAMPLES[name]}")
        if name == "accepted_values":
            settings = dict(settings)
            severity = settings.pop("severity", None)
            return {"check": name, "values": settings, **({"severity": severity} if severity is not None else {})}
        return {"check": name, **settings}
    raise ValueError("each check is a name (null_check, duplicate_check) or a mapping {check: settings}, e.g. "
                     + _EXAMPLES["row_count_min"])


_EXAMPLES = {
    "null_check": "{null_check: {columns: [email], max_null_percentage: 1}}",
    "duplicate_check": "{duplicate_check: {columns: [id]}}",
    "row_count_min": "{row_count_min: 100}",
    "accepted_values": "{accepted_values: {status: [new, paid]}}",
    "freshness": "{freshness: {column: updated_at, max_age: 2h}}",
}


def parse_checks(items: Any) -> list[Any]:
    """The typed checks of a data_quality_checks list; ValueError (one line) when one is wrong."""
    if not isinstance(items, list):
        raise ValueError("must be a list, e.g. [null_check, duplicate_check]")
    out = []
    for n, item in enumerate(items, 1):
        try:
            out.append(_ADAPTER.validate_python(normalize_check(item)))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"][1:] if p not in CHECK_NAMES)
            raise ValueError(f"item {n} ({_name(item)}): {where + ': ' if where else ''}{err['msg']}") from None
        except ValueError as exc:
            raise ValueError(f"item {n}: {exc}") from None
    return out


def _name(item: Any) -> str:
    return item if isinstance(item, str) else next(iter(item)) if isinstance(item, dict) and item else "?"


def _known(name: Any) -> str:
    if name not in CHECK_NAMES:
        raise ValueError(f"unknown check {name!r}; use one of: {', '.join(CHECK_NAMES)}")
    return str(name)


def describe_check(check: Any) -> str:
    """How messages name a check, e.g. 'null_check', 'accepted_values(status)'."""
    if isinstance(check, AcceptedValues):
        return f"accepted_values({', '.join(check.values)})"
    if isinstance(check, Freshness):
        return f"freshness({check.column})"
    return check.check


_ADAPTER: TypeAdapter[Any] = TypeAdapter(QualityCheck)
