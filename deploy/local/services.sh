#!/usr/bin/env bash
# The three marketsignal services in the background, on the local stack.
#
#   services.sh up      start processor and alerter (if not running), load the daily
#                       history $HISTORY (default deploy/demo/bars.csv; empty: none) and
#                       wait until it is merged, then replay $FEED (default
#                       deploy/demo/ticks.csv) with the ingestor in the background
#   services.sh down    stop them (SIGTERM, then SIGKILL after 30 s)
#   services.sh status  one line per service
#
# Pids and logs live in .local/run/ and .local/logs/. Rules come from MARKETSIGNAL_CONFIG
# when set, else deploy/demo/rules.toml; every other setting from MARKETSIGNAL_* as usual.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUN="$ROOT/.local/run"
LOGS="$ROOT/.local/logs"
CLI=("$ROOT/.venv/bin/marketsignal")
export MARKETSIGNAL_CONFIG="${MARKETSIGNAL_CONFIG:-$ROOT/deploy/demo/rules.toml}"
FEED="${FEED:-$ROOT/deploy/demo/ticks.csv}"
HISTORY="${HISTORY-$ROOT/deploy/demo/bars.csv}"
mkdir -p "$RUN" "$LOGS"

alive() { [[ -f "$RUN/$1.pid" ]] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

start() {
  local name=$1
  shift
  if alive "$name"; then
    echo "$name already running (pid $(cat "$RUN/$name.pid"))"
    return 0
  fi
  # cd first, then start: `cd && cmd &` would background a subshell and $! would be its
  # pid, not the service's, and `down` would leave the service running.
  cd "$ROOT"
  nohup "${CLI[@]}" "$@" >>"$LOGS/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
  echo "$name started (pid $(cat "$RUN/$name.pid")), log .local/logs/$name.log"
}

stop() {
  local name=$1 pid waited=0
  alive "$name" || { rm -f "$RUN/$name.pid"; return 0; }
  pid=$(cat "$RUN/$name.pid")
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && ((waited < 300)); do
    sleep 0.1
    waited=$((waited + 1))
  done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$RUN/$name.pid"
  echo "$name stopped"
}

case "${1:-}" in
  up)
    start processor process
    start alerter alert
    if [[ -n "$HISTORY" ]] && ! alive ingestor; then
      echo "loading history $HISTORY (log .local/logs/history.log)"
      (cd "$ROOT" && "${CLI[@]}" history load "$HISTORY" --wait 180 >>"$LOGS/history.log" 2>&1)
    fi
    start ingestor ingest "$FEED"
    ;;
  down)
    for name in ingestor alerter processor; do stop "$name"; done
    ;;
  status)
    for name in processor alerter ingestor; do
      if alive "$name"; then
        printf '%-10s up        pid %s\n' "$name" "$(cat "$RUN/$name.pid")"
      else
        printf '%-10s down\n' "$name"
      fi
    done
    ;;
  *)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
