"""The MySQL/MariaDB source: control connections (client, pool, tls, retry,
errors, locks), exact types (types, convert), keyset windows (keys, window)
and the connectorx reader."""

from lakeshift.source.client import connect
from lakeshift.source.locks import named_lock
from lakeshift.source.pool import MySQLPool
from lakeshift.source.reader import MySQLReader, TableDescription
from lakeshift.source.retry import retry
from lakeshift.source.row_stream import ReadResult, RowStream
from lakeshift.source.types import lake_schema
from lakeshift.source.window import Window

__all__ = ["MySQLPool", "MySQLReader", "ReadResult", "RowStream", "TableDescription", "Window", "connect",
           "lake_schema", "named_lock", "retry"]
