#!/usr/bin/env bash
# zmesh mutual-TLS benchmark (issue 3): zmesh against two classic mTLS proxy pairs, in ONE run,
# on a fresh TWO-node lab; every client runs on node1 and its server on node2 (cross-node).
#   scripts/bench-mtls.sh [--quick] [--out FILE] [--keep] [--cps-procs N] [--hold N]
# Rows (lab spec: scripts/lab/bench-mtls.spec):
#   direct   plain/dclient -> plain/dserver; namespace not enrolled, no proxy at all.
#   zmesh    mesh/mclient -> mesh/mserver; namespace enrolled (ambient), agent + ztunnel on
#            both nodes (both agents share one mesh root made here, ECDSA P-256), traffic
#            captured by eBPF through node1's and node2's ztunnel: HBONE, i.e. HTTP/2 CONNECT
#            over mutual TLS to 15008 with SPIFFE identities (a build without outbound HBONE
#            relays plain TCP; the output says which transport it saw).
#   stunnel  plain/sclient -> plain/sserver through stunnel4 5.x: a client-side proxy in the
#            client pod (127.0.0.1:15201/17000) and a server-side proxy in the server pod
#            (POD_IP:25201/27000 -> 127.0.0.1:5201/7000). Foreground, threads, log level warning.
#   haproxy  plain/hclient -> plain/hserver, the same with haproxy 2.6: mode tcp, nbthread 2
#            (ztunnel runs with --workers 2), no logging.
# Both peers are configured like HBONE's TLS (common/tls/hbone_tls.h): TLS 1.3 only, cipher
# suites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384, groups X25519:P-256, ECDSA P-256
# certificates (SHA-256) from a throwaway CA made with openssl in the lab state dir, peer
# verified both ways (server requires a client certificate chained to the CA; client checks
# the chain and the server name server.zmesh-bench), no session resumption (no tickets, client
# resumption off), no SNI, TCP_NODELAY. (haproxy 2.6 has no `curves` on server lines: its
# client side offers OpenSSL's default groups and the server side's bind picks X25519.) The
# peer rows run before the mesh is started (no eBPF attached anywhere).
# Metrics per row (--quick: 1 s each instead of 5 s):
#   iperf3 throughput, 1 and 4 parallel streams (-J); 1 KiB request/response p50/p99 over one
#   persistent connection (scripts/lab/rrclient.py against benchnet.py's echo server); new
#   connections/s (connect, 1-byte echo, close) from --cps-procs client processes (default 4;
#   the direct row shows what the Python clients and echo server manage on their own);
#   CPU seconds per GB of the row's proxy processes (utime+stime of both proxies, both
#   ztunnels for zmesh) over the 1-stream iperf3 run; proxy VmRSS idle and while --hold (1000)
#   connections are held open through the row, per node (n1/n2).
# Then PASS/MISS lines for the issue-3 targets (zmesh 1-stream throughput >= 1.5x the best
# peer, added p50 <= 0.5x the best peer's, conn/s >= 10x, idle ztunnel RSS <= 20 MB). A MISS
# never fails the run. Exit status: 0 measured; 1 real error (missing tool or binary, a proxy
# or the mesh never became ready, a measurement that could not run).
# Machine-readable copy: --out FILE (JSON; TSV if FILE ends in .tsv), default
# /tmp/zmesh-bench-mtls-PREFIX.json. --keep leaves the lab (and its logs, configs, PKI) up;
# remove it with scripts/lab.sh down PREFIX. Binaries from ${ZMESH_BIN:-build/bin}.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB=$SRC/scripts/lab.sh
HELPERS=$SRC/scripts/lab
BN=$HELPERS/benchnet.py
# shellcheck source=scripts/lab/common.sh
source "$HELPERS/common.sh"
use_zmesh_bin "$SRC"

QUICK=0
KEEP=0
OUT=""
CPS_PROCS=4
SERVER_PROCS=2
HOLD=1000

