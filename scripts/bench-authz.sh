#!/usr/bin/env bash
# Authorization cost (issue 4), in one run:
#   1. policy evaluation per connection (mesh::AuthorizeL4, Google Benchmark) with 1, 100 and
#      10 000 AuthorizationPolicies in the snapshot, spread over namespaces (3 apply) and all
#      applying to the destination (the worst case); compiling a snapshot's policies;
#   2. new connections per second through ztunnel (connect, 1-byte echo, close; HBONE between
#      two enrolled pods of one lab node) with no policy, then with 1 000 policies of which
#      three apply to the server (one ALLOW admits the client), in the same lab.
#   scripts/bench-authz.sh [--duration SECONDS] [--procs N]
# Binaries from ${ZMESH_BIN:-build/bin} (and the benchmark from its sibling bench/). Needs root.
# The lab is removed on exit, also on failure.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB=$SRC/scripts/lab.sh
HELPERS=$SRC/scripts/lab
BN=$HELPERS/benchnet.py
# shellcheck source=scripts/lab/common.sh
source "$HELPERS/common.sh"
use_zmesh_bin "$SRC"
DURATION=5
PROCS=4
while (($#)); do
  case $1 in
    --duration) DURATION=${2:?}; shift 2 ;;
    --procs) PROCS=${2:?}; shift 2 ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-authz: unknown argument $1" >&2; exit 2 ;;
  esac
done
BENCH_BIN=$(cd "$ZMESH_BIN/.." && pwd)/bench/authz_eval_bench
[[ $(id -u) -eq 0 ]] || { echo "bench-authz: needs root (network namespaces, eBPF)" >&2; exit 1; }
[[ -x $BENCH_BIN ]] || { echo "bench-authz: $BENCH_BIN not built (make build)" >&2; exit 1; }

