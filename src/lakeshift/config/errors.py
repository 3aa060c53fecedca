"""Turn pydantic validation errors into one-line messages:
`<file>: <key.path>: <what is wrong>` with the allowed values or a near spelling."""

from __future__ import annotations

import difflib
import typing
from typing import Any

from pydantic import BaseModel, ValidationError



def _allowed_keys(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str]:
    """Field names (or aliases) of the model that owns the key at `loc`."""
    current: Any = model
    skip_key = False  # inside dict[str, Model] the next part is a user's name
    for part in loc[:-1]:
        if skip_key:
            skip_key = False
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part)) or next(
            (f for f in current.model_fields.values() if f.alias == part), None
        )
        if field is None:
            return []
        skip_key = typing.get_origin(field.annotation) is dict
        current = _inner_model(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or n for n, f in current.model_fields.items()]
    return []


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in reversed(typing.get_args(annotation)):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def format_validation_error(
    exc: ValidationError,
    display: str,
    base: str = "",
    model: type[BaseModel] | None = None,
    tagged: dict[str, type[BaseModel]] | None = None,
) -> str:
    """The first problem, with how many more there are."""
    lines = validation_error_lines(exc, display, base, model, tagged)
    return lines[0] + (f" (and {len(lines) - 1} more problem(s))" if len(lines) > 1 else "")


def validation_error_lines(
    exc: ValidationError,
    display: str,
    base: str = "",
    model: type[BaseModel] | None = None,
    tagged: dict[str, type[BaseModel]] | None = None,
) -> list[str]:
    """One line per problem, the first problem first. `tagged` maps the
    discriminator values of a tagged union to their models: pydantic puts the
    tag first in `loc`, and users never typed it."""
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        if tagged and loc and loc[0] in tagged:
            model = tagged[str(loc[0])]
            loc = loc[1:]
        loc = tuple(p for p in loc if not (isinstance(p, str) and p.startswith("function-")))
        key = ".".join(str(p) for p in ((base,) if base else ()) + loc)
        etype = err["type"]
        if etype == "extra_forbidden":
            allowed = _allowed_keys(model, loc)
            near = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            hint = f"; did you mean '{near[0]}'?" if near else (
                f"; allowed keys: {', '.join(sorted(allowed))}" if allowed else ""
            )
            lines.append(f"{display}: {key}: unknown key{hint}")
            continue
        msg = _plain_message(err)
        if etype == "missing":
            msg = "required key is missing"
        elif etype == "union_tag_invalid":
            expected = err.get("ctx", {}).get("expected_tags", "")
            msg = f"type {given_tag(err)!r} is not supported; use one of {expected}"
        elif etype == "union_tag_not_found":
            msg = "a 'type' key is required"
        lines.append(f"{display}: {key}: {msg}" if key else f"{display}: {msg}")
    return lines


# Our own wording for the common pydantic errors: stable across pydantic
# versions, and says what is allowed and what was given.
_KIND = {
    "int_parsing": "an integer", "int_type": "an integer", "int_from_float": "a whole number",
    "float_parsing": "a number", "float_type": "a number", "bool_parsing": "true or false",
    "bool_type": "true or false", "string_type": "a string", "list_type": "a list",
    "dict_type": "a mapping (key: value)", "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
}
_BOUND = {"greater_than_equal": ("ge", "at least"), "less_than_equal": ("le", "at most"),
          "greater_than": ("gt", "more than"), "less_than": ("lt", "less than")}


def _shown(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return repr(value)


def _plain_message(err: dict[str, Any]) -> str:
    etype, ctx, given = err["type"], err.get("ctx") or {}, err.get("input")
    if etype in _KIND:
        return f"must be {_KIND[etype]} (got {_shown(given)})"
    if etype in _BOUND:
        key, words = _BOUND[etype]
        bound = ctx.get(key)
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        return f"must be {words} {bound} (got {_shown(given)})"
    if etype in ("literal_error", "enum"):
        return f"must be one of {ctx.get('expected', '')} (got {_shown(given)})"
    msg = str(err["msg"])
    return msg[len("Value error, "):] if msg.startswith("Value error, ") else msg


def given_tag(err: dict[str, Any]) -> str:
    return str(err.get("ctx", {}).get("tag", err.get("input")))


def raise_config_error(
    exc: ValidationError, display: str, base: str = "", model: Any = None, tagged: Any = None
) -> None:
    from lakeshift.config.problems import ConfigProblems

    raise ConfigProblems(validation_error_lines(exc, display, base, model, tagged)) from None
