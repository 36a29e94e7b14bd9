#!/usr/bin/env bash
# Redis with a replica behind Sentinel, for the local stack: `REDIS_HA=1 stack.sh up` calls it
# in place of the single Redis (docs/reliability.md, "Redis failover").
#
#   deploy/local/redis_ha.sh up       start what is not running: 2 Redis nodes (the first the
#                                     primary on a fresh start, the second its replica) and 3
#                                     sentinels (quorum 2); wait until each answers
#   deploy/local/redis_ha.sh down     stop what this script started (pid files), TERM then KILL
#   deploy/local/redis_ha.sh status   one line per node (its role) and per sentinel
#   deploy/local/redis_ha.sh reset    down, then delete the nodes' data and sentinels' state
#   deploy/local/redis_ha.sh env      the settings that point the services at the sentinels
#   deploy/local/redis_ha.sh node-up N / node-kill N   one node (the fault tests use them)
#
# Environment (defaults in parentheses):
#   REDIS_PORT                 (6379)   node 1, 127.0.0.1
#   REDIS_HA_REPLICA_PORT      (6380)   node 2, 127.0.0.1
#   REDIS_HA_SENTINEL_PORTS    ("26379 26380 26381")
#   REDIS_HA_MASTER            (marketsignal)  the name the sentinels monitor
#   REDIS_HA_QUORUM            (2)      sentinels that must agree the primary is down
#   REDIS_HA_DOWN_AFTER_MS     (3000)   unanswered this long, a sentinel deems it down
#   REDIS_HA_FAILOVER_TIMEOUT_MS (10000)
#   STACK_STATE                (.local) as stack.sh; state in $STACK_STATE/redis-ha/
#
# Every process gets the stack's Redis password (stack.sh's $STACK_STATE/secrets/redis.password,
# created here if missing) from a 0600 config file, never from its command line: `requirepass`
# and `masterauth` for the nodes, `requirepass`, `auth-pass` and `sentinel-pass` for the
# sentinels. A node's config and a sentinel's are written once; from then on Redis and Sentinel
# rewrite them (a failover records the new primary there), so `up` after `down` resumes the
# topology as the sentinels left it.
#
# A node (re)started while the sentinels know the cluster starts as the replica of the primary
# they name. If they still name the node itself (it died and comes back before they decided),
# `node-up` first has them fail over to the replica that is up: a primary back from a crash
# holds only what its append-only file had (up to a second less), and a replica resyncing from
# it would drop writes it had already confirmed to the alerter's WAIT.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
STATE="$(realpath -m "${STACK_STATE:-$ROOT/.local}")"
LOGS="$STATE/logs"
RUN="$STATE/run"
HA="$STATE/redis-ha"
SECRETS="$STATE/secrets"
PASSWORD_FILE="$SECRETS/redis.password"

NODE_PORTS=("${REDIS_PORT:-6379}" "${REDIS_HA_REPLICA_PORT:-6380}")
read -r -a SENTINEL_PORTS <<<"${REDIS_HA_SENTINEL_PORTS:-26379 26380 26381}"
MASTER="${REDIS_HA_MASTER:-marketsignal}"
QUORUM="${REDIS_HA_QUORUM:-2}"
DOWN_AFTER_MS="${REDIS_HA_DOWN_AFTER_MS:-3000}"
FAILOVER_TIMEOUT_MS="${REDIS_HA_FAILOVER_TIMEOUT_MS:-10000}"
READY_TIMEOUT="${READY_TIMEOUT:-90}"

say() { printf '[redis-ha] %s\n' "$*"; }
die() { printf '[redis-ha] ERROR: %s\n' "$*" >&2; exit 1; }
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [[ -n "$state" && "$state" != Z ]]
}

# The pid in a pid file, if alive and its command line contains $2 (a recycled pid never counts).
live_pid() {
  local file=$1 marker=$2 pid
  [[ -f "$file" ]] || return 1
  pid="$(tr -dc '0-9' <"$file")"
  [[ -n "$pid" ]] && alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker" || return 1
  printf '%s\n' "$pid"
}

port_open() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# redis-cli with the password from the environment (REDISCLI_AUTH), never an argument.
cli() { REDISCLI_AUTH="$(<"$PASSWORD_FILE")" redis-cli --no-auth-warning -h 127.0.0.1 "$@"; }

ping() { [[ "$(cli -p "$1" ping 2>/dev/null)" == PONG ]]; }

ensure_binaries() { # stack.sh installs Debian's redis-server when it calls this script
  command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 ||
    die "redis-server and redis-cli are needed: \`REDIS_HA=1 deploy/local/stack.sh up\` installs them"
}

