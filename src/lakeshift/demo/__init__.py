"""The embedded default: a sample shop database in the local MySQL, synced
through a local lake folder into a DuckDB file."""
