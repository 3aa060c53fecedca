"""A thin SQL session on one DB-API connection, and the one way driver errors
become lakeshift errors (one line, secrets removed)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from lakeshift.errors import LakeshiftError, LoadError
from lakeshift.redact import redact

log = logging.getLogger("lakeshift.load")
_QUOTED = re.compile(r'"[^"]*"')  # a quoted identifier (identifiers never contain '"')


class Session:
    """Statements on one DB-API connection in autocommit mode; transactions are
    explicit BEGIN/COMMIT/ROLLBACK statements, so what is sent is what a test
    (or Redshift) sees."""

    placeholder = "%s"

    def __init__(self, conn: Any, describe: str) -> None:
        self.conn = conn
        self.describe = describe

    @staticmethod
    def _prepare(statement: str, params: Sequence[Any] | None) -> str:
        """With parameters, psycopg reads every % as a placeholder: double the
        ones inside quoted identifiers (a column may be called "rate %")."""
        if params is None or "%" not in statement:
            return statement
        return _QUOTED.sub(lambda m: m.group(0).replace("%", "%%"), statement)

    def _run(self, cur: Any, statement: str, params: Sequence[Any] | None) -> None:
        if params is None:
            cur.execute(statement)
        else:
            cur.execute(self._prepare(statement, params), params)

    def execute(self, statement: str, params: Sequence[Any] | None = None) -> int:
        with translate_errors(self.describe):
            cur = self.conn.cursor()
            try:
                self._run(cur, statement, params)
                return getattr(cur, "rowcount", -1)
            finally:
                cur.close()

    def query(self, statement: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        with translate_errors(self.describe):
            cur = self.conn.cursor()
            try:
                self._run(cur, statement, params)
                return [tuple(r) for r in cur.fetchall()]
            finally:
                cur.close()

    def begin(self) -> None:
        self.execute("BEGIN")

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        """Best effort: the connection may already be gone."""
        try:
            self.execute("ROLLBACK")
        except Exception as exc:  # noqa: BLE001
            log.debug("rollback failed: %s", redact(str(exc)))

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass


@contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Driver errors become LoadError with secrets removed (and the original,
    which may quote a DSN or a COPY with keys, dropped); ours pass through."""
    try:
        yield
    except LakeshiftError:
        raise
    except Exception as exc:
        err = LoadError(redact(f"{what}: {_first_lines(exc)}"))
        err.sqlstate = getattr(exc, "sqlstate", None)  # type: ignore[attr-defined]
        err.full_text = redact(str(exc))  # type: ignore[attr-defined]  # every line, for callers that show more
        try:  # the original stays reachable as __context__ (never printed: `from None`); scrub it anyway
            exc.args = tuple(redact(str(a)) for a in exc.args)
        except Exception:  # noqa: BLE001
            pass
        raise err from None


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a driver error that translate_errors turned into a LoadError."""
    return getattr(exc, "sqlstate", None)


def _first_lines(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(line.strip() for line in text.splitlines()[:3] if line.strip())


def retry_ddl(s: Session, stmt: str, attempts: int = 3) -> None:
    """CREATE ... IF NOT EXISTS from two sessions at once can still collide on
    the catalogue (unique violation); the second attempt sees the object."""
    for i in range(attempts):
        try:
            s.execute(stmt)
            return
        except LoadError:
            if i == attempts - 1:
                raise
            time.sleep(0.05 * (i + 1))
