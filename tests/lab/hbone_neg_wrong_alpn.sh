#!/usr/bin/env bash
# Hostile HBONE client (issue 3): TLS 1.3 with a good mesh certificate but ALPN http/1.1 only
# (and, second, no ALPN extension at all). HBONE is HTTP/2 inside TLS with ALPN h2; ztunnel must
# refuse the handshake on the pod's 15008 with no_application_protocol rather than complete it
# and guess the protocol, log what the client offered, never answer a CONNECT, and keep
# serving a good client with the same process.
source "$(dirname "${BASH_SOURCE[0]}")/hbone_neg_lib.sh"
hbone_neg_start
good_client_works

before=$(zt_count dir=inbound-hbone "src=$POD_LEGACY_IP:" "TLS handshake failed" "client offered ALPN [http/1.1], h2 required")
hostile "ALPN http/1.1" --alpn http/1.1 --cert "$CLIENT_CERT" --key "$CLIENT_KEY" \
  --authority "$POD_SERVER_IP:8080" --send 'GET / HTTP/1.0\r\n\r\n'
assert_contains "$HC_OUT" "result=tls-failed" "the http/1.1 client's result"
assert_contains "${HC_OUT,,}" "no application protocol" "the alert the http/1.1 client got"
assert_not_contains "$HC_OUT" "tls=" "the http/1.1 client's output (no completed handshake)"
wait_zt_line "$before" 10 dir=inbound-hbone "src=$POD_LEGACY_IP:" "TLS handshake failed" \
  "client offered ALPN [http/1.1], h2 required"

before=$(zt_count dir=inbound-hbone "src=$POD_LEGACY_IP:" "TLS handshake failed" "client offered no ALPN, h2 required")
hostile "no ALPN" --alpn none --cert "$CLIENT_CERT" --key "$CLIENT_KEY" \
  --authority "$POD_SERVER_IP:8080" --send 'GET / HTTP/1.0\r\n\r\n'
assert_contains "$HC_OUT" "result=tls-failed" "the ALPN-less client's result"
assert_contains "${HC_OUT,,}" "no application protocol" "the alert the ALPN-less client got"
wait_zt_line "$before" 10 dir=inbound-hbone "src=$POD_LEGACY_IP:" "TLS handshake failed" \
  "client offered no ALPN, h2 required"

hbone_neg_finish
