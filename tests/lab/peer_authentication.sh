#!/usr/bin/env bash
# PeerAuthentication at the server's ztunnel (policy-semantics §3), driven through manifests the
# agent watches: a plaintext client from a pod outside the mesh (legacy) and an HBONE client
# (demo/client) against an enrolled server listening on 8080 and 9090.
#   no policy                       -> plaintext accepted on both ports (PERMISSIVE default)
#   namespace STRICT                -> plaintext refused (RST, ztunnel names the policy), HBONE ok
#   + workload PA, port 9090 PERMISSIVE (mode UNSET) -> 9090 plaintext ok, 8080 still refused
#   mesh-wide STRICT (root namespace) + workload DISABLE -> plaintext ok (workload overrides mesh)
#   a rejected PA in the namespace  -> STRICT on every port (fail closed), whatever else says
#   everything removed              -> PERMISSIVE again
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SPEC='node node1
namespace demo ambient
namespace legacy
pod demo/client node1
pod demo/server node1 label=app=server
pod legacy/legacy node1'
standard_start
start_server server http 8080 9090
mesh_up
wait_enrolled demo/client demo/server
manifests=$LAB_STATE/manifests
id=spiffe://cluster.local/ns/demo/sa/default
wait_for 10 grep -qF "certificate for $id valid until" "$(zt_log)"

plain_ok() { # PORT: the legacy pod gets an answer in plaintext
  local body
  body=$(http_get legacy "http://$POD_SERVER_IP:$1/" 2>/dev/null) || return 1
  [[ $body == "client=$POD_LEGACY_IP:"* ]]
}
plain_refused() { ! plain_ok "$1"; }
hbone_ok() { # PORT
  local body
  body=$(http_get client "http://$POD_SERVER_IP:$1/" 2>/dev/null) || return 1
  [[ $body == "client=$POD_CLIENT_IP:"* ]]
}

expect "no policy: plaintext to 8080" plain_ok 8080
expect "no policy: plaintext to 9090" plain_ok 9090
expect "no policy: HBONE to 8080" hbone_ok 8080

before=$(zt_count dir=inbound "src=$POD_LEGACY_IP:" "mtls-required")
apply pa-ns-strict 'apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: demo}
spec: {mtls: {mode: STRICT}}'
expect "namespace STRICT: plaintext to 8080 refused" plain_refused 8080
# That one may have been in flight when STRICT arrived (closed, not refused): one more.
plain_refused 8080 || fail "plaintext to 8080 served under STRICT"
expect "namespace STRICT: plaintext to 9090 refused" plain_refused 9090
expect "namespace STRICT: HBONE to 8080 still works" hbone_ok 8080
wait_zt_line "$before" 10 dir=inbound "src=$POD_LEGACY_IP:" result=mtls-required "policy=demo/strict" \
  "reason=\"plaintext to port 8080 but mTLS is STRICT (namespace PeerAuthentication demo/strict)\""
assert_ge 1 "$(zt_count "result=mtls-required")" "access-log lines with result=mtls-required"

apply pa-server-ports 'apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: server-ports, namespace: demo}
spec:
  selector: {matchLabels: {app: server}}
  portLevelMtls:
    9090: {mode: PERMISSIVE}'
expect "port-level PERMISSIVE: plaintext to 9090" plain_ok 9090
expect "port-level: plaintext to 8080 still refused (inherits the namespace)" plain_refused 8080

rm -f "$manifests/pa-ns-strict.yaml" "$manifests/pa-server-ports.yaml"
apply pa-mesh 'apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: zmesh-system}
spec: {mtls: {mode: STRICT}}'
expect "mesh-wide STRICT: plaintext to 8080 refused" plain_refused 8080
apply pa-server-disable 'apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: server-off, namespace: demo}
spec:
  selector: {matchLabels: {app: server}}
  mtls: {mode: DISABLE}'
expect "workload DISABLE under mesh STRICT: plaintext to 8080" plain_ok 8080
expect "workload DISABLE: HBONE still accepted" hbone_ok 8080

apply pa-broken 'apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: broken, namespace: demo}
spec: {mtls: {mode: strict}}'
expect "a rejected PA in the namespace: plaintext to 8080 refused" plain_refused 8080
expect "a rejected PA in the namespace: plaintext to 9090 refused" plain_refused 9090
expect "a rejected PA: HBONE still works" hbone_ok 9090

rm -f "$manifests"/pa-*.yaml
expect "no policy again: plaintext to 8080" plain_ok 8080
expect "no policy again: plaintext to 9090" plain_ok 9090
say PASSED
