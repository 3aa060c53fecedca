"""`lakeshift verify`: prove a target table equals its MySQL table, through
SQL pushed down to both sides (docs/verify.md).

    report = compare_table(TableJob(reader, desc, loader, target_table, key, deep=True))
    keys = gone_keys(reader, desc, loader, target_table, key)   # pa.Table: in the target, gone from MySQL
"""

from lakeshift.verify.report import TableReport
from lakeshift.verify.table import TableJob, compare_table, gone_keys

__all__ = ["TableJob", "TableReport", "compare_table", "gone_keys"]
