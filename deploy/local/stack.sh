#!/usr/bin/env bash
# The marketsignal local stack without Docker: Kafka (KRaft, single node), Redis, Prometheus.
#
#   deploy/local/stack.sh up       start what is not running, reuse what is; wait until each answers
#   deploy/local/stack.sh down     stop what this script started (pid files), TERM then KILL after 30s
#   deploy/local/stack.sh status   one line per component: up/down and address
#   deploy/local/stack.sh reset    down, then delete Kafka (every version's), Redis and Prometheus data
#   deploy/local/stack.sh logs     tail of each component's log (LOG_LINES, default 30)
#
# Environment (defaults in parentheses):
#   KAFKA_PORT            (9092)  Kafka PLAINTEXT listener, 127.0.0.1
#   KAFKA_CONTROLLER_PORT (9093)  KRaft controller listener, 127.0.0.1
#   REDIS_PORT            (6379)  Redis, 127.0.0.1
#   PROMETHEUS_PORT       (9090)  Prometheus web/API, 127.0.0.1
#   STACK_COMPONENTS      ("kafka redis prometheus")  subset to act on, e.g. "kafka redis"
#   KAFKA_VERSION         (4.4.0)  4.x or 3.9.x; see deploy/kafka/pom.xml and deploy/local/kafka.sh
#   MARKETSIGNAL_CACHE    (~/.cache/marketsignal)  Maven-resolved Kafka libs, shared by clones
#   KAFKA_HEAP            (512m)   broker -Xms/-Xmx
#   READY_TIMEOUT         (90)     seconds to wait for each component
#   STACK_STATE           (.local)  where state lives; a second stack (e.g. another Kafka version
#                                   on other ports, `make test-kafka-compat`) needs its own
#   REDIS_HA              (unset)  1: Redis is a primary, a replica and 3 sentinels
#                                   (deploy/local/redis_ha.sh, its own ports and state)
#
# State (data, logs, pid files, generated configs) lives in .local/ at the repo root (git-ignored).
# Each Kafka version has its own data directory, .local/kafka/<version>/data: a broker never
# starts on another version's data. While a broker this script started runs, an explicit
# KAFKA_VERSION naming another version is refused (stop it first); without one, it is reused.
# Missing binaries are installed from Debian (redis-server, prometheus) with apt-get; the packaged
# system services are never enabled or left running, the stack runs its own processes.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
STATE="$(realpath -m "${STACK_STATE:-$ROOT/.local}")"
LOGS="$STATE/logs"
RUN="$STATE/run"

KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
REDIS_PORT="${REDIS_PORT:-6379}"
PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}"
STACK_COMPONENTS="${STACK_COMPONENTS:-kafka redis prometheus}"
KAFKA_HEAP="${KAFKA_HEAP:-512m}"
READY_TIMEOUT="${READY_TIMEOUT:-90}"
KAFKA_VERSION_ASKED="${KAFKA_VERSION:-}" # set by the caller, not defaulted: a switch is refused
export KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"

KAFKA_ROOT="$STATE/kafka"
KAFKA_DIR="$KAFKA_ROOT/$KAFKA_VERSION" # per version: data, cluster id, generated config
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_PID="$RUN/kafka.pid"
KAFKA_RUNNING_VERSION="$RUN/kafka.version" # the version of the broker in kafka.pid
KAFKA_LOG="$LOGS/kafka.log"
KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"

REDIS_DIR="$STATE/redis"
REDIS_PID="$RUN/redis.pid"
REDIS_LOG="$LOGS/redis.log"
# Redis runs with a password, as in docker-compose.yml. Generated on first start, read by
# the services' settings (MARKETSIGNAL_REDIS_PASSWORD_FILE, this path by default) and by
# redis-cli here; kept across restarts, deleted by `reset`. Never on a command line.
SECRETS="$STATE/secrets"
REDIS_PASSWORD_FILE="$SECRETS/redis.password"
REDIS_AUTH_CONF="$REDIS_DIR/auth.conf"