ensure_password() {
  [[ -s "$PASSWORD_FILE" ]] && return 0
  (umask 077 && mkdir -p "$SECRETS" && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$PASSWORD_FILE")
}

# ---------------------------------------------------------------- nodes

node_dir() { printf '%s/node%s\n' "$HA" "$1"; }
node_pid() { printf '%s/redis-ha-node%s.pid\n' "$RUN" "$1"; }
node_log() { printf '%s/redis-ha-node%s.log\n' "$LOGS" "$1"; }

node_config() { # written once: Redis rewrites it when Sentinel reconfigures the node
  local n=$1 dir conf
  dir="$(node_dir "$n")"
  conf="$dir/redis.conf"
  [[ -f "$conf" ]] && return 0
  mkdir -p "$dir"
  (
    umask 077
    cat >"$conf" <<EOF
# Generated once by deploy/local/redis_ha.sh; Redis rewrites it on a Sentinel reconfiguration.
port ${NODE_PORTS[$((n - 1))]}
bind 127.0.0.1
dir $dir
daemonize yes
pidfile $(node_pid "$n")
logfile $(node_log "$n")
save ""
appendonly yes
appendfsync everysec
notify-keyspace-events KEA
requirepass $(<"$PASSWORD_FILE")
masterauth $(<"$PASSWORD_FILE")
replica-announce-ip 127.0.0.1
# A full sync starts at once: Redis 7 otherwise waits 5 s for more replicas to share a
# diskless transfer, and WAIT (the alerter's) cannot be met until the replica has synced.
repl-diskless-sync-delay 0
EOF
    # The second node starts as the first one's replica; later starts ask the sentinels.
    if ((n == 2)); then printf 'replicaof 127.0.0.1 %s\n' "${NODE_PORTS[0]}" >>"$conf"; fi
  )
}

# "host port" of the primary the sentinels name, from the first sentinel that answers.
sentinel_master() {
  local port answer
  for port in "${SENTINEL_PORTS[@]}"; do
    answer="$(cli -p "$port" sentinel get-master-addr-by-name "$MASTER" 2>/dev/null | tr '\n' ' ')" || continue
    [[ "$answer" =~ ^[0-9a-f.:]+\ [0-9]+\ $ ]] || continue
    printf '%s\n' "${answer% }"
    return 0
  done
  return 1
}

node_role() { cli -p "$1" role 2>/dev/null | head -1; }

# The other node, if it is up as a replica: the one a failover would promote.
replica_up() {
  local port=$1
  ping "$port" && [[ "$(node_role "$port")" == slave ]]
}

# Have the sentinels promote the replica before node $1 (their primary, down) starts again.
failover_first() {
  local n=$1 port=${NODE_PORTS[$(($1 - 1))]} other=${NODE_PORTS[$((2 - $1))]} s deadline t0=$EPOCHREALTIME
  replica_up "$other" || return 0
  say "node $n (:$port) is down but still the primary the sentinels name: failing over to :$other first"
  for s in "${SENTINEL_PORTS[@]}"; do
    # NOGOODSLAVE/INPROG: another sentinel may already be at it; the wait below decides.
    cli -p "$s" sentinel failover "$MASTER" >/dev/null 2>&1 && break
  done
  deadline=$((SECONDS + READY_TIMEOUT))
  until [[ "$(sentinel_master)" == "127.0.0.1 $other" ]]; do
    ((SECONDS < deadline)) || die "the sentinels did not promote :$other within ${READY_TIMEOUT}s"
    sleep 0.1
  done
  say "sentinels promoted :$other in $(elapsed "$t0")s"
}

node_up() {
  local n=$1 port=${NODE_PORTS[$(($1 - 1))]} pid t0=$EPOCHREALTIME master args=()
  if pid="$(live_pid "$(node_pid "$n")" redis-server)" && ping "$port"; then
    say "node $n ready (reused, pid $pid, 127.0.0.1:$port, $(node_role "$port"))"
    return 0
  fi
  port_open "$port" && die "port $port is taken by something that is not this node"
  mkdir -p "$LOGS" "$RUN"
  node_config "$n"
  if master="$(sentinel_master)"; then
    if [[ "$master" == "127.0.0.1 $port" ]]; then
      failover_first "$n"
      master="$(sentinel_master)"
    fi
    if [[ "$master" == "127.0.0.1 $port" ]]; then
      args=(--replicaof no one)
    else
      # shellcheck disable=SC2206 # "host port", two words on purpose
      args=(--replicaof $master)
    fi
  fi
  rm -f "$(node_pid "$n")"
  redis-server "$(node_dir "$n")/redis.conf" "${args[@]}" ||
    { tail -n 20 "$(node_log "$n")" >&2; die "node $n failed to start"; }
  local deadline=$((SECONDS + READY_TIMEOUT))
  until ping "$port"; do
    ((SECONDS < deadline)) || { tail -n 20 "$(node_log "$n")" >&2; die "node $n not ready after ${READY_TIMEOUT}s"; }
    sleep 0.05
  done
  say "node $n ready in $(elapsed "$t0")s (started, pid $(cat "$(node_pid "$n")"), 127.0.0.1:$port, $(node_role "$port"))"
}

# ---------------------------------------------------------------- sentinels

sentinel_dir() { printf '%s/sentinel%s\n' "$HA" "$1"; }
sentinel_pid() { printf '%s/redis-ha-sentinel%s.pid\n' "$RUN" "$1"; }
sentinel_log() { printf '%s/redis-ha-sentinel%s.log\n' "$LOGS" "$1"; }

sentinel_config() { # written once: Sentinel keeps its view of the topology in it
  local i=$1 dir conf pw
  dir="$(sentinel_dir "$i")"
  conf="$dir/sentinel.conf"
  [[ -f "$conf" ]] && return 0
  mkdir -p "$dir"
  pw="$(<"$PASSWORD_FILE")"
  (
    umask 077
    cat >"$conf" <<EOF
# Generated once by deploy/local/redis_ha.sh; Sentinel rewrites it (its id, the current
# primary, the replicas and sentinels it found).
port ${SENTINEL_PORTS[$((i - 1))]}
bind 127.0.0.1
dir $dir
daemonize yes
pidfile $(sentinel_pid "$i")
logfile $(sentinel_log "$i")
requirepass $pw
sentinel announce-ip 127.0.0.1
sentinel monitor $MASTER 127.0.0.1 ${NODE_PORTS[0]} $QUORUM
sentinel auth-pass $MASTER $pw
sentinel sentinel-pass $pw
sentinel down-after-milliseconds $MASTER $DOWN_AFTER_MS
sentinel failover-timeout $MASTER $FAILOVER_TIMEOUT_MS
sentinel parallel-syncs $MASTER 1
EOF
  )
}

sentinel_up() {
  local i=$1 port=${SENTINEL_PORTS[$(($1 - 1))]} pid t0=$EPOCHREALTIME
  if pid="$(live_pid "$(sentinel_pid "$i")" redis-server)" && ping "$port"; then
    say "sentinel $i ready (reused, pid $pid, 127.0.0.1:$port)"
    return 0
  fi
  port_open "$port" && die "port $port is taken by something that is not this sentinel"
  mkdir -p "$LOGS" "$RUN"
  sentinel_config "$i"
  rm -f "$(sentinel_pid "$i")"
  redis-server "$(sentinel_dir "$i")/sentinel.conf" --sentinel ||
    { tail -n 20 "$(sentinel_log "$i")" >&2; die "sentinel $i failed to start"; }
  local deadline=$((SECONDS + READY_TIMEOUT))
  until ping "$port"; do
    ((SECONDS < deadline)) || { tail -n 20 "$(sentinel_log "$i")" >&2; die "sentinel $i not ready after ${READY_TIMEOUT}s"; }
    sleep 0.05
  done
  say "sentinel $i ready in $(elapsed "$t0")s (started, pid $(cat "$(sentinel_pid "$i")"), 127.0.0.1:$port)"
}

# Ready: every sentinel names a primary that answers, and it has a replica online.
topology_ready() {
  local master port
  master="$(sentinel_master)" || return 1
  port="${master#* }"
  [[ "$(cli -p "$port" info replication 2>/dev/null | tr -d '\r' | grep -c '^slave[0-9]*:.*state=online')" -ge 1 ]] || return 1
  for port in "${SENTINEL_PORTS[@]}"; do
    [[ "$(cli -p "$port" sentinel get-master-addr-by-name "$MASTER" 2>/dev/null | tr '\n' ' ')" == "${master} " ]] || return 1
  done
}

# ---------------------------------------------------------------- stop / status

stop_pid() { # stop_pid NAME PIDFILE [SIGNAL]
  local name=$1 file=$2 sig=${3:-TERM} pid t0=$EPOCHREALTIME deadline
  if ! pid="$(live_pid "$file" redis-server)"; then
    rm -f "$file"
    return 0
  fi
  kill "-$sig" "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 30))
  while alive "$pid" && ((SECONDS < deadline)); do sleep 0.05; done
  if alive "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.05; done
  fi
  rm -f "$file"
  say "$name: stopped pid $pid ($sig) in $(elapsed "$t0")s"
}

cmd_up() {
  local t0=$EPOCHREALTIME i deadline
  ensure_binaries
  ensure_password
  mkdir -p "$HA"
  # Sentinels first when they have run before: a node then starts in the role they hold.
  if [[ -f "$(sentinel_dir 1)/sentinel.conf" ]]; then
    for i in "${!SENTINEL_PORTS[@]}"; do sentinel_up $((i + 1)); done
    # The primary they name first, then its replica: started the other way round, the
    # replica would be promoted over the primary that has the latest writes.
    local order=(1 2)
    [[ "$(sentinel_master || true)" == "127.0.0.1 ${NODE_PORTS[1]}" ]] && order=(2 1)
    for i in "${order[@]}"; do node_up "$i"; done
  else
    for i in 1 2; do node_up "$i"; done
    for i in "${!SENTINEL_PORTS[@]}"; do sentinel_up $((i + 1)); done
  fi
  deadline=$((SECONDS + READY_TIMEOUT))
  until topology_ready; do
    ((SECONDS < deadline)) || { cmd_status >&2; die "no primary with an online replica that every sentinel names after ${READY_TIMEOUT}s"; }
    sleep 0.1
  done
  say "redis HA ready in $(elapsed "$t0")s (primary $(sentinel_master | tr ' ' ':'), sentinels ${SENTINEL_PORTS[*]})"
}

cmd_down() {
  local i
  for i in "${!SENTINEL_PORTS[@]}"; do stop_pid "sentinel $((i + 1))" "$(sentinel_pid $((i + 1)))"; done
  for i in 1 2; do stop_pid "node $i" "$(node_pid "$i")"; done
}

cmd_status() {
  local i port pid role
  for i in 1 2; do
    port=${NODE_PORTS[$((i - 1))]}
    if pid="$(live_pid "$(node_pid "$i")" redis-server)" && ping "$port"; then
      role="$(node_role "$port")"
      [[ "$role" == slave ]] && role="replica of $(cli -p "$port" info replication | tr -d '\r' | sed -n 's/^master_port://p') ($(cli -p "$port" info replication | tr -d '\r' | sed -n 's/^master_link_status://p'))"
      [[ "$role" == master ]] && role="primary, $(cli -p "$port" info replication | tr -d '\r' | sed -n 's/^connected_slaves://p') replica(s)"
      printf '%-11s up        %-24s pid %s, %s\n' "redis-$i" "127.0.0.1:$port" "$pid" "$role"
    else
      printf '%-11s down      %s\n' "redis-$i" "127.0.0.1:$port"
    fi
  done
  for i in "${!SENTINEL_PORTS[@]}"; do
    port=${SENTINEL_PORTS[$i]}
    if pid="$(live_pid "$(sentinel_pid $((i + 1)))" redis-server)" && ping "$port"; then
      printf '%-11s up        %-24s pid %s, primary %s\n' "sentinel-$((i + 1))" "127.0.0.1:$port" "$pid" \
        "$(cli -p "$port" sentinel get-master-addr-by-name "$MASTER" 2>/dev/null | paste -sd: -)"
    else
      printf '%-11s down      %s\n' "sentinel-$((i + 1))" "127.0.0.1:$port"
    fi
  done
}

cmd_env() {
  local list="" port
  for port in "${SENTINEL_PORTS[@]}"; do list+="${list:+,}127.0.0.1:$port"; done
  printf 'export MARKETSIGNAL_REDIS_SENTINELS=%s\n' "$list"
  printf 'export MARKETSIGNAL_REDIS_SENTINEL_MASTER=%s\n' "$MASTER"
  printf 'export MARKETSIGNAL_REDIS_MIN_REPLICAS=%s\n' "${MARKETSIGNAL_REDIS_MIN_REPLICAS:-1}"
}

cmd_logs() {
  local f
  for f in "$LOGS"/redis-ha-*.log; do
    [[ -f "$f" ]] || continue
    printf '==> %s <==\n' "${f#"$ROOT"/}"
    tail -n "${LOG_LINES:-30}" "$f"
  done
}

node_number() { [[ "${1:-}" == 1 || "${1:-}" == 2 ]] || die "node 1 or 2, not '${1:-}'"; }

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  reset)
    cmd_down
    rm -rf "$HA"
    say "data deleted under ${HA#"$ROOT"/}"
    ;;
  env) cmd_env ;;
  logs) cmd_logs ;;
  node-up) node_number "${2:-}" && ensure_password && node_up "$2" ;;
  node-kill) node_number "${2:-}" && stop_pid "node $2" "$(node_pid "$2")" KILL ;;
  *)
    sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
