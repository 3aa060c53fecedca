"""The MySQL/MariaDB source: control connections (client), exact types
(types, convert), keyset windows (keys, window) and the connectorx reader."""

from lakeshift.source.client import MySQLPool, connect, named_lock, retry
from lakeshift.source.reader import MySQLReader, TableDescription
from lakeshift.source.row_stream import ReadResult, RowStream
from lakeshift.source.types import lake_schema
from lakeshift.source.window import Window

__all__ = ["MySQLPool", "MySQLReader", "ReadResult", "RowStream", "TableDescription", "Window", "connect",
           "lake_schema", "named_lock", "retry"]
