#!/usr/bin/env bash
# A private rsyslog (Debian's rsyslog + rsyslog-gnutls) receiving syslog for
# the Vigil syslog audit stream tests.
#   usage: rsyslog.sh start|stop|status|env|packages
# Listens on 127.0.0.1:16514 (RFC 5425: TLS, octet-counted frames) and
# 127.0.0.1:16601 (plain TCP, RFC 6587 octet counting or LF framing), with
# a CA and server certificate made here (openssl). Each listener writes
# every message it receives, as rsyslog parsed it (RFC 5424: severity,
# hostname, app-name, msgid, structured data and message, tab-separated,
# one per line), to $VIGIL_SERVICES_DIR/rsyslog/tls.log and tcp.log.
set -euo pipefail
SVC_NAME=rsyslog
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TLS_PORT=16514
TCP_PORT=16601
RS_HOME="$VIGIL_SERVICES_DIR/rsyslog"
RS_PID="$RS_HOME/rsyslogd.pid"
RS_CONF="$RS_HOME/rsyslog.conf"
RS_LOG="$RS_HOME/rsyslogd.log"

make_certs() {
  [[ -s "$RS_HOME/server.pem" && -s "$RS_HOME/ca.pem" ]] && return 0
  command -v openssl >/dev/null || die "openssl is needed to make the test certificates"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -subj "/CN=vigil-test-syslog-ca" \
    -keyout "$RS_HOME/ca.key" -out "$RS_HOME/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
    -keyout "$RS_HOME/server.key" -out "$RS_HOME/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$RS_HOME/ext.cnf"
  openssl x509 -req -in "$RS_HOME/server.csr" -CA "$RS_HOME/ca.pem" -CAkey "$RS_HOME/ca.key" -CAcreateserial -days 3650 \
    -extfile "$RS_HOME/ext.cnf" -out "$RS_HOME/server.pem" 2>/dev/null
  chmod 644 "$RS_HOME"/*.pem "$RS_HOME"/*.key
}

write_config() {
  mkdir -p "$RS_HOME/work"
  cat >"$RS_CONF" <<CONF
# Written by .ci/services/rsyslog.sh on every start.
global(workDirectory="$RS_HOME/work" maxMessageSize="256k"
       defaultNetstreamDriverCAFile="$RS_HOME/ca.pem"
       defaultNetstreamDriverCertFile="$RS_HOME/server.pem"
       defaultNetstreamDriverKeyFile="$RS_HOME/server.key")
module(load="imtcp" maxSessions="200")
template(name="raw" type="string" string="%syslogseverity%\t%hostname%\t%app-name%\t%msgid%\t%structured-data%\t%msg%\n")
ruleset(name="tls") { action(type="omfile" file="$RS_HOME/tls.log" template="raw" flushOnTXEnd="on" asyncWriting="off") }
ruleset(name="tcp") { action(type="omfile" file="$RS_HOME/tcp.log" template="raw" flushOnTXEnd="on" asyncWriting="off") }
input(type="imtcp" address="127.0.0.1" port="$TLS_PORT" ruleset="tls"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imtcp" address="127.0.0.1" port="$TCP_PORT" ruleset="tcp")
CONF
}

cmd_start() {
  mkdir -p "$RS_HOME"
  if pid_alive "$RS_PID" rsyslogd && port_open 127.0.0.1 "$TLS_PORT" && port_open 127.0.0.1 "$TCP_PORT"; then
    log "already running"
    return 0
  fi
  apt_install rsyslog rsyslog-gnutls openssl
  command -v rsyslogd >/dev/null || die "rsyslogd not found after installing rsyslog"
  make_certs
  write_config
  rsyslogd -N1 -f "$RS_CONF" >"$RS_LOG" 2>&1 || { cat "$RS_LOG" >&2; die "rsyslog rejects its configuration"; }
  # -n: stay in the foreground (we keep its pid in RS_PID); -i: the pid
  # file rsyslogd keeps itself (it refuses to start over a live one).
  rm -f "$RS_HOME/rsyslogd.self.pid"
  nohup rsyslogd -n -f "$RS_CONF" -i "$RS_HOME/rsyslogd.self.pid" >>"$RS_LOG" 2>&1 </dev/null &
  echo $! >"$RS_PID"
  wait_port 127.0.0.1 "$TLS_PORT" 30 && wait_port 127.0.0.1 "$TCP_PORT" 30 || { cat "$RS_LOG" >&2; die "rsyslogd did not open its ports"; }
  log "listening on 127.0.0.1:$TLS_PORT (TLS) and 127.0.0.1:$TCP_PORT (TCP)"
}

cmd_stop() { stop_pidfile "$RS_PID" 20 rsyslogd; }

cmd_status() {
  if pid_alive "$RS_PID" rsyslogd; then log "running (pid $(cat "$RS_PID"))"; else log "not running"; return 1; fi
}

cmd_env() {
  printf "export VIGIL_TEST_RSYSLOG_TLS_ADDR='127.0.0.1:%s'\n" "$TLS_PORT"
  printf "export VIGIL_TEST_RSYSLOG_TCP_ADDR='127.0.0.1:%s'\n" "$TCP_PORT"
  printf "export VIGIL_TEST_RSYSLOG_CA='%s'\n" "$RS_HOME/ca.pem"
  printf "export VIGIL_TEST_RSYSLOG_DIR='%s'\n" "$RS_HOME"
}

case "${1:-}" in
  start | stop) lock_service "${BASH_SOURCE[0]}" "$@" ;;
esac
case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  packages) echo "rsyslog rsyslog-gnutls openssl" ;;
  *) echo "usage: $0 start|stop|status|env|packages" >&2; exit 2 ;;
esac
