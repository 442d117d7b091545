#!/usr/bin/env bash
# The config stream: ztunnel gets the mesh from the agent (a full snapshot on connect), then a
# delta when the manifests change (a Service and a PeerAuthentication appear), and a fresh full
# snapshot after the agent restarts.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
standard_start
mesh_up
zt_log=$LAB_STATE/logs/ztunnel-node1.log
has() { grep -qF -- "$1" "$zt_log"; }

wait_for 10 has "(full): 3 workloads, 0 services, 0 peer authentications"
say "ok: full snapshot: $(grep -F '(full)' "$zt_log" | tail -n 1 | cut -d' ' -f4-)"

cat >"$LAB_STATE/manifests/svc.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  selector: {app: server}
  clusterIP: 198.18.200.1
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: demo}
spec: {mtls: {mode: STRICT}}
YAML
wait_for 10 has "(delta): 3 workloads, 1 services, 1 peer authentications"
say "ok: delta: $(grep -F '(delta)' "$zt_log" | tail -n 1 | cut -d' ' -f4-)"

before=$(grep -cF '(full)' "$zt_log")
lab mesh-down "$PREFIX" node1 agent
mesh_up
full_again() { (($(grep -cF '(full): 3 workloads, 1 services, 1 peer authentications' "$zt_log") >= 1 && $(grep -cF '(full)' "$zt_log") > before)); }
wait_for 15 full_again
say "ok: a fresh full snapshot after the agent restarted"
