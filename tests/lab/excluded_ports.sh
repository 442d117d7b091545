#!/usr/bin/env bash
# Port exclusions by pod annotation: zmesh.io/exclude-outbound-ports on the client and
# zmesh.io/exclude-inbound-ports on the server bypass ztunnel on those ports only.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SPEC='node node1
namespace demo ambient
namespace legacy
pod demo/client node1 annotation=zmesh.io/exclude-outbound-ports=9090
pod demo/server node1 annotation=zmesh.io/exclude-inbound-ports=9091
pod legacy/legacy node1'
standard_start
start_server server http 8080 9091
start_server legacy http 8080 9090
mesh_up
wait_enrolled demo/client demo/server

# Outbound 9090 is excluded: client -> legacy:9090 (legacy is not enrolled, so no inbound
# capture either) must not reach ztunnel. Inbound 9091 is excluded: legacy -> server:9091.
out_excl_before=$(zt_count "dst=$POD_LEGACY_IP:9090")
in_excl_before=$(zt_count "dst=$POD_SERVER_IP:9091")
body=$(must_get client "http://$POD_LEGACY_IP:9090/")
assert_eq "client=$POD_CLIENT_IP" "${body%:*}" "client -> legacy:9090"
body=$(must_get legacy "http://$POD_SERVER_IP:9091/")
assert_eq "client=$POD_LEGACY_IP" "${body%:*}" "legacy -> server:9091"

# The same pairs on a port that is not excluded are captured (and serve as the barrier).
out_before=$(zt_count dir=outbound "dst=$POD_LEGACY_IP:8080")
in_before=$(zt_count dir=inbound "src=$POD_LEGACY_IP:" "dst=$POD_SERVER_IP:8080")
must_get client "http://$POD_LEGACY_IP:8080/" >/dev/null
must_get legacy "http://$POD_SERVER_IP:8080/" >/dev/null
wait_zt_line "$out_before" 10 dir=outbound "dst=$POD_LEGACY_IP:8080"
wait_zt_line "$in_before" 10 dir=inbound "src=$POD_LEGACY_IP:" "dst=$POD_SERVER_IP:8080"

assert_eq "$out_excl_before" "$(zt_count "dst=$POD_LEGACY_IP:9090")" "ztunnel lines for excluded outbound port 9090"
assert_eq "$in_excl_before" "$(zt_count "dst=$POD_SERVER_IP:9091")" "ztunnel lines for excluded inbound port 9091"
