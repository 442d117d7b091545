#!/usr/bin/env bash
# The real agent in cluster mode against the fake API server (real wire format) in node1's netns:
# it enrolls the pods of labelled namespaces (netns from the lab's zmesh.io/netns annotation),
# writes zmesh.io/status, chains zmesh-cni into the node's CNI configuration, follows label
# changes both ways, relists after a 410 and reconnects after a stream broken mid-event; pod
# deletion un-enrolls; `zmesh-agent uninstall` takes zmesh-cni out again.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster_lib.sh"
require_binaries zmesh-agent ztunnel zmeshctl zmesh-cni fake-kube-apiserver
lab_up "$STANDARD_SPEC"
start_server server http 8080
kube_up
cni_dirs_up
kubectl apply-lab "$LAB_STATE"
mesh_up  # ready only once every informer synced and every pod was reconciled
wait_enrolled demo/client demo/server
pod_not_listed legacy/legacy || fail "legacy/legacy is enrolled but its namespace is not labelled"

# zmesh.io/status: written on the pods of the enrolled namespace only.
expect "demo/client status enrolled" status_is demo/client enrolled
expect "demo/server status enrolled" status_is demo/server enrolled
assert_eq "" "$(pod_status legacy/legacy)" "legacy/legacy status"

# The mesh works on objects from the API: client -> server goes over HBONE.
before=$(zt_count dir=outbound "dst=$POD_SERVER_IP:8080" via=hbone result=ok)
body=$(must_get client "http://$POD_SERVER_IP:8080/")
assert_eq "client=$POD_CLIENT_IP" "${body%:*}" "server saw the client's own IP"
wait_zt_line "$before" 10 dir=outbound "dst=$POD_SERVER_IP:8080" via=hbone result=ok

# zmesh-cni installed and chained last; the bridge plugin kept.
assert_eq "bridge zmesh-cni" "$(conflist_plugins)" "chained plugins"
[[ -x $CNI_BIN_DIR/zmesh-cni ]] || fail "zmesh-cni not installed in $CNI_BIN_DIR"
cmp -s "$ZMESH_BIN/zmesh-cni" "$CNI_BIN_DIR/zmesh-cni" || fail "the installed zmesh-cni differs"

# Label on: legacy is enrolled. Label off: demo leaves, its status annotations go.
kubectl label namespace legacy zmesh.io/dataplane-mode=ambient
wait_for 20 pod_listed legacy/legacy
expect "legacy/legacy status enrolled" status_is legacy/legacy enrolled
kubectl label namespace demo zmesh.io/dataplane-mode-
wait_for 20 pod_not_listed demo/client
wait_for 20 pod_not_listed demo/server
expect "demo/client status removed" status_absent demo/client
pod_listed legacy/legacy || fail "legacy/legacy lost its enrollment when demo was unlabelled"

# History compacted and every watch expired (410): the informers relist, then watch again.
kubectl fake compact
kubectl fake expire-watches
kubectl label namespace demo zmesh.io/dataplane-mode=ambient
wait_for 20 pod_listed demo/client
wait_for 20 pod_listed demo/server
expect "demo/client status enrolled again" status_is demo/client enrolled
grep -q "listing again" "$LAB_STATE/logs/agent-node1.log" || fail "no relist after the 410 in the agent's log"

# A stream broken in the middle of an event: the informers reconnect; nothing is lost.
kubectl fake break-watches
kubectl delete pod legacy/legacy
wait_for 20 pod_not_listed legacy/legacy
say "ok: a pod deleted through a broken stream was un-enrolled"
{ pod_listed demo/client && pod_listed demo/server; } || fail "demo pods lost their enrollment"

# Uninstall: zmesh-cni leaves the configuration and the binary directory.
lab mesh-down "$PREFIX" node1 agent
"$ZMESH_BIN/zmesh-agent" uninstall --node "$NODE1_NAME" --pin-root "$LAB_PIN_ROOT" \
  --cni-conf-dir "$CNI_CONF_DIR" --cni-bin-dir "$CNI_BIN_DIR" >"$LAB_STATE/logs/uninstall.log" 2>&1 ||
  fail "zmesh-agent uninstall failed: $(cat "$LAB_STATE/logs/uninstall.log")"
assert_eq "bridge" "$(conflist_plugins)" "plugins after uninstall"
[[ ! -e $CNI_BIN_DIR/zmesh-cni ]] || fail "zmesh-cni still in $CNI_BIN_DIR after uninstall"
