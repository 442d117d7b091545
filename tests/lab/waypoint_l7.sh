#!/usr/bin/env bash
# The waypoint end to end (issue 5): demo/server (node2) uses the waypoint of namespace demo
# (zmesh.io/use-waypoint); demo/client (node1) reaches it with curl through its ztunnel, the
# waypoint (node1, its own identity from the agent's CA) and node2's ztunnel.
#   RequestAuthentication (inline ES256 JWKS) + ALLOW for a request principal + DENY /admin,
#   both attached to the waypoint by targetRefs:
#     good token          -> 200, the backend saw the request (token removed, claim header set)
#     no token            -> 403 RBAC: access denied (no ALLOW matches)
#     bad signature       -> 401 with WWW-Authenticate
#     expired token       -> 401
#     GET /admin (good)   -> 403, the policy and rule in the waypoint's log
#   denied requests never reach the backend; HTTP/2 prior knowledge works the same;
#   node1's ztunnel logs the stream via the waypoint, node2's ztunnel sees the waypoint's
#   identity (implicit L4 allow even under an ALLOW policy for the client only);
#   `zmeshctl explain --layer l7` agrees; with the waypoint down requests fail (no bypass);
#   CUSTOM: /custom/* goes to an HTTP external authorizer (--mesh-config extensionProviders):
#   its deny is the answer (its status, body and header), its allow adds a header upstream and
#   does not bypass the DENY of /admin/* (/admin/custom is both).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SPEC='node node1
node node2
namespace demo ambient
pod demo/client node1 sa=client
pod demo/waypoint node1 sa=waypoint label=gateway.networking.k8s.io/gateway-name=waypoint label=zmesh.io/dataplane-mode=none label=app=waypoint
pod demo/server node2 sa=web label=app=server label=zmesh.io/use-waypoint=waypoint
namespace plain
pod plain/extauthz node1'
standard_start
require_binaries waypoint
share_mesh_root
PY=/usr/bin/python3
BACKEND=$(cd "$(dirname "${BASH_SOURCE[0]}")/../waypoint/http" && pwd)/backend.py
JWT_TOOL=$LAB_HELPERS/jwt_tool.py
keys=$LAB_STATE/jwt
mkdir -p "$keys/other"
$PY "$JWT_TOOL" keygen "$keys" || fail "cannot make the JWT key"
$PY "$JWT_TOOL" keygen "$keys/other" || fail "cannot make the second JWT key"
ISS=https://issuer.zmesh.lab
token() { $PY "$JWT_TOOL" mint "$keys" --iss "$ISS" --aud demo --sub alice "$@"; }
GOOD=$(token)
EXPIRED=$(token --exp-in -600)
FORGED=$($PY "$JWT_TOOL" mint "$keys/other" --iss "$ISS" --aud demo --sub mallory)

apply waypoint-svc 'apiVersion: v1
kind: Service
metadata: {name: waypoint, namespace: demo}
spec:
  selector: {app: waypoint}
  clusterIP: 198.19.200.1
  ports: [{name: hbone, port: 15008, targetPort: 15008}]'
apply request-authn "apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: demo}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
  jwtRules:
  - issuer: $ISS
    audiences: [demo]
    jwks: '$(cat "$keys/jwks.json")'
    outputClaimToHeaders: [{header: x-jwt-sub, claim: sub}]"
