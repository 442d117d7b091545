#!/usr/bin/python3
"""Test backend for tests/waypoint/http: HTTP/1.1 and h2c (prior knowledge) on two loopback
ports, printed as "h1=<port> h2=<port>" on stdout. Independent of the engine under test (Python's
http.server and the h2 package). Runs until stdin closes.

Paths: /echo... -> JSON of what arrived (method, path, headers, body length and sha256,
trailers, connection number); /big/<n> -> n bytes (content-length); /chunked/<k> -> k chunks
of 1000 bytes; /close-mid -> content-length 100000 but only 10 bytes, then the connection
closes; /close -> a response with Connection: close; /reset (h2) -> RST_STREAM.
"""
import hashlib
import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BLOCK = bytes((i * 7 + 3) % 251 for i in range(65536))
lock = threading.Lock()
conns = [0]


LOG_REQUESTS = [False]


def log_request(proto, method, path):
    # The lab counts what reached the backend (a denied request never does).
    if LOG_REQUESTS[0]:
        with lock:
            print(f'request {proto} {method} {path}', flush=True)


def next_conn():
    with lock:
        conns[0] += 1
        return conns[0]


def pattern(n):
    while n > 0:
        k = min(n, len(BLOCK))
        yield BLOCK[:k]
        n -= k


class H1(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def setup(self):
        super().setup()
        self.conn_id = next_conn()

    def log_message(self, *args):
        pass

    def read_body(self):
        h = hashlib.sha256()
        n = 0
        trailers = {}
        if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
            while True:
                size = int(self.rfile.readline().split(b';')[0], 16)
                if size == 0:
                    while True:
                        line = self.rfile.readline()
                        if line in (b'\r\n', b'\n', b''):
                            return n, h.hexdigest(), trailers, True
                        k, v = line.decode().split(':', 1)
                        trailers[k.strip().lower()] = v.strip()
                left = size
                while left:
                    d = self.rfile.read(min(left, 1 << 16))
                    h.update(d)
                    left -= len(d)
                    n += len(d)
                self.rfile.readline()
        left = int(self.headers.get('Content-Length', '0'))
        while left:
            d = self.rfile.read(min(left, 1 << 16))
            if not d:
                break
            h.update(d)
            left -= len(d)
            n += len(d)
        return n, h.hexdigest(), trailers, False

    def handle_any(self):
        n, digest, trailers, chunked = self.read_body()
        p = self.path
        log_request('h1', self.command, p)
        if p.startswith('/big/'):
            size = int(p[5:])
            self.send_response(200)
            self.send_header('Content-Length', str(size))
            self.end_headers()
            if self.command != 'HEAD':
                for b in pattern(size):
                    self.wfile.write(b)
            return
        if p.startswith('/chunked/'):
            k = int(p[9:])
            self.send_response(200)
            self.send_header('Transfer-Encoding', 'chunked')
            self.end_headers()
            for i in range(k):
                self.wfile.write(b'3e8\r\n' + bytes([65 + i % 26]) * 1000 + b'\r\n')
            self.wfile.write(b'0\r\nx-trailer: yes\r\n\r\n')
            return
        if p == '/close-mid':
            self.send_response(200)
            self.send_header('Content-Length', '100000')
            self.end_headers()
            self.wfile.write(b'0123456789')
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        body = json.dumps({
            'method': self.command, 'path': p, 'version': self.request_version,
            'headers': [[k.lower(), v] for k, v in self.headers.items()],
            'body_len': n, 'sha256': digest, 'trailers': trailers, 'chunked': chunked,
            'conn': self.conn_id}).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        if p == '/close':
            self.send_header('Connection', 'close')
            self.close_connection = True
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = handle_any


def h2_conn(sock):
    import h2.config
    import h2.connection
    import h2.events
    conn_id = next_conn()
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False,
                                                             header_encoding='utf-8'))
    c.initiate_connection()
    c.increment_flow_control_window(8 << 20)
    sock.sendall(c.data_to_send())
    reqs = {}
    pending = {}  # stream id -> [bytes left to send, trailers]

    def respond(sid):
        r = reqs.pop(sid)
        path = r['headers'].get(':path', '')
        log_request('h2', r['headers'].get(':method'), path)
        if path == '/reset':
            c.reset_stream(sid, 8)
            return
        if path.startswith('/big/'):
            size = int(path[5:])
            c.send_headers(sid, [(':status', '200'), ('content-length', str(size))])
            pending[sid] = [size, None]
            return
        body = json.dumps({
            'method': r['headers'].get(':method'), 'path': path,
            'authority': r['headers'].get(':authority'),
            'headers': [[k, v] for k, v in r['list'] if not k.startswith(':')],
            'body_len': r['n'], 'sha256': r['h'].hexdigest(), 'trailers': r['trailers'],
            'conn': conn_id}).encode()
        c.send_headers(sid, [(':status', '200'), ('content-type', 'application/json'),
                             ('content-length', str(len(body)))])
        c.send_data(sid, body, end_stream=path != '/trailers')
        if path == '/trailers':
            c.send_headers(sid, [('x-trailer', 'yes')], end_stream=True)

    def pump():
        for sid in list(pending):
            left = pending[sid][0]
            while left > 0:
                try:
                    w = min(c.local_flow_control_window(sid), c.max_outbound_frame_size, left)
                except Exception:
                    left = 0
                    break
                if w <= 0:
                    break
                c.send_data(sid, BLOCK[:w] if w <= len(BLOCK) else bytes(w),
                            end_stream=(left == w))
                left -= w
            if left == 0:
                del pending[sid]
            else:
                pending[sid][0] = left

    try:
        while True:
            data = sock.recv(1 << 16)
            if not data:
                break
            for ev in c.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    reqs[ev.stream_id] = {'headers': dict(ev.headers), 'list': ev.headers,
                                          'h': hashlib.sha256(), 'n': 0, 'trailers': {}}
                elif isinstance(ev, h2.events.DataReceived):
                    r = reqs.get(ev.stream_id)
                    if r:
                        r['h'].update(ev.data)
                        r['n'] += len(ev.data)
                    c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.TrailersReceived):
                    if ev.stream_id in reqs:
                        reqs[ev.stream_id]['trailers'] = dict(ev.headers)
                elif isinstance(ev, h2.events.StreamEnded):
                    if ev.stream_id in reqs:
                        respond(ev.stream_id)
                elif isinstance(ev, h2.events.StreamReset):
                    reqs.pop(ev.stream_id, None)
                    pending.pop(ev.stream_id, None)
            pump()
            sock.sendall(c.data_to_send())
    except Exception:
        pass
    finally:
        sock.close()


