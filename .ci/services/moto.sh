#!/usr/bin/env bash
# moto_server (PyPI "moto[server]"): AWS STS and IAM for the AWS auth method
# tests, and S3 for storage snapshot tests.
#   usage: moto.sh start|stop|status|env|packages
# Listens on 127.0.0.1:15000. Installed into a virtualenv under
# $VIGIL_CACHE_DIR/moto-venv-<version>; state (pid, log) under
# $VIGIL_SERVICES_DIR/moto. moto keeps everything in memory: a restart
# forgets users, keys and buckets. It accepts any access key; STS
# GetCallerIdentity answers with the IAM user owning the key (or its
# default identity for an unknown key).
#   exit 3 (with "moto: SKIP: reason"): PyPI cannot be reached.
set -euo pipefail
SVC_NAME=moto
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MOTO_VERSION=5.2.5
MOTO_PORT=15000
MOTO_REGION=us-east-1
MOTO_VENV="$VIGIL_CACHE_DIR/moto-venv-$MOTO_VERSION"
MOTO_HOME="$VIGIL_SERVICES_DIR/moto"
MOTO_PID="$MOTO_HOME/moto.pid"
MOTO_LOG="$MOTO_HOME/moto.log"

ours_running() { pid_alive "$MOTO_PID" moto_server; }

# moto_ok: does the port answer an STS GetCallerIdentity call?
moto_ok() {
  command -v curl >/dev/null || { port_open 127.0.0.1 "$MOTO_PORT"; return; }
  # moto routes by the service named in the (unchecked) signature scope.
  curl -fsS -m 3 -H "Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/$MOTO_REGION/sts/aws4_request, SignedHeaders=host, Signature=0" \
    -d 'Action=GetCallerIdentity&Version=2011-06-15' "http://127.0.0.1:$MOTO_PORT/" 2>/dev/null | grep -q '<Arn>'
}

cmd_packages() { echo python3 python3-venv curl; }

install() {
  [[ -f "$MOTO_VENV/.installed" && -x "$MOTO_VENV/bin/moto_server" ]] && return 0
  apt_install python3 python3-venv curl
  log "installing moto[server]==$MOTO_VERSION into $MOTO_VENV"
  rm -rf "$MOTO_VENV"
  python3 -m venv "$MOTO_VENV" || die "python3 -m venv failed"
  if ! "$MOTO_VENV/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION" \
    >"$VIGIL_SERVICES_DIR/moto-pip.log" 2>&1; then
    tail -n 20 "$VIGIL_SERVICES_DIR/moto-pip.log" >&2
    rm -rf "$MOTO_VENV"
    if grep -qiE 'connection|resolve|timed out|unreachable' "$VIGIL_SERVICES_DIR/moto-pip.log"; then
      echo "moto: SKIP: PyPI cannot be reached to install moto[server]"
      exit 3
    fi
    die "pip install moto[server]==$MOTO_VERSION failed"
  fi
  touch "$MOTO_VENV/.installed"
}

cmd_start() {
  local t0
  t0=$(now_ms)
  if ours_running && moto_ok; then
    log "already running on 127.0.0.1:$MOTO_PORT, leaving it alone"
    return 0
  fi
  install
  if ! ours_running && port_open 127.0.0.1 "$MOTO_PORT"; then
    die "port $MOTO_PORT is taken by another program; stop it first"
  fi
  mkdir -p "$MOTO_HOME"
  ours_running && stop_pidfile "$MOTO_PID" 30 moto_server
  log "starting on 127.0.0.1:$MOTO_PORT (log $MOTO_LOG)"
  nohup "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$MOTO_LOG" 2>&1 </dev/null &
  echo $! >"$MOTO_PID"
  wait_cmd 60 moto_ok || { tail -n 30 "$MOTO_LOG" >&2; die "moto_server did not answer"; }
  log "ready at 127.0.0.1:$MOTO_PORT in $(elapsed "$t0")"
}

cmd_stop() {
  if ours_running; then
    log "stopping"
    stop_pidfile "$MOTO_PID" 30 moto_server
    log "stopped"
  else
    log "not running (nothing to stop)"
  fi
}

cmd_status() {
  if ours_running && moto_ok; then
    log "running on 127.0.0.1:$MOTO_PORT"
  else
    log "not running"
    return 1
  fi
}

cmd_env() {
  printf "export VIGIL_TEST_MOTO_ENDPOINT='http://127.0.0.1:%s'\n" "$MOTO_PORT"
  printf "export VIGIL_TEST_MOTO_REGION='%s'\n" "$MOTO_REGION"
}

case "${1:-}" in
  start | stop) lock_service "${BASH_SOURCE[0]}" "$@" ;;
esac
case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  packages) cmd_packages ;;
  *) echo "usage: $0 start|stop|status|env|packages" >&2; exit 2 ;;
esac