PROM_DIR="$STATE/prometheus"
PROM_DATA="$PROM_DIR/data"
PROM_PID="$RUN/prometheus.pid"
PROM_LOG="$LOGS/prometheus.log"
PROM_URL="http://127.0.0.1:$PROMETHEUS_PORT"

say() { printf '[stack] %s\n' "$*"; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

wants() { [[ " $STACK_COMPONENTS " == *" $1 "* ]]; }

# Elapsed wall time since $1 (a $EPOCHREALTIME value), as "6.2".
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# Alive and not a zombie: daemons are reparented to pid 1, which may reap them late.
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [[ -n "$state" && "$state" != Z ]]
}

port_open() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# pid from a pid file, printed only if that process is alive and its command line contains $2
# (so a recycled pid never counts as ours).
live_pid() {
  local file=$1 marker=$2 pid
  [[ -f "$file" ]] || return 1
  pid="$(tr -dc '0-9' <"$file")"
  [[ -n "$pid" ]] && alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker" || return 1
  printf '%s\n' "$pid"
}

tail_log() {
  local file=$1
  [[ -f "$file" ]] || return 0
  printf -- '----- last lines of %s -----\n' "${file#"$ROOT"/}" >&2
  tail -n "${LOG_LINES:-40}" "$file" >&2
  printf -- '-----\n' >&2
}

# ---------------------------------------------------------------- packages

apt_install() {
  # apt-get update only once, and only when an install is needed (fresh CI machines have no lists).
  # A temporary policy-rc.d stops the Debian postinst from starting the packaged daemon
  # (on a machine with a working init, redis-server would otherwise grab 6379 and prometheus 9090).
  local policy=/usr/sbin/policy-rc.d own_policy=""
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
  fi
  if [[ -z "${_APT_UPDATED:-}" ]]; then
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    export _APT_UPDATED=1 # kafka.sh reads it too
  fi
  say "apt-get install -y $*"
  local rc=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null || rc=$?
  if [[ -n "$own_policy" ]]; then rm -f "$policy"; fi
  ((rc == 0)) || die "apt-get install $* failed (exit $rc)"
  # Belt and braces: if a packaged daemon got started anyway, stop it; ours run from .local/.
  local pkg
  for pkg in "$@"; do
    case "$pkg" in
      redis-server | prometheus)
        if command -v service >/dev/null 2>&1 && service "$pkg" status >/dev/null 2>&1; then
          say "stopping the packaged $pkg service that apt started"
          service "$pkg" stop >/dev/null 2>&1 || true
        fi
        ;;
    esac
  done
}

ensure_cmd() { # ensure_cmd COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 || apt_install "$2"
}

# ---------------------------------------------------------------- kafka

kafka_libs() { "$HERE/kafka.sh" libs; } # prints the libs path (installs maven itself if needed)

# A real client request: ApiVersions to the broker through the Java admin client on the cached
# class path $1 (kafka.sh names the class of KAFKA_VERSION: it moved in 4.0). It works without
# the project venv; about 1.5s per attempt, so the loop first waits for the port (cheap) and
# only then asks the broker.
kafka_answers() {
  local libs=$1 cls opt
  cls="$("$HERE/kafka.sh" class api-versions)" && opt="$("$HERE/kafka.sh" log-opt tool)" || return 1
  timeout 30 java -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC "$opt" -cp "$libs/*" \
    "$cls" --bootstrap-server "$KAFKA_BOOTSTRAP" >/dev/null 2>&1
}

# The version of the broker with pid $1 that this script started: the file written at start,
# else (a broker started before that file existed) the versioned libs path on its command line.
kafka_running_version() {
  local pid=$1 version=""
  [[ -f "$KAFKA_RUNNING_VERSION" ]] && version="$(cat "$KAFKA_RUNNING_VERSION")"
  if [[ -z "$version" ]]; then
    version="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null |
      sed -n 's|.*/kafka-\([0-9][0-9.]*\)/libs/\*.*|\1|p')"
  fi
  printf '%s\n' "${version:-unknown}"
}

