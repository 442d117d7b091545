#!/usr/bin/env bash
# Outbound capture, same node: an enrolled client's curl to an enrolled server goes through
# ztunnel (one dir=outbound and one dir=inbound access-log line) and the server still sees the
# client's own IP (source IP preserved).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
standard_start
start_server server http 8080
mesh_up
wait_enrolled demo/client demo/server

dst="dst=$POD_SERVER_IP:8080"
out_before=$(zt_count dir=outbound "$dst" pod=demo/client)
in_before=$(zt_count dir=inbound "$dst" pod=demo/server)

body=$(must_get client "http://$POD_SERVER_IP:8080/")
assert_eq "client=$POD_CLIENT_IP" "${body%:*}" "server's view of the peer (source IP preserved)"

wait_zt_line "$out_before" 10 dir=outbound "$dst" pod=demo/client
wait_zt_line "$in_before" 10 dir=inbound "$dst" pod=demo/server
say "access lines:"
grep -F -- "$dst" "$(zt_log)" | tail -n 2
