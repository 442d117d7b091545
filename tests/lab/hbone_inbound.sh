#!/usr/bin/env bash
# Inbound HBONE TLS on 15008: the server pod's 15008 presents the pod's own identity
# (spiffe://cluster.local/ns/demo/sa/default) and enforces the HBONE TLS policy against a
# client outside the mesh (legacy pod, openssl s_client): TLS 1.2 refused, a client
# certificate required, a certificate from the lab's mesh root accepted (ALPN h2, AES-GCM),
# one from another root refused, ChaCha20 refused. Every refusal is logged by ztunnel, and the
# plaintext path keeps working afterwards.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
standard_start
start_server server http 8080
mesh_up
wait_enrolled demo/server
zt_log=$LAB_STATE/logs/ztunnel-node1.log
server_id=spiffe://cluster.local/ns/demo/sa/default
client_id=spiffe://cluster.local/ns/legacy/sa/default
has() { grep -qF -- "$2" "$1"; }
wait_for 10 has "$zt_log" "certificate for $server_id valid until"
wait_for 10 listening server 15008

ca_dir=$LAB_STATE/$PREFIX-node1/state/ca
tls=$LAB_STATE/hbone-tls
mkdir -p "$tls"
# make_cert NAME CA_CERT CA_KEY URI: an EC P-256 leaf for URI signed by the CA.
make_cert() {
  local name=$1 ca_cert=$2 ca_key=$3 uri=$4
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tls/$name-key.pem" 2>/dev/null
  openssl req -new -key "$tls/$name-key.pem" -subj "/O=zmesh-lab" -out "$tls/$name.csr" 2>/dev/null
  printf '%s\n' "subjectAltName=critical,URI:$uri" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=clientAuth,serverAuth" \
    >"$tls/$name.ext"
  openssl x509 -req -in "$tls/$name.csr" -CA "$ca_cert" -CAkey "$ca_key" -CAcreateserial \
    -days 1 -sha256 -extfile "$tls/$name.ext" -out "$tls/$name-cert.pem" 2>/dev/null ||
    fail "cannot sign the $name certificate"
}
make_cert client "$ca_dir/root-cert.pem" "$ca_dir/root-key.pem" "$client_id"
# Another root, same trust domain and identity: must not be accepted.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/O=other-root" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout "$tls/other-root-key.pem" -out "$tls/other-root-cert.pem" 2>/dev/null || fail "cannot make the other root"
make_cert other "$tls/other-root-cert.pem" "$tls/other-root-key.pem" "$client_id"

# s_client ARGS...: openssl s_client from the legacy pod to the server's 15008; stdout+stderr,
# exit status kept. Stdin stays open 2 s so that a refusal after the handshake is read.
s_client() {
  local rc=0
  out=$( (sleep 2) | lab exec "$PREFIX" legacy -- timeout 10 openssl s_client \
    -connect "$POD_SERVER_IP:15008" -CAfile "$ca_dir/root-cert.pem" "$@" 2>&1 | tr -d '\000') || rc=$?
  echo "$out"
  return $rc
}
failures() { zt_count dir=inbound-hbone "src=$POD_LEGACY_IP:" "TLS handshake failed" "$@"; }
# refused WHAT ZT_REASON ARGS...: s_client does not get an h2 session and ztunnel logs why.
refused() {
  local what=$1 reason=$2 before out rc=0
  shift 2
  before=$(failures "$reason")
  out=$(s_client "$@") || rc=$?
  [[ $out != *"ALPN protocol: h2"* || $rc != 0 || $out == *alert* ]] ||
    fail "$what: s_client looks successful: $out"
  wait_zt_line "$before" 10 dir=inbound-hbone "src=$POD_LEGACY_IP:" "TLS handshake failed" "$reason"
  say "ok: $what refused"
}

# (1) TLS 1.2.
refused "TLS 1.2" "TLS 1.3 required" -tls1_2 -alpn h2 \
  -cert "$tls/client-cert.pem" -key "$tls/client-key.pem"
# (2) TLS 1.3 without a client certificate.
refused "no client certificate" "no client certificate" -tls1_3 -alpn h2
# (4) a client certificate from another root.
refused "client certificate from another root" "certificate rejected" -tls1_3 -alpn h2 \
  -cert "$tls/other-cert.pem" -key "$tls/other-key.pem"
# (5) ChaCha20 only.
refused "TLS_CHACHA20_POLY1305_SHA256" "no shared cipher" -tls1_3 -alpn h2 \
  -ciphersuites TLS_CHACHA20_POLY1305_SHA256 -cert "$tls/client-cert.pem" -key "$tls/client-key.pem"

