#!/usr/bin/env bash
# Bad input in the manifest directory: the agent names the file and the field, keeps the last
# good state, and keeps enforcing for everyone else. Then the pod opt-out label.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
standard_start
require_binaries zmeshctl
start_server server http 8080
mesh_up
wait_enrolled demo/client demo/server
agent_log=$LAB_STATE/logs/agent-node1.log
manifests=$LAB_STATE/manifests

# 1. A file that is not YAML at all, and a pod whose IP field is wrong.
printf 'kind: Pod\nmetadata: [unclosed\n' >"$manifests/broken.yaml"
cat >"$manifests/badip.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: badip, namespace: demo, uid: badip-uid}
spec: {nodeName: PLACEHOLDER}
status: {podIP: "198.18.1"}
YAML
sed -i "s/PLACEHOLDER/$PREFIX-node1/" "$manifests/badip.yaml"
agent_says() { grep -qF -- "$1" "$agent_log"; }
wait_for 10 agent_says "broken.yaml"
wait_for 10 agent_says "status.podIP"
say "ok: errors name the file and the field: $(grep -F 'badip.yaml' "$agent_log" | tail -n 1)"

# 2. The server's own file turns to garbage: its last good content is kept.
cp "$manifests/pod-server.yaml" "$LAB_STATE/pod-server.good"
printf '{{{ not yaml\n' >"$manifests/pod-server.yaml.tmp"
mv "$manifests/pod-server.yaml.tmp" "$manifests/pod-server.yaml"
wait_for 10 agent_says "pod-server.yaml"
pod_listed demo/server || fail "the server was un-enrolled by a broken rewrite of its manifest"
pod_listed demo/client || fail "the client was un-enrolled by someone else's bad manifest"

# 3. Enforcement goes on for everyone: a new connection is still captured.
before=$(zt_count dir=outbound "dst=$POD_SERVER_IP:8080")
body=$(must_get client "http://$POD_SERVER_IP:8080/")
assert_eq "client=$POD_CLIENT_IP" "${body%:*}" "request while manifests are broken"
wait_zt_line "$before" 10 dir=outbound "dst=$POD_SERVER_IP:8080"
say "ok: still enrolled and captured with broken manifests around"

# 4. The pod opt-out label un-enrolls just that pod.
mv "$LAB_STATE/pod-server.good" "$manifests/pod-server.yaml"
lab pod-label "$PREFIX" client zmesh.io/dataplane-mode=none
wait_for 10 pod_not_listed demo/client
pod_listed demo/server || fail "opting the client out un-enrolled the server"
say "ok: demo/client opted out, demo/server still enrolled"
