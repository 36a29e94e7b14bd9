#!/usr/bin/env bash
# The three marketsignal services in the background, on the local stack, under supervisord.
#
#   services.sh up      start supervisord with processor and alerter (if it already runs,
#                       start whatever is stopped, exited or FATAL), load the daily history
#                       $HISTORY (default deploy/demo/bars.csv; empty: none) and wait until
#                       it is merged, then start the ingestor, which replays $FEED (default
#                       deploy/demo/ticks.csv) once
#   services.sh down    stop the services (SIGTERM, SIGKILL after 15 s) and supervisord
#   services.sh status  one line per service (supervisorctl status)
#   services.sh ctl ... any supervisorctl command, e.g. `ctl tail -f processor`
#
# supervisord restarts a crashed processor or alerter at once, and retries a start that
# keeps failing with a growing delay (deploy/local/supervisord.conf). Logs: .local/logs/
# (SV_LOGS), socket and pid file: .local/run/ (SV_RUN). Rules come from MARKETSIGNAL_CONFIG
# when set, else deploy/demo/rules.toml; every other setting from MARKETSIGNAL_* as usual.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export SV_ROOT="$ROOT"
export SV_RUN="${SV_RUN:-$ROOT/.local/run}"
export SV_LOGS="${SV_LOGS:-$ROOT/.local/logs}"
export SV_FEED="${FEED:-$ROOT/deploy/demo/ticks.csv}"
export SV_PROCESSOR_ID="${SV_PROCESSOR_ID:-processor-1}"
export SV_ALERTER_ID="${SV_ALERTER_ID:-alerter-1}"
export MARKETSIGNAL_CONFIG="${MARKETSIGNAL_CONFIG:-$ROOT/deploy/demo/rules.toml}"
HISTORY="${HISTORY-$ROOT/deploy/demo/bars.csv}"
# REDIS_HA=1 (stack.sh runs Redis with a replica and sentinels): the services find the primary
# through the sentinels and count an alert delivered once the replica has it, unless the
# environment already says otherwise.
if [[ "${REDIS_HA:-}" == 1 && -z "${MARKETSIGNAL_REDIS_SENTINELS:-}" ]]; then
  eval "$(bash "$ROOT/deploy/local/redis_ha.sh" env)"
fi
CONF="$ROOT/deploy/local/supervisord.conf"
SUPERVISORD="$ROOT/.venv/bin/supervisord"
CTL=("$ROOT/.venv/bin/supervisorctl" -c "$CONF")
mkdir -p "$SV_RUN" "$SV_LOGS"

# supervisord answers on its socket (a stale socket or pid file does not count).
running() { "${CTL[@]}" pid >/dev/null 2>&1; }

case "${1:-}" in
  up)
    if running; then
      # `start` is a no-op for what runs; it brings back what exited or went FATAL.
      "${CTL[@]}" start processor alerter >/dev/null 2>&1 || true
    else
      rm -f "$SV_RUN/supervisor.sock"
      "$SUPERVISORD" -c "$CONF"
      for _ in $(seq 100); do running && break; sleep 0.1; done
      running || { echo "supervisord did not start; see $SV_LOGS/supervisord.log" >&2; exit 1; }
    fi
    if ! "${CTL[@]}" status ingestor 2>/dev/null | grep -q RUNNING; then
      if [[ -n "$HISTORY" ]]; then
        echo "loading history $HISTORY (log ${SV_LOGS#"$ROOT"/}/history.log)"
        (cd "$ROOT" && "$ROOT/.venv/bin/marketsignal" history load "$HISTORY" --wait 180 \
          >>"$SV_LOGS/history.log" 2>&1)
      fi
      "${CTL[@]}" start ingestor >/dev/null 2>&1 || true
    fi
    "${CTL[@]}" status || true
    ;;
  down)
    if running; then
      # Stops every program (stopwaitsecs each), then supervisord exits.
      "${CTL[@]}" stop all
      pid=$("${CTL[@]}" pid)
      "${CTL[@]}" shutdown >/dev/null
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
      echo "services and supervisord stopped"
    else
      echo "supervisord not running"
    fi
    ;;
  status)
    if running; then
      "${CTL[@]}" status || true # exit status 3 when a program is not RUNNING
    else
      for name in processor alerter ingestor; do printf '%-10s down (supervisord not running)\n' "$name"; done
    fi
    ;;
  ctl)
    shift
    exec "${CTL[@]}" "$@"
    ;;
  *)
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
