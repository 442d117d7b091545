#!/usr/bin/env python3
"""An HTTP external authorizer for the lab (Envoy's HTTP ext_authz protocol, as Istio's
envoyExtAuthzHttp providers speak it): allows a request that carries `x-ext-authz: allow`
(answering 200 with `x-ext-authz-check-result: allowed`), denies anything else with 403, the
body `denied by ext-authz` and `x-ext-authz-check-result: denied`. Logs one line per check.

  ext_authz.py PORT
"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Check(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def check(self):
        allowed = self.headers.get("x-ext-authz") == "allow"
        print(f"check {self.command} {self.path} {'allow' if allowed else 'deny'}", flush=True)
        body = b"" if allowed else b"denied by ext-authz"
        self.send_response(200 if allowed else 403)
        self.send_header("x-ext-authz-check-result", "allowed" if allowed else "denied")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = check


ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), Check).serve_forever()
