"""`custom_sql`: a table read from one read-only SELECT instead of a whole table.

The query is checked before it reaches MySQL (sqlglot's mysql dialect: exactly
one SELECT -- a UNION or a WITH of SELECTs too -- with no `;`, no INTO, no
locking clause, no executable comment, no variable assignment and no function
that waits, locks, reads server files or moves a sequence). The reader wraps it
as a derived table, `(query) AS _ls`, so the window, keyset paging, tie
checksums and hard-delete comparisons run on its output columns exactly as on
a table (positions.from_sql). Its columns are typed from the result metadata
MySQL sends for `SELECT * FROM (query) AS _ls LIMIT 0` (result_types.py)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lakeshift.errors import ConfigError
from lakeshift.identifiers import split_table_name

if TYPE_CHECKING:
    from lakeshift.config.models import TableConfig
    from lakeshift.source.description import TableDescription
    from lakeshift.source.pool import MySQLPool

# Functions a read may not call: they wait, take locks, read the server's files,
# move a sequence or wait for replication. Everything else in a SELECT only reads.
_REFUSED_FUNCTIONS = frozenset({
    "SLEEP", "BENCHMARK", "GET_LOCK", "RELEASE_LOCK", "RELEASE_ALL_LOCKS", "IS_FREE_LOCK", "IS_USED_LOCK",
    "LOAD_FILE", "MASTER_POS_WAIT", "SOURCE_POS_WAIT", "MASTER_GTID_WAIT", "WAIT_FOR_EXECUTED_GTID_SET",
    "WAIT_UNTIL_SQL_THREAD_AFTER_GTIDS", "NEXTVAL", "SETVAL", "LASTVAL", "SYS_EXEC", "SYS_EVAL",
})
_HOW = "give one read-only SELECT (a filter, a projection, a join), without ';'"


def check_custom_sql(text: str) -> str:
    """The query, stripped, when it is one read-only SELECT; else ValueError (one line, why)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError
    from sqlglot.tokens import TokenType

    query = text.strip()
    if not query:
        raise ValueError(f"is empty; {_HOW}")
    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # it warns about what it falls back on: we refuse it
    try:
        tokens = sqlglot.tokenize(query, read="mysql")
        statements = sqlglot.parse(query, read="mysql")
    except SqlglotError as exc:
        raise ValueError(f"is not one MySQL SELECT that lakeshift can check ({_first_line(exc)}); {_HOW}") from None
    if any(t.token_type == TokenType.SEMICOLON for t in tokens) or len(statements) != 1:
        raise ValueError(f"holds more than one statement (';'); {_HOW}")
    for comment in (c for t in tokens for c in t.comments):
        if comment.lstrip().startswith(("!", "M!")):
            raise ValueError("holds an executable comment (/*! ... */), which MySQL runs but lakeshift cannot "
                             f"check; {_HOW}")
    if any(t.token_type == TokenType.COLON_EQ for t in tokens):
        raise ValueError(f"assigns a variable (:=); {_HOW}")
    root = statements[0]
    if not isinstance(root, (exp.Select, exp.SetOperation)) or isinstance(root, exp.Anonymous):
        kind = type(root).__name__.upper() if root is not None else "nothing"
        raise ValueError(f"is a {kind} statement, not a SELECT; {_HOW}")
    for node in root.walk():
        if isinstance(node, exp.Into):
            raise ValueError(f"writes its rows somewhere (INTO); {_HOW}")
        if isinstance(node, exp.Lock):
            raise ValueError(f"takes row locks (FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE); {_HOW}")
        if isinstance(node, (exp.DML, exp.DDL, exp.Command, exp.Set)) and node is not root:
            raise ValueError(f"holds a {type(node).__name__.upper()} statement; {_HOW}")
        if isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).upper()
            if name in _REFUSED_FUNCTIONS:
                raise ValueError(f"calls {name}(), which does more than read; {_HOW}")
    return query


def _first_line(exc: Exception) -> str:
    import re

    line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return re.sub(r"\x1b\[[0-9;]*m", "", line)


def describe_query(pool: MySQLPool, database: str | None, label: str, name: str, table: TableConfig) -> TableDescription:
    """The columns of table `name`'s custom_sql as MySQL types its result. The query's
    output has no unique key MySQL promises: the configured primary_key (checked in
    each batch for repeats) is its key, and pages it when its columns are NOT NULL."""
    from lakeshift.source.convert import ALIAS
    from lakeshift.source.description import TableDescription, check_column_names
    from lakeshift.source.result_types import field_info

    assert table.custom_sql is not None
    where = f"MySQL {label}: custom_sql of table {name}"
    fields = pool.fields(f"SELECT * FROM ({table.custom_sql}) AS {ALIAS} LIMIT 0", where)
    infos = check_column_names([field_info(f) for f in fields], where, "; give the expression a plain name with AS")
    keys = [("primary_key", list(table.primary_key))] if table.primary_key else []
    schema, bare = split_table_name(name)
    return TableDescription(schema or database or "custom_sql", bare, [], list(table.primary_key or []), infos=infos, unique_keys=keys,
                            custom_sql=table.custom_sql).apply(table)


def check_output_columns(name: str, cfg: TableConfig, desc: TableDescription) -> None:
    """The cursor and key columns a custom_sql table names must be columns of its output."""
    if not cfg.custom_sql:
        return
    wanted = [("cdc_timestamp_column", cfg.cdc_timestamp_column), ("cdc_id_column", cfg.cdc_id_column)]
    wanted += [("primary_key", c) for c in cfg.primary_key or []]
    have = [i.name for i in desc.infos]
    for setting, column in wanted:
        if column is not None and column not in have:
            raise ConfigError(f"tables.{name}.{setting}: column {column!r} is not in the output of custom_sql "
                              f"(its columns: {', '.join(have)}); add it to the SELECT list")
