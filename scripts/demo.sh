#!/usr/bin/env bash
# zmesh demo: one lab node, an enrolled namespace and a legacy one, traffic through ztunnel.
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
ztlog() { echo "$STATE/logs/ztunnel-node1.log"; }
zt_lines() { grep -F -- "$1" "$(ztlog)" 2>/dev/null | grep -F -- "$2" || true; }
zt_count() { zt_lines "$1" "$2" | wc -l; }
zt_more() { (($(zt_count "$2" "$3") > $1)); }
in_node() { "$LAB" exec "$PREFIX" node1 -- "$@"; }

[[ $(id -u) -eq 0 ]] || { echo "demo.sh must run as root (network namespaces, cgroups, eBPF)" >&2; exit 1; }
for b in zmesh-agent ztunnel zmeshctl; do
  [[ -x $ZMESH_BIN/$b ]] || { echo "missing $ZMESH_BIN/$b: build first (make) or set ZMESH_BIN" >&2; exit 1; }
done
for t in curl python3 nsenter ss; do
  command -v "$t" >/dev/null || { echo "missing tool $t: run scripts/bootstrap.sh" >&2; exit 1; }
done

# ---------------------------------------------------------------------------------------------
step "Build a one-node lab" \
  "A node is a network namespace with a bridge and a cgroup v2 subtree; each pod is a netns on" \
  "a veth into the node. Namespace demo carries zmesh.io/dataplane-mode=ambient; legacy does not."
spec=$(mktemp)
cat >"$spec" <<'EOF'
node node1
namespace demo ambient
namespace legacy
pod demo/client node1
pod demo/server node1
pod legacy/legacy node1
pod legacy/legacy-web node1
EOF
BUILT=1
run "$LAB" up "$PREFIX" "$spec" || die "lab.sh up"
rm -f "$spec"
# shellcheck disable=SC1091
source "$STATE/env"
printf '   client %s   server %s   legacy %s   legacy-web %s   node %s\n' \
  "$POD_CLIENT_IP" "$POD_SERVER_IP" "$POD_LEGACY_IP" "$POD_LEGACY_WEB_IP" "$NODE1_IP"

step "Start the apps" "A small HTTP server (whoami) in server and legacy-web answers with the peer address it sees."
"$LAB" spawn "$PREFIX" server web -- python3 "$HELPERS/whoami.py" http 8080 >/dev/null
"$LAB" spawn "$PREFIX" legacy-web web-legacy -- python3 "$HELPERS/whoami.py" http 8080 >/dev/null
poll 10 listening server 8080 || die "server did not listen on 8080"
poll 10 listening legacy-web 8080 || die "legacy-web did not listen on 8080"
ok "servers listening on :8080"

step "Start the mesh on node1" \
  "zmesh-agent loads and pins the eBPF programs, enrolls the pods of demo and hands their netns" \
  "to ztunnel over ZDS; ztunnel opens its listeners inside each enrolled pod."
run "$LAB" mesh-up "$PREFIX" node1 || die "mesh-up"

step "client -> server goes through ztunnel" \
  "connect4 on the client rewrites the connect to ztunnel's in-pod 15001; ztunnel recovers the" \
  "original destination with SO_ORIGINAL_DST; sk_lookup steers the inbound side to 15006/15008."