# (3) TLS 1.3, ALPN h2, a client certificate from the mesh root: accepted.
before=$(zt_count dir=inbound-hbone "src=$POD_LEGACY_IP:" "peer=$client_id" "TLS established")
out=$(s_client -tls1_3 -alpn h2 -cert "$tls/client-cert.pem" -key "$tls/client-key.pem") ||
  fail "s_client with a mesh certificate failed: $out"
assert_contains "$out" "ALPN protocol: h2" "s_client output"
[[ $out =~ Cipher\ is\ (TLS_AES_(128|256)_GCM_SHA(256|384)) ]] || fail "no AES-GCM cipher in: $out"
say "ok: cipher ${BASH_REMATCH[1]}"
assert_contains "$out" "Verify return code: 0 (ok)" "s_client output"
assert_not_contains "$out" "alert" "s_client output"
san=$(sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' <<<"$out" |
  openssl x509 -noout -ext subjectAltName 2>&1 | tail -n +2 | tr -d ' ')
assert_eq "URI:$server_id" "$san" "server certificate's SAN"
wait_zt_line "$before" 10 dir=inbound-hbone "src=$POD_LEGACY_IP:" "peer=$client_id" "TLS established"

# (6) CONNECT through the tunnel to the app (needs Debian's python3-h2; skipped without it):
# 200, and the app sees the legacy pod's own IP (transparent delivery from the peer's IP).
if /usr/bin/python3 -c 'import h2' 2>/dev/null; then
  cat >"$tls/connect.py" <<'EOF'
import socket, ssl, sys
import h2.config, h2.connection, h2.events
host, port, target, cafile, cert, key = sys.argv[1:7]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.check_hostname = False
ctx.load_verify_locations(cafile)
ctx.load_cert_chain(cert, key)
ctx.set_alpn_protocols(["h2"])
s = ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=10))
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, validate_outbound_headers=False))
c.initiate_connection()
sid = c.get_next_available_stream_id()
c.send_headers(sid, [(":method", "CONNECT"), (":authority", target)])
s.sendall(c.data_to_send())
body = b""
while True:
    data = s.recv(65536)
    if not data:
        break
    for ev in c.receive_data(data):
        if isinstance(ev, h2.events.ResponseReceived):
            status = dict(ev.headers)[b":status"].decode()
            print("status=" + status)
            if status != "200":
                sys.exit(1)
            c.send_data(sid, b"GET / HTTP/1.0\r\nHost: server\r\n\r\n", end_stream=True)
        elif isinstance(ev, h2.events.DataReceived):
            body += ev.data
            c.acknowledge_received_data(ev.flow_controlled_length, sid)
        elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
            print(body.decode(errors="replace"))
            sys.exit(0)
    s.sendall(c.data_to_send())
sys.exit(2)
EOF
  connect() { # TARGET: CONNECT TARGET from the legacy pod with the mesh certificate
    lab exec "$PREFIX" legacy -- timeout 15 /usr/bin/python3 "$tls/connect.py" "$POD_SERVER_IP" 15008 \
      "$1" "$ca_dir/root-cert.pem" "$tls/client-cert.pem" "$tls/client-key.pem" 2>&1
  }
  before=$(zt_count dir=inbound-hbone "peer=$client_id" "dst=$POD_SERVER_IP:8080" result=ok)
  out=$(connect "$POD_SERVER_IP:8080") || fail "CONNECT through the tunnel failed: $out"
  assert_contains "$out" "status=200" "CONNECT response"
  assert_contains "$out" "client=$POD_LEGACY_IP:" "the app's view of the tunnelled client"
  wait_zt_line "$before" 10 dir=inbound-hbone "peer=$client_id" "dst=$POD_SERVER_IP:8080" result=ok
  out=$(connect "$POD_CLIENT_IP:8080") && fail "CONNECT to another pod's IP succeeded: $out"
  assert_contains "$out" "status=400" "CONNECT to another pod's address"
  out=$(connect "$POD_SERVER_IP:15006") && fail "CONNECT to 15006 succeeded: $out"
  assert_contains "$out" "status=400" "CONNECT to ztunnel's inbound port"
  out=$(connect "$POD_SERVER_IP:9") && fail "CONNECT to a closed port succeeded: $out"
  assert_contains "$out" "status=503" "CONNECT to a closed port"
else
  say "python3-h2 not installed: skipping the CONNECT through the tunnel"
fi

# The plaintext path still works.
body=$(must_get client "http://$POD_SERVER_IP:8080/")
assert_eq "client=$POD_CLIENT_IP" "${body%:*}" "server's view of the client after the HBONE tests"