kafka_write_config() {
  mkdir -p "$KAFKA_DATA"
  cat >"$KAFKA_PROPS" <<EOF
# Generated by deploy/local/stack.sh: single node KRaft, broker and controller in one process.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$KAFKA_DATA
num.partitions=6
auto.create.topics.enable=true
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
num.network.threads=3
num.io.threads=4
log.retention.hours=24
log.segment.bytes=104857600
EOF
}

kafka_up() {
  local t0=$EPOCHREALTIME libs pid running
  ensure_cmd java openjdk-17-jre-headless
  if pid="$(live_pid "$KAFKA_PID" kafka.Kafka)"; then
    running="$(kafka_running_version "$pid")"
    if [[ "$running" != "$KAFKA_VERSION" ]]; then
      [[ -z "$KAFKA_VERSION_ASKED" ]] ||
        die "kafka $running is running (pid $pid, started by this script), KAFKA_VERSION=$KAFKA_VERSION asks for another version: stop it first with \`deploy/local/stack.sh down\` (each version keeps its own data in ${KAFKA_ROOT#"$ROOT"/}/<version>/)"
      say "kafka: NOTE reusing the running Kafka $running (pid $pid), not the default $KAFKA_VERSION; \`deploy/local/stack.sh down\` then \`up\` switches (each version keeps its own data)"
    fi
    libs="$(kafka_libs)"
    kafka_wait "$libs" "$pid" "$t0" reused
    return
  fi
  libs="$(kafka_libs)"
  if port_open "$KAFKA_PORT"; then
    kafka_answers "$libs" || die "port $KAFKA_PORT is taken by something that is not Kafka"
    say "kafka: reusing a broker not started by this script on $KAFKA_BOOTSTRAP"
    return
  fi
  port_open "$KAFKA_CONTROLLER_PORT" && die "controller port $KAFKA_CONTROLLER_PORT is already in use"

  mkdir -p "$LOGS" "$RUN"
  if [[ -d "$KAFKA_ROOT/data" ]]; then
    say "kafka: NOTE ${KAFKA_ROOT#"$ROOT"/}/data predates per-version data directories and is not used; \`deploy/local/stack.sh reset\` deletes it"
  fi
  kafka_write_config
  if [[ ! -f "$KAFKA_DATA/meta.properties" ]]; then
    [[ -s "$KAFKA_DIR/cluster.id" ]] ||
      head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$KAFKA_DIR/cluster.id"
    say "kafka: formatting storage for Kafka $KAFKA_VERSION (cluster id $(cat "$KAFKA_DIR/cluster.id"))"
    # --cluster-id=ID, not --cluster-id ID: a random id starts with '-' one time in 64, and
    # the option parser takes a separate '-...' word for an option.
    printf '[stack] kafka %s: storage format\n' "$KAFKA_VERSION" >>"$KAFKA_LOG"
    "$HERE/kafka.sh" run storage format --cluster-id="$(cat "$KAFKA_DIR/cluster.id")" \
      -c "$KAFKA_PROPS" >>"$KAFKA_LOG" 2>&1 || { tail_log "$KAFKA_LOG"; die "kafka storage format failed"; }
  fi
  printf '[stack] kafka %s: starting, data in %s\n' "$KAFKA_VERSION" "$KAFKA_DATA" >>"$KAFKA_LOG"
  # setsid: the broker gets its own session, so it outlives the shell/make that started it.
  setsid nohup java "-Xms$KAFKA_HEAP" "-Xmx$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    "$("$HERE/kafka.sh" log-opt broker)" -Dkafka.logs.dir="$LOGS" \
    -cp "$libs/*" kafka.Kafka "$KAFKA_PROPS" </dev/null >>"$KAFKA_LOG" 2>&1 &
  echo $! >"$KAFKA_PID"
  printf '%s\n' "$KAFKA_VERSION" >"$KAFKA_RUNNING_VERSION"
  kafka_wait "$libs" "$!" "$t0" started
}

kafka_wait() {
  local libs=$1 pid=$2 t0=$3 how=$4 deadline=$((SECONDS + READY_TIMEOUT))
  until port_open "$KAFKA_PORT" && kafka_answers "$libs"; do
    if ! alive "$pid"; then
      tail_log "$KAFKA_LOG"
      rm -f "$KAFKA_PID" "$KAFKA_RUNNING_VERSION"
      die "kafka (pid $pid) exited during startup"
    fi
    ((SECONDS < deadline)) || { tail_log "$KAFKA_LOG"; die "kafka not ready after ${READY_TIMEOUT}s"; }
    sleep 0.5
  done
  say "kafka ready in $(elapsed "$t0")s ($how, pid $pid, Kafka $(kafka_running_version "$pid"), $KAFKA_BOOTSTRAP)"
}

# ---------------------------------------------------------------- redis

redis_cli() {
  # A passwordless server accepts any AUTH, so the password is sent whenever there is one.
  if [[ -s "$REDIS_PASSWORD_FILE" ]]; then
    REDISCLI_AUTH="$(<"$REDIS_PASSWORD_FILE")" redis-cli --no-auth-warning "$@"
  else
    redis-cli "$@"
  fi
}

redis_ping() { [[ "$(redis_cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

redis_password() { # create the password file once (0600), then the auth config Redis reads
  if [[ ! -s "$REDIS_PASSWORD_FILE" ]]; then
    (umask 077 && mkdir -p "$SECRETS" && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$REDIS_PASSWORD_FILE")
  fi
  (umask 077 && printf 'requirepass %s\n' "$(<"$REDIS_PASSWORD_FILE")" >"$REDIS_AUTH_CONF")
}

redis_up() {
  local t0=$EPOCHREALTIME pid
  ensure_cmd redis-server redis-server
  ensure_cmd redis-cli redis-tools
  if redis_ping; then
    if pid="$(live_pid "$REDIS_PID" redis-server)"; then
      say "redis ready in $(elapsed "$t0")s (reused, pid $pid, 127.0.0.1:$REDIS_PORT)"
    else
      say "redis ready in $(elapsed "$t0")s (reusing a server not started by this script on 127.0.0.1:$REDIS_PORT)"
    fi
    return
  fi
  port_open "$REDIS_PORT" && die "port $REDIS_PORT is taken by something that does not answer PING"
  mkdir -p "$REDIS_DIR" "$LOGS" "$RUN"
  rm -f "$REDIS_PID"
  # AOF, fsynced every second (as in docker-compose.yml): the alerts stream, the dedupe
  # claims and the subscriptions survive a restart. A clean stop (SIGTERM) fsyncs
  # everything; a crash of Redis or the machine loses at most the last second of writes.
  redis_password
  redis-server "$REDIS_AUTH_CONF" --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
    --appendonly yes --appendfsync everysec \
    --daemonize yes --pidfile "$REDIS_PID" --logfile "$REDIS_LOG" --dir "$REDIS_DIR" \
    --notify-keyspace-events KEA ||
    { tail_log "$REDIS_LOG"; die "redis-server failed to start"; }
  local deadline=$((SECONDS + READY_TIMEOUT))
  until redis_ping; do
    ((SECONDS < deadline)) || { tail_log "$REDIS_LOG"; die "redis not ready after ${READY_TIMEOUT}s"; }
    sleep 0.1
  done
  say "redis ready in $(elapsed "$t0")s (started, pid $(cat "$REDIS_PID" 2>/dev/null), 127.0.0.1:$REDIS_PORT)"
}

# ---------------------------------------------------------------- prometheus

prom_ready() { curl -fsS -m 2 "$PROM_URL/-/ready" >/dev/null 2>&1; }

prom_config() {
  if [[ -f "$ROOT/deploy/prometheus/prometheus.yml" ]]; then
    printf '%s\n' "$ROOT/deploy/prometheus/prometheus.yml"
    return
  fi
  mkdir -p "$PROM_DIR"
  cat >"$PROM_DIR/prometheus.yml" <<EOF
# Generated by deploy/local/stack.sh (deploy/prometheus/prometheus.yml does not exist):
# Prometheus scrapes only itself.
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:$PROMETHEUS_PORT"]
EOF
  printf '%s\n' "$PROM_DIR/prometheus.yml"
}

prom_up() {
  local t0=$EPOCHREALTIME pid config
  ensure_cmd prometheus prometheus
  ensure_cmd curl curl
  if pid="$(live_pid "$PROM_PID" prometheus)"; then
    prom_wait "$pid" "$t0" reused
    # Started before deploy/prometheus/prometheus.yml existed (or with another file):
    # it does not scrape the services until restarted (`stack.sh down; stack.sh up`).
    if [[ -f "$ROOT/deploy/prometheus/prometheus.yml" ]] &&
      ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "--config.file=$ROOT/deploy/prometheus/prometheus.yml"; then
      say "prometheus: NOTE pid $pid runs another config than deploy/prometheus/prometheus.yml; restart it to scrape the services"
    fi
    return
  fi
  if port_open "$PROMETHEUS_PORT"; then
    prom_ready || die "port $PROMETHEUS_PORT is taken by something that is not a ready Prometheus"
    say "prometheus: reusing a server not started by this script on $PROM_URL"
    return
  fi
  mkdir -p "$PROM_DATA" "$LOGS" "$RUN"
  config="$(prom_config)"
  # No --web.enable-lifecycle: its POST /-/quit and /-/reload would let anything that can
  # reach 127.0.0.1:9090 (a webhook, once) stop Prometheus. Restart it to reload config.
  setsid nohup prometheus --config.file="$config" --storage.tsdb.path="$PROM_DATA" \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
    </dev/null >>"$PROM_LOG" 2>&1 &
  echo $! >"$PROM_PID"
  prom_wait "$!" "$t0" started
}

prom_wait() {
  local pid=$1 t0=$2 how=$3 deadline=$((SECONDS + READY_TIMEOUT))
  until prom_ready; do
    if ! alive "$pid"; then
      tail_log "$PROM_LOG"
      rm -f "$PROM_PID"
      die "prometheus (pid $pid) exited during startup"
    fi
    ((SECONDS < deadline)) || { tail_log "$PROM_LOG"; die "prometheus not ready after ${READY_TIMEOUT}s"; }
    sleep 0.2
  done
  say "prometheus ready in $(elapsed "$t0")s ($how, pid $pid, $PROM_URL)"
}

# ---------------------------------------------------------------- down / status

stop_pid() { # stop_pid NAME PIDFILE MARKER
  local name=$1 file=$2 marker=$3 pid t0=$EPOCHREALTIME
  if ! pid="$(live_pid "$file" "$marker")"; then
    rm -f "$file"
    say "$name: not running (nothing started by this script)"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
  if alive "$pid"; then
    say "$name: pid $pid still alive after 30s, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.1; done
  fi
  rm -f "$file"
  say "$name: stopped pid $pid in $(elapsed "$t0")s"
}

status_line() { # status_line NAME PIDFILE MARKER ADDRESS PROBE...
  local name=$1 file=$2 marker=$3 addr=$4 pid
  shift 4
  if pid="$(live_pid "$file" "$marker")"; then
    if "$@"; then
      printf '%-11s up        %-24s pid %s\n' "$name" "$addr" "$pid"
    else
      printf '%-11s starting  %-24s pid %s (not answering yet)\n' "$name" "$addr" "$pid"
    fi
  elif "$@"; then
    printf '%-11s up        %-24s (not started by this script)\n' "$name" "$addr"
  else
    printf '%-11s down      %s\n' "$name" "$addr"
  fi
}

kafka_status_probe() {
  port_open "$KAFKA_PORT" || return 1
  # Ask the broker only if the libs are already cached; status never downloads anything.
  local libs="${MARKETSIGNAL_CACHE:-$HOME/.cache/marketsignal}/kafka-$KAFKA_VERSION/libs"
  [[ -d "$libs" ]] || return 0
  kafka_answers "$libs"
}

kafka_status() {
  local line pid
  line="$(status_line kafka "$KAFKA_PID" kafka.Kafka "$KAFKA_BOOTSTRAP" kafka_status_probe)"
  if pid="$(live_pid "$KAFKA_PID" kafka.Kafka)"; then
    line+=", Kafka $(kafka_running_version "$pid")"
  fi
  printf '%s\n' "$line"
}

redis_status_probe() { command -v redis-cli >/dev/null 2>&1 && redis_ping; }

# REDIS_HA=1: redis_ha.sh runs the primary, its replica and the sentinels in place of the
# single Redis (same password file, its own state under $STACK_STATE/redis-ha).
redis_ha() { [[ "${REDIS_HA:-}" == 1 ]]; }
redis_ha_sh() { STACK_STATE="$STATE" bash "$HERE/redis_ha.sh" "$@"; }

# ---------------------------------------------------------------- main

cmd_up() {
  local t0=$EPOCHREALTIME
  wants kafka && kafka_up
  if wants redis; then
    if redis_ha; then
      ensure_cmd redis-server redis-server
      ensure_cmd redis-cli redis-tools
      redis_ha_sh up
    else
      redis_up
    fi
  fi
  wants prometheus && prom_up
  say "stack up in $(elapsed "$t0")s ($STACK_COMPONENTS)"
}

cmd_down() {
  wants prometheus && stop_pid prometheus "$PROM_PID" prometheus
  if wants redis; then
    if redis_ha; then redis_ha_sh down; else stop_pid redis "$REDIS_PID" redis-server; fi
  fi
  if wants kafka; then
    stop_pid kafka "$KAFKA_PID" kafka.Kafka
    rm -f "$KAFKA_RUNNING_VERSION"
  fi
  return 0
}

cmd_status() {
  wants kafka && kafka_status
  if wants redis; then
    if redis_ha; then
      redis_ha_sh status
    else
      status_line redis "$REDIS_PID" redis-server "127.0.0.1:$REDIS_PORT" redis_status_probe
    fi
  fi
  wants prometheus && status_line prometheus "$PROM_PID" prometheus "$PROM_URL" prom_ready
  return 0
}

cmd_reset() {
  cmd_down
  wants kafka && rm -rf "$KAFKA_ROOT" # every version's data, cluster id and config
  if wants redis; then
    redis_ha && redis_ha_sh reset
    rm -rf "$REDIS_DIR" "$REDIS_PASSWORD_FILE"
  fi
  wants prometheus && rm -rf "$PROM_DATA"
  say "data deleted under ${STATE#"$ROOT"/}/ ($STACK_COMPONENTS)"
}

cmd_logs() {
  local name file
  for name in kafka redis prometheus; do
    wants "$name" || continue
    case $name in
      kafka) file=$KAFKA_LOG ;;
      redis)
        if redis_ha; then
          redis_ha_sh logs
          continue
        fi
        file=$REDIS_LOG
        ;;
      prometheus) file=$PROM_LOG ;;
    esac
    if [[ -f "$file" ]]; then
      printf '==> %s <==\n' "${file#"$ROOT"/}"
      tail -n "${LOG_LINES:-30}" "$file"
    else
      printf '==> %s (no log yet) <==\n' "${file#"$ROOT"/}"
    fi
  done
}

# Sourced (deploy/local/cluster.sh reuses the Kafka functions above): define, do not run.
[[ "${BASH_SOURCE[0]}" == "$0" ]] || return 0

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  reset) cmd_reset ;;
  logs) cmd_logs ;;
  *)
    sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
