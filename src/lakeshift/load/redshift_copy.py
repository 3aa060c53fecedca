"""What Redshift's COPY ... FORMAT AS PARQUET needs around it (pure where it can be):

- the credentials clause: `IAM_ROLE '...'`, else keys in the documented
  `CREDENTIALS 'aws_access_key_id=...;aws_secret_access_key=...[;token=...]'`
  form (ACCESS_KEY_ID ... is not among the COPY options documented for Parquet)
  -- the lake storage's keys, else the standard AWS credential chain's;
- a failed COPY as one line that keeps Redshift's detail block (the error,
  its code, the context naming the file and column, the query id), which
  the usual three-line error summary cut off;
- JSON documents longer than the VARCHAR staging column holds (65,535 bytes),
  refused before the COPY, naming the column and the part."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from lakeshift.batch import Column
from lakeshift.errors import LoadError
from lakeshift.load.session import translate_errors
from lakeshift.load.types import REDSHIFT_VARCHAR_MAX, classify
from lakeshift.redact import redact, register

_DETAIL_KEYS = ("error", "code", "context", "query", "location")
_DETAIL_LINE = re.compile(r"^\s*(?:DETAIL:\s*)?(error|code|context|query|location|process):\s*(.*)$")
MESSAGE_MAX = 2000
# The failed COPY's row (its error, file and column), run after the ROLLBACK: each staging session runs one COPY.
LOAD_ERROR = ("SELECT TRIM(file_name), TRIM(column_name), TRIM(column_type), error_code, TRIM(error_message) "
              "FROM sys_load_error_detail WHERE session_id = pg_backend_pid() ORDER BY start_time DESC LIMIT 1")


def literal(value: str, what: str) -> str:
    """A quoted literal for the few places Redshift takes no parameters (COPY).
    Values with quotes, backslashes or control characters are refused rather
    than escaped; the value itself is never echoed (it may be a secret)."""
    if any(ch in value for ch in "'\\") or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise LoadError(f"Redshift COPY: the {what} contains a quote, backslash or control character")
    return f"'{value}'"


def credentials_clause(role: str | None, keys: tuple[str, str, str | None] | None) -> str:
    """IAM_ROLE when there is a role, else the keys in COPY's CREDENTIALS string."""
    if role:
        return f"IAM_ROLE {literal(role, 'iam_role')}"
    if keys is None:
        raise LoadError("COPY needs `iam_role` on the Redshift target (preferred) or "
                        "access_key_id/secret_access_key on the lake storage, and the AWS credential chain "
                        "(AWS_PROFILE, the credentials files, web identity, container or instance role) has none")
    key, secret, token = keys
    pairs = [("aws_access_key_id", key, "access key id"), ("aws_secret_access_key", secret, "secret key")]
    if token:
        pairs.append(("token", token, "session token"))
    for _, value, what in pairs:
        register(value)
        if ";" in value:
            raise LoadError(f"Redshift COPY: the {what} contains ';', which the CREDENTIALS string cannot carry")
    text = ";".join(f"{name}={value}" for name, value, _ in pairs)
    return f"CREDENTIALS {literal(text, 'credentials')}"


def copy_failure(batch_id: str, text: str, load_error: Sequence[Any] | None = None) -> str:
    """One line for a failed COPY: the error's first line, Redshift's detail block and
    the COPY's row of SYS_LOAD_ERROR_DETAIL (file, column, type, code, message) if any."""
    found = ""
    if load_error:
        file, column, column_type, code, message = load_error
        found = f"; SYS_LOAD_ERROR_DETAIL: {message} (file {file}, column {column} {column_type}, code {code})"
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return redact(f"COPY of batch {batch_id} failed{found}")[:MESSAGE_MAX]
    fields: dict[str, list[str]] = {}
    current = None
    for line in lines[1:]:
        m = _DETAIL_LINE.match(line)
        if m:
            current = m.group(1)
            fields.setdefault(current, []).append(m.group(2).strip())
        elif current == "context" and not line.strip().startswith("---"):
            fields[current].append(line.strip())  # the context runs on (a Parquet schema, say)
        else:
            current = None
    parts = [lines[0].strip().removeprefix("ERROR:").strip()]
    for key in _DETAIL_KEYS:
        value = " ".join(v for v in fields.get(key, []) if v)
        if value and value != parts[0]:
            parts.append(f"{key}: {value}")
    if len(parts) == 1:  # no detail block: keep what the driver said, on one line
        parts = [" ".join(line.strip() for line in lines)]
    return redact(f"COPY of batch {batch_id} failed: " + "; ".join(parts) + found)[:MESSAGE_MAX]


def json_columns(columns: Sequence[Column]) -> list[str]:
    return [c.name for c in columns if classify(c).kind == "json"]


def check_json_sizes(names: list[str], path: str, filesystem: Any, uri: str) -> None:
    """Refuse a part holding a JSON document longer than the VARCHAR staging column
    (COPY would fail on it with an error that does not say which document)."""
    if not names:
        return
    with translate_errors(f"reading the JSON columns of {uri}"):
        table = pq.read_table(path, columns=names, filesystem=filesystem)
    for name in names:
        longest = pc.max(pc.binary_length(table.column(name))).as_py()
        if longest is not None and longest > REDSHIFT_VARCHAR_MAX:
            raise LoadError(
                f"column {name!r}: a JSON document of {longest:,} bytes in {uri}; Redshift's COPY from Parquet "
                f"stages JSON as VARCHAR, at most {REDSHIFT_VARCHAR_MAX:,} bytes, before JSON_PARSE into SUPER. "
                "Nothing was loaded. Way out: shorten these documents in MySQL, or load this table into "
                "PostgreSQL or DuckDB")
