#!/usr/bin/env bash
# Private OpenSSH server for the SSH secrets engine's tests.
#   usage: sshd.sh start|stop|status|env|packages
# Listens on 127.0.0.1:12222 with its own host key, config and pid file
# under $VIGIL_SERVICES_DIR/sshd; never uses the distro's /etc/ssh config or
# its service (which stays stopped). Only public-key logins (certificates
# included) for the local user "vigilssh" are accepted.
#
# Trusted CAs: sshd reads TrustedUserCAKeys on every login attempt, so a test
# makes its own CA trusted by adding its public key line to the file named by
# VIGIL_TEST_SSHD_CA_FILE (and removing it afterwards), under an flock on
# that file so concurrent tests do not lose each other's lines. The file
# starts empty: nothing is trusted until a test says so.
set -euo pipefail
SVC_NAME=sshd
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SSHD_PORT=12222
SSHD_USER=vigilssh
SSHD_HOME="$VIGIL_SERVICES_DIR/sshd"
SSHD_CFG="$SSHD_HOME/sshd_config"
SSHD_PID="$SSHD_HOME/sshd.pid"
SSHD_LOG="$SSHD_HOME/sshd.log"
SSHD_CA="$SSHD_HOME/trusted_user_ca_keys"
SSHD_HOSTKEY="$SSHD_HOME/ssh_host_ed25519_key"

ours_running() { pid_alive "$SSHD_PID" "$SSHD_CFG"; }

write_config() {
  cat >"$SSHD_CFG" <<EOF
# Written by .ci/services/sshd.sh on every start.
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $SSHD_HOSTKEY
PidFile $SSHD_PID
TrustedUserCAKeys $SSHD_CA
AuthorizedKeysFile none
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $SSHD_USER
UsePAM no
StrictModes no
LogLevel VERBOSE
Subsystem sftp internal-sftp
EOF
}

cmd_start() {
  local t0
  t0=$(now_ms)
  if ours_running && port_open 127.0.0.1 "$SSHD_PORT"; then
    log "already running on 127.0.0.1:$SSHD_PORT, leaving it alone"
    return 0
  fi
  apt_install openssh-server openssh-client
  [[ $(id -u) -eq 0 ]] || die "sshd must be started as root (it switches to $SSHD_USER on login)"
  if ! ours_running && port_open 127.0.0.1 "$SSHD_PORT"; then
    die "port $SSHD_PORT is taken by another program; stop it first"
  fi
  id "$SSHD_USER" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$SSHD_USER"
  # A locked account (no password) may still log in with a key only if its
  # password field is not "!"; "*" means "no password" without the lock.
  usermod -p '*' "$SSHD_USER"
  mkdir -p "$SSHD_HOME" /run/sshd
  chmod 755 "$SSHD_HOME"
  [[ -f "$SSHD_HOSTKEY" ]] || ssh-keygen -q -t ed25519 -N '' -f "$SSHD_HOSTKEY"
  touch "$SSHD_CA"
  chmod 666 "$SSHD_CA"
  write_config
  /usr/sbin/sshd -t -f "$SSHD_CFG" || die "sshd rejects its configuration"
  log "starting on 127.0.0.1:$SSHD_PORT (log $SSHD_LOG)"
  rm -f "$SSHD_PID"
  setsid /usr/sbin/sshd -D -f "$SSHD_CFG" -E "$SSHD_LOG" </dev/null >/dev/null 2>&1 &
  wait_port 127.0.0.1 "$SSHD_PORT" 30 || { tail -n 20 "$SSHD_LOG" >&2 || true; die "sshd did not open its port"; }
  wait_cmd 10 test -s "$SSHD_PID" || die "sshd wrote no pid file"
  log "ready at 127.0.0.1:$SSHD_PORT in $(elapsed "$t0")"
}

cmd_stop() {
  if ours_running; then
    log "stopping (pid $(cat "$SSHD_PID"))"
    stop_pidfile "$SSHD_PID" 30 "$SSHD_CFG"
    log "stopped"
  else
    rm -f "$SSHD_PID"
    log "not running (nothing to stop)"
  fi
}

cmd_status() {
  if ours_running && port_open 127.0.0.1 "$SSHD_PORT"; then
    log "running on 127.0.0.1:$SSHD_PORT"
  else
    log "not running"
    return 1
  fi
}

cmd_env() {
  printf "export VIGIL_TEST_SSHD_ADDR='127.0.0.1:%s'\n" "$SSHD_PORT"
  printf "export VIGIL_TEST_SSHD_USER='%s'\n" "$SSHD_USER"
  printf "export VIGIL_TEST_SSHD_CA_FILE='%s'\n" "$SSHD_CA"
}

case "${1:-}" in
  start | stop) lock_service "${BASH_SOURCE[0]}" "$@" ;;
esac
case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  packages) echo "openssh-server openssh-client" ;;
  *) echo "usage: $0 start|stop|status|env|packages" >&2; exit 2 ;;
esac
