#!/usr/bin/env bash
# Real Apache Kafka 4.x broker (KRaft, one combined broker+controller) for the
# Vigil test suite, built from the Maven Central jars (no tarball download).
#   usage: kafka.sh fetch|start|stop|status|env|packages
# PLAINTEXT 127.0.0.1:19092, CONTROLLER 127.0.0.1:19093. Jars are cached in
# $VIGIL_CACHE_DIR/kafka-<version>/libs; data (KRaft metadata + topic logs)
# lives in $VIGIL_SERVICES_DIR/kafka/data and survives stop/start.
# Exit code 3 = Kafka unavailable here (Maven Central unreachable): callers
# report the Kafka tests as skipped.
set -euo pipefail
SVC_NAME=kafka
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"

KAFKA_VERSION="${VIGIL_KAFKA_VERSION:-4.1.1}"
# log4j2 version used by that Kafka release; its slf4j 1.7 binding is added so
# the broker (which logs through slf4j) writes its log.
LOG4J_VERSION="${VIGIL_KAFKA_LOG4J_VERSION:-2.24.3}"
KAFKA_PORT=19092
CONTROLLER_PORT=19093
BROKERS="127.0.0.1:$KAFKA_PORT"

K_CACHE="$VIGIL_CACHE_DIR/kafka-$KAFKA_VERSION"
K_LIBS="$K_CACHE/libs"
K_HOME="$VIGIL_SERVICES_DIR/kafka"
K_DATA="$K_HOME/data"
K_PROPS="$K_HOME/server.properties"
K_LOG4J="$K_HOME/log4j2.xml"
K_LOG4J_QUIET="$K_HOME/log4j2-quiet.xml"
K_PID="$K_HOME/kafka.pid"
K_LOG="$K_HOME/kafka.log"

java_bin() {
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then echo "$JAVA_HOME/bin/java"; return; fi
  command -v java || die "java not found (Kafka $KAFKA_VERSION needs Java 17+)"
}

check_java() {
  local java ver
  java="$(java_bin)"
  ver="$("$java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
  [[ "${ver%%.*}" =~ ^[0-9]+$ ]] || die "cannot tell the Java version of $java"
  (( ${ver%%.*} >= 17 )) || die "Kafka $KAFKA_VERSION needs Java 17+, $java is $ver"
}

libs_ready() { [[ -f "$K_LIBS/.complete" ]]; }

skip() {
  echo "kafka: SKIP: Maven Central unreachable: $*"
  exit 3
}

