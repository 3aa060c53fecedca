"""Arrow types as the lake's manifests spell them (`str(pa type)`) and back:
the one parser the source (its Parquet schema) and the loaders (their
staging and ingest types) share."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pyarrow as pa

from lakeshift.batch import Column

_DECIMAL = re.compile(r"^decimal(?:128|256)\((\d+),\s*(-?\d+)\)$")
_TIMESTAMP = re.compile(r"^timestamp\[(s|ms|us|ns)(?:,\s*tz=(.+))?\]$")
MAX_DECIMAL128 = 38


def parse_arrow_type(text: str) -> pa.DataType:
    """str(pa type) -> the pa type; ValueError when it names no Arrow type."""
    text = text.strip()
    m = _DECIMAL.match(text)
    if m:
        p, s = int(m.group(1)), int(m.group(2))
        return pa.decimal128(p, s) if p <= MAX_DECIMAL128 else pa.decimal256(p, s)
    m = _TIMESTAMP.match(text)
    if m:
        return pa.timestamp(m.group(1), tz=m.group(2))
    try:
        return pa.type_for_alias(text)
    except (ValueError, KeyError):
        raise ValueError(f"unknown Arrow type {text!r}") from None


def schema_of(columns: Sequence[Column]) -> pa.Schema:
    """The Parquet schema of a batch of `columns`, from the Arrow types their manifest
    spells, with the MySQL type (and lake encoding) as field metadata like an extract's."""
    fields = []
    for c in columns:
        meta = {b"mysql_type": c.mysql_type.encode()}
        if c.lake_encoding:
            meta[b"lake_encoding"] = c.lake_encoding.encode()
        fields.append(pa.field(c.name, parse_arrow_type(c.arrow_type), nullable=True, metadata=meta))
    return pa.schema(fields)
