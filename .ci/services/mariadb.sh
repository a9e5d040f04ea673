#!/usr/bin/env bash
# Private MariaDB server for the Vigil test suite.
#   usage: mariadb.sh start|stop|status|env|packages
# Listens on 127.0.0.1:13306 with its own socket, pid file and datadir under
# $VIGIL_SERVICES_DIR/mariadb; never uses the distro's /etc/mysql config or
# its service (which stays stopped). User vigil_admin/vigil_admin_pw with ALL
# PRIVILEGES WITH GRANT OPTION, database vigil_test.
set -euo pipefail
SVC_NAME=mariadb
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MY_PORT=13306
MY_USER=vigil_admin
MY_PASS=vigil_admin_pw
MY_DB=vigil_test
MY_DSN="${MY_USER}:${MY_PASS}@tcp(127.0.0.1:${MY_PORT})/${MY_DB}"

MY_HOME="$VIGIL_SERVICES_DIR/mariadb"
MY_DATA="$MY_HOME/data"
MY_RUN="$MY_HOME/run"
MY_SOCK="$MY_RUN/mariadb.sock"
MY_PID="$MY_HOME/mariadb.pid"
MY_LOG="$MY_HOME/mariadb.log"
MY_CNF="$MY_HOME/my.cnf"

if [[ $(id -u) -eq 0 ]]; then MY_OS_USER=mysql; else MY_OS_USER="$(id -un)"; fi

# creds_ok: does 127.0.0.1:13306 accept vigil_admin on vigil_test?
creds_ok() {
  command -v mariadb >/dev/null || return 1
  local out
  out="$(MYSQL_PWD="$MY_PASS" mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P "$MY_PORT" \
    -u "$MY_USER" --connect-timeout=3 -N -B -e 'SELECT 1' "$MY_DB" 2>/dev/null)" || return 1
  [[ "$out" == 1 ]]
}

ours_running() { pid_alive "$MY_PID" "$MY_CNF"; }

# root over our private socket (unix_socket auth: OS root is MariaDB root).
root_sql() { mariadb --defaults-file="$MY_CNF" -u root; }

write_config() {
  cat >"$MY_CNF" <<EOF
# Written by .ci/services/mariadb.sh on every start.
[client]
port = $MY_PORT
socket = $MY_SOCK

[mysqld]
user = $MY_OS_USER
datadir = $MY_DATA
socket = $MY_SOCK
pid-file = $MY_PID
port = $MY_PORT
bind-address = 127.0.0.1
log-error = $MY_LOG
skip-name-resolve
max_connections = 300
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
innodb_buffer_pool_size = 128M
innodb_flush_log_at_trx_commit = 2
EOF
}

cmd_start() {
  local t0
  t0=$(now_ms)
  if creds_ok; then
    log "already running on 127.0.0.1:$MY_PORT (credentials OK), leaving it alone"
    return 0
  fi
  apt_install mariadb-server mariadb-client
  command -v mariadbd >/dev/null || [[ -x /usr/sbin/mariadbd ]] || die "mariadbd not found"
  local mariadbd; mariadbd="$(command -v mariadbd || echo /usr/sbin/mariadbd)"

  if ! ours_running && port_open 127.0.0.1 "$MY_PORT"; then
    die "port $MY_PORT is taken by something that does not accept $MY_USER/$MY_PASS; stop it first"
  fi

  mkdir -p "$MY_HOME" "$MY_RUN"
  write_config
  if [[ $(id -u) -eq 0 ]]; then chown "$MY_OS_USER:" "$MY_HOME" "$MY_RUN"; fi

  if [[ ! -d "$MY_DATA/mysql" ]]; then
    log "mariadb-install-db $MY_DATA"
    rm -rf "$MY_DATA"
    mariadb-install-db --defaults-file="$MY_CNF" --skip-test-db \
      --auth-root-authentication-method=socket >"$MY_HOME/install-db.log" 2>&1 \
      || { tail -n 30 "$MY_HOME/install-db.log" >&2; die "mariadb-install-db failed"; }
  fi

  if ! ours_running; then
    log "starting on 127.0.0.1:$MY_PORT (log $MY_LOG)"
    rm -f "$MY_PID"
    setsid "$mariadbd" --defaults-file="$MY_CNF" </dev/null >>"$MY_HOME/mariadbd.out" 2>&1 &
    local launcher=$!
    local end=$(( $(date +%s) + 120 ))
    until mariadb-admin --defaults-file="$MY_CNF" -u root --connect-timeout=2 ping >/dev/null 2>&1; do
      if ! kill -0 "$launcher" 2>/dev/null; then
        tail -n 30 "$MY_LOG" >&2 || true
        die "mariadbd exited during startup"
      fi
      (( $(date +%s) < end )) || { tail -n 30 "$MY_LOG" >&2 || true; die "mariadbd not answering after 120s"; }
      sleep 0.2
    done
    wait_port 127.0.0.1 "$MY_PORT" 30 || die "mariadbd answers on its socket but not on 127.0.0.1:$MY_PORT"
  else
    log "already running (pid $(cat "$MY_PID")); ensuring user and database"
  fi

  root_sql <<EOF || die "creating user/database failed"
CREATE DATABASE IF NOT EXISTS \`$MY_DB\`;
CREATE USER IF NOT EXISTS '$MY_USER'@'%' IDENTIFIED BY '$MY_PASS';
CREATE USER IF NOT EXISTS '$MY_USER'@'127.0.0.1' IDENTIFIED BY '$MY_PASS';
CREATE USER IF NOT EXISTS '$MY_USER'@'localhost' IDENTIFIED BY '$MY_PASS';
ALTER USER '$MY_USER'@'%' IDENTIFIED BY '$MY_PASS';
ALTER USER '$MY_USER'@'127.0.0.1' IDENTIFIED BY '$MY_PASS';
ALTER USER '$MY_USER'@'localhost' IDENTIFIED BY '$MY_PASS';
GRANT ALL PRIVILEGES ON *.* TO '$MY_USER'@'%' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '$MY_USER'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '$MY_USER'@'localhost' WITH GRANT OPTION;
FLUSH PRIVILEGES;
EOF
  wait_cmd 15 creds_ok || die "server is up but $MY_USER cannot log in over TCP"
  log "ready at 127.0.0.1:$MY_PORT in $(elapsed "$t0")"
}

cmd_stop() {
  if ours_running; then
    log "stopping (pid $(cat "$MY_PID"))"
    stop_pidfile "$MY_PID" 60 "$MY_CNF"
    log "stopped"
  else
    rm -f "$MY_PID"
    log "not running (nothing to stop)"
  fi
}

cmd_status() {
  if creds_ok; then
    log "running on 127.0.0.1:$MY_PORT"
  else
    log "not running"
    return 1
  fi
}

cmd_env() {
  printf "export VIGIL_TEST_MYSQL_DSN='%s'\n" "$MY_DSN"
}

case "${1:-}" in
  start | stop | fetch) lock_service "${BASH_SOURCE[0]}" "$@" ;;
esac
case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  packages) echo "mariadb-server mariadb-client" ;;
  *) echo "usage: $0 start|stop|status|env|packages" >&2; exit 2 ;;
esac
