#!/usr/bin/env bash
# Shared helpers for .ci/services/*.sh. Source it; do not execute it.
#   VIGIL_SERVICES_DIR  state: data folders, logs, pid files (default /tmp/vigil-services)
#   VIGIL_CACHE_DIR     downloads (default $HOME/.cache/vigil)
set -euo pipefail

VIGIL_SERVICES_DIR="${VIGIL_SERVICES_DIR:-/tmp/vigil-services}"
VIGIL_CACHE_DIR="${VIGIL_CACHE_DIR:-${HOME:-/root}/.cache/vigil}"
export VIGIL_SERVICES_DIR VIGIL_CACHE_DIR
mkdir -p "$VIGIL_SERVICES_DIR" "$VIGIL_CACHE_DIR"
# The postgres and mysql OS users must be able to reach their folders in it.
if [[ $(id -u) -eq 0 ]]; then chmod o+x "$VIGIL_SERVICES_DIR" 2>/dev/null || true; fi

# shellcheck disable=SC2034  # used by the scripts that source this file
SERVICES_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SVC_NAME="${SVC_NAME:-services}"

log()  { printf '%s: %s\n' "$SVC_NAME" "$*" >&2; }
die()  { printf '%s: ERROR: %s\n' "$SVC_NAME" "$*" >&2; exit 1; }

# now_ms: milliseconds since epoch (for timings).
now_ms() { date +%s%3N; }
# elapsed START_MS -> "1.234s"
elapsed() { local d=$(( $(now_ms) - $1 )); printf '%d.%03ds' $((d / 1000)) $((d % 1000)); }

# port_open HOST PORT: true if something accepts TCP connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_port HOST PORT SECONDS: wait until HOST:PORT accepts connections.
wait_port() {
  local host="$1" port="$2" secs="$3" end
  end=$(( $(date +%s) + secs ))
  until port_open "$host" "$port"; do
    if (( $(date +%s) >= end )); then
      log "port $host:$port not open after ${secs}s"
      return 1
    fi
    sleep 0.2
  done
}

# wait_cmd SECONDS CMD...: retry CMD until it succeeds or SECONDS elapse.
wait_cmd() {
  local secs="$1" end; shift
  end=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    if (( $(date +%s) >= end )); then return 1; fi
    sleep 0.3
  done
}

# pid_alive PIDFILE [PATTERN]: true if the pid file names a live process
# (whose command line contains PATTERN, so a stale file whose pid was reused
# by another program does not count).
pid_alive() {
  local f="$1" pat="${2:-}" pid cmdline
  [[ -s "$f" ]] || return 1
  pid="$(tr -dc '0-9' <"$f")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  [[ -z "$pat" ]] && return 0
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *"$pat"* ]]
}

# lock_service SCRIPT ARGS...: re-run SCRIPT under an exclusive per-service
# lock (flock), so that concurrent start/stop calls from tests are
# serialized. Daemons do not inherit the lock (flock -o).
lock_service() {
  local var="VIGIL_LOCKED_${SVC_NAME}"
  [[ -n "${!var:-}" ]] && return 0
  command -v flock >/dev/null || return 0
  export "$var=1"
  exec flock -o -w 600 "$VIGIL_SERVICES_DIR/.$SVC_NAME.lock" bash "$@"
}

# stop_pidfile PIDFILE SECONDS [PATTERN]: SIGTERM, wait up to SECONDS, then
# SIGKILL.
stop_pidfile() {
  local f="$1" secs="${2:-30}" pat="${3:-}" pid end
  if ! pid_alive "$f" "$pat"; then rm -f "$f"; return 0; fi
  pid="$(tr -dc '0-9' <"$f")"
  kill -TERM "$pid" 2>/dev/null || true
  end=$(( $(date +%s) + secs ))
  while kill -0 "$pid" 2>/dev/null; do
    if (( $(date +%s) >= end )); then
      log "pid $pid still alive after ${secs}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$f"
}

