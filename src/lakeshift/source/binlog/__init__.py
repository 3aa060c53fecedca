"""Log-based CDC from the MySQL/MariaDB binary log (cdc_strategy: binlog): the
server's readiness and positions (server.py), the change reader (stream.py)
and the decoding of row images into the snapshot's exact lake types (decode.py)."""
