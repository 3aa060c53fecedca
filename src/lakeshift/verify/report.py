"""What a verify found, per table: data only (the CLI prints it, --json dumps it)."""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

EXAMPLES = 10  # example keys kept per kind
KINDS = ("missing", "extra", "different")


@dataclass
class TableReport:
    """One table's comparison. `missing`: rows MySQL has and the target lacks;
    `extra`: rows only the target has; `different`: same key, other values
    (--deep); `pending`: MySQL rows beyond the watermark the target has loaded,
    not compared. Keyless tables compare row multisets: no `different`, no keys."""

    table: str
    target_table: str
    source_rows: int = 0
    target_rows: int = 0
    missing: int = 0
    extra: int = 0
    different: int = 0
    pending: int = 0
    windows: int = 0  # windows compared
    windows_differing: int = 0
    seconds: float = 0.0
    deep: bool = False
    keyed: bool = True
    key: list[str] = field(default_factory=list)
    repaired_rows: int = 0  # --repair: rows read again from MySQL and merged
    repaired_deletes: int = 0  # --repair: extra keys deleted (or marked, hard_deletes: soft)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not (self.missing or self.extra or self.different)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["equal"] = self.equal
        data["examples"] = {k: [{c: json_value(v) for c, v in row.items()} for row in rows]
                            for k, rows in self.examples.items()}
        return data


def json_value(v: Any) -> Any:
    """A key value as JSON can hold it (bytes as base64, exact numbers as text)."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "base64:" + base64.b64encode(bytes(v)).decode()
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if isinstance(v, (Decimal, timedelta)):
        return str(v)
    return str(v)
