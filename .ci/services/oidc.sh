#!/usr/bin/env bash
# A real OpenID Connect provider for the JWT/OIDC and Kubernetes auth method
# tests: the example OP of github.com/zitadel/oidc/v3, built from the Go
# module proxy with `go install`.
#   usage: oidc.sh start|stop|status|env|fetch
# Issuer http://localhost:19998/ (discovery, JWKS, authorization code flow
# with PKCE, userinfo). Binary under $VIGIL_CACHE_DIR/bin, state under
# $VIGIL_SERVICES_DIR/oidc. Client "web" (secret "secret", client_secret_basic)
# may redirect to the URIs in REDIRECT_URIS below. Users (login form at
# /login/username, subject = the id):
#   id u-carol   username carol   password carol-pw   email carol@vigil.test
#   id u-dave    username dave    password dave-pw    email dave@vigil.test
#   id system:serviceaccount:billing:billing-app   username billing-app
#                password billing-pw (a subject shaped like a Kubernetes
#                service account, for local service-account token checks)
set -euo pipefail
SVC_NAME=oidc
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OP_MODULE=github.com/zitadel/oidc/v3
OP_VERSION=v3.53.0
OP_PORT=19998
OP_ISSUER="http://localhost:$OP_PORT/"
OP_BIN="$VIGIL_CACHE_DIR/bin/zitadel-oidc-example-op-$OP_VERSION"
# 8250 is where Vault's and Vigil's CLI listen for the callback by default;
# 18250 is what the tests use.
REDIRECT_URIS="http://localhost:8250/oidc/callback,http://localhost:18250/oidc/callback,http://127.0.0.1:18250/oidc/callback"

OP_HOME="$VIGIL_SERVICES_DIR/oidc"
OP_PID="$OP_HOME/op.pid"
OP_LOG="$OP_HOME/op.log"
OP_USERS="$OP_HOME/users.json"

ours_running() { pid_alive "$OP_PID" zitadel-oidc-example-op; }

op_ok() {
  command -v curl >/dev/null || { port_open 127.0.0.1 "$OP_PORT"; return; }
  curl -fsS -m 3 "${OP_ISSUER}.well-known/openid-configuration" 2>/dev/null | grep -q '"jwks_uri"'
}

cmd_packages() { echo curl; }

cmd_fetch() {
  [[ -x "$OP_BIN" ]] && return 0
  command -v go >/dev/null || die "go is required to build the OpenID provider"
  local t0 tmp rc=0
  t0=$(now_ms)
  tmp="$(mktemp -d)"
  log "building $OP_MODULE/example/server@$OP_VERSION from the Go module proxy"
  # Outside any module, so the project's go.mod does not interfere.
  (cd "$tmp" && GOFLAGS= GOBIN="$tmp/bin" go install "$OP_MODULE/example/server@$OP_VERSION") \
    >"$VIGIL_SERVICES_DIR/oidc-build.log" 2>&1 || rc=$?
  if (( rc != 0 )); then
    tail -n 20 "$VIGIL_SERVICES_DIR/oidc-build.log" >&2
    rm -rf "$tmp"
    if grep -qiE 'dial tcp|no such host|timeout|connection refused' "$VIGIL_SERVICES_DIR/oidc-build.log"; then
      echo "oidc: SKIP: the Go module proxy cannot be reached to build the OpenID provider"
      exit 3
    fi
    die "go install $OP_MODULE/example/server@$OP_VERSION failed"
  fi
  mkdir -p "$(dirname "$OP_BIN")"
  mv -f "$tmp/bin/server" "$OP_BIN"
  rm -rf "$tmp"
  log "built in $(elapsed "$t0")"
}

write_users() {
  cat >"$OP_USERS" <<'EOF'
{
  "u-carol": {"ID": "u-carol", "Username": "carol", "Password": "carol-pw", "FirstName": "Carol", "LastName": "Jones",
              "Email": "carol@vigil.test", "EmailVerified": true, "PreferredLanguage": "en"},
  "u-dave": {"ID": "u-dave", "Username": "dave", "Password": "dave-pw", "FirstName": "Dave", "LastName": "Smith",
             "Email": "dave@vigil.test", "EmailVerified": true, "PreferredLanguage": "en"},
  "system:serviceaccount:billing:billing-app": {"ID": "system:serviceaccount:billing:billing-app", "Username": "billing-app",
             "Password": "billing-pw", "FirstName": "billing-app", "LastName": "sa", "Email": "billing-app@billing.svc",
             "EmailVerified": true, "PreferredLanguage": "en"}
}
EOF
}

cmd_start() {
  local t0
  t0=$(now_ms)
  if ours_running && op_ok; then
    log "already running at $OP_ISSUER, leaving it alone"
    return 0
  fi
  apt_install curl
  cmd_fetch
  if ! ours_running && port_open 127.0.0.1 "$OP_PORT"; then
    die "port $OP_PORT is taken by another program; stop it first"
  fi
  mkdir -p "$OP_HOME"
  ours_running && stop_pidfile "$OP_PID" 30 zitadel-oidc-example-op
  write_users
  log "starting at $OP_ISSUER (log $OP_LOG)"
  PORT="$OP_PORT" USERS_FILE="$OP_USERS" REDIRECT_URI="$REDIRECT_URIS" \
    nohup "$OP_BIN" >"$OP_LOG" 2>&1 </dev/null &
  echo $! >"$OP_PID"
  wait_cmd 30 op_ok || { tail -n 30 "$OP_LOG" >&2; die "the OpenID provider did not answer"; }
  log "ready at $OP_ISSUER in $(elapsed "$t0")"
}

cmd_stop() {
  if ours_running; then
    log "stopping"
    stop_pidfile "$OP_PID" 30 zitadel-oidc-example-op
    log "stopped"
  else
    log "not running (nothing to stop)"
  fi
}

cmd_status() {
  if ours_running && op_ok; then
    log "running at $OP_ISSUER"
  else
    log "not running"
    return 1
  fi
}

cmd_env() {
  printf "export VIGIL_TEST_OIDC_ISSUER='%s'\n" "$OP_ISSUER"
  printf "export VIGIL_TEST_OIDC_CLIENT_ID='web'\n"
  printf "export VIGIL_TEST_OIDC_CLIENT_SECRET='secret'\n"
}

case "${1:-}" in
  start | stop | fetch) lock_service "${BASH_SOURCE[0]}" "$@" ;;
esac
case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  fetch) cmd_fetch ;;
  packages) cmd_packages ;;
  *) echo "usage: $0 start|stop|status|env|fetch|packages" >&2; exit 2 ;;
esac
