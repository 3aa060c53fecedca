"""Identifier validation and quoting.

Everything that names a database object comes from configuration or from the
source catalogue; both pass through here. Names may contain spaces, unicode,
mixed case and reserved words (they are always quoted), but never the
characters that could end a quoted identifier or a statement."""

from __future__ import annotations

import re

from lakeshift.errors import IdentifierError

MAX_IDENTIFIER_LENGTH = 64  # MySQL's limit; Redshift/PostgreSQL allow 127/63 bytes
_FORBIDDEN = re.compile(r"[`\"';\\\x00-\x1f\x7f]")


def check_identifier(name: object, what: str = "identifier") -> str:
    """Return `name` if it is a safe identifier, else raise IdentifierError."""
    if not isinstance(name, str) or not name:
        raise IdentifierError(f"{what} must be a non-empty string")
    if len(name) > MAX_IDENTIFIER_LENGTH:
        raise IdentifierError(f"{what} {name!r} is longer than {MAX_IDENTIFIER_LENGTH} characters")
    bad = _FORBIDDEN.search(name)
    if bad:
        raise IdentifierError(
            f"{what} {name!r} contains {bad.group()!r}; quotes, backticks, semicolons, "
            "backslashes and control characters are not allowed in names"
        )
    if "--" in name or "/*" in name:
        raise IdentifierError(f"{what} {name!r} contains a comment marker; rename it")
    if name != name.strip():
        raise IdentifierError(f"{what} {name!r} starts or ends with a space")
    return name


def split_table_name(full_name: str, what: str = "table") -> tuple[str | None, str]:
    """'db.table' -> ('db', 'table'); 'table' -> (None, 'table')."""
    parts = full_name.split(".")
    if len(parts) == 1:
        return None, check_identifier(parts[0], what)
    if len(parts) == 2:
        return check_identifier(parts[0], f"{what} schema"), check_identifier(parts[1], what)
    raise IdentifierError(f"{what} {full_name!r} has more than one '.'; use schema.table or table")


def quote_mysql(name: str) -> str:
    return "`" + check_identifier(name) + "`"


def quote_ansi(name: str) -> str:
    """Double-quoted identifier for PostgreSQL, Redshift and DuckDB."""
    return '"' + check_identifier(name) + '"'


def qualified_ansi(schema: str | None, name: str) -> str:
    return f"{quote_ansi(schema)}.{quote_ansi(name)}" if schema else quote_ansi(name)


def qualified_mysql(schema: str | None, name: str) -> str:
    return f"{quote_mysql(schema)}.{quote_mysql(name)}" if schema else quote_mysql(name)
