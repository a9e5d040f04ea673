#!/usr/bin/env bash
# Install and start every external service the Vigil test suite needs, then
# write $VIGIL_SERVICES_DIR/env.sh with the connection settings (source it).
# Safe to run again: running services are left alone, installed packages are
# not reinstalled, downloaded jars are reused.
#
# The services are the *.sh scripts beside this one (see service_names in
# lib.sh; VIGIL_SERVICES="a b" picks some). Adding one is adding a script
# with start|stop|env (and optionally packages): nothing here changes.
#   1. the Debian packages every script lists (`packages`) are installed in
#      one apt-get run;
#   2. every service starts in parallel, each logging to
#      $VIGIL_SERVICES_DIR/start-<name>.log;
#   3. the first one that fails stops the wait: its log is printed, the
#      starts still running are ended, and up.sh exits non-zero (callers
#      such as run.sh then stop whatever did start);
#   4. a service that is unavailable here (start exit 3) is not fatal:
#      env.sh carries VIGIL_TEST_<NAME>_SKIP_REASON instead of its settings.
set -euo pipefail
SVC_NAME=up
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HERE="$SERVICES_LIB_DIR"
T0=$(now_ms)
log "state dir $VIGIL_SERVICES_DIR, cache dir $VIGIL_CACHE_DIR"

# shq STRING: STRING as one single-quoted shell word.
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

mapfile -t services < <(service_names)
(( ${#services[@]} )) || die "no service scripts in $HERE"

# 1. One apt-get run for the packages of every service.
pkgs=()
for svc in "${services[@]}"; do
  out="$(bash "$HERE/$svc.sh" packages 2>/dev/null)" || continue
  # shellcheck disable=SC2206  # a list of package names
  pkgs+=($out)
done
if (( ${#pkgs[@]} )); then
  t=$(now_ms)
  apt_install "${pkgs[@]}"
  log "packages ready in $(elapsed "$t")"
fi

# 2. Start every service in parallel.
declare -A svc_of=() reason=()
# Each start runs in its own process group (setsid), so ending it ends the
# helpers it runs (flock, apt-get, mvn) too.
SETSID=()
if command -v setsid >/dev/null; then SETSID=(setsid); fi
for svc in "${services[@]}"; do
  "${SETSID[@]}" bash "$HERE/$svc.sh" start </dev/null >"$VIGIL_SERVICES_DIR/start-$svc.log" 2>&1 &
  svc_of[$!]=$svc
done
log "starting ${services[*]}"

# stop_starting: end the starts still running (their scripts, not the
# daemons they may have launched: stopping those is down.sh's job).
stop_starting() {
  local p
  for p in "${!svc_of[@]}"; do
    if (( ${#SETSID[@]} )); then kill -TERM -- "-$p" 2>/dev/null || true; fi
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${!svc_of[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap 'log "interrupted: ending the starts still running"; stop_starting; exit 130' INT TERM

# 3. Wait; the first failure ends the wait.
while (( ${#svc_of[@]} )); do
  rc=0
  wait -n -p done_pid "${!svc_of[@]}" || rc=$?
  svc="${svc_of[$done_pid]}"
  unset "svc_of[$done_pid]"
  case $rc in
    0) log "$svc ready" ;;
    3)
      reason[$svc]="$(sed -n "s/^$svc: SKIP: //p" "$VIGIL_SERVICES_DIR/start-$svc.log" | head -n 1)"
      log "$svc is unavailable here, its tests will fail (or skip outside make test): ${reason[$svc]:-no reason given}"
      ;;
    *)
      printf '%s: ---- %s start log (%s) ----\n' "$SVC_NAME" "$svc" "$VIGIL_SERVICES_DIR/start-$svc.log" >&2
      tail -n 60 "$VIGIL_SERVICES_DIR/start-$svc.log" >&2 || true
      printf '%s: ---- end of %s start log ----\n' "$SVC_NAME" "$svc" >&2
      stop_starting
      die "$svc failed to start (exit $rc); its state and logs are in $VIGIL_SERVICES_DIR/$svc/"
      ;;
  esac
done
trap - INT TERM
for svc in "${services[@]}"; do
  sed "s/^/  /" "$VIGIL_SERVICES_DIR/start-$svc.log" >&2
done

# 4. env.sh
env_file="$VIGIL_SERVICES_DIR/env.sh"
{
  echo "# Written by .ci/services/up.sh at $(date -u '+%F %T') UTC; source it."
  echo "export VIGIL_SERVICES_DIR=$(shq "$VIGIL_SERVICES_DIR")"
  echo "export VIGIL_CACHE_DIR=$(shq "$VIGIL_CACHE_DIR")"
  for svc in "${services[@]}"; do
    if [[ -v "reason[$svc]" ]]; then
      var="${svc^^}"
      var="${var//[^A-Z0-9_]/_}"
      echo "export VIGIL_TEST_${var}_SKIP_REASON=$(shq "${reason[$svc]:-$svc could not be started here}")"
    else
      bash "$HERE/$svc.sh" env
    fi
  done
  echo "export VIGIL_REQUIRE_SERVICES=1"
} >"$env_file.tmp"
mv -f "$env_file.tmp" "$env_file"

log "wrote $env_file:"
sed 's/^/  /' "$env_file" >&2
log "all services up in $(elapsed "$T0")"
