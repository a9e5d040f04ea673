#!/usr/bin/env bash
# chdb (PyPI): ClickHouse 26.x as a Python library, so the tests run the
# ClickHouse backend's schema and every query it generates on a current
# ClickHouse engine (the server the tests run, Debian's, is 18.16). Not a
# daemon: "start" installs the package, "stop" does nothing.
#   usage: chdb.sh start|stop|status|env|packages
set -euo pipefail
SVC_NAME=chdb
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CHDB_VERSION=4.4.0
PY="$(command -v python3 || true)"

has_chdb() { [[ -n "$PY" ]] && "$PY" -c 'import chdb' >/dev/null 2>&1; }

cmd_start() {
  [[ -n "$PY" ]] || die "python3 is needed for chdb"
  if has_chdb; then log "chdb $("$PY" -c 'import chdb; print(chdb.__version__)') installed"; return 0; fi
  "$PY" -m pip install --quiet --disable-pip-version-check "chdb==$CHDB_VERSION" >&2 \
    || "$PY" -m pip install --quiet --disable-pip-version-check --break-system-packages "chdb==$CHDB_VERSION" >&2 \
    || die "pip could not install chdb==$CHDB_VERSION"
  has_chdb || die "chdb does not import after pip install"
  log "chdb $CHDB_VERSION installed"
}

cmd_status() { if has_chdb; then log "installed"; else log "not installed"; return 1; fi; }

cmd_env() { [[ -n "$PY" ]] && printf "export VIGIL_TEST_CHDB_PYTHON='%s'\n" "$PY"; }

case "${1:-}" in
  start) cmd_start ;;
  stop) ;;
  status) cmd_status ;;
  env) cmd_env ;;
  packages) ;;
  *) echo "usage: $0 start|stop|status|env|packages" >&2; exit 2 ;;
esac
