#!/usr/bin/env bash
# zmesh demo: two lab nodes, two enrolled namespaces and a legacy one; pod-to-pod traffic across
# nodes inside HBONE (mutual TLS 1.3 between the pods' SPIFFE identities), proven on the wire;
# PeerAuthentication STRICT; an AuthorizationPolicy denying a cross-namespace caller, with
# `zmeshctl explain` saying why; a waypoint checking end-user JWTs and HTTP rules for demo/api.
# Run as root after building (make demo); binaries from ${ZMESH_BIN:-build/bin}.
# Everything is torn down on exit, also on failure or Ctrl-C. Exit status: 0 when every step
# that should work did.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB=$SRC/scripts/lab.sh
HELPERS=$SRC/scripts/lab
# shellcheck source=scripts/lab/common.sh
source "$HELPERS/common.sh"
use_zmesh_bin "$SRC"
PREFIX=zl$(($$ % 1000000))
STATE=/run/zmesh-lab/$PREFIX
STEP=0
BUILT=0

if [[ -t 1 ]]; then B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' N=$'\e[0m'; else B="" G="" R="" N=""; fi

step() {
  STEP=$((STEP + 1))
  printf '\n%s== %d. %s%s\n' "$B" "$STEP" "$1" "$N"
  shift
  local l
  for l in "$@"; do printf '   %s\n' "$l"; done
}
run() { # show (on stderr, so $(run ...) captures only the output) and run a command
  printf '%s$ %s%s\n' "$B" "$*" "$N" >&2
  "$@"
}
ok() { printf '%s   ok: %s%s\n' "$G" "$*" "$N"; }
die() {
  printf '%s   FAILED: %s%s\n' "$R" "$*" "$N" >&2
  [[ -d $STATE/logs ]] && tail_logs "$STATE/logs" 15
  exit 1
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  trap '' PIPE
  if ((BUILT)); then
    printf '\n%s== cleanup%s\n' "$B" "$N" || true
    "$LAB" down "$PREFIX" || true
    echo "   lab $PREFIX removed" || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

listening() { "$LAB" exec "$PREFIX" "$1" -- ss -Hltn "sport = :$2" 2>/dev/null | grep -q LISTEN; }
# zt_lines NODE A B: ztunnel log lines of NODE containing A and B.
zt_lines() { grep -F -- "$2" "$STATE/logs/ztunnel-$1.log" 2>/dev/null | grep -F -- "$3" || true; }
zt_count() { zt_lines "$@" | wc -l; }
zt_more() { (($(zt_count "$2" "$3" "$4") > $1)); }
in_node() { local n=$1; shift; "$LAB" exec "$PREFIX" "$n" -- "$@"; }

[[ $(id -u) -eq 0 ]] || { echo "demo.sh must run as root (network namespaces, cgroups, eBPF)" >&2; exit 1; }
for b in zmesh-agent ztunnel zmeshctl; do
  [[ -x $ZMESH_BIN/$b ]] || { echo "missing $ZMESH_BIN/$b: build first (make) or set ZMESH_BIN" >&2; exit 1; }
done
for t in curl python3 nsenter ss tshark; do
  command -v "$t" >/dev/null || { echo "missing tool $t: run scripts/bootstrap.sh" >&2; exit 1; }
done

# ---------------------------------------------------------------------------------------------
step "Build a two-node lab" \
  "A node is a network namespace with a bridge and a cgroup v2 subtree, linked to the other node;" \
  "each pod is a netns on a veth into its node. Namespaces demo and shop carry" \
  "zmesh.io/dataplane-mode=ambient; legacy does not. client runs as service account 'client' on" \
  "node1, server as 'server' on node2; shop/buyer (node1) is another namespace's workload."
spec=$(mktemp)
cat >"$spec" <<'SPEC'
node node1
node node2
namespace demo ambient
namespace shop ambient
namespace legacy
pod demo/client node1 sa=client
pod shop/buyer node1 sa=buyer
pod legacy/legacy node1
pod demo/server node2 sa=server
pod legacy/legacy-web node2
pod demo/waypoint node1 sa=waypoint label=app=waypoint label=gateway.networking.k8s.io/gateway-name=waypoint label=zmesh.io/dataplane-mode=none
pod demo/api node2 sa=api label=zmesh.io/use-waypoint=waypoint
SPEC
BUILT=1
run "$LAB" up "$PREFIX" "$spec" || die "lab.sh up"
rm -f "$spec"
# shellcheck disable=SC1091
source "$STATE/env"
printf '   node1: client %s  buyer %s  legacy %s     node2: server %s  legacy-web %s\n' \
  "$POD_CLIENT_IP" "$POD_BUYER_IP" "$POD_LEGACY_IP" "$POD_SERVER_IP" "$POD_LEGACY_WEB_IP"

step "Start the apps" "A small HTTP server (whoami) in server and legacy-web answers with the peer address it sees."
"$LAB" spawn "$PREFIX" server web -- python3 "$HELPERS/whoami.py" http 8080 >/dev/null
"$LAB" spawn "$PREFIX" legacy-web web-legacy -- python3 "$HELPERS/whoami.py" http 8080 >/dev/null
"$LAB" spawn "$PREFIX" api web-api -- python3 "$HELPERS/whoami.py" http 8080 >/dev/null
poll 10 listening server 8080 || die "server did not listen on 8080"
poll 10 listening legacy-web 8080 || die "legacy-web did not listen on 8080"
poll 10 listening api 8080 || die "api did not listen on 8080"
ok "servers listening on :8080"

step "Start the mesh on both nodes" \
  "On each node zmesh-agent loads and pins the eBPF programs, enrolls the node's pods of demo and" \
  "hands their netns to ztunnel over ZDS; ztunnel opens its listeners inside each enrolled pod and" \
  "gets each pod's certificate from the agent's CA. node1's agent creates the mesh root; node2's" \
  "agent is given the same root (--ca-cert/--ca-key), as a cluster shares one."
run "$LAB" mesh-up "$PREFIX" node1 || die "mesh-up node1"
ca=$STATE/$PREFIX-node1/state/ca
ZMESH_AGENT_EXTRA_ARGS="--ca-cert $ca/root-cert.pem --ca-key $ca/root-key.pem" \
  run "$LAB" mesh-up "$PREFIX" node2 || die "mesh-up node2"
client_id=spiffe://cluster.local/ns/demo/sa/client
server_id=spiffe://cluster.local/ns/demo/sa/server
has_cert() { grep -qF "certificate for $2 valid until" "$STATE/logs/ztunnel-$1.log"; }
poll 10 has_cert node1 "$client_id" || die "node1's ztunnel has no certificate for $client_id"
poll 10 has_cert node2 "$server_id" || die "node2's ztunnel has no certificate for $server_id"
ok "both ztunnels hold their pods' certificates"

step "client (node1) -> server (node2) goes through HBONE" \
  "connect4 on the client rewrites the connect to ztunnel's in-pod 15001. ztunnel (node1) finds the" \
  "destination in the mesh and opens HTTP/2 CONNECT over mutual TLS 1.3 to the server pod's 15008," \
  "as the client's identity, accepting only the server's identity (secure naming); ztunnel (node2)" \
  "verifies the client's certificate and delivers to the app."
# The wire between the nodes is captured from here on (step 7 looks at it).
pcap=$STATE/node-link.pcap
"$LAB" spawn "$PREFIX" node1 tshark -- tshark -i node2 -w "$pcap" -f tcp >/dev/null
tshark_up() { grep -qF "Capturing on" "$STATE/logs/tshark.log"; }
poll 10 tshark_up || die "tshark did not start"
out_before=$(zt_count node1 dir=outbound "dst=$POD_SERVER_IP:8080")
in_before=$(zt_count node2 dir=inbound-hbone "dst=$POD_SERVER_IP:8080")
body=$(run "$LAB" exec "$PREFIX" client -- curl -sS --max-time 5 "http://$POD_SERVER_IP:8080/") || die "curl client -> server"
echo "$body"
poll 10 zt_more "$out_before" node1 dir=outbound "dst=$POD_SERVER_IP:8080" || die "no dir=outbound line in node1's ztunnel log"
poll 10 zt_more "$in_before" node2 dir=inbound-hbone "dst=$POD_SERVER_IP:8080" || die "no dir=inbound-hbone line in node2's ztunnel log"
echo "   node1 ztunnel:"
zt_lines node1 dir=outbound "dst=$POD_SERVER_IP:8080" | tail -n 1 | sed 's/^/   | /'
echo "   node2 ztunnel:"
zt_lines node2 dir=inbound-hbone "TLS established" | tail -n 1 | sed 's/^/   | /'
zt_lines node2 dir=inbound-hbone "dst=$POD_SERVER_IP:8080" | tail -n 1 | sed 's/^/   | /'
zt_lines node1 dir=outbound "dst=$POD_SERVER_IP:8080" | tail -n 1 | grep -qF "via=hbone peer=$server_id" ||
  die "node1 did not use HBONE to $server_id"
zt_lines node2 dir=inbound-hbone "dst=$POD_SERVER_IP:8080" | tail -n 1 | grep -qF "peer=$client_id" ||
  die "node2 did not see the client's identity $client_id"
ok "HBONE: $client_id -> $server_id"

step "The server sees the client's real IP" \
  "ztunnel (node2) delivers with IP_TRANSPARENT from the HBONE peer's address: no SNAT."
[[ ${body%:*} == "client=$POD_CLIENT_IP" ]] || die "server saw '${body}', expected client=$POD_CLIENT_IP:<port>"
ok "server saw $POD_CLIENT_IP"

step "The certificates of both ends" \
  "Each ztunnel's /debug/certs (in its node netns) lists the identities it holds certificates for."
c1=$(run in_node node1 curl -sS --max-time 5 http://127.0.0.1:15020/debug/certs) || die "node1 /debug/certs"
echo "$c1"
c2=$(run in_node node2 curl -sS --max-time 5 http://127.0.0.1:15020/debug/certs) || die "node2 /debug/certs"
echo "$c2"
grep -qF "\"identity\": \"$client_id\"" <<<"$c1" || die "node1 has no certificate for $client_id"
grep -qF "\"identity\": \"$server_id\"" <<<"$c2" || die "node2 has no certificate for $server_id"
ok "node1 holds $client_id, node2 holds $server_id"

step "What the wire between the nodes carries" \
  "tshark has been capturing on node1's link to node2 since step 4. The client now sends a request" \
  "with a marker in its path and headers. On the wire: the TLS 1.3 handshake of the pooled HBONE" \
  "connection (step 4), then only encrypted records on port 15008; the marker is never in clear."
marker=ZMESH-DEMO-SECRET-$RANDOM
run "$LAB" exec "$PREFIX" client -- curl -sS --max-time 5 -o /dev/null -H "X-Secret: $marker" \
  "http://$POD_SERVER_IP:8080/$marker" || die "curl with the marker"
sleep 1
"$LAB" kill "$PREFIX" tshark INT
tshark_gone() { ! "$LAB" pid "$PREFIX" tshark >/dev/null 2>&1; }
poll 10 tshark_gone || die "tshark did not stop"
run tshark -r "$pcap" -d tcp.port==15008,tls -Y "tcp.len > 0" 2>/dev/null | sed 's/^/   | /'
hello=$(tshark -r "$pcap" -d tcp.port==15008,tls -Y "tls.handshake.type == 1" -V 2>/dev/null) || true
grep -qF "Supported Version: TLS 1.3" <<<"$hello" || die "no TLS 1.3 ClientHello on 15008"
grep -F "Cipher Suite:" <<<"$hello" | grep -v SCSV | sed 's/^ */   client offers: /'
grep -F "ALPN Next Protocol" <<<"$hello" | sed 's/^ */   client offers: /'
tshark -r "$pcap" -d tcp.port==15008,tls -Y "tls.handshake.type == 2" -V 2>/dev/null |
  grep -F "Cipher Suite:" | sed 's/^ */   server selects: /'
[[ $(tshark -r "$pcap" -Y "tcp.port == 8080" 2>/dev/null | wc -l) == 0 ]] || die "plaintext to :8080 on the node link"
[[ $(tshark -r "$pcap" -d tcp.port==15008,tls -Y "tls.app_data || tls.record.content_type == 23" 2>/dev/null | wc -l) -gt 0 ]] ||
  die "no TLS application data on 15008"
if grep -qaF "$marker" "$pcap"; then die "the marker is readable on the wire"; fi
ok "only TLS on 15008 between the nodes; $marker is not in the capture"

step "legacy -> legacy-web is untouched" \
  "Neither pod is enrolled: no redirect, no ztunnel, no access-log line, even across nodes."
legacy_before=$(zt_count node1 "src=$POD_LEGACY_IP:" dst=)
lbody=$(run "$LAB" exec "$PREFIX" legacy -- curl -sS --max-time 5 "http://$POD_LEGACY_WEB_IP:8080/") || die "curl legacy -> legacy-web"
echo "$lbody"
[[ ${lbody%:*} == "client=$POD_LEGACY_IP" ]] || die "legacy-web saw '$lbody'"
[[ $(zt_count node1 "src=$POD_LEGACY_IP:" dst=) == "$legacy_before" ]] || die "ztunnel logged legacy traffic"
ok "no ztunnel line for $POD_LEGACY_IP"

step "PeerAuthentication STRICT refuses plaintext" \
  "By default (PERMISSIVE) a pod outside the mesh may still reach an enrolled one in plaintext." \
  "A namespace-wide STRICT PeerAuthentication in demo makes node2's ztunnel refuse it; HBONE is unaffected."
body=$(run "$LAB" exec "$PREFIX" legacy -- curl -sS --max-time 5 "http://$POD_SERVER_IP:8080/") || die "plaintext legacy -> server (PERMISSIVE)"
echo "$body"
cat >"$STATE/manifests/.pa.tmp" <<'YAML'
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: demo}
spec: {mtls: {mode: STRICT}}
YAML
mv "$STATE/manifests/.pa.tmp" "$STATE/manifests/pa-strict.yaml"
echo "   applied PeerAuthentication demo/strict (mtls.mode STRICT)"
refused() { ! "$LAB" exec "$PREFIX" legacy -- curl -sS --max-time 5 -o /dev/null "http://$POD_SERVER_IP:8080/" 2>/dev/null; }
poll 10 refused || die "plaintext still accepted under STRICT"
"$LAB" exec "$PREFIX" legacy -- curl -sS --max-time 5 "http://$POD_SERVER_IP:8080/" 2>&1 | sed 's/^/   legacy: /' || true
zt_lines node2 "result=mtls-required" "mTLS is STRICT" | tail -n 1 | sed 's/^/   | /'
cbody=$("$LAB" exec "$PREFIX" client -- curl -sS --max-time 5 "http://$POD_SERVER_IP:8080/") || die "HBONE refused under STRICT"
echo "   client: $cbody"
ok "plaintext refused, HBONE served"

step "AuthorizationPolicy: only namespace demo may call the server" \
  "Istio's own YAML. node2's ztunnel checks every HBONE CONNECT against the caller's verified SPIFFE" \
  "identity: shop/buyer (another namespace) gets a 401 on its CONNECT and a reset; the app never sees" \
  "it. demo/client is still served. zmeshctl explain evaluates the same policies offline."
buyer_id=spiffe://cluster.local/ns/shop/sa/buyer
bbody=$(run "$LAB" exec "$PREFIX" buyer -- curl -sS --max-time 5 "http://$POD_SERVER_IP:8080/") || die "curl buyer -> server (no policy yet)"
echo "   buyer (no policy yet): $bbody"
cat >"$STATE/manifests/.ap.tmp" <<'YAML'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: only-demo, namespace: demo}
spec:
  selector: {matchLabels: {app: server}}
  action: ALLOW
  rules:
  - from: [{source: {namespaces: [demo]}}]
YAML
# (lab pods carry app=<pod name>: the selector picks demo/server.)
mv "$STATE/manifests/.ap.tmp" "$STATE/manifests/ap-only-demo.yaml"
echo "   applied AuthorizationPolicy demo/only-demo (ALLOW from namespaces [demo])"
deny_before=$(zt_count node2 result=policy-denied "peer=$buyer_id")
buyer_denied() { ! "$LAB" exec "$PREFIX" buyer -- curl -sS --max-time 5 -o /dev/null "http://$POD_SERVER_IP:8080/" 2>/dev/null; }
poll 10 buyer_denied || die "shop/buyer still reaches the server"
"$LAB" exec "$PREFIX" buyer -- curl -sS --max-time 5 "http://$POD_SERVER_IP:8080/" 2>&1 | sed 's/^/   buyer: /' || true
poll 10 zt_more "$deny_before" node2 result=policy-denied "peer=$buyer_id" || die "no deny line in node2's ztunnel log"
echo "   node2 ztunnel:"
zt_lines node2 result=policy-denied "peer=$buyer_id" | tail -n 1 | sed 's/^/   | /'
cbody=$("$LAB" exec "$PREFIX" client -- curl -sS --max-time 5 "http://$POD_SERVER_IP:8080/") || die "demo/client denied"
echo "   client: $cbody"
run "$ZMESH_BIN/zmeshctl" explain --manifests "$STATE/manifests" --to demo/server --port 8080 \
  --from-principal cluster.local/ns/shop/sa/buyer | sed 's/^/   /' || die "zmeshctl explain"
verdict=$("$ZMESH_BIN/zmeshctl" explain --manifests "$STATE/manifests" --to demo/server --port 8080 \
  --from-principal cluster.local/ns/shop/sa/buyer -o json) || die "zmeshctl explain -o json"
echo "   -o json: $verdict"
[[ $verdict == *'"decision":"deny"'* ]] || die "explain does not say deny"
grep '^zmesh_authorization_denials_total' <<<"$(in_node node2 curl -sS --max-time 5 http://127.0.0.1:15020/metrics)" |
  sed 's/^/   | /' || die "no zmesh_authorization_denials_total series"
ok "cross-namespace call denied at node2's ztunnel; explain agrees"

step "A waypoint for demo/api: end-user JWTs and HTTP rules" \
  "demo/api carries zmesh.io/use-waypoint=waypoint: node1's ztunnel sends the client's stream over" \
  "HBONE to the waypoint (its own identity, from the agent's CA), which validates the end-user JWT" \
  "(RequestAuthentication, ES256) and applies the L7 AuthorizationPolicy attached to it by" \
  "targetRefs, then opens its own HBONE to node2's ztunnel. Policies: a token of our issuer is" \
  "required, and /admin is denied to everyone."
keys=$STATE/jwt
mkdir -p "$keys"
/usr/bin/python3 "$HELPERS/jwt_tool.py" keygen "$keys" || die "JWT key"
ISS=https://issuer.demo.zmesh
cat >"$STATE/manifests/.wp.tmp" <<YAML
$(waypoint_manifests demo "$ISS" "$keys/jwks.json")
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: require-jwt, namespace: demo}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
  rules: [{from: [{source: {requestPrincipals: ["$ISS/*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: demo}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
  action: DENY
  rules: [{to: [{operation: {paths: [/admin, "/admin/*"]}}]}]
YAML
mv "$STATE/manifests/.wp.tmp" "$STATE/manifests/waypoint.yaml"
echo "   applied Service demo/waypoint, RequestAuthentication demo/jwt, AuthorizationPolicies demo/require-jwt and demo/deny-admin"
run "$LAB" spawn "$PREFIX" waypoint waypoint -- "$ZMESH_BIN/waypoint" --namespace demo --name waypoint \
  --manifests "$STATE/manifests" --ca-address "unix:$STATE/$PREFIX-node1/ca.sock" \
  --metrics-addr 127.0.0.1:15020 --readiness-addr 127.0.0.1:15021 >/dev/null || die "waypoint"
wp_ready() { "$LAB" exec "$PREFIX" waypoint -- curl -sf --max-time 2 http://127.0.0.1:15021/healthz/ready >/dev/null; }
poll 15 wp_ready || die "the waypoint is not ready"
ok "waypoint ready as spiffe://cluster.local/ns/demo/sa/waypoint"
TOKEN=$(/usr/bin/python3 "$HELPERS/jwt_tool.py" mint "$keys" --iss "$ISS" --sub alice) || die "mint"
api() { # PATH [CURL ARGS]: status and body of GET PATH on demo/api from demo/client
  local path=$1
  shift
  "$LAB" exec "$PREFIX" client -- curl -sS --max-time 5 -w ' [HTTP %{http_code}]' "$@" "http://$POD_API_IP:8080$path"
}
echo "   curl http://api/ (no token):"
out=$(api /) || die "curl api without token"
echo "     $out"
[[ $out == *'[HTTP 403]' ]] || die "expected 403 without a token"
echo "   curl http://api/ -H 'Authorization: Bearer <token of $ISS, sub alice>':"
out=$(api / -H "Authorization: Bearer $TOKEN") || die "curl api with token"
echo "     $out"
[[ $out == *'[HTTP 200]' ]] || die "expected 200 with a valid token"
# One character in the middle of the signature changed (the last one may carry only padding).
c=${TOKEN: -10:1}
[[ $c == A ]] && c=B || c=A
TAMPERED=${TOKEN:0:${#TOKEN}-10}$c${TOKEN: -9}
echo "   curl http://api/ -H 'Authorization: Bearer <the token with one signature character changed>':"
out=$(api / -H "Authorization: Bearer $TAMPERED") || die "curl api with a bad token"
echo "     $out"
[[ $out == *'[HTTP 401]' ]] || die "expected 401 with a tampered token"
echo "   curl http://api/admin (valid token):"
out=$(api /admin -H "Authorization: Bearer $TOKEN") || die "curl api /admin"
echo "     $out"
[[ $out == *'[HTTP 403]' ]] || die "expected 403 for /admin"
echo "   waypoint log:"
grep -F 'result=' "$STATE/logs/waypoint.log" | tail -n 3 | sed 's/^/   | /'
run "$ZMESH_BIN/zmeshctl" explain --manifests "$STATE/manifests" --to demo/api --port 8080 --layer l7 \
  --from-principal cluster.local/ns/demo/sa/client --path /admin --jwt "$TOKEN" | sed 's/^/   /' ||
  die "zmeshctl explain --layer l7"
ok "no token: 403; valid token: 200; tampered token: 401; /admin: 403 by demo/deny-admin"

step "Upgrade node2's agent and ztunnel without dropping a connection" \
  "As the DaemonSet's surge does: a new pair starts beside the old one. The new agent takes the node" \
  "lease (the old one stands down), the new ztunnel opens its listeners in every pod next to the old" \
  "ones (SO_REUSEPORT). Then the old pair gets SIGTERM: its ztunnel stops accepting and drains." \
  "Meanwhile client (node1) calls server (node2) in a loop."
loop_stop=$STATE/stop-upgrade-loop
# shellcheck disable=SC2016
"$LAB" spawn "$PREFIX" client upgrade-loop -- bash -c 'while [ ! -e "$2" ]; do
    if curl -sS --max-time 3 -o /dev/null "http://$1:8080/"; then echo ok; else echo fail; fi
    sleep 0.05
  done' _ "$POD_SERVER_IP" "$loop_stop" >/dev/null
loop_count() { grep -c "^$1\$" "$STATE/logs/upgrade-loop.log" 2>/dev/null || true; }
loop_oks_at_least() { (($(loop_count ok) >= $1)); }
poll 10 loop_oks_at_least 5 || die "the client's loop does not get through"
old_zt=$("$LAB" pid "$PREFIX" ztunnel-node2)
ZMESH_INSTANCE=new ZMESH_AGENT_EXTRA_ARGS="--ca-cert $ca/root-cert.pem --ca-key $ca/root-key.pem" \
  run "$LAB" mesh-up "$PREFIX" node2 || die "mesh-up of the new pair on node2"
grep -F "handover" "$STATE/logs/agent-node2.log" | tail -n 2 | sed 's/^/   | /'
run "$ZMESH_BIN/zmeshctl" bpf config --node "$PREFIX-node2" | grep -E 'ztunnel-(prev-)?pid' | sed 's/^/   /'
n=$(loop_count ok)
poll 10 loop_oks_at_least $((n + 10)) || die "the loop stalled while both ztunnels ran"
run "$LAB" mesh-down "$PREFIX" node2 all
grep -E "draining|drained" "$STATE/logs/ztunnel-node2.log" | sed 's/^/   | /'
n=$(loop_count ok)
poll 10 loop_oks_at_least $((n + 10)) || die "the loop stalled after the old pair left"
touch "$loop_stop"
loop_gone() { ! "$LAB" pid "$PREFIX" upgrade-loop >/dev/null 2>&1; }
poll 10 loop_gone || die "the client's loop did not stop"
fails=$(loop_count fail)
[[ $fails == 0 ]] || die "$fails of the client's requests failed during the upgrade"
ok "$(loop_count ok) requests during the upgrade, none failed; node2's old ztunnel was pid $old_zt"

step "What the kernel holds: zmeshctl bpf pods (node1)" "Per enrolled pod: netns cookie, IPs, outbound/inbound capture, ztunnel listener, sk_lookup link."
run "$ZMESH_BIN/zmeshctl" bpf pods --node "$PREFIX-node1" || die "zmeshctl bpf pods"

step "zmeshctl bpf stats (node1)" "Per-reason counters from the per-CPU stats map: redirects, skips, drops."
run "$ZMESH_BIN/zmeshctl" bpf stats --node "$PREFIX-node1" || die "zmeshctl bpf stats"

step "ztunnel metrics (node2)" "Istio's istio_tcp_* series, reporter=destination for the server."
# The new ztunnel took 15020 over from the old one when it started to drain (retried every second).
metrics_up() { in_node node2 curl -sf --max-time 2 -o /dev/null http://127.0.0.1:15020/metrics; }
poll 10 metrics_up || die "node2's ztunnel serves no metrics"
metrics=$(in_node node2 curl -sS --max-time 5 http://127.0.0.1:15020/metrics) || die "ztunnel metrics"
grep '^istio_tcp_' <<<"$metrics" | sed 's/^/   | /' || die "no istio_tcp_* series in ztunnel's metrics"

printf '\n%sdemo: all steps passed%s\n' "$G" "$N"
