#!/usr/bin/env bash
# The zero-trust default (issue 4, NIST SP 800-204B AP-SR-3): `zmesh-agent
# --default-policy=zero-trust` makes mTLS STRICT mesh-wide and admits traffic only within a
# namespace until an explicit AuthorizationPolicy opens another path.
#   demo/client -> demo/server     allowed (same namespace)
#   other/sleep -> demo/server     denied (cross-namespace), then allowed by one explicit ALLOW
#   other/sleep -> demo/server:9090 still denied (the ALLOW names port 8080 only)
#   legacy/plain -> demo/server    refused: plaintext under the STRICT default
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SPEC='node node1
namespace demo ambient
namespace other ambient
namespace legacy
pod demo/client node1
pod demo/server node1
pod other/sleep node1
pod legacy/plain node1'
standard_start
export ZMESH_AGENT_EXTRA_ARGS="${ZMESH_AGENT_EXTRA_ARGS:-} --default-policy=zero-trust"
start_server server http 8080 9090
mesh_up
wait_enrolled demo/client demo/server other/sleep
wait_for 10 grep -qF "default policy zero-trust" "$(zt_log)"
manifests=$LAB_STATE/manifests

ok_from() { # POD PORT
  local body ip_var="POD_${1^^}_IP"
  body=$(http_get "$1" "http://$POD_SERVER_IP:$2/" 2>/dev/null) || return 1
  [[ $body == "client=${!ip_var}:"* ]]
}
denied_from() { ! ok_from "$@"; }

expect "same namespace: demo/client -> demo/server" ok_from client 8080
before=$(zt_count dir=inbound-hbone "peer=spiffe://cluster.local/ns/other/sa/default" result=policy-denied)
expect "cross-namespace: other/sleep -> demo/server denied" denied_from sleep 8080
wait_zt_line "$before" 10 dir=inbound-hbone "peer=spiffe://cluster.local/ns/other/sa/default" \
  result=policy-denied "hop=ztunnel" "zero-trust default admits only the destination's namespace demo"
before=$(zt_count dir=inbound "src=$POD_PLAIN_IP:" result=mtls-required)
expect "plaintext from outside the mesh refused (STRICT by default)" denied_from plain 8080
wait_zt_line "$before" 10 dir=inbound "src=$POD_PLAIN_IP:" result=mtls-required "mTLS is STRICT (default)"

j=$(zmeshctl explain --manifests "$manifests" --default-policy zero-trust --to demo/server \
  --port 8080 --from-principal cluster.local/ns/other/sa/default -o json)
assert_eq deny "$(json_query "$j" "d['decision']")" "explain: other -> demo under zero-trust"

apply from-other 'apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: from-other, namespace: demo}
spec:
  rules:
  - from: [{source: {namespaces: [other]}}]
    to: [{operation: {ports: ["8080"]}}]'
expect "an explicit ALLOW opens other -> demo:8080" ok_from sleep 8080
expect "... and only that path: other -> demo:9090 still denied" denied_from sleep 9090
expect "same namespace still allowed next to the explicit ALLOW" ok_from client 9090
j=$(zmeshctl explain --manifests "$manifests" --default-policy zero-trust --to demo/server \
  --port 8080 --from-principal cluster.local/ns/other/sa/default -o json)
assert_eq "allow demo/from-other" "$(json_query "$j" "d['decision'] + ' ' + d['policy']")" \
  "explain after the explicit ALLOW"
say PASSED
