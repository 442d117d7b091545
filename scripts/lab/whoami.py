#!/usr/bin/env python3
"""Lab test server (stdlib only).

  whoami.py http PORT [PORT...]   answer any HTTP/1.x request with 200 and
                                  body "client=<peer ip>:<peer port>\\n" (keep-alive aware)
  whoami.py echo PORT [PORT...]   echo every byte back

Binds to [::] dual-stack (falls back to 0.0.0.0). v4-mapped peers are printed as plain
IPv4. Every accepted connection is logged on stdout as
"accept mode=MODE port=PORT peer=IP:PORT" so tests can tell whether the server was reached.
"""
import socket
import socketserver
import sys
import threading


def peer_of(sock_addr):
    host, port = sock_addr[0], sock_addr[1]
    if host.startswith("::ffff:") and "." in host:
        host = host[len("::ffff:"):]
    return host, port


def log(msg):
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


class Handler(socketserver.BaseRequestHandler):
    mode = "http"

    def handle(self):
        host, port = peer_of(self.client_address)
        local_port = self.request.getsockname()[1]
        log(f"accept mode={self.mode} port={local_port} peer={host}:{port}")
        try:
            if self.mode == "echo":
                self.echo()
            else:
                self.http(host, port)
        except (ConnectionError, OSError):
            pass

    def echo(self):
        s = self.request
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            data = s.recv(65536)
            if not data:
                return
            s.sendall(data)

    def http(self, host, port):
        s = self.request
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                data = s.recv(65536)
                if not data:
                    return
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            version = lines[0].split(" ")[-1] if lines else "HTTP/1.0"
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length", "0") or "0")
            while len(buf) < length:
                data = s.recv(65536)
                if not data:
                    return
                buf += data
            buf = buf[length:]
            keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
            body = f"client={host}:{port}\n".encode()
            resp = (f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                    f"Content-Length: {len(body)}\r\n"
                    f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n").encode() + body
            s.sendall(resp)
            if not keep:
                return


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512


class Server6(Server):
    address_family = socket.AF_INET6

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def serve(mode, port):
    handler = type("H", (Handler,), {"mode": mode})
    try:
        srv = Server6(("::", port), handler)
    except OSError:
        srv = Server(("0.0.0.0", port), handler)
    log(f"listening mode={mode} port={port}")
    srv.serve_forever()


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("http", "echo"):
        sys.stderr.write(__doc__)
        return 2
    mode = sys.argv[1]
    ports = [int(p) for p in sys.argv[2:]]
    threads = [threading.Thread(target=serve, args=(mode, p), daemon=True) for p in ports[1:]]
    for t in threads:
        t.start()
    serve(mode, ports[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
