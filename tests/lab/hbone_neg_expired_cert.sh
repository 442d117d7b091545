#!/usr/bin/env bash
# Hostile HBONE client (issue 3): a client certificate that chains to the mesh root and names a
# mesh identity but has already expired. ztunnel must refuse the TLS handshake on the pod's
# 15008 (the client gets an alert, never a CONNECT answer, and the app sees nothing), log
# "certificate has expired", and keep serving a good client with the same process.
source "$(dirname "${BASH_SOURCE[0]}")/hbone_neg_lib.sh"
hbone_neg_start
good_client_works

# Valid two days ago until an hour ago, signed by the mesh root (openssl ca back-dates).
make_cert expired "$CA_CERT" "$CA_KEY" "$CLIENT_ID" \
  "$(date -u -d '-2 days' +%Y%m%d%H%M%SZ)" "$(date -u -d '-1 hour' +%Y%m%d%H%M%SZ)"
verify=$(openssl verify -CAfile "$CA_CERT" "$NEG_TLS/expired-cert.pem" 2>&1) || true
assert_contains "$verify" "certificate has expired" "openssl verify of the expired certificate"

before=$(zt_count dir=inbound-hbone "src=$POD_LEGACY_IP:" "TLS handshake failed" "certificate has expired")
hostile "expired client certificate" --cert "$NEG_TLS/expired-cert.pem" --key "$NEG_TLS/expired-key.pem" \
  --authority "$POD_SERVER_IP:8080" --send 'GET / HTTP/1.0\r\n\r\n'
assert_contains "$HC_OUT" "result=tls-failed" "the expired client's result"
assert_contains "$HC_OUT" "CERTIFICATE_EXPIRED" "the alert the expired client got"
wait_zt_line "$before" 10 dir=inbound-hbone "src=$POD_LEGACY_IP:" "TLS handshake failed" "certificate has expired"

hbone_neg_finish
