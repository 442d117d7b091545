#!/usr/bin/env bash
# Fail closed: with ztunnel gone, an enrolled client's outbound connects are refused/reset and
# inbound connections to an enrolled server are dropped, never delivered to the app directly.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
standard_start
start_server server http 8080
mesh_up
wait_enrolled demo/client demo/server

# Sanity: it works while ztunnel runs.
body=$(must_get client "http://$POD_SERVER_IP:8080/")
assert_eq "client=$POD_CLIENT_IP" "${body%:*}" "client -> server with ztunnel up"

lab kill "$PREFIX" ztunnel-node1 KILL
wait_for 10 proc_gone ztunnel-node1
say "ztunnel killed"

client_hits=$(server_hits server http "$POD_CLIENT_IP" 8080)
legacy_hits=$(server_hits server http "$POD_LEGACY_IP" 8080)

rc=0
out=$(http_get client "http://$POD_SERVER_IP:8080/" 2>&1) || rc=$?
say "client -> server: curl exit $rc: $out"
[[ $rc == 7 || $rc == 56 ]] || fail "outbound with ztunnel down: expected curl exit 7 or 56, got $rc ($out)"

rc=0
out=$(http_get legacy "http://$POD_SERVER_IP:8080/" 2>&1) || rc=$?
say "legacy -> server: curl exit $rc: $out"
[[ $rc == 7 || $rc == 56 ]] || fail "inbound with ztunnel down: expected curl exit 7 or 56, got $rc ($out)"

assert_eq "$client_hits" "$(server_hits server http "$POD_CLIENT_IP" 8080)" "server accepts from the client"
assert_eq "$legacy_hits" "$(server_hits server http "$POD_LEGACY_IP" 8080)" "server accepts from the legacy pod (no bypass)"