out_before=$(zt_count dir=outbound "dst=$POD_SERVER_IP:8080")
in_before=$(zt_count dir=inbound "dst=$POD_SERVER_IP:8080")
body=$(run "$LAB" exec "$PREFIX" client -- curl -sS --max-time 5 "http://$POD_SERVER_IP:8080/") || die "curl client -> server"
echo "$body"
poll 10 zt_more "$out_before" dir=outbound "dst=$POD_SERVER_IP:8080" || die "no dir=outbound access line in ztunnel's log"
poll 10 zt_more "$in_before" dir=inbound "dst=$POD_SERVER_IP:8080" || die "no dir=inbound access line in ztunnel's log"
echo "   ztunnel access log:"
zt_lines "dst=$POD_SERVER_IP:8080" dir= | tail -n 2 | sed 's/^/   | /'
ok "captured on both sides"
echo "   ztunnel metrics (curl 127.0.0.1:15020/metrics in the node netns, istio_tcp_*):"
metrics=$(in_node curl -sS --max-time 5 http://127.0.0.1:15020/metrics) || die "ztunnel metrics"
grep '^istio_tcp_' <<<"$metrics" | sed 's/^/   | /' || die "no istio_tcp_* series in ztunnel's metrics"

step "The server sees the client's real IP" \
  "ztunnel delivers with IP_TRANSPARENT from the client's address: no SNAT to the node."
[[ ${body%:*} == "client=$POD_CLIENT_IP" ]] || die "server saw '${body}', expected client=$POD_CLIENT_IP:<port>"
ok "server saw $POD_CLIENT_IP"

step "legacy -> legacy-web is untouched" \
  "Neither pod is enrolled: no redirect, no ztunnel, no access-log line."
legacy_before=$(zt_count "src=$POD_LEGACY_IP:" dst=)
lbody=$(run "$LAB" exec "$PREFIX" legacy -- curl -sS --max-time 5 "http://$POD_LEGACY_WEB_IP:8080/") || die "curl legacy -> legacy-web"
echo "$lbody"
[[ ${lbody%:*} == "client=$POD_LEGACY_IP" ]] || die "legacy-web saw '$lbody'"
# Barrier: a captured request made afterwards; once its line is there, one for legacy would be too.
canary=$(zt_count dir=outbound "dst=$POD_SERVER_IP:8080")
"$LAB" exec "$PREFIX" client -- curl -sS --max-time 5 -o /dev/null "http://$POD_SERVER_IP:8080/" || die "canary curl"
poll 10 zt_more "$canary" dir=outbound "dst=$POD_SERVER_IP:8080" || die "canary not logged"
[[ $(zt_count "src=$POD_LEGACY_IP:" dst=) == "$legacy_before" ]] || die "ztunnel logged legacy traffic: $(zt_lines "src=$POD_LEGACY_IP:" dst=)"
ok "no ztunnel line for $POD_LEGACY_IP"

step "What the kernel holds: zmeshctl bpf pods" "Per enrolled pod: netns cookie, IPs, outbound/inbound capture, ztunnel listener, sk_lookup link."
run "$ZMESH_BIN/zmeshctl" bpf pods --node "$PREFIX-node1" || die "zmeshctl bpf pods"

step "zmeshctl bpf stats" "Per-reason counters from the per-CPU stats map: redirects, skips, drops."
run "$ZMESH_BIN/zmeshctl" bpf stats --node "$PREFIX-node1" || die "zmeshctl bpf stats"

step "zmeshctl bpf status" "Programs, attach points and pinned links (they survive agent restarts), map fill."
run "$ZMESH_BIN/zmeshctl" bpf status --node "$PREFIX-node1" || die "zmeshctl bpf status"

step "Workload identities" \
  "The agent's CA issued ztunnel a certificate for each enrolled pod's SPIFFE identity (ztunnel's" \
  "/debug/certs in the node netns). Inbound HBONE on 15008 already presents it; outbound HBONE is next."
certs=$(run in_node curl -sS --max-time 5 http://127.0.0.1:15020/debug/certs) || die "ztunnel /debug/certs"
echo "$certs"
grep -q '"identity": "spiffe://cluster.local/ns/demo/sa/default"' <<<"$certs" || die "no certificate for the demo identity"
grep -q '"has_cert": true' <<<"$certs" || die "the demo identity has no certificate"
ok "ztunnel holds a certificate for spiffe://cluster.local/ns/demo/sa/default"

printf '\n%sdemo: all steps passed%s\n' "$G" "$N"
