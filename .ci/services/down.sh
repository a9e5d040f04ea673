#!/usr/bin/env bash
# Stop every service of this folder (see service_names in lib.sh), in
# parallel. Services that are not running are skipped; data stays in
# $VIGIL_SERVICES_DIR for the next up.sh.
# Exits non-zero only if a running service could not be stopped.
set -euo pipefail
SVC_NAME=down
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HERE="$SERVICES_LIB_DIR"
T0=$(now_ms)
mapfile -t services < <(service_names)
declare -A svc_of=()
for svc in "${services[@]}"; do
  bash "$HERE/$svc.sh" stop &
  svc_of[$!]=$svc
done
failed=()
for p in "${!svc_of[@]}"; do
  wait "$p" || failed+=("${svc_of[$p]}")
done
if (( ${#failed[@]} )); then
  log "ERROR: could not stop: ${failed[*]}"
  exit 1
fi
log "all services stopped in $(elapsed "$T0")"
