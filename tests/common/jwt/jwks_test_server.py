#!/usr/bin/env python3
"""A JWKS server for the fetcher tests, on 127.0.0.1.

GET /NAME answers with the file DIR/NAME (200, application/json) or 404. When DIR/NAME.delay
exists it holds the seconds to wait before answering. With --cert/--key it speaks HTTPS.
Once listening it writes the bound port to DIR/port (atomically).
"""
import argparse
import http.server
import os
import ssl
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            name = self.path.split("?")[0].lstrip("/")
            path = os.path.join(args.dir, name)
            if not name or "/" in name or name.startswith(".") or not os.path.isfile(path):
                self.send_error(404)
                return
            delay = path + ".delay"
            if os.path.exists(delay):
                with open(delay) as f:
                    time.sleep(float(f.read().strip() or "0"))
            with open(path, "rb") as f:
                body = f.read()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except OSError:
                pass

        def log_message(self, *unused):
            pass

    http.server.ThreadingHTTPServer.allow_reuse_address = True
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    tmp = os.path.join(args.dir, "port.tmp")
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, os.path.join(args.dir, "port"))
    server.serve_forever()


if __name__ == "__main__":
    main()
