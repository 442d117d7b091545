# shellcheck shell=bash
# Shared setup for the hostile-client HBONE tests (tests/lab/hbone_neg_*.sh, hbone_testssl.sh):
# each of them checks one way a client outside the mesh can misbehave on a pod's 15008 (issue
# 3), and that ztunnel refuses it, says why in its log, and keeps serving everyone else. Source
# it first thing (it sources lib.sh):
#   source "$(dirname "${BASH_SOURCE[0]}")/hbone_neg_lib.sh"
#   hbone_neg_start          one node; demo/server (enrolled) runs an HTTP server on 8080,
#                            legacy/legacy is not enrolled and plays the outside client
#   good_client_works        a well-behaved HBONE client gets its tunnel (200 + the HTTP reply)
#   hc ARGS...               scripts/lab/hbone_client.py from the legacy pod against
#                            $POD_SERVER_IP:15008 (server chain checked against the mesh root);
#                            output (stdout+stderr) in HC_OUT, exit status in HC_RC
#   hostile WHAT ARGS...     hc ARGS, and assert that it got no tunnel and that the app saw no
#                            connection from the legacy pod meanwhile; HC_LOCAL = the
#                            client's IP:PORT (ztunnel logs it as src=)
#   hc_background FILE ARGS  hc in the background (a stalled client while others are served)
#   hbone_neg_finish         good_client_works again, ztunnel is still the same process, and it
#                            logged nothing at level error (or from a sanitizer)
# Certificates ($NEG_TLS): CLIENT_CERT/CLIENT_KEY (spiffe://cluster.local/ns/legacy/sa/default,
# signed by the lab's mesh root); make_cert and make_other_root mint more.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HBONE_CLIENT=$LAB_HELPERS/hbone_client.py
# The client needs the `h2` package (Debian's python3-h2, for /usr/bin/python3); `python3`
# on PATH may be another interpreter.
HBONE_PY=""
for py in /usr/bin/python3 python3; do
  if "$py" -c 'import h2, hpack' 2>/dev/null; then
    HBONE_PY=$(command -v "$py")
    break
  fi
done
[[ -n $HBONE_PY ]] || fail "no python3 with the h2 package (install python3-h2: scripts/bootstrap.sh)"
command -v openssl >/dev/null || fail "missing tool 'openssl' (run scripts/bootstrap.sh)"

SERVER_ID=spiffe://cluster.local/ns/demo/sa/default
CLIENT_ID=spiffe://cluster.local/ns/legacy/sa/default
NEG_TLS=""
CA_CERT=""
CA_KEY=""
CLIENT_CERT=""
CLIENT_KEY=""
ZT_PID=""
ZT_START=""
HC_OUT=""
HC_RC=0
HC_LOCAL=""

# make_cert NAME CA_CERT CA_KEY URI [START END]: an EC P-256 leaf for URI signed by the CA, in
# $NEG_TLS/NAME-{cert,key}.pem. START/END (YYYYMMDDHHMMSSZ) set the validity through
# `openssl ca` (openssl x509 -req cannot back-date); default: valid from now for a day.
make_cert() {
  local name=$1 ca_cert=$2 ca_key=$3 uri=$4 start=${5:-} end=${6:-} d=$NEG_TLS
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/$name-key.pem" 2>/dev/null ||
    fail "cannot make the $name key"
  openssl req -new -key "$d/$name-key.pem" -subj "/O=zmesh-lab" -out "$d/$name.csr" 2>/dev/null ||
    fail "cannot make the $name CSR"
  printf '%s\n' "subjectAltName=critical,URI:$uri" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=clientAuth,serverAuth" \
    >"$d/$name.ext"
  if [[ -z $start ]]; then
    openssl x509 -req -in "$d/$name.csr" -CA "$ca_cert" -CAkey "$ca_key" -CAcreateserial \
      -days 1 -sha256 -extfile "$d/$name.ext" -out "$d/$name-cert.pem" 2>/dev/null ||
      fail "cannot sign the $name certificate"
    return 0
  fi
  mkdir -p "$d/$name-ca"
  : >"$d/$name-ca/index.txt"
  printf '%s\n' "[ca]" "default_ca = lab" "[lab]" "database = $d/$name-ca/index.txt" \
    "new_certs_dir = $d/$name-ca" "serial = $d/$name-ca/serial" "default_md = sha256" \
    "policy = any" "unique_subject = no" "[any]" "organizationName = optional" >"$d/$name-ca.cnf"
  openssl rand -hex 8 >"$d/$name-ca/serial"
  local out
  out=$(openssl ca -batch -config "$d/$name-ca.cnf" -cert "$ca_cert" -keyfile "$ca_key" \
    -in "$d/$name.csr" -startdate "$start" -enddate "$end" -extfile "$d/$name.ext" -notext \
    -out "$d/$name-cert.pem" 2>&1) || fail "cannot sign the $name certificate: $out"
}

