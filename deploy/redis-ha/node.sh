#!/bin/sh
# Start one Redis node of docker-compose.redis-ha.yml in the role the sentinels give it.
#
#   node.sh SELF [INITIAL_PRIMARY]   SELF: this node's host name; INITIAL_PRIMARY: the node to
#                                     replicate on a first start (none: start as the primary)
#
# The password comes from $REDISCLI_AUTH (the container's environment), never the command line.
# Asked first: the sentinels. If they name another node, this one starts as its replica. If
# they still name this node (it crashed and its container restarted before they decided), it
# has them fail over to its replica first: back from a crash it holds only what its
# append-only file had (up to a second less), and a replica resyncing from it would drop
# writes it had already confirmed to the alerter's WAIT. (deploy/local/redis_ha.sh does the
# same for the local stack.)
set -eu
SELF=$1
INITIAL=${2:-}
MASTER=marketsignal
SENTINELS="sentinel-1 sentinel-2 sentinel-3"

named() { # "host port" the first answering sentinel names
  for s in $SENTINELS; do
    out=$(redis-cli --no-auth-warning -h "$s" -p 26379 sentinel get-master-addr-by-name "$MASTER" 2>/dev/null | tr '\n' ' ') || continue
    case "$out" in *[0-9]" ") echo "${out% }"; return 0 ;; esac
  done
  return 1
}

role_args=""
if primary=$(named); then
  host=${primary% *}
  if [ "$host" = "$SELF" ]; then
    for s in $SENTINELS; do
      redis-cli --no-auth-warning -h "$s" -p 26379 sentinel failover "$MASTER" >/dev/null 2>&1 && break
    done
    i=0
    while [ "$i" -lt 300 ] && [ "$(named | cut -d' ' -f1)" = "$SELF" ]; do sleep 0.1; i=$((i + 1)); done
    primary=$(named) || true
    host=${primary% *}
  fi
  if [ -n "$host" ] && [ "$host" != "$SELF" ]; then role_args="--replicaof $primary"; fi
elif [ -n "$INITIAL" ]; then
  role_args="--replicaof $INITIAL 6379"
fi
# repl-diskless-sync-delay 0: a full sync starts at once (Redis 7 otherwise waits 5 s for
# more replicas), and the alerter's WAIT is met again as soon as the replica has synced.
# shellcheck disable=SC2086 # role_args: several words on purpose
exec redis-server --requirepass "$REDISCLI_AUTH" --masterauth "$REDISCLI_AUTH" \
  --appendonly yes --appendfsync everysec --replica-announce-ip "$SELF" \
  --repl-diskless-sync-delay 0 $role_args
