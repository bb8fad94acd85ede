#!/usr/bin/env bash
# A real S3 server for the tests: single-node throwaway Ceph (mon + memstore OSD, no auth) and
# radosgw on 127.0.0.1:7480, access key `test` / secret `testsecret`. Idempotent.
set -euo pipefail
D=${CEPH_DIR:-${TMPDIR:-/tmp}/tributary-services/ceph}
RGW_PORT=${RGW_PORT:-7480}
if curl -s -o /dev/null "http://127.0.0.1:$RGW_PORT/"; then echo "radosgw already up on $RGW_PORT"; exit 0; fi
"$(dirname "$0")/s3-down.sh" || true
rm -rf "$D"; mkdir -p "$D/run" "$D/log" "$D/mon.a" "$D/osd.0" "$D/rgw"
FSID=$(cat /proc/sys/kernel/random/uuid)
CONF="$D/ceph.conf"
cat > "$CONF" <<CONF
[global]
fsid = $FSID
mon host = v1:127.0.0.1:6789
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
ms bind ipv6 = false
public addr = 127.0.0.1
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
osd crush chooseleaf type = 0
run dir = $D/run
admin socket = $D/run/\$name.asok
pid file = $D/run/\$name.pid
log file = $D/log/\$name.log
mon data = $D/mon.\$id
osd data = $D/osd.\$id
osd objectstore = memstore
osd crush update on start = false
osd class update on start = false
memstore device bytes = 2147483648
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw data = $D/rgw
rgw dns name = localhost
CONF
monmaptool --create --addv a "[v1:127.0.0.1:6789]" --fsid "$FSID" "$D/monmap" >/dev/null
ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-mon -c "$CONF" --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring"
ceph-mon -c "$CONF" -i a
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
OSD_ID=$(ceph -c "$CONF" osd new "$OSD_UUID")
ceph-osd -c "$CONF" -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID" 2>>"$D/log/osd-mkfs.log"
ceph -c "$CONF" osd crush add-bucket localhost host >/dev/null
ceph -c "$CONF" osd crush move localhost root=default >/dev/null
ceph -c "$CONF" osd crush add "osd.$OSD_ID" 1.0 host=localhost >/dev/null
ceph-osd -c "$CONF" -i "$OSD_ID"
for i in $(seq 1 100); do ceph -c "$CONF" osd stat 2>/dev/null | grep -q "1 up" && break; sleep 0.3; done
radosgw -c "$CONF" -n client.rgw
for i in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$RGW_PORT/" && break; sleep 0.3; done
radosgw-admin -c "$CONF" user create --uid=test --display-name=test --access-key=test --secret-key=testsecret >/dev/null
echo "radosgw up: http://127.0.0.1:$RGW_PORT (access key test / secret testsecret)"
