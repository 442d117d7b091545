#!/usr/bin/env bash
# Hostile HBONE client (issue 3): truncated HTTP/2 after a good mTLS handshake (mesh
# certificate, ALPN h2). The client sends a valid connection preface and SETTINGS, then
#  - half a frame (a PING frame's header and 4 of its 8 payload bytes),
#  - a CONNECT HEADERS frame whose header declares the whole header block but that carries
#    only half of it,
#  - a CONNECT HEADERS frame without END_HEADERS holding half the block, and no CONTINUATION,
# and then closes its side (TCP FIN, no close_notify). ztunnel must not open a tunnel for the
# half-received CONNECT (the app sees nothing), close the connection in turn (the client sees
# the server close, not a hang), log why the session ended, and keep serving a good client
# with the same process — also while a fourth client sits on half a header block with its
# connection open.
source "$(dirname "${BASH_SOURCE[0]}")/hbone_neg_lib.sh"
hbone_neg_start
good_client_works

# truncated KIND WHAT
truncated() {
  local kind=$1 what=$2 before
  before=$(zt_count "hbone: conn=" " session closed: " "read: stream truncated")
  hostile "$what" --cert "$CLIENT_CERT" --key "$CLIENT_KEY" --truncate "$kind" \
    --authority "$POD_SERVER_IP:8080" --timeout 5
  assert_contains "$HC_OUT" "tls=TLSv1.3" "$what: the handshake"
  assert_contains "$HC_OUT" "truncated=$kind" "$what: what was sent"
  assert_contains "$HC_OUT" "server_closed=yes" "$what: the client's view"
  assert_contains "$HC_OUT" "result=closed" "$what: the client's result"
  wait_zt_line 0 5 dir=inbound-hbone "src=$HC_LOCAL peer=$CLIENT_ID" "TLS established"
  # The peer's FIN without close_notify is a truncated TLS stream.
  wait_zt_line "$before" 10 "hbone: conn=" " session closed: " "read: stream truncated"
}

truncated frame "half a PING frame"
truncated headers "HEADERS frame cut mid-header-block"
truncated continuation "HEADERS without END_HEADERS, no CONTINUATION"

# A client that stops mid-header-block and keeps the connection open: while it sits there,
# the pod (whose connections share one ztunnel worker) keeps serving the good client.
est=$(zt_count dir=inbound-hbone "src=$POD_LEGACY_IP:" "peer=$CLIENT_ID" "TLS established")
hc_background "$NEG_TLS/stalled.out" --cert "$CLIENT_CERT" --key "$CLIENT_KEY" --truncate headers \
  --keep-open --authority "$POD_SERVER_IP:8080" --timeout 6
wait_zt_line "$est" 10 dir=inbound-hbone "src=$POD_LEGACY_IP:" "peer=$CLIENT_ID" "TLS established"
HELD_SESSIONS=1
good_client_works
rc=0
wait "$HC_BG_PID" || rc=$?
out=$(cat "$NEG_TLS/stalled.out")
say "stalled client: exit $rc: $(tr '\n' ' ' <<<"$out")"
((rc != 0)) || fail "the stalled client got a tunnel: $out"
assert_contains "$out" "truncated=headers" "the stalled client's output"
assert_not_contains "$out" "status=200" "the stalled client's output"
HELD_SESSIONS=0
wait_for 10 sessions_all_closed
# No stream was ever accepted: the only access-log lines so far are the good client's.
assert_eq 2 "$(zt_count dir=inbound-hbone "src=$POD_LEGACY_IP:" " dst=" " result=")" "access-log lines so far"

hbone_neg_finish
