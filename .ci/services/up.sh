#!/usr/bin/env bash
# Install and start every external service the Vigil test suite needs, then
# write $VIGIL_SERVICES_DIR/env.sh with the connection settings (source it).
# Safe to run again: running services are left alone, installed packages are
# not reinstalled, downloaded jars are reused.
#   Kafka unavailable (kafka.sh exit 3: Maven Central unreachable) is not
#   fatal: env.sh then carries VIGIL_TEST_KAFKA_SKIP_REASON instead of
#   VIGIL_TEST_KAFKA_BROKERS. Any other failure is fatal.
set -euo pipefail
SVC_NAME=up
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HERE="$SERVICES_LIB_DIR"
T0=$(now_ms)
log "state dir $VIGIL_SERVICES_DIR, cache dir $VIGIL_CACHE_DIR"

# shq STRING: STRING as one single-quoted shell word.
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# The Kafka jar download (network bound) runs while apt works (dpkg bound).
fetch_pid=""
fetch_log="$VIGIL_SERVICES_DIR/kafka-fetch.log"
pkgs=(openssl poppler-utils kcat clickhouse-server clickhouse-client
      mariadb-server mariadb-client postgresql openssh-server openssh-client)
if command -v mvn >/dev/null && command -v java >/dev/null; then
  bash "$HERE/kafka.sh" fetch >"$fetch_log" 2>&1 &
  fetch_pid=$!
else
  pkgs+=(maven)   # kafka.sh fetch runs after apt instead
fi

t=$(now_ms)
apt_install "${pkgs[@]}"
log "packages ready in $(elapsed "$t")"

for svc in postgres mariadb clickhouse sshd; do
  rc=0
  bash "$HERE/$svc.sh" start || rc=$?
  (( rc == 0 )) || die "$svc failed to start (exit $rc); see $VIGIL_SERVICES_DIR/$svc/"
done

kafka_skip=""
if [[ -n "$fetch_pid" ]]; then
  t=$(now_ms)
  kill -0 "$fetch_pid" 2>/dev/null && log "waiting for the Kafka jar fetch"
  rc=0
  wait "$fetch_pid" || rc=$?
  cat "$fetch_log" >&2
  case $rc in
    0) ;;
    3) kafka_skip="$(sed -n 's/^kafka: SKIP: //p' "$fetch_log" | head -n 1)" ;;
    *) die "kafka fetch failed (exit $rc); see $fetch_log" ;;
  esac
fi
if [[ -z "$kafka_skip" ]]; then
  rc=0
  out="$(bash "$HERE/kafka.sh" start)" || rc=$?
  [[ -z "$out" ]] || echo "$out" >&2
  case $rc in
    0) ;;
    3) kafka_skip="$(sed -n 's/^kafka: SKIP: //p' <<<"$out" | head -n 1)" ;;
    *) die "kafka failed to start (exit $rc); see $VIGIL_SERVICES_DIR/kafka/" ;;
  esac
fi
if [[ -n "$kafka_skip" ]]; then
  log "Kafka unavailable, its tests will be reported skipped: $kafka_skip"
fi

env_file="$VIGIL_SERVICES_DIR/env.sh"
{
  echo "# Written by .ci/services/up.sh at $(date -u '+%F %T') UTC; source it."
  echo "export VIGIL_SERVICES_DIR=$(shq "$VIGIL_SERVICES_DIR")"
  echo "export VIGIL_CACHE_DIR=$(shq "$VIGIL_CACHE_DIR")"
  bash "$HERE/postgres.sh" env
  bash "$HERE/mariadb.sh" env
  bash "$HERE/clickhouse.sh" env
  bash "$HERE/sshd.sh" env
  if [[ -z "$kafka_skip" ]]; then
    bash "$HERE/kafka.sh" env
  else
    echo "export VIGIL_TEST_KAFKA_SKIP_REASON=$(shq "$kafka_skip")"
  fi
  echo "export VIGIL_REQUIRE_SERVICES=1"
} >"$env_file.tmp"
mv -f "$env_file.tmp" "$env_file"

log "wrote $env_file:"
sed 's/^/  /' "$env_file" >&2
log "all services up in $(elapsed "$T0")"
