#!/usr/bin/env bash
# run.sh [--allow-missing] COMMAND [ARG...]: start the test services
# (up.sh), run COMMAND with their settings (env.sh) in its environment, and
# stop the services (down.sh) on every way out: COMMAND's success or
# failure, a service that fails to start half-way through up.sh, or an
# interrupt (INT, TERM, HUP) of run.sh itself. Exits with COMMAND's status,
# or non-zero when the services could not be started (or stopped).
#   --allow-missing  run COMMAND even when up.sh failed (make bench: the
#                    arms whose services are missing report themselves
#                    skipped).
# This is what `make test` and `make bench` use.
set -euo pipefail
SVC_NAME=run
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HERE="$SERVICES_LIB_DIR"

allow_missing=0
if [[ "${1:-}" == --allow-missing ]]; then allow_missing=1; shift; fi
(( $# )) || die "usage: run.sh [--allow-missing] COMMAND [ARG...]"

# Children run in their own process group (setsid) so that an interrupt
# ends all of a child's processes (go test and its test binaries), not just
# the first: a background job of a script does not see the terminal's ^C.
SETSID=()
if command -v setsid >/dev/null; then SETSID=(setsid); fi
child=""
stopped=0
# down: stop the services, once, whatever brought us here.
down() {
  local rc=$?
  (( stopped )) && return
  stopped=1
  trap - EXIT INT TERM HUP
  if [[ -n "$child" ]] && kill -0 "$child" 2>/dev/null; then
    if (( ${#SETSID[@]} )); then kill -TERM -- "-$child" 2>/dev/null || true; fi
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  bash "$HERE/down.sh" || rc=$(( rc == 0 ? 1 : rc ))
  exit "$rc"
}
trap down EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

# Started in the background and waited for, so that a signal reaches the
# trap at once instead of after the step in progress.
"${SETSID[@]}" bash "$HERE/up.sh" </dev/null &
child=$!
rc=0
wait "$child" || rc=$?
child=""
if (( rc != 0 )); then
  if (( ! allow_missing )); then
    log "the services did not start (exit $rc); stopping those that did"
    exit "$rc"
  fi
  log "the services did not all start (exit $rc); running anyway (--allow-missing)"
fi
if [[ -f "$VIGIL_SERVICES_DIR/env.sh" ]]; then
  set -a
  # shellcheck disable=SC1091
  . "$VIGIL_SERVICES_DIR/env.sh"
  set +a
fi
"${SETSID[@]}" "$@" &
child=$!
rc=0
wait "$child" || rc=$?
child=""
exit "$rc"
