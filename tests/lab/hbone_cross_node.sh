#!/usr/bin/env bash
# HBONE between enrolled pods, same node and across nodes (issue 3). Two nodes, each with its
# own agent + ztunnel; both agents get the same mesh root (--ca-cert/--ca-key), as a cluster
# shares one.
#   - curl client(node1) -> server(node2): the bytes go client -> ztunnel node1 (dir=outbound
#     via=hbone, peer = the server's SPIFFE ID) -> TLS on 15008 -> ztunnel node2
#     (dir=inbound-hbone, peer = the client's SPIFFE ID) -> server, which sees the client's IP;
#   - the same to a server on the client's own node;
#   - iperf3 across nodes through HBONE;
#   - tshark on node1's link to node2 during a request carrying a marker: TLS on port 15008,
#     nothing to port 8080, and the marker never appears in the captured bytes.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SPEC='node node1
node node2
namespace demo ambient
pod demo/client node1
pod demo/local node1
pod demo/server node2'
standard_start
command -v tshark >/dev/null || fail "tshark is not installed (scripts/bootstrap.sh installs it)"
command -v iperf3 >/dev/null || fail "iperf3 is not installed (scripts/bootstrap.sh installs it)"

# One mesh root for both nodes, as in a cluster.
share_mesh_root

start_server server http 8080
start_server local http 8080
lab spawn "$PREFIX" server iperf -- iperf3 -s -p 5201 >/dev/null
wait_for 10 listening server 5201
lab mesh-up "$PREFIX" node1 || fail "mesh-up node1 failed"
lab mesh-up "$PREFIX" node2 || fail "mesh-up node2 failed"

zt1=$LAB_STATE/logs/ztunnel-node1.log
zt2=$LAB_STATE/logs/ztunnel-node2.log
count() { log_count "$@"; }
wait_line() { wait_log_line "$1" 10 "${@:2}"; } # BEFORE FILE STRING...
id=spiffe://cluster.local/ns/demo/sa/default
# Certificates are fetched when the pods are added; wait for them on both nodes.
wait_for 10 grep -qF "certificate for $id valid until" "$zt1"
wait_for 10 grep -qF "certificate for $id valid until" "$zt2"

# --- cross-node curl ---------------------------------------------------------------------------
out1=$(count "$zt1" dir=outbound pod=demo/client "dst=$POD_SERVER_IP:8080" "via=hbone peer=$id" result=ok)
in2=$(count "$zt2" dir=inbound-hbone "peer=$id" "src=$POD_CLIENT_IP:" "dst=$POD_SERVER_IP:8080" result=ok)
body=$(must_get client "http://$POD_SERVER_IP:8080/")
assert_eq "client=$POD_CLIENT_IP" "${body%:*}" "the server (node2) sees the client's IP"
wait_line "$out1" "$zt1" dir=outbound pod=demo/client "dst=$POD_SERVER_IP:8080" "via=hbone peer=$id" result=ok
wait_line "$in2" "$zt2" dir=inbound-hbone "peer=$id" "src=$POD_CLIENT_IP:" "dst=$POD_SERVER_IP:8080" result=ok
grep -F "dir=inbound-hbone" "$zt2" | grep -qF "TLS established (TLS_AES_" ||
  fail "node2's ztunnel did not log an AES-GCM TLS 1.3 session"

# --- same-node curl ----------------------------------------------------------------------------
in1=$(count "$zt1" dir=inbound-hbone "peer=$id" "src=$POD_CLIENT_IP:" "dst=$POD_LOCAL_IP:8080" result=ok)
body=$(must_get client "http://$POD_LOCAL_IP:8080/")
assert_eq "client=$POD_CLIENT_IP" "${body%:*}" "the same-node server sees the client's IP"
wait_line "$in1" "$zt1" dir=inbound-hbone "peer=$id" "src=$POD_CLIENT_IP:" "dst=$POD_LOCAL_IP:8080" result=ok

# --- iperf3 across nodes -----------------------------------------------------------------------
out_iperf=$(count "$zt1" dir=outbound "dst=$POD_SERVER_IP:5201" "via=hbone")
json=$(lab exec "$PREFIX" client -- iperf3 -c "$POD_SERVER_IP" -p 5201 -t 2 -J) || fail "iperf3 failed: $json"
bps=$(json_query "$json" "int(d['end']['sum_received']['bits_per_second'])")
((bps > 1000000)) || fail "iperf3 through HBONE moved only $bps bit/s"
say "ok: iperf3 through HBONE across nodes: $((bps / 1000000)) Mbit/s"
wait_line "$out_iperf" "$zt1" dir=outbound "dst=$POD_SERVER_IP:5201" "via=hbone"

# --- the wire between the nodes ----------------------------------------------------------------
pcap=$LAB_STATE/node-link.pcap
marker=ZMESHSECRET$RANDOM$RANDOM
lab spawn "$PREFIX" node1 tshark -- tshark -i node2 -w "$pcap" -f tcp >/dev/null
wait_for 10 grep -qF "Capturing on" "$LAB_STATE/logs/tshark.log"
# A fresh HBONE connection (a new source pod identity would be needed to force one; the pool may
# reuse the connection, which is just as encrypted) carrying the marker both ways.
body=$(must_get client "http://$POD_SERVER_IP:8080/$marker" -H "X-Secret: $marker")
assert_contains "$body" "client=$POD_CLIENT_IP" "response through the capture"
sleep 1
lab kill "$PREFIX" tshark INT
wait_for 10 proc_gone tshark
[[ -s $pcap ]] || fail "tshark captured nothing"
packets=$(tshark -r "$pcap" -Y "tcp.port == 15008 && tcp.len > 0" 2>/dev/null | wc -l)
((packets > 0)) || fail "no payload on port 15008 between the nodes"
plain=$(tshark -r "$pcap" -Y "tcp.port == 8080" 2>/dev/null | wc -l)
assert_eq 0 "$plain" "packets to the app port on the node link"
tls=$(tshark -r "$pcap" -d tcp.port==15008,tls -Y "tls.app_data || tls.record.content_type == 23" 2>/dev/null | wc -l)
((tls > 0)) || fail "port 15008 did not carry TLS application data"
if grep -qaF "$marker" "$pcap"; then
  fail "the marker $marker appears in clear on the node link"
fi
say "ok: $packets packets on 15008, $tls TLS application-data records, the marker never in clear"
say PASSED
