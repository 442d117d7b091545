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