usage() { sed -n '2,39p' "$0" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --quick) QUICK=1; shift ;;
    --keep) KEEP=1; shift ;;
    --out) OUT=${2:?--out needs a file}; shift 2 ;;
    --cps-procs) CPS_PROCS=${2:?}; shift 2 ;;
    --hold) HOLD=${2:?}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench-mtls: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ $CPS_PROCS =~ ^[0-9]+$ && $CPS_PROCS -ge 1 ]] || { echo "bench-mtls: --cps-procs must be >= 1" >&2; exit 2; }
[[ $HOLD =~ ^[0-9]+$ && $HOLD -ge 1 ]] || { echo "bench-mtls: --hold must be >= 1" >&2; exit 2; }
if ((QUICK)); then T=1; else T=5; fi

[[ $(id -u) -eq 0 ]] || { echo "bench-mtls.sh must run as root" >&2; exit 1; }
for t in iperf3 python3 curl nsenter ss openssl stunnel4 haproxy timeout awk; do
  command -v "$t" >/dev/null || { echo "bench-mtls: missing tool $t: run scripts/bootstrap.sh (stunnel4, haproxy: apt-get install stunnel4 haproxy)" >&2; exit 1; }
done
for b in zmesh-agent ztunnel; do
  [[ -x $ZMESH_BIN/$b ]] || { echo "bench-mtls: missing $ZMESH_BIN/$b: build first or set ZMESH_BIN" >&2; exit 1; }
done

# Descriptors: 1000 held connections are 2000 sockets in each proxy (and in ztunnel, which
# inherits this limit through lab.sh spawn).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

n=$(($$ % 10000))
while [[ -e /run/zmesh-lab/zlbm$n ]]; do n=$(((n + 1) % 10000)); done
PREFIX=zlbm$n
STATE=/run/zmesh-lab/$PREFIX
[[ -n $OUT ]] || OUT=/tmp/zmesh-bench-mtls-$PREFIX.json
BUILT=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  trap '' PIPE
  if ((BUILT)); then
    if ((KEEP)); then
      echo "bench-mtls: --keep: lab $PREFIX left up (state $STATE); remove it with: $LAB down $PREFIX" >&2
    else
      "$LAB" down "$PREFIX" || true
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { echo "bench-mtls: $*" >&2; }
die() {
  echo "bench-mtls: error: $*" >&2
  [[ -d $STATE/logs ]] && tail_logs "$STATE/logs" 10
  # What was measured before the error is still worth seeing.
  if ((!REPORTED)) && [[ -n $RESULTS ]] && grep -qv '^meta ' "$RESULTS" 2>/dev/null; then
    REPORTED=1
    echo "bench-mtls: partial results (the run stopped early):" >&2
    report || true
  fi
  exit 1
}
REPORTED=0
transport="not measured"
FAILED=()
failed() { # WHAT DETAIL: a measurement that could not run; reported, the run goes on
  say "ERROR: $1 failed: ${2:-}"
  FAILED+=("$1")
}
inpod() { "$LAB" exec "$PREFIX" "$@"; }                      # POD -- CMD...
limited() { local s=$1; shift; timeout -k 5 "$s" "$LAB" exec "$PREFIX" "$@"; } # SECS POD -- CMD
listening() { inpod "$1" -- ss -Hltn "sport = :$2" 2>/dev/null | grep -q LISTEN; }
pid_of() { "$LAB" pid "$PREFIX" "$1"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo "-"; }
RESULTS=""
report() {
  echo
  echo "zmesh mTLS benchmark, lab $PREFIX, node1 -> node2; ${T}s per measurement$( ((QUICK)) && echo ' (--quick)')"
  echo "conn/s: $CPS_PROCS client processes (connect, 1-byte echo, close), echo server $SERVER_PROCS processes; the direct row is their own ceiling"
  echo "CPU s/GB: utime+stime of the row's two proxy processes during the 1-stream iperf3 run"
  echo "zmesh transport: $transport; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  if [[ $transport == plain* ]]; then
    echo "NOTE: the zmesh row went through both ztunnels as plain TCP (no outbound HBONE in this build): no TLS on that row"
  fi
  echo
  python3 "$BN" report "$RESULTS" --out "$OUT" || return 1
  echo
  echo "machine-readable copy: $OUT"
}
rec() { echo "$1 $2 $3" >>"$RESULTS"; } # ROW KEY VALUE

