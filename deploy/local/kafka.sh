#!/usr/bin/env bash
# Kafka runtime for the local stack, without Docker and without the Kafka tarball:
# Maven resolves the broker, the CLI tools and the log binding (deploy/kafka/pom.xml)
# from Maven Central into one libs/ directory per version, cached across runs and clones.
#
#   deploy/local/kafka.sh libs                 make sure libs/ is complete; print its path
#   deploy/local/kafka.sh run TOOL|CLASS [ARGS...]
#       run a Kafka CLI on that class path. TOOL is a short name that maps to the class of the
#       version in use (class names moved between 3.9 and 4.x); any other word is a class name:
#       deploy/local/kafka.sh run topics --bootstrap-server 127.0.0.1:9092 --list
#       deploy/local/kafka.sh run console-producer --bootstrap-server 127.0.0.1:9092 --topic t
#       deploy/local/kafka.sh run console-consumer --bootstrap-server 127.0.0.1:9092 --topic t --from-beginning
#   deploy/local/kafka.sh class TOOL           print the class TOOL runs for KAFKA_VERSION
#   deploy/local/kafka.sh tools                list TOOL names and their classes for KAFKA_VERSION
#   deploy/local/kafka.sh log-opt broker|tool  the JVM option that configures logging for KAFKA_VERSION
#   deploy/local/kafka.sh versions             the default and the compatibility-tested version
#
# Environment:
#   KAFKA_VERSION       (4.4.0)  passed to the pom as -Dkafka.version (and -Dkafka.line, its major)
#   MARKETSIGNAL_CACHE  (~/.cache/marketsignal)  libs go to $MARKETSIGNAL_CACHE/kafka-$KAFKA_VERSION/libs
#   KAFKA_MVN_ARGS      extra Maven arguments, e.g. -Dmaven.repo.local=/tmp/m2
#
# Supported: the 4.x line (default, log4j 2) and the 3.9 line (reload4j). libs/ is only
# (re)built when its marker file is missing or was written for another pom: a warm start costs
# a file read.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
POM="$ROOT/deploy/kafka/pom.xml"
# The newest 4.x release that resolves from Maven Central and passes the suite, and the newest
# 3.9 release, which `make test-kafka-compat` runs the suite against. stack.sh, the pom,
# docker-compose.yml and the Makefile say the same (tests/unit/deploy/test_kafka_versions.py).
DEFAULT_VERSION=4.4.0
COMPAT_VERSION=3.9.2
KAFKA_VERSION="${KAFKA_VERSION:-$DEFAULT_VERSION}"
CACHE="${MARKETSIGNAL_CACHE:-$HOME/.cache/marketsignal}"
KAFKA_HOME="$CACHE/kafka-$KAFKA_VERSION"
LIBS="$KAFKA_HOME/libs"
MARKER="$KAFKA_HOME/.libs-complete"

log() { printf '[kafka.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ "$KAFKA_VERSION" =~ ^([0-9]+)\.[0-9]+\.[0-9]+$ ]] || die "KAFKA_VERSION=$KAFKA_VERSION is not a release number like 4.4.0"
LINE="${BASH_REMATCH[1]}"
case "$LINE" in
  3)
    [[ "$KAFKA_VERSION" == 3.9.* ]] || die "Kafka $KAFKA_VERSION: of the 3.x line only 3.9 is supported (KRaft storage tools, Java 17)"
    ;;
  4) ;;
  *) die "Kafka $KAFKA_VERSION: supported lines are 4.x and 3.9" ;;
esac

# Short tool name -> class, per line. 4.0 moved the remaining Scala tools into kafka-tools
# (org.apache.kafka.tools.*); kafka.tools.StorageTool stayed where it was.
tool_class() {
  case "$LINE:$1" in
    3:api-versions) echo kafka.admin.BrokerApiVersionsCommand ;;
    4:api-versions) echo org.apache.kafka.tools.BrokerApiVersionsCommand ;;
    3:console-producer) echo kafka.tools.ConsoleProducer ;;
    4:console-producer) echo org.apache.kafka.tools.ConsoleProducer ;;
    *:console-consumer) echo org.apache.kafka.tools.consumer.ConsoleConsumer ;;
    *:consumer-groups) echo org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
    *:topics) echo org.apache.kafka.tools.TopicCommand ;;
    *:get-offsets) echo org.apache.kafka.tools.GetOffsetShell ;;
    *:metadata-quorum) echo org.apache.kafka.tools.MetadataQuorumCommand ;;
    *:storage) echo kafka.tools.StorageTool ;;
    *) return 1 ;;
  esac
}
TOOLS="api-versions console-consumer console-producer consumer-groups get-offsets metadata-quorum storage topics"

# 4.x logs through log4j 2 (a YAML config, read with the jackson-dataformat-yaml Kafka ships);
# 3.9 through the log4j 1.x API (reload4j, a properties file).
log_opt() {
  case "$LINE:$1" in
    3:broker) echo "-Dlog4j.configuration=file:$HERE/kafka-log4j.properties" ;;
    3:tool) echo "-Dlog4j.configuration=file:$HERE/tools-log4j.properties" ;;
    4:broker) echo "-Dlog4j2.configurationFile=$HERE/kafka-log4j2.yaml" ;;
    4:tool) echo "-Dlog4j2.configurationFile=$HERE/tools-log4j2.yaml" ;;
    *) die "log-opt: say broker or tool" ;;
  esac
}

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
    -Dkafka.line="$LINE" dependency:copy-dependencies -DoutputDirectory="$tmp" 2>&1 |
    sed -e 's/\x1b\[[0-9;]*m//g' -e '/^[[:space:]]*$/d' >&2 # Debian's mvn -q still prints colour codes
  [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] ||
    die "Maven did not produce kafka_2.13-$KAFKA_VERSION.jar (is $KAFKA_VERSION a release on Maven Central?)"
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
    [[ $# -ge 1 ]] || { echo "usage: $0 run TOOL|CLASS [ARGS...]" >&2; exit 2; }
    cls="$(tool_class "$1")" || cls="$1"
    shift
    libs="$(ensure_libs)"
    exec java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC "$(log_opt tool)" \
      -cp "$libs/*" "$cls" "$@"
    ;;
  class)
    [[ $# -eq 2 ]] || { echo "usage: $0 class TOOL" >&2; exit 2; }
    tool_class "$2" || die "unknown tool '$2' (one of: $TOOLS)"
    ;;
  tools)
    for tool in $TOOLS; do printf '%-17s %s\n' "$tool" "$(tool_class "$tool")"; done
    ;;
  log-opt)
    [[ $# -eq 2 ]] || { echo "usage: $0 log-opt broker|tool" >&2; exit 2; }
    log_opt "$2"
    ;;
  versions)
    printf 'default %s\ncompat %s\n' "$DEFAULT_VERSION" "$COMPAT_VERSION"
    ;;
  *)
    sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
