#!/usr/bin/env bash
# Kafka runtime for the local stack, without Docker and without the Kafka tarball:
# Maven resolves the broker, the CLI tools and the log4j binding (deploy/kafka/pom.xml)
# from Maven Central into one libs/ directory, cached across runs and clones.
#
#   deploy/local/kafka.sh libs                 make sure libs/ is complete; print its path
#   deploy/local/kafka.sh run CLASS [ARGS...]  run a Kafka CLI class on that class path, e.g.
#       deploy/local/kafka.sh run org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:9092 --list
#       deploy/local/kafka.sh run kafka.tools.ConsoleProducer --bootstrap-server 127.0.0.1:9092 --topic t
#       deploy/local/kafka.sh run org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server 127.0.0.1:9092 --topic t --from-beginning
#
# Environment:
#   KAFKA_VERSION       (3.9.1)  passed to the pom as -Dkafka.version
#   MARKETSIGNAL_CACHE  (~/.cache/marketsignal)  libs go to $MARKETSIGNAL_CACHE/kafka-$KAFKA_VERSION/libs
#   KAFKA_MVN_ARGS      extra Maven arguments, e.g. -Dmaven.repo.local=/tmp/m2
#
# libs/ is only (re)built when its marker file is missing or was written for another pom:
# a warm start costs a file read.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
POM="$ROOT/deploy/kafka/pom.xml"
KAFKA_VERSION="${KAFKA_VERSION:-3.9.1}"
CACHE="${MARKETSIGNAL_CACHE:-$HOME/.cache/marketsignal}"
KAFKA_HOME="$CACHE/kafka-$KAFKA_VERSION"
LIBS="$KAFKA_HOME/libs"
MARKER="$KAFKA_HOME/.libs-complete"

log() { printf '[kafka.sh] %s\n' "$*" >&2; }

apt_install() {
  # apt-get update once per process, and only when something is actually missing.
  if [[ -z "${_APT_UPDATED:-}" ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    _APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

ensure_tools() {
  command -v java >/dev/null 2>&1 || { log "installing a JRE"; apt_install openjdk-17-jre-headless; }
  command -v mvn >/dev/null 2>&1 || { log "installing maven"; apt_install maven; }
}

# What the marker must say for libs/ to count as complete.
marker_content() {
  printf 'kafka.version=%s\npom.sha256=%s\n' "$KAFKA_VERSION" "$(sha256sum "$POM" | cut -d' ' -f1)"
}

ensure_libs() {
  if [[ -f "$MARKER" ]] && [[ "$(cat "$MARKER")" == "$(marker_content)" ]]; then
    printf '%s\n' "$LIBS"
    return 0
  fi
  ensure_tools
  log "resolving Kafka $KAFKA_VERSION with Maven into $LIBS (one time)"
  local start=$SECONDS
  tmp="$KAFKA_HOME/libs.tmp.$$" # global: the EXIT trap runs after this function returned
  mkdir -p "$KAFKA_HOME"
  rm -rf "$tmp"
  trap 'rm -rf "${tmp:-}"' EXIT # a failed or interrupted download leaves nothing behind
  # shellcheck disable=SC2086 # KAFKA_MVN_ARGS is a list of words on purpose
  mvn -q -B -Dstyle.color=never -f "$POM" ${KAFKA_MVN_ARGS:-} -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DoutputDirectory="$tmp" 2>&1 |
    sed -e 's/\x1b\[[0-9;]*m//g' -e '/^[[:space:]]*$/d' >&2 # Debian's mvn -q still prints colour codes
  [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || { log "Maven did not produce kafka_2.13-$KAFKA_VERSION.jar"; exit 1; }
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  marker_content >"$MARKER"
  log "libs ready ($(find "$LIBS" -name '*.jar' | wc -l) jars) in $((SECONDS - start))s"
  printf '%s\n' "$LIBS"
}

case "${1:-}" in
  libs)
    ensure_libs
    ;;
  run)
    shift
    [[ $# -ge 1 ]] || { echo "usage: $0 run CLASS [ARGS...]" >&2; exit 2; }
    libs="$(ensure_libs)"
    cls="$1"
    shift
    exec java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
      -Dlog4j.configuration="file:$HERE/tools-log4j.properties" \
      -cp "$libs/*" "$cls" "$@"
    ;;
  *)
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
