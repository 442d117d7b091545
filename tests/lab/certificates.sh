#!/usr/bin/env bash
# Workload certificates in local mode: the agent's CA creates its root (key 0600), ztunnel gets
# a certificate for each enrolled pod's identity as the pod appears, the CA logs whom it issued
# to, a restarted agent keeps the same root, and an identity is forgotten when its last pod
# leaves the mesh.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
standard_start
require_binaries zmeshctl
mesh_up
wait_enrolled demo/client demo/server
agent_log=$LAB_STATE/logs/agent-node1.log
zt_log=$LAB_STATE/logs/ztunnel-node1.log
id=spiffe://cluster.local/ns/demo/sa/default
has() { grep -qF -- "$2" "$1"; }

wait_for 10 has "$zt_log" "certificate for $id valid until"
zt_pid=$(lab pid "$PREFIX" ztunnel-node1)
wait_for 10 has "$agent_log" "issued $id to pid $zt_pid (ztunnel)"
say "ok: ztunnel (pid $zt_pid) holds a certificate for $id from the agent's CA"

key=$LAB_STATE/$PREFIX-node1/state/ca/root-key.pem
cert=$LAB_STATE/$PREFIX-node1/state/ca/root-cert.pem
assert_eq 600 "$(stat -c %a "$key")" "mode of the CA key"
fingerprint() { openssl x509 -noout -fingerprint -sha256 -in "$cert"; }
before=$(fingerprint)
openssl x509 -noout -text -in "$cert" | grep -q "CA:TRUE" || fail "the root is not a CA certificate"

lab mesh-down "$PREFIX" node1 agent
mesh_up
assert_eq "$before" "$(fingerprint)" "root after an agent restart"
wait_for 10 has "$agent_log" "loaded root CA from $cert"
say "ok: the restarted agent kept its root"

lab label "$PREFIX" demo off
wait_for 20 pod_not_listed demo/client
wait_for 10 has "$zt_log" "forgetting $id"
say "ok: ztunnel forgot $id once no pod used it"
