#!/bin/sh
# One sentinel of docker-compose.redis-ha.yml. Its config is written on the first start only
# (Sentinel rewrites it with what it learns: the current primary, replicas, other sentinels),
# in the container's volume, with the password from $REDISCLI_AUTH, never on a command line.
set -eu
SELF=$1
CONF=/data/sentinel.conf
if [ ! -f "$CONF" ]; then
  umask 077
  cat >"$CONF" <<CONF
port 26379
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $SELF
requirepass $REDISCLI_AUTH
sentinel monitor marketsignal redis 6379 2
sentinel auth-pass marketsignal $REDISCLI_AUTH
sentinel sentinel-pass $REDISCLI_AUTH
sentinel down-after-milliseconds marketsignal 3000
sentinel failover-timeout marketsignal 10000
sentinel parallel-syncs marketsignal 1
CONF
fi
exec redis-server "$CONF" --sentinel