# make_other_root NAME: a self-signed CA in $NEG_TLS/NAME-{cert,key}.pem (not the mesh's).
make_other_root() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/O=$1" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$NEG_TLS/$1-key.pem" -out "$NEG_TLS/$1-cert.pem" 2>/dev/null || fail "cannot make the root $1"
}

zt_pid_now() { "$LAB_SH" pid "$PREFIX" ztunnel-node1 2>/dev/null; }

has_line() { grep -qF -- "$2" "$1" 2>/dev/null; }

# hbone_neg_start: the lab, the HTTP server behind the tunnel, the mesh, the client certificate.
hbone_neg_start() {
  standard_start
  start_server server http 8080
  mesh_up
  wait_enrolled demo/server
  wait_for 10 has_line "$(zt_log)" "certificate for $SERVER_ID valid until"
  wait_for 10 listening server 15008
  CA_CERT=$LAB_STATE/$PREFIX-node1/state/ca/root-cert.pem
  CA_KEY=$LAB_STATE/$PREFIX-node1/state/ca/root-key.pem
  [[ -f $CA_CERT && -f $CA_KEY ]] || fail "no mesh root at $CA_CERT / $CA_KEY"
  NEG_TLS=$LAB_STATE/hbone-neg
  mkdir -p "$NEG_TLS"
  make_cert client "$CA_CERT" "$CA_KEY" "$CLIENT_ID"
  CLIENT_CERT=$NEG_TLS/client-cert.pem
  CLIENT_KEY=$NEG_TLS/client-key.pem
  ZT_PID=$(zt_pid_now) || fail "ztunnel-node1 is not running"
  ZT_START=$(proc_start "$ZT_PID") || fail "cannot read ztunnel's start time"
  say "ztunnel pid $ZT_PID"
}

# hc ARGS...: hbone_client.py from the legacy pod to the server pod's 15008.
hc() {
  HC_RC=0
  HC_OUT=$("$LAB_SH" exec "$PREFIX" legacy -- timeout 30 "$HBONE_PY" "$HBONE_CLIENT" \
    "$POD_SERVER_IP:15008" --ca "$CA_CERT" "$@" 2>&1 </dev/null) || HC_RC=$?
}

ztunnel_same() {
  local now
  now=$(zt_pid_now) || fail "ztunnel-node1 is no longer running"
  [[ $now == "$ZT_PID" && $(proc_start "$now") == "$ZT_START" ]] ||
    fail "ztunnel-node1 was restarted (pid $ZT_PID -> $now)"
  say "ok: ztunnel still pid $ZT_PID"
}

