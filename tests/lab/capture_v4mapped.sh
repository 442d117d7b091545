#!/usr/bin/env bash
# Outbound capture of an AF_INET6 socket connecting to a v4-mapped address (::ffff:a.b.c.d):
# the connect6 hook must capture it too, or a v6 socket would escape the mesh.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
standard_start
start_server server http 8080
mesh_up
wait_enrolled demo/client demo/server

before=$(zt_count dir=outbound "$POD_SERVER_IP" ":8080")
body=$(lab exec "$PREFIX" client -- python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(("::ffff:" + sys.argv[1], 8080))
s.sendall(b"GET / HTTP/1.0\r\nHost: server\r\n\r\n")
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(data.decode().split("\r\n\r\n", 1)[1].strip())
' "$POD_SERVER_IP" 2>&1) || fail "v4-mapped connect from client failed: $body"
assert_eq "client=$POD_CLIENT_IP" "${body%:*}" "server's view of the v4-mapped client"
wait_zt_line "$before" 10 dir=outbound "$POD_SERVER_IP" ":8080"
