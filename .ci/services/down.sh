#!/usr/bin/env bash
# Stop every service that up.sh started. Services that are not running are
# skipped; data stays in $VIGIL_SERVICES_DIR for the next up.sh.
# Exits non-zero only if a running service could not be stopped.
set -euo pipefail
SVC_NAME=down
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HERE="$SERVICES_LIB_DIR"
T0=$(now_ms)
failed=()
for svc in sshd kafka clickhouse mariadb postgres; do
  bash "$HERE/$svc.sh" stop || failed+=("$svc")
done
if (( ${#failed[@]} )); then
  log "ERROR: could not stop: ${failed[*]}"
  exit 1
fi
log "all services stopped in $(elapsed "$T0")"
