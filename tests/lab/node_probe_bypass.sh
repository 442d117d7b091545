#!/usr/bin/env bash
# Kubelet-style probes: a connection from the node (node netns, node cgroup root) to an
# enrolled pod skips inbound capture: the server sees the node IP and ztunnel logs nothing.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
standard_start
start_server server http 8080
mesh_up
wait_enrolled demo/client demo/server

probe_before=$(zt_count "src=$NODE1_IP:")
body=$(must_get node1 "http://$POD_SERVER_IP:8080/healthz")
assert_eq "client=$NODE1_IP" "${body%:*}" "server's view of the node probe"

# Barrier: a captured connection made after the probe; once its line is logged, a line for the
# probe (closed before the canary started) would have been logged too.
canary_before=$(zt_count dir=inbound "src=$POD_CLIENT_IP:" "dst=$POD_SERVER_IP:8080")
must_get client "http://$POD_SERVER_IP:8080/" >/dev/null
wait_zt_line "$canary_before" 10 dir=inbound "src=$POD_CLIENT_IP:" "dst=$POD_SERVER_IP:8080"
assert_eq "$probe_before" "$(zt_count "src=$NODE1_IP:")" "ztunnel lines for the node probe"
