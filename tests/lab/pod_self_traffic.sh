#!/usr/bin/env bash
# A pod talking to itself (127.0.0.1 and its own pod IP) is never captured.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
standard_start
start_server server http 8080
mesh_up
wait_enrolled demo/client demo/server

self_src_before=$(zt_count "src=$POD_SERVER_IP:")
self_out_before=$(zt_count dir=outbound pod=demo/server)
lo_before=$(zt_count "dst=127.0.0.1:8080")

body=$(must_get server "http://127.0.0.1:8080/")
assert_eq "client=127.0.0.1" "${body%:*}" "loopback call"
body=$(must_get server "http://$POD_SERVER_IP:8080/")
assert_eq "client=$POD_SERVER_IP" "${body%:*}" "call to the pod's own IP"

canary_before=$(zt_count dir=inbound "src=$POD_CLIENT_IP:" "dst=$POD_SERVER_IP:8080")
must_get client "http://$POD_SERVER_IP:8080/" >/dev/null
wait_zt_line "$canary_before" 10 dir=inbound "src=$POD_CLIENT_IP:" "dst=$POD_SERVER_IP:8080"

assert_eq "$self_src_before" "$(zt_count "src=$POD_SERVER_IP:")" "ztunnel lines from the server's own IP"
assert_eq "$self_out_before" "$(zt_count dir=outbound pod=demo/server)" "outbound lines of the server"
assert_eq "$lo_before" "$(zt_count "dst=127.0.0.1:8080")" "ztunnel lines for loopback"
