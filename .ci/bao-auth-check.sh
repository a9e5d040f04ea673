#!/usr/bin/env bash
# Log in to a Vigil dev server with the OpenBao CLI (`bao login -method=...`)
# through userpass, LDAP (the test slapd) and OIDC (the test OpenID
# provider; the browser is played with curl). Not part of `make test`: it
# needs a bao binary and the services of .ci/services (make services-up).
#   usage: .ci/bao-auth-check.sh /path/to/bao [/path/to/vigil]
# Exits non-zero at the first login that fails.
set -euo pipefail
BAO="${1:?usage: $0 /path/to/bao [/path/to/vigil]}"
VIGIL="${2:-./bin/vigil}"
SERVICES_DIR="${VIGIL_SERVICES_DIR:-/tmp/vigil-services}"
set -a
# shellcheck disable=SC1091
. "$SERVICES_DIR/env.sh"
set +a
work="$(mktemp -d)"
port=18297
cleanup() { [[ -n "${pid:-}" ]] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
(cd "$work" && exec "$VIGIL" server -dev -dev-root-token-id=root -dev-listen-address="127.0.0.1:$port") >"$work/server.log" 2>&1 &
pid=$!
export VAULT_ADDR="http://127.0.0.1:$port" VIGIL_ADDR="http://127.0.0.1:$port" VIGIL_TOKEN=root HOME="$work"
for _ in $(seq 50); do curl -fs "$VAULT_ADDR/v1/sys/health" >/dev/null && break; sleep 0.2; done

"$VIGIL" policy write app - <<<'path "secret/data/app/*" { capabilities = ["read"] }' >/dev/null
for m in userpass ldap oidc; do "$VIGIL" auth enable "$m" >/dev/null; done
"$VIGIL" write auth/userpass/users/carol password=pw token_policies=app >/dev/null
"$VIGIL" write auth/ldap/config url="$VIGIL_TEST_LDAP_URL" starttls=true certificate=@"$VIGIL_TEST_LDAP_CA_FILE" \
  binddn="$VIGIL_TEST_LDAP_BINDDN" bindpass="$VIGIL_TEST_LDAP_BINDPASS" userdn="ou=people,$VIGIL_TEST_LDAP_SUFFIX" \
  userattr=uid groupdn="ou=groups,$VIGIL_TEST_LDAP_SUFFIX" token_policies=app >/dev/null
"$VIGIL" write auth/oidc/config oidc_discovery_url="$VIGIL_TEST_OIDC_ISSUER" oidc_client_id="$VIGIL_TEST_OIDC_CLIENT_ID" \
  oidc_client_secret="$VIGIL_TEST_OIDC_CLIENT_SECRET" default_role=human >/dev/null
"$VIGIL" write auth/oidc/role/human user_claim=email oidc_scopes=email \
  allowed_redirect_uris=http://localhost:18250/oidc/callback token_policies=app >/dev/null

check() { # check NAME OUTPUT-FILE
  if grep -q 'token_policies *\["app" "default"\]' "$2"; then echo "bao login -method=$1: OK"; else
    echo "bao login -method=$1: FAILED"; cat "$2"; exit 1; fi
}
VAULT_TOKEN='' "$BAO" login -method=userpass -no-store username=carol password=pw >"$work/up.out" 2>&1 || true
check userpass "$work/up.out"
VAULT_TOKEN='' "$BAO" login -method=ldap -no-store username=carol password=carol-pw >"$work/ldap.out" 2>&1 || true
check ldap "$work/ldap.out"

VAULT_TOKEN='' timeout 60 "$BAO" login -method=oidc -no-store role=human port=18250 skip_browser=true >"$work/oidc.out" 2>&1 &
bao_pid=$!
url=""
for _ in $(seq 50); do
  url="$(grep -o "${VIGIL_TEST_OIDC_ISSUER}auth?[^ ]*" "$work/oidc.out" | head -n 1 || true)"
  [[ -n "$url" ]] && break
  sleep 0.2
done
[[ -n "$url" ]] || { cat "$work/oidc.out"; exit 1; }
page="$(curl -fsSL -c "$work/jar" -b "$work/jar" "$url")"
id="$(grep -o 'name="id" value="[^"]*"' <<<"$page" | sed 's/.*value="\(.*\)"/\1/')"
curl -fsSL -c "$work/jar" -b "$work/jar" --data-urlencode "id=$id" -d username=carol -d password=carol-pw \
  "${VIGIL_TEST_OIDC_ISSUER}login/username" >/dev/null
wait "$bao_pid" || true
check oidc "$work/oidc.out"
