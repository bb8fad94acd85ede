#!/usr/bin/env bash
# Everything the test suite talks to: Redis and PostgreSQL (installed and started if missing), a
# 3-master Redis Cluster on 7000-7002 and a real S3 server (radosgw) on 7480.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v psql >/dev/null || need_apt+=(postgresql)
command -v radosgw >/dev/null || need_apt+=(radosgw ceph-mon ceph-osd)
command -v curl >/dev/null || need_apt+=(curl)
command -v chromium >/dev/null || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  until redis-cli -p 6379 ping >/dev/null 2>&1; do sleep 0.1; done
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if ls /etc/postgresql/*/main >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
  else
    echo "no PostgreSQL cluster found" >&2; exit 1
  fi
fi
"$here/redis-cluster-up.sh"
"$here/s3-up.sh"
echo "services: redis $(redis-cli -p 6379 ping), postgres $(pg_isready -h 127.0.0.1 -p 5432 >/dev/null && echo ready), cluster 7000-7002, s3 7480"
