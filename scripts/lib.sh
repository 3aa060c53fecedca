# Shared by demo.sh, test.sh and bench.sh: a virtual environment with
# everything installed, and the local services started when they are not.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LAKESHIFT_VENV:-$ROOT/.venv}"
# lakeshift[dagster,airflow] and their suites: a venv of their own, so $VENV stays the base install
EXTRAS_VENV="${LAKESHIFT_EXTRAS_VENV:-$ROOT/.venv-orchestrators}"

_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

_wait_port() {
  for _ in $(seq 1 60); do _port_open "$1" && return 0; sleep 0.5; done
  echo "service on 127.0.0.1:$1 did not start" >&2; return 1
}

ensure_mysql() {
  _port_open 3306 && return 0
  echo "starting MariaDB..." >&2
  if ! command -v mariadbd >/dev/null && [ ! -x /usr/sbin/mariadbd ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >/dev/null
  fi
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  _wait_port 3306
}

ensure_postgres() {
  _port_open 5432 && return 0
  echo "starting PostgreSQL..." >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  _wait_port 5432
}

ensure_venv() {  # $1: extras, e.g. "test"; $2: the venv (default $VENV)
  local extras="${1:-}" spec="$ROOT" VENV="${2:-$VENV}"
  [ -n "$extras" ] && spec="$ROOT[$extras]"
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" 2>/dev/null || {
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$VENV"
    }
  fi
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$spec" 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -c "import lakeshift" >/dev/null
}
