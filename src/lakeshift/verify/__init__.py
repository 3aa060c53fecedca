"""`lakeshift verify`: prove a target table equals its MySQL table, through
SQL pushed down to both sides (docs/verify.md).

    report = compare_table(TableJob(reader, desc, loader, target_table, key, deep=True))
    keys = gone_keys(reader, desc, loader, target_table, key)   # pa.Table: in the target, gone from MySQL
    gaps = key_gaps(reader, desc, loader, target_table, key, synced)  # .gone, and .back: keys to read again
"""

from lakeshift.verify.report import TableReport
from lakeshift.verify.table import KeyGaps, TableJob, compare_table, gone_keys, key_gaps

__all__ = ["KeyGaps", "TableJob", "TableReport", "compare_table", "gone_keys", "key_gaps"]
