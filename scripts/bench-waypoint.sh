#!/usr/bin/env bash
# zmesh waypoint benchmark (issue 5): small keep-alive HTTP requests, in ONE run on a fresh
# two-node lab, every client on node1 and its backend on node2, the same load generator
# (build/bench/http_load: N keep-alive connections, GETs back to back) for every row:
#   direct    plain/pclient -> plain/pserver:8080, no proxy.
#   waypoint  demo/client -> demo/server:8080 through the mesh: node1's ztunnel, the waypoint
#             (RequestAuthentication with the ES256 key inline, and an ALLOW policy of 10 rules on
#             method, path and request principal, the request matching the 10th), HBONE to
#             node2's ztunnel. Every request carries a valid token.
#   haproxy   plain/pclient -> plain/hproxy:8080 (haproxy 2.6, nbthread 2 like the waypoint's
#             --workers 2): jwt_verify with the same ES256 public key, 10 ACL rules on method and
#             path, then TLS (verified) to plain/pserver:8443.
# Backends are haproxy `http-request return` (200, 2 bytes) so the backend costs next to nothing.
# Metrics: requests/s, p50 and p99 latency, and requests per CPU-second of the L7 proxy
# (utime+stime of the waypoint process, or of haproxy, over the run); the waypoint row also
# shows the two ztunnels' CPU seconds. Then PASS/MISS for the issue-5 target (waypoint requests
# per CPU-second >= 1.5x haproxy's); a MISS never fails the run.
#   scripts/bench-waypoint.sh [--quick] [--seconds N] [--connections N] [--keep]
# Exit status: 0 measured; 1 a real error. Binaries from ${ZMESH_BIN:-build/bin}.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB=$SRC/scripts/lab.sh
HELPERS=$SRC/scripts/lab
# shellcheck source=scripts/lab/common.sh
source "$HELPERS/common.sh"
use_zmesh_bin "$SRC"
LOAD=$(dirname "$ZMESH_BIN")/bench/http_load

SECONDS_PER_ROW=10
CONNECTIONS=16
KEEP=0
while (($#)); do
  case $1 in
    --quick) SECONDS_PER_ROW=3; shift ;;
    --seconds) SECONDS_PER_ROW=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    *) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
[[ $(id -u) == 0 ]] || { echo "bench-waypoint: needs root (network namespaces)" >&2; exit 1; }
for t in haproxy openssl curl; do
  command -v "$t" >/dev/null || { echo "bench-waypoint: missing $t: run scripts/bootstrap.sh" >&2; exit 1; }
done
for b in "$ZMESH_BIN/waypoint" "$ZMESH_BIN/ztunnel" "$ZMESH_BIN/zmesh-agent" "$LOAD"; do
  [[ -x $b ]] || { echo "bench-waypoint: $b not built (make build)" >&2; exit 1; }
done

PREFIX=zlw$(($$ % 100000))
ST=/run/zmesh-lab/$PREFIX
UP=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if ((UP)) && ((!KEEP)); then "$LAB" down "$PREFIX" >/dev/null 2>&1 || true; fi
  ((KEEP)) && echo "lab $PREFIX kept: scripts/lab.sh down $PREFIX"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
die() { echo "bench-waypoint: $*" >&2; [[ -d $ST/logs ]] && tail_logs "$ST/logs" 10; exit 1; }
inpod() { "$LAB" exec "$PREFIX" "$@"; }
listening() { inpod "$1" -- ss -Hltn "sport = :$2" 2>/dev/null | grep -q LISTEN; }
HZ=$(getconf CLK_TCK)

spec=$(mktemp)
cat >"$spec" <<'SPEC'
node node1
node node2
namespace demo ambient
namespace plain
pod demo/client node1 sa=client
pod demo/waypoint node1 sa=waypoint label=app=waypoint label=gateway.networking.k8s.io/gateway-name=waypoint label=zmesh.io/dataplane-mode=none
pod demo/server node2 sa=web label=zmesh.io/use-waypoint=waypoint
pod plain/pclient node1
pod plain/hproxy node1
pod plain/pserver node2
SPEC
UP=1
"$LAB" up "$PREFIX" "$spec" >/dev/null || die "lab.sh up"
rm -f "$spec"
# shellcheck disable=SC1091
source "$ST/env"
W=$ST/bench
mkdir -p "$W"

