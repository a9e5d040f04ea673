#!/usr/bin/env bash
# SoftHSM2 (Debian package softhsm2), a real PKCS#11 module, for the pkcs11
# seal tests. It is a library, not a daemon: "start" installs it, writes a
# private softhsm2.conf and initialises a token; "stop" leaves the token.
#   usage: softhsm.sh start|stop|status|env|packages
# Tokens live under $VIGIL_SERVICES_DIR/softhsm/tokens. The pkcs11 seal is
# built with cgo, so the C toolchain is installed here too.
set -euo pipefail
SVC_NAME=softhsm
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HSM_HOME="$VIGIL_SERVICES_DIR/softhsm"
HSM_CONF="$HSM_HOME/softhsm2.conf"
HSM_TOKEN=vigil-test
HSM_PIN=4321
HSM_SO_PIN=87654321

hsm_lib() {
  local p
  for p in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so; do
    [[ -f "$p" ]] && { echo "$p"; return 0; }
  done
  return 1
}

token_ok() {
  [[ -f "$HSM_CONF" ]] || return 1
  SOFTHSM2_CONF="$HSM_CONF" softhsm2-util --show-slots 2>/dev/null | grep -q "Label:.*$HSM_TOKEN"
}

cmd_start() {
  local t0; t0=$(now_ms)
  apt_install softhsm2 gcc libc6-dev
  hsm_lib >/dev/null || die "libsofthsm2.so not found after installing softhsm2"
  mkdir -p "$HSM_HOME/tokens"
  cat >"$HSM_CONF" <<CONF
# Written by .ci/services/softhsm.sh.
directories.tokendir = $HSM_HOME/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
  if token_ok; then
    log "token $HSM_TOKEN already initialised"
  else
    SOFTHSM2_CONF="$HSM_CONF" softhsm2-util --init-token --free --label "$HSM_TOKEN" \
      --pin "$HSM_PIN" --so-pin "$HSM_SO_PIN" >/dev/null || die "softhsm2-util --init-token failed"
    log "initialised token $HSM_TOKEN"
  fi
  log "ready ($(hsm_lib)) in $(elapsed "$t0")"
}

cmd_stop() { log "nothing to stop (SoftHSM2 is a library; tokens stay in $HSM_HOME)"; }

cmd_status() {
  if token_ok; then log "token $HSM_TOKEN ready"; else log "not set up"; return 1; fi
}

cmd_env() {
  printf "export SOFTHSM2_CONF='%s'\n" "$HSM_CONF"
  printf "export VIGIL_TEST_PKCS11_LIB='%s'\n" "$(hsm_lib || echo /usr/lib/softhsm/libsofthsm2.so)"
  printf "export VIGIL_TEST_PKCS11_TOKEN='%s'\n" "$HSM_TOKEN"
  printf "export VIGIL_TEST_PKCS11_PIN='%s'\n" "$HSM_PIN"
}

case "${1:-}" in
  start | stop) lock_service "${BASH_SOURCE[0]}" "$@" ;;
esac
case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  packages) echo "softhsm2 gcc libc6-dev" ;;
  *) echo "usage: $0 start|stop|status|env|packages" >&2; exit 2 ;;
esac
