#!/usr/bin/env bash
# Inbound capture: a pod outside the mesh (legacy namespace) connects to an enrolled server;
# sk_lookup steers it to ztunnel's inbound listener (dir=inbound line naming the legacy pod's
# IP), and the server sees the legacy pod's real IP.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
standard_start
start_server server http 8080
mesh_up
wait_enrolled demo/server

before=$(zt_count dir=inbound "src=$POD_LEGACY_IP:" "dst=$POD_SERVER_IP:8080")
out_before=$(zt_count dir=outbound "src=$POD_LEGACY_IP:")
body=$(must_get legacy "http://$POD_SERVER_IP:8080/")
assert_eq "client=$POD_LEGACY_IP" "${body%:*}" "server's view of the legacy client"
wait_zt_line "$before" 10 dir=inbound "src=$POD_LEGACY_IP:" "dst=$POD_SERVER_IP:8080"
assert_eq "$out_before" "$(zt_count dir=outbound "src=$POD_LEGACY_IP:")" "outbound lines for the un-enrolled legacy pod"

# A closed app port: the app's RST for ztunnel's transparent SYN must come back to ztunnel
# (fwmark_reflect in the pod), which then resets the client at once — not leak to the client
# while ztunnel waits for its connect timeout.
before=$(zt_count dir=inbound "dst=$POD_SERVER_IP:9 " result=connect-refused)
t0=$(now_ms)
rc=0
http_get legacy "http://$POD_SERVER_IP:9/" >/dev/null 2>&1 || rc=$?
elapsed=$(($(now_ms) - t0))
((rc != 0)) || fail "closed port 9 answered"
((elapsed < 3000)) || fail "refusing closed port 9 took ${elapsed} ms: the app's RST did not reach ztunnel"
wait_zt_line "$before" 10 dir=inbound "dst=$POD_SERVER_IP:9 " result=connect-refused
say "ok: closed port refused in ${elapsed} ms"