PREFIX=zla$(($$ % 100000))
STATE=/run/zmesh-lab/$PREFIX
BUILT=0
die() {
  echo "bench-authz: $*" >&2
  [[ -d $STATE/logs ]] && tail_logs "$STATE/logs" 15
  exit 1
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  ((BUILT)) && "$LAB" down "$PREFIX" >/dev/null 2>&1
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== 1. policy evaluation per connection (Google Benchmark, $(nproc) cores)"
"$BENCH_BIN" --benchmark_format=json --benchmark_min_time=0.5 2>/dev/null >"/tmp/$PREFIX-eval.json" ||
  die "authz_eval_bench failed"
python3 - "/tmp/$PREFIX-eval.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"{'case':<28} | {'policies':>8} | {'apply':>6} | {'time per connection':>20}")
print(f"{'-'*28}-+-{'-'*8}-+-{'-'*6}-+-{'-'*20}")
for b in d["benchmarks"]:
    name, n = b["name"].split("/")
    unit = b["time_unit"]
    t = b["real_time"]
    shown = f"{t:.0f} ns" if unit == "ns" else f"{t:.2f} {unit}"
    case = {"BM_AuthorizeL4_Spread": "AuthorizeL4, spread",
            "BM_AuthorizeL4_AllApply": "AuthorizeL4, all apply",
            "BM_BuildPolicySet": "compile (per config update)"}[name]
    apply = int(b.get("applicable", 0)) if "applicable" in b else "-"
    print(f"{case:<28} | {n:>8} | {apply:>6} | {shown:>20}")
PY
rm -f "/tmp/$PREFIX-eval.json"

echo
echo "== 2. new connections per second through ztunnel (${DURATION}s each, $PROCS client processes)"
spec=$(mktemp)
printf '%s\n' 'node node1' 'namespace demo ambient' 'pod demo/client node1' 'pod demo/server node1' >"$spec"
BUILT=1
"$LAB" up "$PREFIX" "$spec" >/dev/null || die "lab.sh up"
rm -f "$spec"
# shellcheck disable=SC1091
source "$STATE/env"
# One echo server port per row: connections of one row leave thousands of delivery sockets
# in TIME_WAIT for (client, server:port), which would slow the next row's port selection.
"$LAB" spawn "$PREFIX" server echo0 -- python3 "$BN" serve 7000 --procs 2 >/dev/null
"$LAB" spawn "$PREFIX" server echo1 -- python3 "$BN" serve 7001 --procs 2 >/dev/null
listening() { "$LAB" exec "$PREFIX" server -- ss -Hltn "sport = :$1" 2>/dev/null | grep -q LISTEN; }
poll 10 listening 7000 || die "echo server did not start"
poll 10 listening 7001 || die "echo server did not start"
"$LAB" mesh-up "$PREFIX" node1 >/dev/null || die "mesh-up"
zt=$STATE/logs/ztunnel-node1.log

cps() { # PORT -> "PER_S ERRORS"
  local out
  out=$("$LAB" exec "$PREFIX" client -- python3 "$BN" cps "$POD_SERVER_IP" "$1" \
    --duration "$DURATION" --procs "$PROCS") || die "cps client failed: $out"
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(int(d["per_s"]), d["errors"])' "$out"
}
# Warm up (certificates, pooled HBONE connection), then measure.
"$LAB" exec "$PREFIX" client -- python3 "$BN" cps "$POD_SERVER_IP" 7000 --duration 0.2 --procs 1 >/dev/null ||
  die "warm-up failed"
read -r none_cps none_err < <(cps 7000)

python3 - "$STATE/manifests/policies.yaml" <<'PY'
import sys
docs = []
def ap(ns, name, spec):
    docs.append(f"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
                f"metadata: {{name: {name}, namespace: {ns}}}\nspec:\n{spec}")
for i in range(997):
    ns = "demo" if i % 7 == 0 else f"ns-{i % 100}"
    ap(ns, f"p{i}", f"  selector: {{matchLabels: {{app: svc-{i}}}}}\n"
       f"  rules:\n  - from: [{{source: {{namespaces: [{ns}]}}}}]\n    to: [{{operation: {{ports: [\"8080\"]}}}}]\n")
ap("demo", "allow-client", "  selector: {matchLabels: {app: server}}\n"
   "  rules:\n  - from: [{source: {principals: [cluster.local/ns/demo/sa/default]}}]\n    to: [{operation: {ports: [\"7000\", \"7001\"]}}]\n")
ap("demo", "deny-bad", "  action: DENY\n  rules:\n  - from: [{source: {namespaces: [bad]}}]\n")
ap("zmesh-system", "mesh-deny-plain", "  action: DENY\n  rules:\n  - from: [{source: {notPrincipals: [\"*\"]}}]\n    to: [{operation: {ports: [\"9999\"]}}]\n")
open(sys.argv[1], "w").write("---\n".join(docs))
PY
loaded() { grep -qF "1000 authorization policies (0 rejected)" "$zt"; }
poll 20 loaded || die "ztunnel did not load the 1000 policies"
read -r many_cps many_err < <(cps 7001)
allowed=$(grep -c "result=ok" "$zt" || true)
denied=$(grep -c "result=policy-denied" "$zt" || true)

printf '%-24s | %8s | %10s | %7s\n' "policies in the snapshot" "applying" "conn/s" "errors"
printf '%s\n' "-------------------------+----------+------------+--------"
printf '%-24s | %8s | %10s | %7s\n' "none" 0 "$none_cps" "$none_err"
printf '%-24s | %8s | %10s | %7s\n' "1000" 3 "$many_cps" "$many_err"
python3 -c 'import sys; a, b = int(sys.argv[1]), int(sys.argv[2]); print(f"ratio with 1000 policies: {b / a:.3f}" if a else "")' \
  "$none_cps" "$many_cps"
echo "ztunnel access log: $allowed connections ok, $denied denied (must be 0)"
((denied == 0)) || die "connections were denied"
