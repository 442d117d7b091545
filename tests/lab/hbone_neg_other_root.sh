#!/usr/bin/env bash
# Hostile HBONE client (issue 3): a client certificate from another root that names a mesh
# identity (same trust domain, same SPIFFE ID as a real workload). ztunnel must refuse the TLS
# handshake on the pod's 15008 (the client gets an alert, never a CONNECT answer, and the app
# sees nothing), log that the certificate was rejected, and keep serving a good client with
# the same process.
source "$(dirname "${BASH_SOURCE[0]}")/hbone_neg_lib.sh"
hbone_neg_start
good_client_works

make_other_root other-root
make_cert other "$NEG_TLS/other-root-cert.pem" "$NEG_TLS/other-root-key.pem" "$CLIENT_ID"

before=$(zt_count dir=inbound-hbone "src=$POD_LEGACY_IP:" "TLS handshake failed" "certificate rejected")
hostile "client certificate from another root" --cert "$NEG_TLS/other-cert.pem" \
  --key "$NEG_TLS/other-key.pem" --authority "$POD_SERVER_IP:8080" --send 'GET / HTTP/1.0\r\n\r\n'
assert_contains "$HC_OUT" "result=tls-failed" "the other-root client's result"
assert_contains "$HC_OUT" "ALERT_UNKNOWN_CA" "the alert the other-root client got"
wait_zt_line "$before" 10 dir=inbound-hbone "src=$POD_LEGACY_IP:" "TLS handshake failed" \
  "client $CLIENT_ID certificate rejected: unable to get local issuer certificate"

hbone_neg_finish
