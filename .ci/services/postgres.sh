#!/usr/bin/env bash
# Private PostgreSQL cluster for the Vigil test suite.
#   usage: postgres.sh start|stop|status|env|packages
# Listens on 127.0.0.1:15432 (unix socket in the state dir), data under
# $VIGIL_SERVICES_DIR/postgres. Superuser login vigil_admin/vigil_admin_pw,
# database vigil_test, scram-sha-256 password auth over TCP.
set -euo pipefail
SVC_NAME=postgres
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_PORT=15432
PG_USER=vigil_admin
PG_PASS=vigil_admin_pw
PG_DB=vigil_test
PG_URL="postgres://${PG_USER}:${PG_PASS}@127.0.0.1:${PG_PORT}/${PG_DB}?sslmode=disable"

PG_HOME="$VIGIL_SERVICES_DIR/postgres"
PG_DATA="$PG_HOME/data"
PG_RUN="$PG_HOME/run"
PG_LOG="$PG_HOME/postgres.log"

# pg_bin: the bin dir matching an existing cluster, else the newest installed.
pg_bin() {
  local d
  if [[ -s "$PG_DATA/PG_VERSION" ]]; then
    d="/usr/lib/postgresql/$(cat "$PG_DATA/PG_VERSION")/bin"
    if [[ -x "$d/postgres" ]]; then echo "$d"; return 0; fi
    die "cluster in $PG_DATA is version $(cat "$PG_DATA/PG_VERSION") but $d/postgres is missing"
  fi
  d="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  [[ -n "$d" && -x "$d/postgres" ]] || return 1
  echo "$d"
}

# as_pg CMD...: run as the postgres OS user when we are root.
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# creds_ok: does 127.0.0.1:15432 accept vigil_admin on vigil_test?
creds_ok() {
  local psql
  psql="$(pg_bin 2>/dev/null)/psql"
  [[ -x "$psql" ]] || psql="$(command -v psql || true)"
  [[ -n "$psql" ]] || return 1
  local out
  out="$(PGCONNECT_TIMEOUT=3 "$psql" -X -q -tA "$PG_URL" -c 'SELECT 1' 2>/dev/null)" || return 1
  [[ "$out" == 1 ]]
}

ours_running() {
  local bin
  bin="$(pg_bin 2>/dev/null)" || return 1
  [[ -s "$PG_DATA/PG_VERSION" ]] || return 1
  as_pg "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

write_config() {
  cat >"$PG_DATA/vigil.conf" <<EOF
# Written by .ci/services/postgres.sh on every start.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_RUN'
max_connections = 300
password_encryption = 'scram-sha-256'
# Throwaway test cluster: trade durability for speed.
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
EOF
  grep -qxF "include 'vigil.conf'" "$PG_DATA/postgresql.conf" \
    || printf "\ninclude 'vigil.conf'\n" >>"$PG_DATA/postgresql.conf"
  cat >"$PG_DATA/pg_hba.conf" <<'EOF'
# Written by .ci/services/postgres.sh on every start.
local   all  all                 trust
host    all  all  127.0.0.1/32   scram-sha-256
host    all  all  ::1/128        scram-sha-256
EOF
  if [[ $(id -u) -eq 0 ]]; then chown postgres:postgres "$PG_DATA/vigil.conf" "$PG_DATA/pg_hba.conf"; fi
}

setup_roles() {
  local bin="$1"
  as_pg "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_RUN" -p "$PG_PORT" -U postgres -d postgres >/dev/null <<EOF
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN SUPERUSER CREATEDB CREATEROLE PASSWORD '$PG_PASS';
  ELSE
    ALTER ROLE $PG_USER LOGIN SUPERUSER CREATEDB CREATEROLE PASSWORD '$PG_PASS';
  END IF;
END
\$\$;
SELECT 'CREATE DATABASE $PG_DB OWNER $PG_USER'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$PG_DB')\gexec
EOF
}

cmd_start() {
  local t0 bin
  t0=$(now_ms)
  if creds_ok; then
    log "already running on 127.0.0.1:$PG_PORT (credentials OK), leaving it alone"
    return 0
  fi
  apt_install postgresql
  bin="$(pg_bin)" || die "no PostgreSQL binaries under /usr/lib/postgresql/*/bin"

  if ! ours_running && port_open 127.0.0.1 "$PG_PORT"; then
    die "port $PG_PORT is taken by something that does not accept $PG_USER/$PG_PASS; stop it first"
  fi

  mkdir -p "$PG_HOME" "$PG_RUN"
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres:postgres "$PG_HOME" "$PG_RUN"
    chmod 700 "$PG_HOME"
    runuser -u postgres -- test -x "$PG_HOME" \
      || die "the postgres OS user cannot reach $PG_HOME; set VIGIL_SERVICES_DIR to a world-traversable path"
  fi

  if [[ ! -s "$PG_DATA/PG_VERSION" ]]; then
    log "initdb $PG_DATA ($bin)"
    rm -rf "$PG_DATA"
    as_pg "$bin/initdb" -D "$PG_DATA" -U postgres -E UTF8 --no-locale \
      --auth-local=trust --auth-host=scram-sha-256 >"$PG_HOME/initdb.log" 2>&1 \
      || { tail -n 20 "$PG_HOME/initdb.log" >&2; die "initdb failed"; }
  fi
  write_config

  if ours_running; then
    log "cluster already running; reloading config"
    as_pg "$bin/pg_ctl" -D "$PG_DATA" reload >/dev/null
  else
    log "starting on 127.0.0.1:$PG_PORT (log $PG_LOG)"
    touch "$PG_LOG"
    if [[ $(id -u) -eq 0 ]]; then chown postgres:postgres "$PG_LOG"; fi
    as_pg "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 120 start >/dev/null \
      || { tail -n 30 "$PG_LOG" >&2; die "pg_ctl start failed"; }
  fi
  setup_roles "$bin"
  wait_cmd 15 creds_ok || die "server is up but $PG_URL does not work"
  log "ready at 127.0.0.1:$PG_PORT in $(elapsed "$t0")"
}

cmd_stop() {
  local bin
  if ours_running; then
    bin="$(pg_bin)"
    log "stopping"
    as_pg "$bin/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null \
      || die "pg_ctl stop failed"
    log "stopped"
  else
    log "not running (nothing to stop)"
  fi
}

cmd_status() {
  if creds_ok; then
    log "running on 127.0.0.1:$PG_PORT"
  else
    log "not running"
    return 1
  fi
}

cmd_env() {
  printf "export VIGIL_TEST_PG_URL='%s'\n" "$PG_URL"
}

case "${1:-}" in
  start | stop | fetch) lock_service "${BASH_SOURCE[0]}" "$@" ;;
esac
case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  packages) echo "postgresql" ;;
  *) echo "usage: $0 start|stop|status|env|packages" >&2; exit 2 ;;
esac