# --------------------------------------------------------------------------------------------
# lab

BUILT=1
"$LAB" up "$PREFIX" "$HELPERS/bench-mtls.spec" 2>/dev/null || die "lab.sh up failed"
# shellcheck disable=SC1091
source "$STATE/env"
RESULTS=$STATE/bench-mtls.results
: >"$RESULTS"
say "lab $PREFIX up (node1 clients, node2 servers); ${T}s per measurement"

# Connection-rate runs open tens of thousands of short connections: reuse TIME_WAIT ports for
# new outgoing connections and widen the ephemeral range (per netns; same for every row).
for p in $LAB_PODS $LAB_NODES; do
  inpod "$p" -- sysctl -qw net.ipv4.tcp_tw_reuse=1 "net.ipv4.ip_local_port_range=30000 65000" ||
    die "sysctl in $p failed"
done

# PKI: throwaway CA, ECDSA P-256 keys, SHA-256 signatures. (set -e does not apply inside a
# subshell tested with ||, hence the openssl verify at the end.)
PKI=$STATE/pki
mkdir -p "$PKI"
(
  cd "$PKI"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
  openssl req -x509 -new -key ca.key -sha256 -days 2 -subj "/CN=zmesh-bench CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem
  for who in server client; do
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$who.key"
    openssl req -new -key "$who.key" -sha256 -subj "/CN=$who.zmesh-bench" -out "$who.csr"
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:%s.zmesh-bench\n' "$who" >"$who.ext"
    openssl x509 -req -in "$who.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -sha256 \
      -extfile "$who.ext" -out "$who.pem"
    cat "$who.pem" "$who.key" >"$who.bundle.pem" # haproxy: certificate and key in one file
  done
  openssl verify -x509_strict -purpose sslserver -CAfile ca.pem server.pem &&
    openssl verify -x509_strict -purpose sslclient -CAfile ca.pem client.pem
) >"$STATE/logs/pki.log" 2>&1 || die "openssl: cannot make the CA and certificates (see $STATE/logs/pki.log)"

# Servers: iperf3 on 5201 and the echo server on 7000 in every server pod.
for p in dserver sserver hserver mserver; do
  "$LAB" spawn "$PREFIX" "$p" "iperf3-$p" -- iperf3 -s -p 5201 >/dev/null
  "$LAB" spawn "$PREFIX" "$p" "echo-$p" -- python3 "$BN" serve 7000 --procs "$SERVER_PROCS" >/dev/null
done
for p in dserver sserver hserver mserver; do
  poll 10 listening "$p" 5201 || die "iperf3 in $p not listening"
  poll 10 listening "$p" 7000 || die "echo server in $p not listening"
done

# --------------------------------------------------------------------------------------------
# peers

SUITES=TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384
GROUPS_=X25519:P-256
# port pairs: client-side plaintext listener -> server-side TLS listener -> backend
PORTS=("15201 25201 5201" "17000 27000 7000")

stunnel_tls() { # ROLE: the TLS part of a stunnel service
  cat <<EOF
CAfile = $PKI/ca.pem
verifyChain = yes
sslVersionMin = TLSv1.3
sslVersionMax = TLSv1.3
ciphersuites = $SUITES
curves = $GROUPS_
options = NO_TICKET
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1
EOF
  if [[ $1 == client ]]; then
    printf 'client = yes\ncert = %s\nkey = %s\ncheckHost = server.zmesh-bench\nsessionResume = no\n' "$PKI/client.pem" "$PKI/client.key"
  else
    printf 'cert = %s\nkey = %s\nrequireCert = yes\n' "$PKI/server.pem" "$PKI/server.key"
  fi
}

