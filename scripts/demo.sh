#!/usr/bin/env bash
# The main job on the embedded default: a sample shop database in the local
# MySQL, synced through a local lake folder into a DuckDB file, twice.
source "$(dirname "$0")/lib.sh"
ensure_mysql
ensure_venv
cd "$ROOT"
exec "$VENV/bin/lakeshift" demo "$@"