# Keys: the end-user ES256 key (both rows verify it), the backend's TLS certificate.
/usr/bin/python3 "$HELPERS/jwt_tool.py" keygen "$W" || die "JWT key"
openssl ec -in "$W/key.pem" -pubout -out "$W/jwt-pub.pem" 2>/dev/null || die "public key"
ISS=https://issuer.bench.zmesh
TOKEN=$(/usr/bin/python3 "$HELPERS/jwt_tool.py" mint "$W" --iss "$ISS" --sub bench --exp-in 86400)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=backend.bench \
  -addext subjectAltName=DNS:backend.bench -keyout "$W/backend-key.pem" -out "$W/backend-cert.pem" \
  2>/dev/null || die "backend certificate"
cat "$W/backend-cert.pem" "$W/backend-key.pem" >"$W/backend.pem"

haproxy_cfg() { # FILE BODY: a haproxy config with our defaults
  cat >"$1" <<EOF
global
  nbthread 2
  maxconn 4000
  ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384
  ssl-default-bind-options ssl-min-ver TLSv1.3
  ssl-default-server-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384
  ssl-default-server-options ssl-min-ver TLSv1.3
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
$2
EOF
}
backend_body='frontend fe
  bind 0.0.0.0:8080
  bind 0.0.0.0:8443 ssl crt '"$W"'/backend.pem
  http-request return status 200 content-type text/plain string ok'
