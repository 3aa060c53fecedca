"""The v1.3 history keys of a table (`scd_type: type_2`, `business_key`,
`scd_columns`): the checks that need only the config. The checks against the
table's columns run when a batch is loaded (engine/history.py)."""

from __future__ import annotations

from typing import Any


def check_history_keys(cfg: Any) -> None:
    """One-line errors for history keys that cannot work together (raised as
    ValueError: pydantic names the file and table)."""
    if cfg.scd_type is None:
        stray = [k for k in ("business_key", "scd_columns") if getattr(cfg, k) is not None]
        if stray:
            raise ValueError(f"{' and '.join(stray)} only apply with scd_type: type_2; add it, or remove them")
        return
    if cfg.table_type != "dimension":
        raise ValueError("scd_type: type_2 keeps the history of a dimension; set table_type: dimension")
    if not cfg.business_key:
        raise ValueError("scd_type: type_2 needs business_key: the column(s) that identify the entity, "
                         "e.g. business_key: [customer_id]")
    if len(set(cfg.business_key)) != len(cfg.business_key):
        raise ValueError(f"business_key {cfg.business_key} names a column twice")
    if cfg.scd_columns is not None:
        both = sorted(set(cfg.scd_columns) & set(cfg.business_key))
        if both:
            raise ValueError(f"scd_columns {both} are in business_key; a key column never changes a version")
        if not cfg.scd_columns:
            raise ValueError("scd_columns is empty; leave it out to track every non-key column")
