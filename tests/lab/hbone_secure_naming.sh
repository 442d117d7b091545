#!/usr/bin/env bash
# Secure naming (NIST SAUN-SR-2): the HBONE client accepts only the SPIFFE ID the mesh expects
# for the destination. demo/server is an enrolled pod on node2 per the manifests (service
# account default), but node2 runs no zmesh: an impostor (openssl s_server) answers on the
# pod's 15008 with a certificate from the real mesh root for another identity
# (ns/demo/sa/impostor), TLS 1.3, ALPN h2. The client's ztunnel (node1) must abort the
# handshake naming both identities, send nothing (no HTTP/2 preface reaches the impostor),
# reset the app's connection, and keep serving other destinations.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SPEC='node node1
node node2
namespace demo ambient
pod demo/client node1
pod demo/local node1
pod demo/server node2'
standard_start

share_mesh_root
root=$MESH_ROOT
impostor_id=spiffe://cluster.local/ns/demo/sa/impostor
expected_id=spiffe://cluster.local/ns/demo/sa/default
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$root/impostor-key.pem" 2>/dev/null
openssl req -new -key "$root/impostor-key.pem" -subj "/O=zmesh-lab" -out "$root/impostor.csr" 2>/dev/null
printf '%s\n' "subjectAltName=critical,URI:$impostor_id" "basicConstraints=critical,CA:FALSE" \
  "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=clientAuth,serverAuth" \
  >"$root/impostor.ext"
openssl x509 -req -in "$root/impostor.csr" -CA "$root/root-cert.pem" -CAkey "$root/root-key.pem" \
  -CAcreateserial -days 1 -sha256 -extfile "$root/impostor.ext" -out "$root/impostor-cert.pem" 2>/dev/null ||
  fail "cannot sign the impostor certificate"

# The impostor keeps stdin open (sleep) so s_server does not exit; it logs what it receives.
lab spawn "$PREFIX" server impostor -- sh -c "sleep 600 | openssl s_server -accept 15008 -tls1_3 \
  -alpn h2 -cert $root/impostor-cert.pem -key $root/impostor-key.pem -CAfile $root/root-cert.pem \
  -Verify 1 -naccept 5" >/dev/null
wait_for 10 listening server 15008
start_server local http 8080
mesh_up
wait_enrolled demo/client demo/local
wait_for 10 grep -qF "certificate for $expected_id valid until" "$(zt_log)"

before=$(zt_count dir=outbound pod=demo/client "dst=$POD_SERVER_IP:8080" result=hbone-connect)
rc=0
out=$(http_get client "http://$POD_SERVER_IP:8080/" 2>&1) || rc=$?
((rc != 0)) || fail "the client got an answer through the impostor: $out"
say "ok: the client's connection failed (curl exit $rc)"
wait_zt_line "$before" 10 dir=outbound pod=demo/client "dst=$POD_SERVER_IP:8080" result=hbone-connect
grep -F "HBONE failed" "$(zt_log)" | grep -F "$impostor_id" | grep -qF "$expected_id" ||
  fail "ztunnel's refusal does not name both identities: $(grep -F 'HBONE failed' "$(zt_log)" | tail -1)"
say "ok: ztunnel named the impostor and the expected identity"
imp_log=$LAB_STATE/logs/impostor.log
if grep -qaF "PRI * HTTP/2.0" "$imp_log"; then
  fail "the impostor received the HTTP/2 preface: the client sent data to an unverified server"
fi
say "ok: nothing reached the impostor after the handshake"

body=$(must_get client "http://$POD_LOCAL_IP:8080/")
assert_eq "client=$POD_CLIENT_IP" "${body%:*}" "another destination still served"
say PASSED
