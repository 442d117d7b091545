#!/usr/bin/env bash
# Un-enrollment by removing the namespace label: a long-lived connection opened while enrolled
# keeps working; new connections made after the agent applied the change are not captured.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
standard_start
require_binaries zmeshctl
start_server server echo 7000
start_server server http 8080
mesh_up
wait_enrolled demo/client demo/server

stop=$LAB_STATE/stop-longconn
lc_log=$LAB_STATE/logs/longconn.log
lab spawn "$PREFIX" client longconn -- python3 "$LAB_HELPERS/lineclient.py" \
  "$POD_SERVER_IP" 7000 --interval 0.1 --stop-file "$stop" >/dev/null
lc_ok() { tail -n 50 "$lc_log" 2>/dev/null | sed -n 's/^progress ok=\([0-9]*\)$/\1/p' | tail -n 1; }
lc_ok_at_least() { local n; n=$(lc_ok); [[ -n $n ]] && ((n >= $1)); }
wait_for 10 lc_ok_at_least 10
# The connection is captured: the client's socket is connected to ztunnel's 127.0.0.1:15001.
conns=$(lab exec "$PREFIX" client -- ss -Htn state established '( dport = :15001 )')
[[ -n $conns ]] || fail "the long-lived connection is not redirected to 127.0.0.1:15001: $(lab exec "$PREFIX" client -- ss -tn)"
say "ok: long-lived connection captured: $conns"

lab label "$PREFIX" demo off
wait_for 20 pod_not_listed demo/client
wait_for 20 pod_not_listed demo/server
say "ok: agent un-enrolled demo/client and demo/server"

new_before=$(zt_count "dst=$POD_SERVER_IP:8080")
body=$(must_get client "http://$POD_SERVER_IP:8080/")
assert_eq "client=$POD_CLIENT_IP" "${body%:*}" "new connection after un-enrollment"

# The old connection keeps working for at least 2 more seconds (20 more echoes).
ok_now=$(lc_ok)
wait_for 10 lc_ok_at_least $((ok_now + 20))
lab pid "$PREFIX" longconn >/dev/null || fail "the long-lived client died: $(tail -n 5 "$lc_log")"
touch "$stop"
wait_for 10 proc_gone longconn
grep -q '^FAIL' "$lc_log" && fail "long-lived connection broke: $(grep '^FAIL' "$lc_log")"
assert_contains "$(tail -n 1 "$lc_log")" "done sent=" "long-lived client summary"

# Barrier: the long-lived connection's own access line (logged at close).
wait_zt_line 0 10 dir=outbound "dst=$POD_SERVER_IP:7000"
assert_eq "$new_before" "$(zt_count "dst=$POD_SERVER_IP:8080")" "ztunnel lines for the new connection after un-enrollment"
