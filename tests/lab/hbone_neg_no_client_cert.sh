#!/usr/bin/env bash
# Hostile HBONE client (issue 3): TLS 1.3 with ALPN h2 but no client certificate. HBONE needs
# mutual TLS, so ztunnel must refuse the handshake on the pod's 15008 (the client gets the TLS
# 1.3 certificate_required alert, never a CONNECT answer, and the app sees nothing), log "no
# client certificate", and keep serving a good client with the same process.
source "$(dirname "${BASH_SOURCE[0]}")/hbone_neg_lib.sh"
hbone_neg_start
good_client_works

before=$(zt_count dir=inbound-hbone "src=$POD_LEGACY_IP:" "TLS handshake failed" "no client certificate")
hostile "no client certificate" --no-cert --authority "$POD_SERVER_IP:8080" --send 'GET / HTTP/1.0\r\n\r\n'
assert_contains "$HC_OUT" "result=tls-failed" "the certificate-less client's result"
assert_contains "$HC_OUT" "CERTIFICATE_REQUIRED" "the alert the certificate-less client got"
wait_zt_line "$before" 10 dir=inbound-hbone "src=$POD_LEGACY_IP:" "TLS handshake failed" "no client certificate"

hbone_neg_finish