cmd_fetch() {
  if libs_ready; then
    log "libs for Kafka $KAFKA_VERSION already in $K_LIBS"
    return 0
  fi
  local t0; t0=$(now_ms)
  if ! command -v mvn >/dev/null; then apt_install maven; fi
  check_java
  mkdir -p "$K_CACHE"
  cat >"$K_CACHE/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by .ci/services/kafka.sh fetch: the jars of a Kafka broker. -->
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 http://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.vigil.ci</groupId>
  <artifactId>kafka-broker-libs</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
  log "fetching Kafka $KAFKA_VERSION jars with Maven into $K_LIBS"
  rm -rf "$K_LIBS"
  local out="$K_CACHE/fetch.log" rc=0
  # VIGIL_MVN_ARGS: extra mvn arguments (e.g. -s settings.xml for a mirror).
  # shellcheck disable=SC2086
  (cd "$K_CACHE" && timeout 900 mvn -B -U -f "$K_CACHE/pom.xml" ${VIGIL_MVN_ARGS:-} \
      -Dmaven.wagon.http.retryHandler.count=2 \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$K_LIBS" \
      </dev/null >"$out" 2>&1) || rc=$?
  if (( rc != 0 )); then
    local reason
    if (( rc == 124 )); then skip "mvn timed out after 900s"; fi
    reason="$(grep -m1 -oiE "(Could not transfer[^:]*|UnknownHost[^ ]*|Unknown host[^,]*|Connection refused|Connect(ion)? timed out|Read timed out|Network is unreachable|No route to host|Temporary failure in name resolution|PKIX path building failed|Remote host terminated the handshake|status code: 5[0-9][0-9][^,]*)[^]]{0,160}" "$out" || true)"
    if [[ -n "$reason" ]]; then
      skip "$(echo "$reason" | tr -s ' \t\r\n' ' ' | sed 's/ *$//')"
    fi
    tail -n 30 "$out" >&2
    die "mvn failed (exit $rc) for a reason other than the network; see $out"
  fi
  [[ -f "$K_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "kafka_2.13-$KAFKA_VERSION.jar missing after fetch"
  grep -qaF 'kafka/Kafka.class' "$K_LIBS/kafka_2.13-$KAFKA_VERSION.jar" \
    || die "kafka.Kafka not found in kafka_2.13-$KAFKA_VERSION.jar"
  touch "$K_LIBS/.complete"
  log "fetched $(find "$K_LIBS" -name '*.jar' | wc -l) jars ($(du -sh "$K_LIBS" | cut -f1)) in $(elapsed "$t0")"
}

write_config() {
  cat >"$K_PROPS" <<EOF
# Written by .ci/services/kafka.sh on every start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$K_DATA
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
auto.create.topics.enable=true
group.initial.rebalance.delay.ms=0
EOF
  local level file
  for level in INFO WARN; do
    if [[ $level == INFO ]]; then file="$K_LOG4J"; else file="$K_LOG4J_QUIET"; fi
    cat >"$file" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by .ci/services/kafka.sh on every start. -->
<Configuration status="WARN">
  <Appenders>
    <Console name="STDOUT" target="SYSTEM_OUT">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="$level"><AppenderRef ref="STDOUT"/></Root>
    <Logger name="org.apache.kafka.common.config.AbstractConfig" level="WARN"/>
    <Logger name="org.apache.kafka.clients" level="WARN"/>
    <Logger name="kafka.request.logger" level="WARN"/>
  </Loggers>
</Configuration>
EOF
  done
}

# metadata_ok: the broker answers a real metadata request with broker 1.
metadata_ok() {
  command -v kcat >/dev/null || return 1
  local out
  out="$(kcat -L -b "$BROKERS" -m 3 2>/dev/null)" || return 1
  [[ "$out" == *"broker 1 at 127.0.0.1:$KAFKA_PORT"* ]]
}

ours_running() { pid_alive "$K_PID" "$K_PROPS"; }

cmd_start() {
  local t0; t0=$(now_ms)
  apt_install kcat
  if ours_running && metadata_ok; then
    log "already running (pid $(cat "$K_PID")) on $BROKERS"
    return 0
  fi
  if ! ours_running && port_open 127.0.0.1 "$KAFKA_PORT"; then
    if metadata_ok; then
      log "something else already serves $BROKERS, leaving it alone (stop/start will not control it)"
      return 0
    fi
    die "port $KAFKA_PORT is taken by something that is not a Kafka broker; stop it first"
  fi
  if ! libs_ready; then cmd_fetch; fi   # exits 3 when Maven Central is unreachable
  check_java
  local java; java="$(java_bin)"
  mkdir -p "$K_HOME" "$K_DATA"
  write_config

  if [[ ! -f "$K_DATA/meta.properties" ]]; then
    local cluster_id t1
    t1=$(now_ms)
    if [[ -s "$K_HOME/cluster.id" ]]; then
      cluster_id="$(cat "$K_HOME/cluster.id")"
    else
      # Same shape as StorageTool random-uuid (16 random bytes, base64url, no
      # padding, not starting with '-') without paying for another JVM.
      cluster_id=-
      while [[ $cluster_id == -* ]]; do
        cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
      done
      [[ "$cluster_id" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "bad cluster id '$cluster_id'"
      echo "$cluster_id" >"$K_HOME/cluster.id"
    fi
    log "formatting $K_DATA (cluster id $cluster_id)"
    "$java" -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Dlog4j2.configurationFile="$K_LOG4J_QUIET" \
      -cp "$K_LIBS/*" kafka.tools.StorageTool format --ignore-formatted -t "$cluster_id" -c "$K_PROPS" \
      >"$K_HOME/format.log" 2>&1 \
      || { tail -n 20 "$K_HOME/format.log" >&2; die "StorageTool format failed"; }
    log "formatted in $(elapsed "$t1")"
  fi

  if ! ours_running; then
    log "starting Kafka $KAFKA_VERSION on $BROKERS (controller 127.0.0.1:$CONTROLLER_PORT, log $K_LOG)"
    rm -f "$K_PID"
    echo "---- start $(date -u '+%F %T') ----" >>"$K_LOG"
    setsid "$java" -Xms256m -Xmx512m -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError \
      -Djava.awt.headless=true -Dlog4j2.configurationFile="$K_LOG4J" \
      -cp "$K_LIBS/*" kafka.Kafka "$K_PROPS" </dev/null >>"$K_LOG" 2>&1 &
    echo $! >"$K_PID"
  fi
  local end=$(( $(date +%s) + 180 ))
  until metadata_ok; do
    if ! ours_running; then
      tail -n 40 "$K_LOG" >&2 || true
      die "broker exited during startup (see $K_LOG)"
    fi
    if (( $(date +%s) >= end )); then
      tail -n 40 "$K_LOG" >&2 || true
      die "broker does not serve metadata on $BROKERS after 180s (see $K_LOG)"
    fi
    sleep 0.3
  done
  log "ready at $BROKERS (pid $(cat "$K_PID")) in $(elapsed "$t0")"
}

cmd_stop() {
  if ours_running; then
    local t0; t0=$(now_ms)
    log "stopping (pid $(cat "$K_PID"))"
    stop_pidfile "$K_PID" 30 "$K_PROPS"
    local end=$(( $(date +%s) + 10 ))
    while port_open 127.0.0.1 "$KAFKA_PORT" && (( $(date +%s) < end )); do sleep 0.2; done
    log "stopped in $(elapsed "$t0")"
  else
    rm -f "$K_PID"
    log "not running (nothing to stop)"
  fi
}

cmd_status() {
  if metadata_ok; then
    log "running on $BROKERS"
  else
    log "not running"
    return 1
  fi
}

# cmd_packages: kcat (the readiness probe and the tests' independent
# client), and Maven when the jars still have to be fetched.
cmd_packages() {
  local p=(kcat)
  if ! libs_ready && ! command -v mvn >/dev/null; then p+=(maven); fi
  echo "${p[*]}"
}

cmd_env() {
  echo "export VIGIL_TEST_KAFKA_BROKERS=$BROKERS"
  echo "export VIGIL_TEST_KAFKA_CTL=$SELF"
}

case "${1:-}" in
  start | stop | fetch) lock_service "${BASH_SOURCE[0]}" "$@" ;;
esac
case "${1:-}" in
  fetch) cmd_fetch ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  packages) cmd_packages ;;
  *) echo "usage: $0 fetch|start|stop|status|env|packages" >&2; exit 2 ;;
esac
