"""The test rig shared by every suite, one module per concern:

- `targets`: `Target`, a PostgreSQL schema (shared server or a throwaway
  cluster) or a DuckDB file, with its config entry, row reads and loader;
- `source`: the MySQL side (a deterministic `items` table, source rows);
- `checks`: the comparisons end-to-end tests end with (target == source, every
  batch loaded once);
- `config`: a config folder for one pipeline; `cli`: the real CLI in a
  subprocess and the checks on its output; `lake`: the lake as lakeshift sees
  it, S3 clients, file trees;
- `servers` (+ `certs`): throwaway MariaDB and PostgreSQL servers; `sshd`: a
  loopback SSH server; `net`: free ports and a TCP proxy a test can cut;
  `wait`: bounded polling;
- `redshift`: a fake Redshift connection that records every statement.

Fixtures stay in conftest.py; suite-specific helpers stay next to their suite
(engine_kit, load_kit, source_kit)."""
