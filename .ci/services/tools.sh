#!/usr/bin/env bash
# Command-line tools the tests run (through core/testsvc.Tool): openssl
# (PKI cross-checks), pdftotext from poppler-utils (report read-back),
# kcat (an independent Kafka client), chromium + chromium-driver (the
# auditor's workbench is tested in a real headless browser). Not a daemon: "start" installs them,
# "stop" does nothing.
#   usage: tools.sh start|stop|status|env|packages
set -euo pipefail
SVC_NAME=tools
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PKGS=(openssl poppler-utils kcat chromium chromium-driver)
BINS=(openssl pdftotext kcat chromium chromedriver)

cmd_status() {
  local b missing=()
  for b in "${BINS[@]}"; do command -v "$b" >/dev/null || missing+=("$b"); done
  if (( ${#missing[@]} )); then log "missing: ${missing[*]}"; return 1; fi
  log "installed: ${BINS[*]}"
}

case "${1:-}" in
  start) apt_install "${PKGS[@]}"; cmd_status ;;
  stop) ;;
  status) cmd_status ;;
  env) ;;
  packages) echo "${PKGS[*]}" ;;
  *) echo "usage: $0 start|stop|status|env|packages" >&2; exit 2 ;;
esac
