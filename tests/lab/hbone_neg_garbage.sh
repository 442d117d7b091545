#!/usr/bin/env bash
# Hostile HBONE client (issue 3): garbage on the pod's 15008, at both layers.
#  TLS layer (no handshake ever completes): 4 KiB of random bytes instead of a ClientHello, a
#  plain HTTP/1.1 request, and a plaintext HTTP CONNECT (HBONE without the TLS).
#  HTTP/2 layer (after a good mTLS handshake with a mesh certificate): random bytes instead of
#  the connection preface, a valid preface then a HEADERS frame whose HPACK block is garbage,
#  and a valid preface then a DATA frame on stream 0.
# Each time ztunnel must drop the connection by itself (the client never half-closes; it only
# waits), never answer a CONNECT, log the reason, and keep serving a good client with the same
# process. Last, a client that sends half a ClientHello and stalls: ztunnel's handshake timeout
# drops it, and the good client is served while it hangs.
source "$(dirname "${BASH_SOURCE[0]}")/hbone_neg_lib.sh"
hbone_neg_start
good_client_works

g=$NEG_TLS
# garbage_closed WHAT: the server dropped the hostile connection by itself.
garbage_closed() {
  assert_contains "$HC_OUT" "server_closed=yes" "$1: the client's view"
  assert_contains "$HC_OUT" "result=closed" "$1: the client's result"
}
# tls_garbage WHAT FILE REASON: FILE's bytes on plain TCP; ztunnel logs the handshake failure.
tls_garbage() {
  hostile "$1" --raw-instead-of-tls "$2" --timeout 5
  garbage_closed "$1"
  wait_zt_line 0 10 dir=inbound-hbone "src=$HC_LOCAL " "TLS handshake failed" "$3"
}
# h2_garbage WHAT FILE REASON [GOAWAY]: a good handshake, then FILE's bytes instead of HTTP/2;
# ztunnel ends that connection's session with REASON, after telling the client GOAWAY(GOAWAY)
# if given. (The session logs its own conn= number, not the TLS connection's; only this test's
# clients talk to 15008, so the next such line is this client's.)
h2_garbage() {
  local before goaway=${4:-}
  before=$(zt_count "hbone: conn=" " session closed: " "$3")
  hostile "$1" --cert "$CLIENT_CERT" --key "$CLIENT_KEY" --raw-after-handshake "$2" --timeout 5
  assert_contains "$HC_OUT" "tls=TLSv1.3" "$1: the handshake"
  garbage_closed "$1"
  [[ -z $goaway ]] || assert_contains "$HC_OUT" "GOAWAY($goaway)" "$1: the frames the client got"
  wait_zt_line 0 5 dir=inbound-hbone "src=$HC_LOCAL peer=$CLIENT_ID" "TLS established"
  wait_zt_line "$before" 10 "hbone: conn=" " session closed: " "$3"
}

# Random bytes. The first two are fixed to something that is not a TLS (or SSLv2) record
# header: a plausible header would only make the server wait for the rest of the record.
head -c 4096 /dev/urandom >"$g/random.bin"
printf 'Zz' | dd of="$g/random.bin" bs=1 count=2 conv=notrunc status=none
tls_garbage "random bytes for a ClientHello" "$g/random.bin" "wrong version number"
printf 'GET / HTTP/1.1\r\nHost: %s\r\n\r\n' "$POD_SERVER_IP" >"$g/http.txt"
tls_garbage "plain HTTP/1.1 request" "$g/http.txt" "http request"
printf 'CONNECT %s:8080 HTTP/1.1\r\nHost: %s:8080\r\n\r\n' "$POD_SERVER_IP" "$POD_SERVER_IP" >"$g/connect.txt"
tls_garbage "plaintext HTTP CONNECT" "$g/connect.txt" "proxy request"

h2_garbage "random bytes instead of the HTTP/2 preface" "$g/random.bin" "bad HTTP/2 from the peer"
preface='PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'
settings='\x00\x00\x00\x04\x00\x00\x00\x00\x00'
# HEADERS (END_HEADERS|END_STREAM) on stream 1: 0x80 (indexed field 0, always an HPACK error)
# and 63 random bytes.
{
  printf '%b' "$preface$settings"'\x00\x00\x40\x01\x05\x00\x00\x00\x01\x80'
  head -c 63 /dev/urandom
} >"$g/bad-hpack.bin"
# nghttp2 answers GOAWAY(COMPRESSION_ERROR) itself; ztunnel's line does not name the error.
h2_garbage "HEADERS with a garbage HPACK block" "$g/bad-hpack.bin" "session finished (GOAWAY)" \
  COMPRESSION_ERROR
# DATA on stream 0 (a connection error, PROTOCOL_ERROR).
{
  printf '%b' "$preface$settings"'\x00\x00\x08\x00\x00\x00\x00\x00\x00'
  head -c 8 /dev/urandom
} >"$g/data0.bin"
h2_garbage "DATA on stream 0" "$g/data0.bin" "session finished (GOAWAY)" PROTOCOL_ERROR

# Half a ClientHello (a record header promising 512 bytes, then 6 of them), and the client
# stalls: ztunnel gives up after its 10 s handshake timeout, and serves the good client
# meanwhile (the pod's connections share one worker).
printf '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' >"$g/half-hello.bin"
before=$(zt_count dir=inbound-hbone "src=$POD_LEGACY_IP:" "TLS handshake failed: timed out")
hc_background "$g/stalled.out" --raw-instead-of-tls "$g/half-hello.bin" --timeout 15
stalled_connected() {
  [[ -n $(lab exec "$PREFIX" legacy -- ss -Htn state established dst "$POD_SERVER_IP" dport = :15008) ]]
}
wait_for 5 stalled_connected
good_client_works
rc=0
wait "$HC_BG_PID" || rc=$?
out=$(cat "$g/stalled.out")
say "stalled ClientHello: exit $rc: $(tr '\n' ' ' <<<"$out")"
assert_contains "$out" "server_closed=yes" "the stalled client's view"
assert_contains "$out" "result=closed" "the stalled client's result"
wait_zt_line "$before" 5 dir=inbound-hbone "src=$POD_LEGACY_IP:" "TLS handshake failed: timed out"

hbone_neg_finish
