#!/usr/bin/env bash
# Service VIPs (issue 3): a connection to a Service's cluster IP goes to a running endpoint on
# its target port — over HBONE when the endpoint is in the mesh, in plain TCP when it is not —
# and a port the Service does not have is refused. No kube-proxy: ztunnel does the choice.
#   demo/web    198.19.100.1:80 -> app=server:8080 (enrolled, node2)
#   legacy/lweb 198.19.100.2:80 -> app=lweb:8080   (not enrolled, node2)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SPEC='node node1
node node2
namespace demo ambient
namespace legacy
pod demo/client node1
pod demo/server node2 sa=web
pod legacy/lweb node2'
standard_start

share_mesh_root

cat >"$LAB_STATE/manifests/services.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  selector: {app: server}
  clusterIP: 198.19.100.1
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: lweb, namespace: legacy}
spec:
  selector: {app: lweb}
  clusterIP: 198.19.100.2
  ports: [{name: http, port: 80, targetPort: 8080}]
YAML
start_server server http 8080
start_server lweb http 8080
lab mesh-up "$PREFIX" node1 || fail "mesh-up node1 failed"
lab mesh-up "$PREFIX" node2 || fail "mesh-up node2 failed"
wait_enrolled demo/client
web_id=spiffe://cluster.local/ns/demo/sa/web
wait_for 10 grep -qF "certificate for $web_id valid until" "$LAB_STATE/logs/ztunnel-node2.log"
wait_for 10 grep -qF "2 services" "$(zt_log)"

before=$(zt_count dir=outbound "dst=$POD_SERVER_IP:8080" "via=hbone peer=$web_id service=demo/web" result=ok)
body=$(must_get client "http://198.19.100.1/")
assert_eq "client=$POD_CLIENT_IP" "${body%:*}" "the endpoint behind demo/web sees the client"
wait_zt_line "$before" 10 dir=outbound "dst=$POD_SERVER_IP:8080" "via=hbone peer=$web_id service=demo/web" result=ok

before=$(zt_count dir=outbound "dst=$POD_LWEB_IP:8080 service=legacy/lweb" result=ok)
body=$(must_get client "http://198.19.100.2/")
assert_eq "client=$POD_CLIENT_IP" "${body%:*}" "the endpoint behind legacy/lweb sees the client"
wait_zt_line "$before" 10 dir=outbound "dst=$POD_LWEB_IP:8080 service=legacy/lweb" result=ok
[[ $(zt_count "dst=$POD_LWEB_IP:8080" via=hbone) == 0 ]] || fail "a plain endpoint was reached over HBONE"
say "ok: an endpoint outside the mesh is reached in plain TCP"

before=$(zt_count dir=outbound "refused: service demo/web has no TCP port 81")
rc=0
http_get client "http://198.19.100.1:81/" >/dev/null 2>&1 || rc=$?
((rc != 0)) || fail "a port the Service does not have answered"
wait_zt_line "$before" 10 dir=outbound "refused: service demo/web has no TCP port 81"
say PASSED
