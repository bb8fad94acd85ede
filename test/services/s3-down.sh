#!/usr/bin/env bash
# Stop rgw, then the OSD (while the monitor is still up so it can report), then the monitor.
D=${CEPH_DIR:-${TMPDIR:-/tmp}/tributary-services/ceph}
for n in client.rgw osd.0 mon.a; do
  f="$D/run/$n.pid"; [ -f "$f" ] || continue; pid=$(cat "$f")
  kill "$pid" 2>/dev/null || continue
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
done
