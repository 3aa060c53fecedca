"""lakeshift: MySQL/MariaDB -> Parquet lake -> Redshift, PostgreSQL or DuckDB."""

__version__ = "0.1.0"
