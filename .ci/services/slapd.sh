#!/usr/bin/env bash
# Private OpenLDAP slapd (Debian's package) for the LDAP auth method tests.
#   usage: slapd.sh start|stop|status|env|packages
# Listens on ldap://127.0.0.1:13389 (StartTLS offered) and
# ldaps://127.0.0.1:13636, with its own config, certificates and database
# under $VIGIL_SERVICES_DIR/slapd; the distro's slapd service stays stopped.
# The directory (suffix dc=vigil,dc=test) is loaded fresh on every start:
#   cn=vigil-bind,ou=services   bind account, password bind-pw
#   uid=carol,ou=people         password carol-pw, member of icu-clinicians
#   uid=dave,ou=people          password dave-pw, member of engineers
#   uid=erin,ou=people          password erin-pw, in no group
# Groups are groupOfNames under ou=groups. Anonymous clients may only bind.
set -euo pipefail
SVC_NAME=slapd
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LDAP_PORT=13389
LDAPS_PORT=13636
SUFFIX="dc=vigil,dc=test"
BIND_DN="cn=vigil-bind,ou=services,$SUFFIX"
BIND_PW="bind-pw"

SL_HOME="$VIGIL_SERVICES_DIR/slapd"
SL_CONF="$SL_HOME/slapd.conf"
SL_DATA="$SL_HOME/data"
SL_TLS="$SL_HOME/tls"
SL_PID="$SL_HOME/slapd.pid"
SL_LOG="$SL_HOME/slapd.log"

ours_running() { pid_alive "$SL_PID" "$SL_CONF"; }

# ldap_ok: does the server answer a bind and search as the bind account?
ldap_ok() {
  command -v ldapsearch >/dev/null || return 1
  ldapsearch -x -LLL -o nettimeout=3 -H "ldap://127.0.0.1:$LDAP_PORT" -D "$BIND_DN" -w "$BIND_PW" \
    -b "ou=people,$SUFFIX" '(uid=carol)' dn 2>/dev/null | grep -q '^dn: uid=carol'
}