# good_client_works: TLS 1.3 + h2 + the mesh certificate (the server must present the pod's
# identity), CONNECT to the app; 200, the HTTP reply through the tunnel (the app sees the
# legacy pod's own address), an access-log line.
good_client_works() {
  local before
  before=$(zt_count dir=inbound-hbone "peer=$CLIENT_ID" "dst=$POD_SERVER_IP:8080" result=ok)
  hc --cert "$CLIENT_CERT" --key "$CLIENT_KEY" --server-id "$SERVER_ID" \
    --authority "$POD_SERVER_IP:8080" --send 'GET / HTTP/1.0\r\nHost: server\r\n\r\n'
  ((HC_RC == 0)) || fail "the good HBONE client failed (exit $HC_RC): $HC_OUT"
  [[ $HC_OUT == *status=200* && $HC_OUT == *"HTTP/1.1 200 OK"* && $HC_OUT == *"client=$POD_LEGACY_IP:"* ]] ||
    fail "the good HBONE client did not get the app's answer through the tunnel: $HC_OUT"
  wait_zt_line "$before" 10 dir=inbound-hbone "peer=$CLIENT_ID" "dst=$POD_SERVER_IP:8080" result=ok
  # Its session ends too (the client said GOAWAY and closed), so that the next test step's
  # "session closed" line cannot be this one's.
  wait_for 10 sessions_all_closed
  say "ok: the good HBONE client got its tunnel"
}

# sessions_all_closed: every inbound HBONE session ztunnel established has been closed, but
# for the HELD_SESSIONS a test keeps open on purpose.
HELD_SESSIONS=0
sessions_all_closed() {
  (($(zt_count "hbone: conn=" " session closed: ") + HELD_SESSIONS >= $(zt_count dir=inbound-hbone " TLS established (")))
}

# hc_background OUT_FILE ARGS...: like hc, in the background (pid in HC_BG_PID); bounded by
# the client's own --timeout (and `timeout 30`), so it ends by itself even if the test fails.
HC_BG_PID=""
hc_background() {
  local out=$1
  shift
  "$LAB_SH" exec "$PREFIX" legacy -- timeout 30 "$HBONE_PY" "$HBONE_CLIENT" \
    "$POD_SERVER_IP:15008" --ca "$CA_CERT" "$@" >"$out" 2>&1 </dev/null &
  # shellcheck disable=SC2034 # HC_BG_PID is for the tests
  HC_BG_PID=$!
}

# hostile WHAT ARGS...: run the client with ARGS; it must not get a tunnel, and the app must
# not see a connection from the legacy pod while it runs.
hostile() {
  local what=$1 hits
  shift
  hits=$(server_hits server http "$POD_LEGACY_IP")
  hc "$@"
  say "$what: client exit $HC_RC: $(tr '\n' ' ' <<<"$HC_OUT")"
  ((HC_RC != 0)) || fail "$what: the hostile client got a tunnel: $HC_OUT"
  [[ $HC_OUT != *status=200* && $HC_OUT != *"HEADERS(200"* && $HC_OUT != *result=tunnel* ]] ||
    fail "$what: the hostile client got a tunnel: $HC_OUT"
  [[ $HC_OUT == *result=* ]] || fail "$what: the client died without a result: $HC_OUT"
  # shellcheck disable=SC2034 # HC_LOCAL is for the tests
  HC_LOCAL=$(sed -n '/^local=/{s/^local=\([^ ]*\).*/\1/p;q}' <<<"$HC_OUT")
  assert_eq "$hits" "$(server_hits server http "$POD_LEGACY_IP")" "$what: app connections from the legacy pod"
}

# zt_bad_lines: ztunnel log lines at level error or worse, or from a sanitizer.
zt_bad_lines() {
  awk '$2 == "error" || $2 == "critical" || $2 == "fatal" || /Sanitizer|runtime error:/' "$(zt_log)"
}

# hbone_neg_finish: everyone else is still served, by the same ztunnel, which logged no error.
hbone_neg_finish() {
  ztunnel_same
  good_client_works
  ztunnel_same
  local bad
  bad=$(zt_bad_lines)
  [[ -z $bad ]] || fail "ztunnel logged errors: $bad"
  say "ok: no error lines in ztunnel's log"
}