write_stunnel() { # SERVER_IP
  local pp c s b
  {
    printf 'foreground = yes\npid =\nsyslog = no\ndebug = warning\n'
    for pp in "${PORTS[@]}"; do
      read -r c s b <<<"$pp"
      printf '\n[p%s]\naccept = 127.0.0.1:%s\nconnect = %s:%s\n' "$b" "$c" "$1" "$s"
      stunnel_tls client
    done
  } >"$STATE/stunnel-client.conf"
  {
    printf 'foreground = yes\npid =\nsyslog = no\ndebug = warning\n'
    for pp in "${PORTS[@]}"; do
      read -r c s b <<<"$pp"
      printf '\n[p%s]\naccept = %s:%s\nconnect = 127.0.0.1:%s\n' "$b" "$1" "$s" "$b"
      stunnel_tls server
    done
  } >"$STATE/stunnel-server.conf"
}

haproxy_global() {
  cat <<EOF
global
  nbthread 2
  maxconn 5000
  ssl-server-verify required
  ssl-default-bind-ciphersuites $SUITES
  ssl-default-bind-options ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.3 no-tls-tickets
  ssl-default-server-ciphersuites $SUITES
  ssl-default-server-options ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.3 no-tls-tickets

defaults
  mode tcp
  timeout connect 5s
  timeout client 10m
  timeout server 10m
EOF
}

write_haproxy() { # SERVER_IP
  local pp c s b
  {
    haproxy_global
    for pp in "${PORTS[@]}"; do
      read -r c s b <<<"$pp"
      printf '\nlisten p%s\n  bind 127.0.0.1:%s\n' "$b" "$c"
      printf '  server s %s:%s ssl crt %s ca-file %s verify required verifyhost server.zmesh-bench no-ssl-reuse\n' \
        "$1" "$s" "$PKI/client.bundle.pem" "$PKI/ca.pem"
    done
  } >"$STATE/haproxy-client.cfg"
  {
    haproxy_global
    for pp in "${PORTS[@]}"; do
      read -r c s b <<<"$pp"
      printf '\nlisten p%s\n  bind %s:%s ssl crt %s ca-file %s verify required curves %s\n' \
        "$b" "$1" "$s" "$PKI/server.bundle.pem" "$PKI/ca.pem" "$GROUPS_"
      printf '  server s 127.0.0.1:%s\n' "$b"
    done
  } >"$STATE/haproxy-server.cfg"
}

# echo_ok POD HOST PORT: one connection, 1-byte echo, end to end.
echo_ok() { limited 15 "$1" -- python3 "$BN" hold "$2" "$3" --count 1 --seconds 0 2>/dev/null | grep -q '^held 1$'; }