make_tls() {
  [[ -s "$SL_TLS/server.crt" && -s "$SL_TLS/ca.crt" ]] && return 0
  mkdir -p "$SL_TLS"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Vigil test LDAP CA" \
    -keyout "$SL_TLS/ca.key" -out "$SL_TLS/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$SL_TLS/server.key" -out "$SL_TLS/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$SL_TLS/ext.cnf"
  openssl x509 -req -in "$SL_TLS/server.csr" -CA "$SL_TLS/ca.crt" -CAkey "$SL_TLS/ca.key" \
    -CAcreateserial -days 3650 -extfile "$SL_TLS/ext.cnf" -out "$SL_TLS/server.crt" 2>/dev/null
  chmod 600 "$SL_TLS"/*.key
}

write_config() {
  local rootpw
  rootpw="$(slappasswd -s admin-pw)"
  cat >"$SL_CONF" <<EOF
# Written by .ci/services/slapd.sh on every start.
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $SL_PID
argsfile $SL_HOME/slapd.args
TLSCACertificateFile $SL_TLS/ca.crt
TLSCertificateFile $SL_TLS/server.crt
TLSCertificateKeyFile $SL_TLS/server.key
database mdb
maxsize 67108864
suffix "$SUFFIX"
rootdn "cn=admin,$SUFFIX"
rootpw $rootpw
directory $SL_DATA
index objectClass,uid,member eq
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
EOF
}

write_ldif() {
  local pw
  cat <<EOF
dn: $SUFFIX
objectClass: top
objectClass: dcObject
objectClass: organization
o: Vigil test
dc: vigil

dn: ou=people,$SUFFIX
objectClass: organizationalUnit
ou: people

dn: ou=groups,$SUFFIX
objectClass: organizationalUnit
ou: groups

dn: ou=services,$SUFFIX
objectClass: organizationalUnit
ou: services

dn: $BIND_DN
objectClass: person
cn: vigil-bind
sn: vigil-bind
userPassword: $(slappasswd -s "$BIND_PW")

EOF
  for u in carol:Carol dave:Dave erin:Erin; do
    pw="$(slappasswd -s "${u%%:*}-pw")"
    cat <<EOF
dn: uid=${u%%:*},ou=people,$SUFFIX
objectClass: inetOrgPerson
uid: ${u%%:*}
cn: ${u##*:}
sn: ${u##*:}
mail: ${u%%:*}@vigil.test
userPassword: $pw

EOF
  done
  cat <<EOF
dn: cn=icu-clinicians,ou=groups,$SUFFIX
objectClass: groupOfNames
cn: icu-clinicians
member: uid=carol,ou=people,$SUFFIX

dn: cn=engineers,ou=groups,$SUFFIX
objectClass: groupOfNames
cn: engineers
member: uid=dave,ou=people,$SUFFIX
EOF
}

cmd_packages() { echo slapd ldap-utils openssl; }

cmd_start() {
  local t0
  t0=$(now_ms)
  if ours_running && ldap_ok; then
    log "already running on 127.0.0.1:$LDAP_PORT, leaving it alone"
    return 0
  fi
  apt_install slapd ldap-utils openssl
  command -v slapd >/dev/null || PATH="$PATH:/usr/sbin"
  if ! ours_running && { port_open 127.0.0.1 "$LDAP_PORT" || port_open 127.0.0.1 "$LDAPS_PORT"; }; then
    die "port $LDAP_PORT or $LDAPS_PORT is taken by another program; stop it first"
  fi
  ours_running && stop_pidfile "$SL_PID" 30 "$SL_CONF"
  mkdir -p "$SL_HOME"
  make_tls
  write_config
  rm -rf "$SL_DATA"
  mkdir -p "$SL_DATA"
  write_ldif >"$SL_HOME/directory.ldif"
  slapadd -q -f "$SL_CONF" -l "$SL_HOME/directory.ldif" >"$SL_HOME/slapadd.log" 2>&1 \
    || { cat "$SL_HOME/slapadd.log" >&2; die "slapadd failed"; }
  log "starting on 127.0.0.1:$LDAP_PORT and :$LDAPS_PORT (log $SL_LOG)"
  # -d 0 keeps slapd in the foreground so its output reaches the log; the
  # pid file is still written.
  nohup slapd -f "$SL_CONF" -h "ldap://127.0.0.1:$LDAP_PORT/ ldaps://127.0.0.1:$LDAPS_PORT/" -d 0 \
    >"$SL_LOG" 2>&1 </dev/null &
  wait_cmd 30 ldap_ok || { tail -n 30 "$SL_LOG" >&2; die "slapd did not answer"; }
  log "ready at 127.0.0.1:$LDAP_PORT in $(elapsed "$t0")"
}

cmd_stop() {
  if ours_running; then
    log "stopping"
    stop_pidfile "$SL_PID" 30 "$SL_CONF"
    log "stopped"
  else
    log "not running (nothing to stop)"
  fi
}

cmd_status() {
  if ours_running && ldap_ok; then
    log "running on 127.0.0.1:$LDAP_PORT"
  else
    log "not running"
    return 1
  fi
}

cmd_env() {
  printf "export VIGIL_TEST_LDAP_URL='ldap://127.0.0.1:%s'\n" "$LDAP_PORT"
  printf "export VIGIL_TEST_LDAPS_URL='ldaps://127.0.0.1:%s'\n" "$LDAPS_PORT"
  printf "export VIGIL_TEST_LDAP_CA_FILE='%s'\n" "$SL_TLS/ca.crt"
  printf "export VIGIL_TEST_LDAP_BINDDN='%s'\n" "$BIND_DN"
  printf "export VIGIL_TEST_LDAP_BINDPASS='%s'\n" "$BIND_PW"
  printf "export VIGIL_TEST_LDAP_SUFFIX='%s'\n" "$SUFFIX"
}

case "${1:-}" in
  start | stop) lock_service "${BASH_SOURCE[0]}" "$@" ;;
esac
case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  packages) cmd_packages ;;
  *) echo "usage: $0 start|stop|status|env|packages" >&2; exit 2 ;;
esac
