#!/usr/bin/env bash
# ztunnel's SIGTERM drain with no successor: it stops accepting at once (new connections fail
# closed, never bypass), keeps the connections in flight working and ends them at
# --drain-seconds; /healthz/ready says 503 while it drains.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export ZTUNNEL_EXTRA_ARGS="--drain-seconds 3"
standard_start
start_server server http 8080
start_server server echo 9000
mesh_up
wait_enrolled demo/client demo/server

lab spawn "$PREFIX" client longconn -- python3 "$LAB_HELPERS/lineclient.py" \
  "$POD_SERVER_IP" 9000 --interval 0.1 >/dev/null
long_log=$LAB_STATE/logs/longconn.log
long_progress() { (($(grep -c '^progress' "$long_log" 2>/dev/null || true) >= $1)); }
wait_for 10 long_progress 1

lab kill "$PREFIX" ztunnel-node1 TERM
zlog=$(zt_log)
draining() { (($(log_count "$zlog" "draining: listeners closed") >= 1)); }
wait_for 5 draining
t0=$(now_ms)

rc=0
out=$(http_get client "http://$POD_SERVER_IP:8080/" 2>&1) || rc=$?
say "a new connection while draining: curl exit $rc: $out"
[[ $rc == 7 || $rc == 56 ]] || fail "new connection during the drain: expected curl exit 7 or 56, got $rc ($out)"
code=$(lab exec "$PREFIX" node1 -- curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
  http://127.0.0.1:15020/healthz/ready || true)
say "readiness while draining: $code"
[[ $code != 200 ]] || fail "ztunnel reported ready while draining"

# The connection in flight keeps working during the drain.
n=$(grep -c '^progress' "$long_log" || true)
wait_for 3 long_progress $((n + 1))
lab pid "$PREFIX" ztunnel-node1 >/dev/null || fail "ztunnel exited with a connection in flight before its deadline"

wait_for 10 proc_gone ztunnel-node1
took=$(($(now_ms) - t0))
say "ztunnel exited ${took} ms after starting to drain"
assert_ge 1 "$(log_count "$zlog" "drain deadline (3 s) reached: closing")" \
  "the drain deadline ended the connection"
assert_ge 2500 "$took" "ms the drain waited"
wait_for 10 proc_gone longconn