def h2_listen(ls):
    while True:
        s, _ = ls.accept()
        threading.Thread(target=h2_conn, args=(s,), daemon=True).start()


def main():
    # Defaults: loopback, any ports, until stdin closes (the engine tests). The netns lab passes
    # --bind 0.0.0.0 --h1 PORT --h2 PORT --forever.
    args = sys.argv[1:]
    opt = {'--bind': '127.0.0.1', '--h1': '0', '--h2': '0'}
    forever = '--forever' in args
    LOG_REQUESTS[0] = forever
    args = [a for a in args if a != '--forever']
    while args:
        k = args.pop(0)
        if k not in opt or not args:
            sys.exit('usage: backend.py [--bind ADDR] [--h1 PORT] [--h2 PORT] [--forever]')
        opt[k] = args.pop(0)
    h1 = ThreadingHTTPServer((opt['--bind'], int(opt['--h1'])), H1)
    h1.daemon_threads = True
    threading.Thread(target=h1.serve_forever, daemon=True).start()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((opt['--bind'], int(opt['--h2'])))
    ls.listen(64)
    threading.Thread(target=h2_listen, args=(ls,), daemon=True).start()
    print(f'h1={h1.server_address[1]} h2={ls.getsockname()[1]}', flush=True)
    if forever:
        threading.Event().wait()
    sys.stdin.read()


if __name__ == '__main__':
    main()
