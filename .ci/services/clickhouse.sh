#!/usr/bin/env bash
# Private ClickHouse server (Debian 12's clickhouse-server 18.16) for the
# Vigil test suite.
#   usage: clickhouse.sh start|stop|status|env|packages
# Native TCP 127.0.0.1:19000, HTTP 127.0.0.1:18123, no interserver port.
# Config, data, tmp and logs live under $VIGIL_SERVICES_DIR/clickhouse and
# survive stop/start. User "default", no password, from loopback only.
set -euo pipefail
SVC_NAME=clickhouse
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"

CH_TCP_PORT=19000
CH_HTTP_PORT=18123
CH_SERVER=/usr/sbin/clickhouse-server

CH_HOME="$VIGIL_SERVICES_DIR/clickhouse"
CH_CONFIG="$CH_HOME/config.xml"
CH_USERS="$CH_HOME/users.xml"
CH_PID="$CH_HOME/clickhouse.pid"
CH_LOGDIR="$CH_HOME/log"

client_ok() {
  command -v clickhouse-client >/dev/null || return 1
  local out
  out="$(clickhouse-client --host 127.0.0.1 --port "$CH_TCP_PORT" -q 'SELECT 1' 2>/dev/null)" || return 1
  [[ "$out" == 1 ]]
}

ours_running() { pid_alive "$CH_PID" "$CH_CONFIG"; }

# ClickHouse 18.16 ignores unknown keys but exits at once ("Not found:
# mark_cache_size") without mark_cache_size, which has no default. The rest
# mirrors the Debian config minus clusters, ZooKeeper, graphite, query_log
# and dictionaries; the users.xml needs profiles and quotas for the user's
# <profile>/<quota> references. interserver_http_port is left out, so no
# interserver listener is opened.
write_config() {
  cat >"$CH_CONFIG" <<EOF
<?xml version="1.0"?>
<!-- Written by .ci/services/clickhouse.sh on every start. -->
<yandex>
    <logger>
        <level>information</level>
        <log>$CH_LOGDIR/clickhouse-server.log</log>
        <errorlog>$CH_LOGDIR/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <http_port>$CH_HTTP_PORT</http_port>
    <tcp_port>$CH_TCP_PORT</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>$CH_HOME/data/</path>
    <tmp_path>$CH_HOME/tmp/</tmp_path>
    <user_files_path>$CH_HOME/user_files/</user_files_path>
    <format_schema_path>$CH_HOME/format_schemas/</format_schema_path>
    <users_config>$CH_USERS</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
    <max_table_size_to_drop>0</max_table_size_to_drop>
    <max_partition_size_to_drop>0</max_partition_size_to_drop>
</yandex>
EOF
  cat >"$CH_USERS" <<'EOF'
<?xml version="1.0"?>
<!-- Written by .ci/services/clickhouse.sh on every start. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>2000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks replace="replace">
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
}

cmd_start() {
  local t0
  t0=$(now_ms)
  if ours_running && client_ok; then
    log "already running (pid $(cat "$CH_PID")) on 127.0.0.1:$CH_TCP_PORT"
    return 0
  fi
  if ! ours_running && port_open 127.0.0.1 "$CH_TCP_PORT"; then
    if client_ok; then
      log "something else already answers on 127.0.0.1:$CH_TCP_PORT, leaving it alone (stop/start will not control it)"
      return 0
    fi
    die "port $CH_TCP_PORT is taken by something that is not a ClickHouse server; stop it first"
  fi
  apt_install clickhouse-server clickhouse-client
  [[ -x "$CH_SERVER" ]] || die "$CH_SERVER not found"

  mkdir -p "$CH_HOME"/{data,tmp,user_files,format_schemas} "$CH_LOGDIR"
  write_config

  if ! ours_running; then
    log "starting on 127.0.0.1:$CH_TCP_PORT (http $CH_HTTP_PORT, logs $CH_LOGDIR)"
    rm -f "$CH_PID"
    # --daemon forks and detaches; the server writes and removes the pid file.
    (cd "$CH_HOME" && "$CH_SERVER" --config-file="$CH_CONFIG" --daemon --pid-file="$CH_PID" \
      </dev/null >>"$CH_LOGDIR/launcher.out" 2>&1) \
      || { tail -n 20 "$CH_LOGDIR/launcher.out" >&2 || true; die "clickhouse-server failed to launch"; }
  fi
  local started end
  started=$(date +%s); end=$(( started + 120 ))
  until client_ok; do
    # The daemon writes its pid file at once; no live pid after 15 s = it died.
    if (( $(date +%s) >= end )) || { (( $(date +%s) >= started + 15 )) && ! ours_running; }; then
      tail -n 30 "$CH_LOGDIR/clickhouse-server.err.log" >&2 2>/dev/null || true
      die "clickhouse-server did not answer on 127.0.0.1:$CH_TCP_PORT (see $CH_LOGDIR)"
    fi
    sleep 0.2
  done
  log "ready at 127.0.0.1:$CH_TCP_PORT (pid $(cat "$CH_PID")) in $(elapsed "$t0")"
}

cmd_stop() {
  if ours_running; then
    local t0; t0=$(now_ms)
    log "stopping (pid $(cat "$CH_PID"))"
    stop_pidfile "$CH_PID" 30 "$CH_CONFIG"
    local end=$(( $(date +%s) + 10 ))
    while port_open 127.0.0.1 "$CH_TCP_PORT" && (( $(date +%s) < end )); do sleep 0.2; done
    log "stopped in $(elapsed "$t0")"
  else
    rm -f "$CH_PID"
    log "not running (nothing to stop)"
  fi
}

cmd_status() {
  if client_ok; then
    log "running on 127.0.0.1:$CH_TCP_PORT"
  else
    log "not running"
    return 1
  fi
}

cmd_env() {
  echo "export VIGIL_TEST_CLICKHOUSE_ADDR=127.0.0.1:$CH_TCP_PORT"
  echo "export VIGIL_TEST_CLICKHOUSE_CTL=$SELF"
}

case "${1:-}" in
  start | stop | fetch) lock_service "${BASH_SOURCE[0]}" "$@" ;;
esac
case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  packages) echo "clickhouse-server clickhouse-client" ;;
  *) echo "usage: $0 start|stop|status|env|packages" >&2; exit 2 ;;
esac