haproxy_cfg "$W/backend.cfg" "$backend_body"
acls=""
for i in 0 1 2 3 4 5 6 7 8; do acls+="  http-request allow if METH_POST { path_beg /r$i/ }"$'\n'; done
haproxy_cfg "$W/proxy.cfg" "frontend fe
  bind 0.0.0.0:8080
  http-request deny deny_status 401 unless { req.hdr(authorization) -m found }
  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('\$.alg')
  http-request deny deny_status 401 unless { var(txn.alg) -m str ES256 }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify(txn.alg,\"$W/jwt-pub.pem\") -m int 1 }
${acls}  http-request allow if METH_GET { path /bench }
  http-request deny deny_status 403
  default_backend be
backend be
  server s1 $POD_PSERVER_IP:8443 ssl verify required ca-file $W/backend-cert.pem verifyhost backend.bench sni str(backend.bench)"
haproxy -c -q -f "$W/proxy.cfg" || die "haproxy rejects $W/proxy.cfg"
"$LAB" spawn "$PREFIX" pserver backend -- haproxy -db -f "$W/backend.cfg" >/dev/null
"$LAB" spawn "$PREFIX" server backend-mesh -- haproxy -db -f "$W/backend.cfg" >/dev/null
"$LAB" spawn "$PREFIX" hproxy haproxy -- haproxy -db -f "$W/proxy.cfg" >/dev/null
poll 10 listening pserver 8443 || die "backend not listening"
poll 10 listening server 8080 || die "mesh backend not listening"
poll 10 listening hproxy 8080 || die "haproxy not listening"

# The mesh: one root for both agents, the waypoint with its policies.
make_mesh_root "$W/root" || die "mesh root"
export ZMESH_AGENT_EXTRA_ARGS="--ca-cert $W/root/root-cert.pem --ca-key $W/root/root-key.pem"
"$LAB" mesh-up "$PREFIX" node1 >/dev/null || die "mesh-up node1"
"$LAB" mesh-up "$PREFIX" node2 >/dev/null || die "mesh-up node2"
rules=""
for i in 0 1 2 3 4 5 6 7 8; do
  rules+="  - from: [{source: {requestPrincipals: [\"$ISS/*\"]}}]
    to: [{operation: {methods: [POST], paths: [\"/r$i/*\"]}}]
"
done
cat >"$ST/manifests/.wp.tmp" <<YAML
$(waypoint_manifests demo "$ISS" "$W/jwks.json")
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ten-rules, namespace: demo}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
  rules:
${rules}  - from: [{source: {requestPrincipals: ["$ISS/*"]}}]
    to: [{operation: {methods: [GET], paths: [/bench]}}]
YAML
mv "$ST/manifests/.wp.tmp" "$ST/manifests/waypoint.yaml"
"$LAB" spawn "$PREFIX" waypoint waypoint -- "$ZMESH_BIN/waypoint" --namespace demo --name waypoint \
  --manifests "$ST/manifests" --ca-address "unix:$ST/$PREFIX-node1/ca.sock" --workers 2 \
  --log-level warn --metrics-addr 127.0.0.1:15020 --readiness-addr 127.0.0.1:15021 >/dev/null
wp_ready() { inpod waypoint -- curl -sf --max-time 2 http://127.0.0.1:15021/healthz/ready >/dev/null; }
poll 20 wp_ready || die "the waypoint is not ready"
check() { # FROM URL EXPECTED [CURL ARGS]
  local code
  code=$(inpod "$1" -- curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${@:4}" "$2") || true
  [[ $code == "$3" ]] || die "$1 $2: HTTP $code, expected $3"
}
check client "http://$POD_SERVER_IP:8080/bench" 200 -H "Authorization: Bearer $TOKEN"
check client "http://$POD_SERVER_IP:8080/bench" 403
check pclient "http://$POD_HPROXY_IP:8080/bench" 200 -H "Authorization: Bearer $TOKEN"
check pclient "http://$POD_HPROXY_IP:8080/bench" 401
check pclient "http://$POD_HPROXY_IP:8080/other" 403 -H "Authorization: Bearer $TOKEN"

ztunnels=("$("$LAB" pid "$PREFIX" "ztunnel-$PREFIX-node1" 2>/dev/null || "$LAB" pid "$PREFIX" ztunnel-node1)"
          "$("$LAB" pid "$PREFIX" "ztunnel-$PREFIX-node2" 2>/dev/null || "$LAB" pid "$PREFIX" ztunnel-node2)")
ROWS=()
run_row() { # NAME FROM ADDR PROXY_PID|- [HEADER]
  local name=$1 from=$2 addr=$3 proxy=$4 header=${5:-} c0=0 z0=0 c1 z1 out
  [[ $proxy != - ]] && c0=$(cpu_ticks "$proxy")
  [[ $name == waypoint ]] && z0=$(cpu_ticks "${ztunnels[@]}")
  local -a args=(--addr "$addr" --path /bench --connections "$CONNECTIONS" --seconds "$SECONDS_PER_ROW")
  [[ -n $header ]] && args+=(--header "$header")
  out=$(inpod "$from" -- "$LOAD" "${args[@]}") || die "http_load ($name)"
  c1=$([[ $proxy != - ]] && cpu_ticks "$proxy" || echo 0)
  z1=$([[ $name == waypoint ]] && cpu_ticks "${ztunnels[@]}" || echo 0)
  ROWS+=("$(python3 - "$name" "$out" "$((c1 - c0))" "$((z1 - z0))" "$HZ" <<'PY'
import json, sys
name, out, ticks, zticks, hz = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
ok = out["statuses"].get("200", 0)
cpu = ticks / hz
print(json.dumps({"row": name, "rps": out["rps"], "p50_us": out["p50_us"], "p99_us": out["p99_us"],
                  "ok": ok, "other": out["requests"] - ok, "errors": out["errors"],
                  "proxy_cpu_s": cpu if name != "direct" else None,
                  "req_per_cpu_s": (ok / cpu) if cpu > 0 else None,
                  "ztunnel_cpu_s": zticks / hz if name == "waypoint" else None}))
PY
)")
}
echo "bench-waypoint: $CONNECTIONS keep-alive connections, ${SECONDS_PER_ROW}s per row, GET /bench"
run_row direct pclient "$POD_PSERVER_IP:8080" -
run_row waypoint client "$POD_SERVER_IP:8080" "$("$LAB" pid "$PREFIX" waypoint)" "Authorization: Bearer $TOKEN"
run_row haproxy pclient "$POD_HPROXY_IP:8080" "$("$LAB" pid "$PREFIX" haproxy)" "Authorization: Bearer $TOKEN"

python3 - "${ROWS[@]}" <<'PY'
import json, sys
rows = [json.loads(r) for r in sys.argv[1:]]
fmt = "{:<9} {:>10} {:>9} {:>9} {:>8} {:>10} {:>13} {:>12}"
print(fmt.format("row", "req/s", "p50 us", "p99 us", "non-200", "proxy CPU", "req/CPU-s", "ztunnels CPU"))
for r in rows:
    f = lambda v, spec: "-" if v is None else format(v, spec)
    print(fmt.format(r["row"], f(r["rps"], ".0f"), r["p50_us"], r["p99_us"], r["other"] + r["errors"],
                     f(r["proxy_cpu_s"], ".2f") + ("s" if r["proxy_cpu_s"] is not None else ""),
                     f(r["req_per_cpu_s"], ".0f"),
                     f(r["ztunnel_cpu_s"], ".2f") + ("s" if r["ztunnel_cpu_s"] is not None else "")))
by = {r["row"]: r for r in rows}
w, h = by["waypoint"]["req_per_cpu_s"], by["haproxy"]["req_per_cpu_s"]
if w and h:
    ratio = w / h
    print(f"{'PASS' if ratio >= 1.5 else 'MISS'}: waypoint requests per CPU-second = {ratio:.2f}x haproxy's (target >= 1.5x)")
d = by["direct"]
print(f"added p50 over direct: waypoint path {by['waypoint']['p50_us'] - d['p50_us']} us (two ztunnels + waypoint), "
      f"haproxy {by['haproxy']['p50_us'] - d['p50_us']} us")
PY