# service_names: the services in this folder, one name per line, sorted.
# Every *.sh here is a service script except lib.sh and the drivers
# (up.sh, down.sh, run.sh). VIGIL_SERVICES="a b" restricts the set.
# A service script implements `start`, `stop` and `env` (it may also
# implement `status`, `fetch`, and `packages`, which prints the Debian
# packages it needs so up.sh can install them all in one apt run).
# `start` exit code 3 means "unavailable here" (for example its download
# source cannot be reached): the script prints "<name>: SKIP: <reason>",
# and up.sh writes VIGIL_TEST_<NAME>_SKIP_REASON into env.sh instead of
# failing; tests that need it then fail under VIGIL_REQUIRE_SERVICES=1
# with that reason.
service_names() {
  local f n
  if [[ -n "${VIGIL_SERVICES:-}" ]]; then
    for n in $VIGIL_SERVICES; do
      [[ -f "$SERVICES_LIB_DIR/$n.sh" ]] || die "VIGIL_SERVICES names $n, but $SERVICES_LIB_DIR/$n.sh does not exist"
      echo "$n"
    done
    return 0
  fi
  for f in "$SERVICES_LIB_DIR"/*.sh; do
    n="$(basename "$f" .sh)"
    case "$n" in lib | up | down | run) continue ;; esac
    echo "$n"
  done
}

# apt_missing PKG...: the packages that are not installed yet.
apt_missing() {
  local p st
  for p in "$@"; do
    st="$(dpkg -s "$p" 2>/dev/null || true)"
    [[ "$st" == *"Status: install ok installed"* ]] || echo "$p"
  done
}

# APT_LOCK_TIMEOUT: seconds apt-get waits for the dpkg and lists locks held
# by another apt or dpkg (an unattended upgrade, another engineer's
# install) instead of failing at once.
APT_LOCK_TIMEOUT="${VIGIL_APT_LOCK_TIMEOUT:-600}"

# apt_install PKG...: install the packages that are not installed yet.
# Runs `apt-get update` at most once per process (and its children, through
# VIGIL_APT_UPDATED), and only when something is missing. Calls from
# service scripts running in parallel are serialised by an flock, so the
# policy-rc.d guard of one is not removed under another's install; apt
# itself waits up to APT_LOCK_TIMEOUT seconds for locks held by others.
# Services are never started by the package scripts (policy-rc.d).
apt_install() {
  local missing=()
  mapfile -t missing < <(apt_missing "$@")
  (( ${#missing[@]} )) || return 0
  command -v apt-get >/dev/null || die "apt-get not found; cannot install: ${missing[*]}"
  [[ $(id -u) -eq 0 ]] || die "must be root to install: ${missing[*]}"
  if command -v flock >/dev/null && [[ -z "${VIGIL_APT_LOCKED:-}" ]]; then
    local fd
    exec {fd}>>"$VIGIL_SERVICES_DIR/.apt.lock"
    flock -w "$APT_LOCK_TIMEOUT" "$fd" || die "waited ${APT_LOCK_TIMEOUT}s for another service script's apt-get"
    VIGIL_APT_LOCKED=1 apt_install_locked "$@"
    local rc=$?
    exec {fd}>&-
    return $rc
  fi
  apt_install_locked "$@"
}

apt_install_locked() {
  local missing=()
  mapfile -t missing < <(apt_missing "$@") # again: a parallel script may have installed them
  (( ${#missing[@]} )) || return 0
  local t0; t0=$(now_ms)
  local lockopt=(-o "DPkg::Lock::Timeout=$APT_LOCK_TIMEOUT")
  export DEBIAN_FRONTEND=noninteractive
  if [[ -z "${VIGIL_APT_UPDATED:-}" ]]; then
    log "apt-get update"
    apt-get "${lockopt[@]}" update -qq >/dev/null || die "apt-get update failed"
    export VIGIL_APT_UPDATED=1
  fi
  # Keep package post-install scripts from starting the distro's own daemons.
  local made_policy=0 policy="${VIGIL_POLICY_RC_D:-/usr/sbin/policy-rc.d}"
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
  fi
  log "apt-get install ${missing[*]}"
  local rc=0
  apt-get "${lockopt[@]}" install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}" </dev/null >"$VIGIL_SERVICES_DIR/apt-$SVC_NAME.log" 2>&1 || rc=$?
  if (( made_policy )); then rm -f "$policy"; fi
  if (( rc != 0 )); then
    tail -n 30 "$VIGIL_SERVICES_DIR/apt-$SVC_NAME.log" >&2 || true
    die "apt-get install ${missing[*]} failed (exit $rc)"
  fi
  log "installed ${missing[*]} in $(elapsed "$t0")"
}
