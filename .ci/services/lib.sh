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

# apt_install PKG...: install the packages that are not installed yet.
# Runs `apt-get update` at most once per process (and its children, through
# VIGIL_APT_UPDATED), and only when something is missing.
# Services are never started by the package scripts (policy-rc.d).
apt_install() {
  local missing=() p st
  for p in "$@"; do
    st="$(dpkg -s "$p" 2>/dev/null || true)"
    [[ "$st" == *"Status: install ok installed"* ]] || missing+=("$p")
  done
  (( ${#missing[@]} )) || return 0
  command -v apt-get >/dev/null || die "apt-get not found; cannot install: ${missing[*]}"
  [[ $(id -u) -eq 0 ]] || die "must be root to install: ${missing[*]}"
  local t0; t0=$(now_ms)
  export DEBIAN_FRONTEND=noninteractive
  if [[ -z "${VIGIL_APT_UPDATED:-}" ]]; then
    log "apt-get update"
    apt-get update -qq >/dev/null || die "apt-get update failed"
    export VIGIL_APT_UPDATED=1
  fi
  # Keep package post-install scripts from starting the distro's own daemons.
  local made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  log "apt-get install ${missing[*]}"
  local rc=0
  apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}" </dev/null >"$VIGIL_SERVICES_DIR/apt-$SVC_NAME.log" 2>&1 || rc=$?
  if (( made_policy )); then rm -f /usr/sbin/policy-rc.d; fi
  if (( rc != 0 )); then
    tail -n 30 "$VIGIL_SERVICES_DIR/apt-$SVC_NAME.log" >&2 || true
    die "apt-get install ${missing[*]} failed (exit $rc)"
  fi
  log "installed ${missing[*]} in $(elapsed "$t0")"
}
