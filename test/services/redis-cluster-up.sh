#!/usr/bin/env bash
# A 3-master Redis Cluster on 127.0.0.1:7000-7002 (no replicas, no persistence) for the tests.
# Idempotent: an already healthy cluster on these ports is left as it is.
set -euo pipefail
BASE=${REDIS_CLUSTER_DIR:-${TMPDIR:-/tmp}/tributary-services/rcluster}
PORTS=${REDIS_CLUSTER_PORTS:-"7000 7001 7002"}
first=${PORTS%% *}
if [ "$(redis-cli -p "$first" cluster info 2>/dev/null | tr -d '\r' | grep cluster_state | cut -d: -f2)" = ok ]; then
  echo "redis cluster already ok on ports: $PORTS"; exit 0
fi
mkdir -p "$BASE"
for p in $PORTS; do
  [ -f "$BASE/$p/redis.pid" ] && kill "$(cat "$BASE/$p/redis.pid")" 2>/dev/null || true
done
sleep 0.2
for p in $PORTS; do
  rm -rf "$BASE/$p"; mkdir -p "$BASE/$p"
  redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file "$BASE/$p/nodes.conf" \
    --cluster-node-timeout 2000 --save "" --appendonly no --dir "$BASE/$p" \
    --daemonize yes --pidfile "$BASE/$p/redis.pid" --logfile "$BASE/$p/redis.log"
done
for p in $PORTS; do until redis-cli -p "$p" ping >/dev/null 2>&1; do sleep 0.1; done; done
redis-cli --cluster create $(for p in $PORTS; do printf '127.0.0.1:%s ' "$p"; done) --cluster-replicas 0 --cluster-yes >"$BASE/create.log"
until [ "$(redis-cli -p "$first" cluster info | tr -d '\r' | grep cluster_state | cut -d: -f2)" = ok ]; do sleep 0.1; done
echo "redis cluster ok on ports: $PORTS"