# start_pair KIND CLIENT_POD SERVER_POD CMD_CLIENT... -- CMD_SERVER...
start_pair() {
  local kind=$1 cpod=$2 spod=$3 pp c s b
  shift 3
  local -a ccmd=() scmd=()
  while (($#)) && [[ $1 != -- ]]; do ccmd+=("$1"); shift; done
  shift
  scmd=("$@")
  "$LAB" spawn "$PREFIX" "$spod" "$kind-server" -- "${scmd[@]}" >/dev/null
  "$LAB" spawn "$PREFIX" "$cpod" "$kind-client" -- "${ccmd[@]}" >/dev/null
  for pp in "${PORTS[@]}"; do
    read -r c s b <<<"$pp"
    poll 15 listening "$spod" "$s" || die "$kind server-side proxy in $spod never listened on $s (log: $STATE/logs/$kind-server.log)"
    poll 15 listening "$cpod" "$c" || die "$kind client-side proxy in $cpod never listened on $c (log: $STATE/logs/$kind-client.log)"
  done
  pid_of "$kind-server" >/dev/null || die "$kind server-side proxy exited"
  pid_of "$kind-client" >/dev/null || die "$kind client-side proxy exited"
  # Ready means a mutual-TLS connection end to end, not just a listening socket.
  poll 15 echo_ok "$cpod" 127.0.0.1 17000 ||
    die "$kind pair never carried a connection (mutual TLS failed?): see $STATE/logs/$kind-*.log"
  # Mutual TLS really enforced: a client without a certificate gets nothing echoed.
  local sip got
  sip=$("$LAB" ip "$PREFIX" "$spod")
  got=$(printf 'nocert\n' | limited 10 "$cpod" -- openssl s_client -quiet -tls1_3 -CAfile "$PKI/ca.pem" \
    -verify_return_error -connect "$sip:27000" 2>&1) || true
  if [[ $got == *$'\n'nocert* || $got == nocert* ]]; then
    die "$kind server side echoed for a client WITHOUT a certificate: mutual TLS is not enforced"
  elif [[ $got == *"certificate required"* ]]; then
    say "$kind pair ready (mutual TLS; a client without a certificate gets 'certificate required')"
  else
    say "$kind pair ready; WARNING: could not confirm that a client without a certificate is refused: $(tail -n 1 <<<"$got")"
  fi
}

write_stunnel "$POD_SSERVER_IP"
write_haproxy "$POD_HSERVER_IP"
for f in haproxy-client haproxy-server; do
  haproxy -c -q -f "$STATE/$f.cfg" >"$STATE/logs/$f-check.log" 2>&1 ||
    die "haproxy rejects $STATE/$f.cfg: $(cat "$STATE/logs/$f-check.log")"
done

start_pair stunnel sclient sserver stunnel4 "$STATE/stunnel-client.conf" -- stunnel4 "$STATE/stunnel-server.conf"
start_pair haproxy hclient hserver haproxy -db -f "$STATE/haproxy-client.cfg" -- haproxy -db -f "$STATE/haproxy-server.cfg"

# --------------------------------------------------------------------------------------------
# measurements

# measure ROW CLIENT_POD HOST IPERF_PORT ECHO_PORT PROXY_PID...
measure() {
  local row=$1 pod=$2 host=$3 iport=$4 eport=$5 out g bytes c0 c1 lim a b c
  shift 5
  local -a pids=("$@")
  lim=$((T * 4 + 30))
  say "$row: iperf3, 1 stream"
  c0=""
  ((${#pids[@]} == 0)) || c0=$(cpu_ticks "${pids[@]}") || c0=""
  if out=$(limited "$lim" "$pod" -- iperf3 -c "$host" -p "$iport" -t "$T" -P 1 -J 2>&1) &&
    g=$(python3 "$BN" iperf <<<"$out" 2>&1); then
    if ((${#pids[@]})) && [[ -n $c0 ]] && c1=$(cpu_ticks "${pids[@]}"); then
      rec "$row" cpu0_ticks "$c0"
      rec "$row" cpu1_ticks "$c1"
    fi
    read -r g bytes <<<"$g"
    rec "$row" p1_gbps "$g"
    rec "$row" p1_bytes "$bytes"
  else
    failed "$row iperf3 -P 1" "${g:-$(tail -c 300 <<<"$out")}"
  fi
  say "$row: iperf3, 4 streams"
  g=""
  if out=$(limited "$lim" "$pod" -- iperf3 -c "$host" -p "$iport" -t "$T" -P 4 -J 2>&1) &&
    g=$(python3 "$BN" iperf <<<"$out" 2>&1); then
    rec "$row" p4_gbps "${g%% *}"
  else
    failed "$row iperf3 -P 4" "${g:-$(tail -c 300 <<<"$out")}"
  fi
  say "$row: 1 KiB request/response"
  if out=$(limited "$lim" "$pod" -- python3 "$HELPERS/rrclient.py" "$host" "$eport" --duration "$T" --size 1024 2>&1); then
    if read -r a b < <(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["p50_us"], d["p99_us"])' "$out"); then
      rec "$row" rr_p50_us "$a"
      rec "$row" rr_p99_us "$b"
    else
      failed "$row rr" "$out"
    fi
  else
    failed "$row rr" "$out"
  fi
  say "$row: new connections ($CPS_PROCS client processes)"
  if out=$(limited "$lim" "$pod" -- python3 "$BN" cps "$host" "$eport" --duration "$T" --procs "$CPS_PROCS" 2>&1); then
    if read -r a b c < <(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("%.0f" % d["per_s"], d["errors"], d["first_error"] or "-")' "$out"); then
      rec "$row" cps "$a"
      rec "$row" cps_errors "$b"
      ((b == 0)) || say "WARNING: $row: $b failed connections during the rate run (first: $c)"
    else
      failed "$row conn/s" "$out"
    fi
  else
    failed "$row conn/s" "$out"
  fi
}

# hold ROW CLIENT_POD HOST PORT: HOLD connections open; prints when they are all established.
HOLDER=""
hold_start() {
  local row=$1 pod=$2 host=$3 port=$4 log
  HOLDER=hold-$row
  log=$STATE/logs/$HOLDER.log
  "$LAB" spawn "$PREFIX" "$pod" "$HOLDER" -- python3 "$BN" hold "$host" "$port" --count "$HOLD" --seconds 600 >/dev/null
  local end=$(($(now_ms) + 120000))
  while (($(now_ms) < end)); do
    grep -q "^held $HOLD\$" "$log" 2>/dev/null && return 0
    if grep -q '^failed' "$log" 2>/dev/null || ! pid_of "$HOLDER" >/dev/null; then break; fi
    sleep 0.2
  done
  failed "$row hold $HOLD connections" "$(tail -n 2 "$log" 2>/dev/null)"
  hold_stop
  return 1
}
gone() { ! kill -0 "$1" 2>/dev/null; }
hold_stop() {
  local p
  if p=$(pid_of "$HOLDER"); then
    kill -TERM "$p" 2>/dev/null || true
    poll 10 gone "$p" || kill -KILL "$p" 2>/dev/null || true
  fi
}

# peer_row ROW CLIENT_POD
peer_row() {
  local row=$1 pod=$2 pc ps
  pc=$(pid_of "$row-client") || die "$row client-side proxy is gone"
  ps=$(pid_of "$row-server") || die "$row server-side proxy is gone"
  rec "$row" rss_idle_kb "$(rss_kb "$pc")/$(rss_kb "$ps")"
  measure "$row" "$pod" 127.0.0.1 15201 17000 "$pc" "$ps"
  say "$row: holding $HOLD connections"
  if hold_start "$row" "$pod" 127.0.0.1 17000; then
    rec "$row" rss_hold_kb "$(rss_kb "$pc")/$(rss_kb "$ps")"
    hold_stop
  fi
}

rec meta quick "$QUICK"
rec meta seconds "$T"
rec meta cps_procs "$CPS_PROCS"
rec meta echo_server_procs "$SERVER_PROCS"
rec meta hold_count "$HOLD"
rec meta clk_tck "$(getconf CLK_TCK)"
rec meta prefix "$PREFIX"
rec meta date "$(date -u +%FT%TZ)"
rec meta loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
rec meta zmesh_bin "$ZMESH_BIN"
rec meta source_commit "$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)"

say "direct (plain/dclient -> plain/dserver)"
measure direct dclient "$POD_DSERVER_IP" 5201 7000
say "stunnel (plain/sclient -> stunnel -> stunnel -> plain/sserver)"
peer_row stunnel sclient
say "haproxy (plain/hclient -> haproxy -> haproxy -> plain/hserver)"
peer_row haproxy hclient

# --------------------------------------------------------------------------------------------
# zmesh

# One mesh root for both agents, as a cluster shares one (else the nodes' HBONE peers cannot
# verify each other). Agents without --ca-cert predate HBONE and need none.
if "$ZMESH_BIN/zmesh-agent" --help 2>&1 | grep -q -- --ca-cert; then
  make_mesh_root "$PKI/mesh-root" "/O=zmesh-bench mesh root" ||
    die "openssl: cannot make the mesh root"
  export ZMESH_AGENT_EXTRA_ARGS="${ZMESH_AGENT_EXTRA_ARGS:-} --ca-cert $PKI/mesh-root/root-cert.pem --ca-key $PKI/mesh-root/root-key.pem"
fi
say "zmesh: starting agent + ztunnel on node1 and node2"
"$LAB" mesh-up "$PREFIX" node1 2>>"$STATE/logs/mesh-up.log" || die "mesh-up node1 failed (see $STATE/logs/mesh-up.log)"
"$LAB" mesh-up "$PREFIX" node2 2>>"$STATE/logs/mesh-up.log" || die "mesh-up node2 failed (see $STATE/logs/mesh-up.log)"
ZT1=$(pid_of ztunnel-node1) || die "ztunnel on node1 is not running"
ZT2=$(pid_of ztunnel-node2) || die "ztunnel on node2 is not running"
zt_out_count() { grep -F "dir=outbound" "$STATE/logs/ztunnel-node1.log" 2>/dev/null | grep -cF "dst=$POD_MSERVER_IP:" || true; }
zt_more() { (($(zt_out_count) > $1)); }
captured() { # a connection mclient -> mserver:7000 echoes and node1's ztunnel logs it
  local before
  before=$(zt_out_count)
  echo_ok mclient "$POD_MSERVER_IP" 7000 || return 1
  poll 3 zt_more "$before"
}
poll 30 captured || die "zmesh: mclient -> mserver is not echoed through node1's ztunnel within 30 s (enrollment or capture broken)"
say "zmesh: traffic mclient -> mserver is captured by ztunnel"
# Idle: both ztunnels ready with the pods enrolled, after one probe connection (as for the
# peers, whose idle RSS is read after their readiness probe).
rec zmesh rss_idle_kb "$(rss_kb "$ZT1")/$(rss_kb "$ZT2")"
measure zmesh mclient "$POD_MSERVER_IP" 5201 7000 "$ZT1" "$ZT2"
say "zmesh: holding $HOLD connections"
transport="unknown (the hold run failed)"
if hold_start zmesh mclient "$POD_MSERVER_IP" 7000; then
  transport="plain TCP (no connection on :15008 seen)"
  rec zmesh rss_hold_kb "$(rss_kb "$ZT1")/$(rss_kb "$ZT2")"
  h=0
  for ns in mclient node1; do
    k=$(inpod "$ns" -- ss -Htn state established '( dport = :15008 )' 2>/dev/null | wc -l) || k=0
    h=$((h + k))
  done
  if ((h > 0)); then transport="HBONE ($h TLS connection(s) to :15008 carried the $HOLD held connections)"; fi
  hold_stop
fi
# ztunnel's access lines say how each connection went (via=hbone since outbound HBONE).
v=$(grep -F "dir=outbound" "$STATE/logs/ztunnel-node1.log" 2>/dev/null | grep -F "dst=$POD_MSERVER_IP:" | grep -cF "via=hbone" || true)
if ((v > 0)) && [[ $transport != HBONE* ]]; then transport="HBONE ($v access lines with via=hbone)"; fi
rec meta zmesh_transport "$transport"
rec meta loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"

# --------------------------------------------------------------------------------------------
# report

REPORTED=1
report || die "report failed"
if ((${#FAILED[@]})); then
  say "error: ${#FAILED[@]} measurement(s) could not run: ${FAILED[*]}"
  exit 1
fi
