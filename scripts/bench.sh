#!/usr/bin/env bash
# zmesh benchmark: direct pod-to-pod versus through ztunnel (plain TCP), on one fresh lab node.
#   scripts/bench.sh [--duration SECONDS] [--size BYTES] [--direct-only]
# Paths: "direct" = legacy/lclient -> legacy/lserver (namespace not enrolled, no mesh);
#        "ztunnel" = demo/client -> demo/server (enrolled, captured by eBPF, through ztunnel).
# Throughput: iperf3, one stream, --duration seconds (default 5).
# Request/response: scripts/lab/rrclient.py against whoami.py echo, SIZE-byte (default 1)
# ping-pong on ONE persistent connection for --duration seconds (netperf is not packaged in
# Debian 12 main, so no TCP_RR). Absolute rr numbers include Python's overhead; compare rows.
# Binaries from ${ZMESH_BIN:-build/bin}; tools: iperf3, python3 (scripts/bootstrap.sh).
# Prints a table; asserts nothing about the numbers.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB=$SRC/scripts/lab.sh
HELPERS=$SRC/scripts/lab
# shellcheck source=scripts/lab/common.sh
source "$HELPERS/common.sh"
use_zmesh_bin "$SRC"
DURATION=5
SIZE=1
DIRECT_ONLY=0

while (($#)); do
  case $1 in
    --duration) DURATION=${2:?}; shift 2 ;;
    --size) SIZE=${2:?}; shift 2 ;;
    --direct-only) DIRECT_ONLY=1; shift ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 1 ]] || { echo "bench: --duration must be a whole number of seconds >= 1" >&2; exit 2; }
[[ $SIZE =~ ^[0-9]+$ && $SIZE -ge 1 ]] || { echo "bench: --size must be >= 1" >&2; exit 2; }

[[ $(id -u) -eq 0 ]] || { echo "bench.sh must run as root" >&2; exit 1; }
for t in iperf3 python3 curl nsenter ss; do
  command -v "$t" >/dev/null || { echo "bench: missing tool $t: run scripts/bootstrap.sh" >&2; exit 1; }
done
if ((!DIRECT_ONLY)); then
  for b in zmesh-agent ztunnel; do
    [[ -x $ZMESH_BIN/$b ]] || { echo "bench: missing $ZMESH_BIN/$b: build first, set ZMESH_BIN, or use --direct-only" >&2; exit 1; }
  done
fi

PREFIX=zl$(($$ % 1000000))
STATE=/run/zmesh-lab/$PREFIX
BUILT=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  trap '' PIPE
  if ((BUILT)); then "$LAB" down "$PREFIX" || true; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
  echo "bench: $*" >&2
  tail_logs "$STATE/logs" 10
  exit 1
}
listening() { "$LAB" exec "$PREFIX" "$1" -- ss -Hltn "sport = :$2" 2>/dev/null | grep -q LISTEN; }
zt_count() { grep -F -- "$1" "$STATE/logs/ztunnel-node1.log" 2>/dev/null | grep -cF -- "$2" || true; }
zt_more() { (($(zt_count "$2" "$3") > $1)); }

spec=$(mktemp)
cat >"$spec" <<'EOF'
node node1
namespace demo ambient
namespace legacy
pod demo/client node1
pod demo/server node1
pod legacy/lclient node1
pod legacy/lserver node1
EOF
BUILT=1
"$LAB" up "$PREFIX" "$spec" 2>/dev/null || die "lab.sh up failed"
rm -f "$spec"
# shellcheck disable=SC1091
source "$STATE/env"

for pod in server lserver; do
  "$LAB" spawn "$PREFIX" "$pod" "iperf3-$pod" -- iperf3 -s -p 5201 >/dev/null
  "$LAB" spawn "$PREFIX" "$pod" "echo-$pod" -- python3 "$HELPERS/whoami.py" echo 7000 >/dev/null
  poll 10 listening "$pod" 5201 || die "iperf3 in $pod not listening"
  poll 10 listening "$pod" 7000 || die "echo server in $pod not listening"
done
if ((!DIRECT_ONLY)); then
  "$LAB" mesh-up "$PREFIX" node1 2>/dev/null || die "mesh-up failed"
fi

# measure FROM TO_IP -> "gbps rr p50 p99"
measure() {
  local from=$1 ip=$2 ij rr gbps
  ij=$("$LAB" exec "$PREFIX" "$from" -- iperf3 -c "$ip" -p 5201 -t "$DURATION" -J) || die "iperf3 $from -> $ip failed: $ij"
  gbps=$(python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.2f" % (d["end"]["sum_received"]["bits_per_second"] / 1e9))' <<<"$ij") ||
    die "cannot parse iperf3 output"
  rr=$("$LAB" exec "$PREFIX" "$from" -- python3 "$HELPERS/rrclient.py" "$ip" 7000 --duration "$DURATION" --size "$SIZE") ||
    die "rrclient $from -> $ip failed: $rr"
  python3 -c 'import json,sys; d=json.loads(sys.argv[2]); print(sys.argv[1], "%.0f" % d["rr_per_s"], d["p50_us"], d["p99_us"])' "$gbps" "$rr"
}

echo "bench: ${DURATION}s per measurement, ${SIZE}-byte request/response, lab $PREFIX" >&2
rows=()
echo "bench: direct (legacy/lclient -> legacy/lserver)..." >&2
rows+=("direct $(measure lclient "$POD_LSERVER_IP")")
if ((!DIRECT_ONLY)); then
  before=$(zt_count dir=outbound "dst=$POD_SERVER_IP:")
  echo "bench: ztunnel (demo/client -> demo/server)..." >&2
  rows+=("ztunnel $(measure client "$POD_SERVER_IP")")
  # The mesh row means nothing unless the connections really went through ztunnel.
  poll 5 zt_more "$before" dir=outbound "dst=$POD_SERVER_IP:" ||
    echo "bench: WARNING: no ztunnel access line for demo/server: the ztunnel row was NOT captured" >&2
fi

printf '\n%-8s | %-18s | %-9s | %-7s | %-7s\n' path "throughput Gbit/s" "rr/s" "p50 us" "p99 us"
printf '%s\n' "---------+--------------------+-----------+---------+--------"
for r in "${rows[@]}"; do
  read -r path gbps rrs p50 p99 <<<"$r"
  printf '%-8s | %18s | %9s | %7s | %7s\n' "$path" "$gbps" "$rrs" "$p50" "$p99"
done
