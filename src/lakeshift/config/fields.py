"""The building blocks of the configuration models: the base model (unknown
keys rejected) and the field types every section uses (names, ports, durations)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from lakeshift.errors import IdentifierError
from lakeshift.identifiers import check_identifier, split_table_name


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, validate_default=True)


def _identifier(value: Any) -> Any:
    if value is None:
        return value
    try:
        return check_identifier(value, "name")
    except IdentifierError as exc:
        raise ValueError(str(exc)) from None


def _table_name(value: Any) -> Any:
    if value is None:
        return value
    try:
        split_table_name(value)
    except IdentifierError as exc:
        raise ValueError(str(exc)) from None
    return value


Identifier = Annotated[str, BeforeValidator(_identifier)]
TableName = Annotated[str, BeforeValidator(_table_name)]
Port = Annotated[int, Field(ge=1, le=65535)]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(value: Any) -> timedelta:
    """'10m', '2h', '7d', '30s', '500ms' or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    raise ValueError(f"{value!r} is not a duration; use e.g. 30s, 10m, 2h or 7d")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