apply authz "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: require-jwt, namespace: demo}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
  rules: [{from: [{source: {requestPrincipals: ['$ISS/*']}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: demo}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
  action: DENY
  rules: [{to: [{operation: {paths: [/admin, /admin/*]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit-echo, namespace: demo}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
  action: AUDIT
  rules: [{to: [{operation: {paths: [/echo]}}]}]
---
# At L4 only the client may reach the server: the waypoint gets in by the implicit allow.
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: l4-client-only, namespace: demo}
spec:
  selector: {matchLabels: {app: server}}
  rules: [{from: [{source: {principals: [cluster.local/ns/demo/sa/client]}}]}]"

lab spawn "$PREFIX" extauthz ext-authz -- $PY "$LAB_HELPERS/ext_authz.py" 9000 >/dev/null
wait_for 10 listening extauthz 9000
cat >"$LAB_STATE/mesh-config.yaml" <<YAML
extensionProviders:
- name: lab-ext-authz
  envoyExtAuthzHttp:
    service: "$POD_EXTAUTHZ_IP"
    port: 9000
    timeout: 2s
    includeRequestHeadersInCheck: [x-ext-authz]
    headersToUpstreamOnAllow: [x-ext-authz-check-result]
    headersToDownstreamOnDeny: [x-ext-authz-check-result]
YAML
apply custom 'apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext-check, namespace: demo}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
  action: CUSTOM
  provider: {name: lab-ext-authz}
  rules: [{to: [{operation: {paths: [/custom/*, /admin/custom]}}]}]'
lab spawn "$PREFIX" server backend -- $PY "$BACKEND" --bind 0.0.0.0 --h1 8080 --h2 8081 --forever >/dev/null
wait_for 10 listening server 8080
wait_for 10 listening server 8081
lab mesh-up "$PREFIX" node1 || fail "mesh-up node1 failed"
lab mesh-up "$PREFIX" node2 || fail "mesh-up node2 failed"
wait_enrolled demo/client
node1_ns=$PREFIX-node1
lab spawn "$PREFIX" waypoint waypoint -- "$ZMESH_BIN/waypoint" --namespace demo --name waypoint \
  --service-account waypoint --manifests "$LAB_STATE/manifests" --mesh-config "$LAB_STATE/mesh-config.yaml" \
  --ca-address "unix:/run/zmesh-lab/$PREFIX/$node1_ns/ca.sock" --listen 0.0.0.0:15008 \
  --metrics-addr 127.0.0.1:15020 --readiness-addr 127.0.0.1:15021 --admin-addr 127.0.0.1:15000 \
  >/dev/null
wp_log=$LAB_STATE/logs/waypoint.log
ready() { lab exec "$PREFIX" waypoint -- curl -sf --max-time 2 http://127.0.0.1:15021/healthz/ready >/dev/null; }
expect "the waypoint is ready (certificate from the agent's CA, mesh loaded)" ready
backend_log=$LAB_STATE/logs/backend.log
hits() { grep -c "^request " "$backend_log" || true; }

# status FROM PATH [CURL ARGS]: the HTTP status of a request to the server through the mesh.
status() {
  local path=$1
  shift
  lab exec "$PREFIX" client -- curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" \
    "http://$POD_SERVER_IP:8080$path"
}
body() {
  local path=$1
  shift
  lab exec "$PREFIX" client -- curl -sS --max-time 5 "$@" "http://$POD_SERVER_IP:8080$path"
}

# 1. A good token: allowed, forwarded without the token, with the claim header.
expect "GET / with a good token is 200" test "$(status /echo -H "Authorization: Bearer $GOOD")" = 200
echo_json=$(body /echo -H "Authorization: Bearer $GOOD" -H "x-jwt-sub: spoofed")
assert_eq "['alice']" "$(json_query "$echo_json" "[v for k, v in d['headers'] if k == 'x-jwt-sub']")" "claim header the backend saw (the spoofed copy removed)"
assert_eq "[]" "$(json_query "$echo_json" "[v for k, v in d['headers'] if k == 'authorization']")" "token forwarded to the backend"
say "ok: good token -> 200, token removed, x-jwt-sub set by the waypoint"
wait_log_line 0 10 "$wp_log" 'audit:' '"policy":"demo/audit-echo"' '"path":"/echo"' '"allowed":true'
say "ok: AUDIT writes a JSON line and does not change the decision"
zt1=$LAB_STATE/logs/ztunnel-node1.log
zt2=$LAB_STATE/logs/ztunnel-node2.log
wait_log_line 0 10 "$zt1" dir=outbound "dst=$POD_SERVER_IP:8080" via=hbone waypoint=demo/waypoint result=ok
wait_log_line 0 10 "$zt2" dir=inbound-hbone pod=demo/server peer=spiffe://cluster.local/ns/demo/sa/waypoint result=ok

# 2. Denials, each never reaching the backend.
before=$(hits)
assert_eq 403 "$(status /echo)" "no token"
assert_eq "RBAC: access denied" "$(body /echo)" "body without a token"
assert_eq 401 "$(status /echo -H "Authorization: Bearer $FORGED")" "token signed by another key"
hdrs=$(lab exec "$PREFIX" client -- curl -s -D - -o /dev/null --max-time 5 -H "Authorization: Bearer $FORGED" "http://$POD_SERVER_IP:8080/echo")
assert_contains "${hdrs,,}" "www-authenticate: bearer" "401 carries WWW-Authenticate"
assert_eq 401 "$(status /echo -H "Authorization: Bearer $EXPIRED")" "expired token"
assert_eq 401 "$(status /echo -H "Authorization: Bearer not.a.token")" "malformed token"
assert_eq 403 "$(status /admin -H "Authorization: Bearer $GOOD")" "GET /admin with a good token"
assert_eq 403 "$(status /admin/../admin -H "Authorization: Bearer $GOOD" --path-as-is)" "/admin/../admin (normalized)"
assert_eq "$before" "$(hits)" "requests that reached the backend while denied"
wait_log_line 0 10 "$wp_log" result=policy-denied "path=/admin" "policy=demo/deny-admin" "rule=0" hop=waypoint
wait_log_line 0 10 "$wp_log" result=jwt-denied status=401
say "ok: 403 without a token, 401 for forged/expired/malformed tokens, 403 for /admin; backend untouched"

# 3. HTTP/2 prior knowledge, same decisions.
h2() { lab exec "$PREFIX" client -- curl -s -o /dev/null -w '%{http_code}' --max-time 5 --http2-prior-knowledge "$@"; }
assert_eq 200 "$(h2 -H "Authorization: Bearer $GOOD" "http://$POD_SERVER_IP:8081/echo")" "h2c with a good token"
assert_eq 403 "$(h2 -H "Authorization: Bearer $GOOD" "http://$POD_SERVER_IP:8081/admin")" "h2c /admin"
assert_eq 401 "$(h2 -H "Authorization: Bearer $FORGED" "http://$POD_SERVER_IP:8081/echo")" "h2c forged token"
grep -q "^request h2 GET /echo" "$backend_log" || fail "the backend saw no h2 request"
say "ok: HTTP/2 prior knowledge through the waypoint"

# 4. Metrics.
m=$(lab exec "$PREFIX" waypoint -- curl -s --max-time 5 http://127.0.0.1:15020/metrics)
assert_contains "$m" 'istio_requests_total{reporter="waypoint",response_code="200"}' "waypoint metrics"
assert_contains "$m" 'zmesh_waypoint_denials_total{reason="policy"}' "denial counter"

# 5. explain agrees.
j=$(zmeshctl explain --manifests "$LAB_STATE/manifests" --to demo/server --port 8080 \
  --layer l7 --from-principal cluster.local/ns/demo/sa/client --path /admin --jwt "$GOOD" -o json) ||
  fail "zmeshctl explain --layer l7 failed"
assert_eq "deny 403 waypoint demo/deny-admin 0" \
  "$(json_query "$j" "' '.join(str(x) for x in (d['decision'], d['status'], d['hop'], d['policy'], d['rule']))")" \
  "explain --layer l7 for GET /admin"

# 6. CUSTOM: the external authorizer decides /custom/*; a deny is its answer, an allow does not
# bypass the DENY of /admin.
before=$(hits)
hdrs=$(lab exec "$PREFIX" client -- curl -s -D - --max-time 5 -H "Authorization: Bearer $GOOD" \
  "http://$POD_SERVER_IP:8080/custom/x")
assert_contains "$hdrs" "403" "CUSTOM deny status"
assert_contains "$hdrs" "denied by ext-authz" "CUSTOM deny body"
assert_contains "${hdrs,,}" "x-ext-authz-check-result: denied" "CUSTOM deny header downstream"
assert_eq "$before" "$(hits)" "requests that reached the backend on a CUSTOM deny"
echo_json=$(body /custom/echo -H "Authorization: Bearer $GOOD" -H "x-ext-authz: allow")
assert_eq "['allowed']" "$(json_query "$echo_json" "[v for k, v in d['headers'] if k == 'x-ext-authz-check-result']")" \
  "header the authorizer added upstream"
before_deny=$(log_count "$wp_log" result=policy-denied path=/admin/custom policy=demo/deny-admin)
assert_eq 403 "$(status /admin/custom -H "Authorization: Bearer $GOOD" -H "x-ext-authz: allow")" \
  "/admin/custom allowed by the authorizer, denied by demo/deny-admin"
wait_log_line "$before_deny" 10 "$wp_log" result=policy-denied path=/admin/custom policy=demo/deny-admin
grep -q "^check GET /custom/x deny" "$LAB_STATE/logs/ext-authz.log" || fail "the authorizer saw no check"
say "ok: CUSTOM provider deny answers, allow adds its header and does not bypass DENY"

# 7. No bypass: with the waypoint gone, requests fail rather than go around it.
before=$(hits)
lab kill "$PREFIX" waypoint TERM
wait_for 10 proc_gone waypoint
code=$(status /echo -H "Authorization: Bearer $GOOD" || true)
[[ $code != 200 ]] || fail "a request was served with the waypoint down"
assert_eq "$before" "$(hits)" "requests that reached the backend with the waypoint down"
say "ok: waypoint down -> the request fails ($code), the backend is not reached"
say "PASS"
