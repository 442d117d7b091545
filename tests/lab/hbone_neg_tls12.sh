#!/usr/bin/env bash
# Hostile HBONE client (issue 3): a client that offers only TLS 1.2 (with a good mesh
# certificate and ALPN h2). HBONE is TLS 1.3 only, so ztunnel must refuse the handshake on the
# pod's 15008 (a protocol_version alert, no CONNECT answer, nothing reaches the app), log "TLS
# 1.3 required", and keep serving a good client with the same process.
source "$(dirname "${BASH_SOURCE[0]}")/hbone_neg_lib.sh"
hbone_neg_start
good_client_works

before=$(zt_count dir=inbound-hbone "src=$POD_LEGACY_IP:" "TLS handshake failed" "TLS 1.3 required")
hostile "TLS 1.2 client" --tls 1.2 --cert "$CLIENT_CERT" --key "$CLIENT_KEY" \
  --authority "$POD_SERVER_IP:8080" --send 'GET / HTTP/1.0\r\n\r\n'
assert_contains "$HC_OUT" "result=tls-failed" "the TLS 1.2 client's result"
assert_contains "$HC_OUT" "PROTOCOL_VERSION" "the alert the TLS 1.2 client got"
assert_not_contains "$HC_OUT" "tls=" "the TLS 1.2 client's output (no completed handshake)"
wait_zt_line "$before" 10 dir=inbound-hbone "src=$POD_LEGACY_IP:" "TLS handshake failed" "TLS 1.3 required"

hbone_neg_finish
