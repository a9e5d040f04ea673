#!/usr/bin/env bash
# local-kms (github.com/nsmithuk/local-kms), a real AWS KMS-compatible server,
# for the awskms seal tests.
#   usage: localkms.sh start|stop|status|env|packages
# Built from the Go module proxy with `go install` into $VIGIL_CACHE_DIR;
# listens on 127.0.0.1:14566, data under $VIGIL_SERVICES_DIR/localkms.
# Keys are created by the tests through the KMS API (CreateKey).
set -euo pipefail
SVC_NAME=localkms
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LKMS_VERSION="v0.0.0-20260228092603-2a5e92d09ab6"
LKMS_PORT=14566
LKMS_REGION=us-east-1
LKMS_ACCOUNT=111122223333
LKMS_HOME="$VIGIL_SERVICES_DIR/localkms"
LKMS_BIN_DIR="$VIGIL_CACHE_DIR/localkms-$LKMS_VERSION"
LKMS_BIN="$LKMS_BIN_DIR/local-kms"
LKMS_PID="$LKMS_HOME/local-kms.pid"
LKMS_LOG="$LKMS_HOME/local-kms.log"

ours_running() { pid_alive "$LKMS_PID" "local-kms"; }

# kms_ok: does the port answer a KMS ListKeys call?
kms_ok() {
  command -v curl >/dev/null || { port_open 127.0.0.1 "$LKMS_PORT"; return; }
  curl -fsS -m 3 -X POST "http://127.0.0.1:$LKMS_PORT/" \
    -H 'Content-Type: application/x-amz-json-1.1' -H 'X-Amz-Target: TrentService.ListKeys' \
    -d '{}' >/dev/null 2>&1
}

build() {
  [[ -x "$LKMS_BIN" ]] && return 0
  command -v go >/dev/null || die "go is not installed; cannot build local-kms"
  local t0; t0=$(now_ms)
  log "go install github.com/nsmithuk/local-kms@$LKMS_VERSION"
  mkdir -p "$LKMS_BIN_DIR"
  # Outside any module, so the project's go.mod is not touched.
  (cd "$LKMS_BIN_DIR" && GOBIN="$LKMS_BIN_DIR" GOFLAGS=-mod=mod GO111MODULE=on \
    go install "github.com/nsmithuk/local-kms@$LKMS_VERSION") >"$LKMS_BIN_DIR/build.log" 2>&1 \
    || { tail -n 20 "$LKMS_BIN_DIR/build.log" >&2; die "building local-kms failed"; }
  log "built in $(elapsed "$t0")"
}

cmd_start() {
  local t0; t0=$(now_ms)
  if ours_running && kms_ok; then
    log "already running (pid $(cat "$LKMS_PID")) on 127.0.0.1:$LKMS_PORT"
    return 0
  fi
  if ! ours_running && port_open 127.0.0.1 "$LKMS_PORT"; then
    die "port $LKMS_PORT is taken by another program; stop it first"
  fi
  build
  mkdir -p "$LKMS_HOME/data"
  rm -f "$LKMS_PID"
  log "starting on 127.0.0.1:$LKMS_PORT (log $LKMS_LOG)"
  PORT="$LKMS_PORT" KMS_REGION="$LKMS_REGION" KMS_ACCOUNT_ID="$LKMS_ACCOUNT" \
    KMS_DATA_PATH="$LKMS_HOME/data" KMS_SEED_PATH="$LKMS_HOME/no-seed.yaml" \
    setsid "$LKMS_BIN" </dev/null >>"$LKMS_LOG" 2>&1 &
  echo $! >"$LKMS_PID"
  wait_port 127.0.0.1 "$LKMS_PORT" 30 || { tail -n 20 "$LKMS_LOG" >&2; die "local-kms did not start"; }
  wait_cmd 15 kms_ok || { tail -n 20 "$LKMS_LOG" >&2; die "local-kms does not answer KMS calls"; }
  log "ready at http://127.0.0.1:$LKMS_PORT in $(elapsed "$t0")"
}

cmd_stop() {
  if ours_running; then
    log "stopping (pid $(cat "$LKMS_PID"))"
    stop_pidfile "$LKMS_PID" 15 "local-kms"
    log "stopped"
  else
    rm -f "$LKMS_PID"
    log "not running (nothing to stop)"
  fi
}

cmd_status() {
  if ours_running && kms_ok; then log "running on 127.0.0.1:$LKMS_PORT"; else log "not running"; return 1; fi
}

cmd_env() {
  printf "export VIGIL_TEST_AWSKMS_ENDPOINT='http://127.0.0.1:%s'\n" "$LKMS_PORT"
  printf "export VIGIL_TEST_AWSKMS_REGION='%s'\n" "$LKMS_REGION"
}

case "${1:-}" in
  start | stop) lock_service "${BASH_SOURCE[0]}" "$@" ;;
esac
case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  packages) echo "" ;;
  *) echo "usage: $0 start|stop|status|env|packages" >&2; exit 2 ;;
esac
