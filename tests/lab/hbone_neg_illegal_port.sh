#!/usr/bin/env bash
# Hostile HBONE client (issue 3): CONNECT to a target the pod's 15008 must not open, from a
# client with a good mesh certificate (TLS 1.3, ALPN h2; the handshake succeeds):
#  - ztunnel's own ports on the pod's address (15008, 15001, 15006): a tunnel into them would
#    loop traffic through ztunnel or bypass inbound policy -> 400, "loop guard", result=loop-guard;
#  - another pod's address, and loopback: 15008 only delivers to its own pod -> 400,
#    "not this pod's address", result=bad-target;
#  - ports that are not ports (0, 65536, "http") -> 400, "bad :authority".
# Nothing reaches the app, and ztunnel keeps serving a good client with the same process.
source "$(dirname "${BASH_SOURCE[0]}")/hbone_neg_lib.sh"
hbone_neg_start
good_client_works

# refused TARGET ZT_STRING...: CONNECT TARGET gets 400 and ztunnel logs every ZT_STRING.
refused() {
  local target=$1 before
  shift
  before=$(zt_count "$@")
  hostile "CONNECT $target" --cert "$CLIENT_CERT" --key "$CLIENT_KEY" --authority "$target" \
    --send 'GET / HTTP/1.0\r\n\r\n' --timeout 5
  assert_contains "$HC_OUT" "tls=TLSv1.3" "CONNECT $target: the handshake"
  assert_contains "$HC_OUT" "status=400" "CONNECT $target: the answer"
  assert_contains "$HC_OUT" "result=rejected" "CONNECT $target: the client's result"
  wait_zt_line "$before" 10 "$@"
}

for port in 15008 15001 15006; do
  target=$POD_SERVER_IP:$port
  refused "$target" dir=inbound-hbone "peer=$CLIENT_ID" "loop guard: refusing $target, 400"
  wait_zt_line 0 10 dir=inbound-hbone "peer=$CLIENT_ID" "src=$HC_LOCAL " "dst=$target " result=loop-guard
done
for target in "$POD_CLIENT_IP:8080" 127.0.0.1:8080; do
  refused "$target" dir=inbound-hbone "peer=$CLIENT_ID" "CONNECT $target: not this pod's address ($POD_SERVER_IP), 400"
  wait_zt_line 0 10 dir=inbound-hbone "peer=$CLIENT_ID" "src=$HC_LOCAL " "dst=$target " result=bad-target
done
refused "$POD_SERVER_IP:0" "hbone: conn=" "400: bad :authority '$POD_SERVER_IP:0': port out of range"
refused "$POD_SERVER_IP:65536" "hbone: conn=" "400: bad :authority '$POD_SERVER_IP:65536': port out of range"
refused "$POD_SERVER_IP:http" "hbone: conn=" "400: bad :authority '$POD_SERVER_IP:http': bad port"

hbone_neg_finish
