#!/usr/bin/python3
"""Writes the seed corpus of http_request_fuzz (format in http_fuzz.h). HTTP/2 seeds are
encoded with python3-h2. Run from anywhere: tests/waypoint/http/fuzz/make_corpus.py"""
import os

import h2.config
import h2.connection

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus')
DENY, INLINE, OPEN_FAILS, TRICKLE, REWRITE = 1, 2, 4, 8, 16


def seed(name, flags, down, up=b''):
    with open(os.path.join(OUT, name), 'wb') as f:
        f.write(bytes([flags]) + len(down).to_bytes(2, 'big') + down + up)


def h2_pair(requests, responses, trailers=False):
    """Client bytes for `requests` [(headers, body)], server bytes answering stream 1, 3, ..."""
    cfg = h2.config.H2Configuration(client_side=True, header_encoding='utf-8')
    c = h2.connection.H2Connection(cfg)
    c.initiate_connection()
    for headers, body in requests:
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, headers, end_stream=not body and not trailers)
        if body:
            c.send_data(sid, body, end_stream=not trailers)
        if trailers:
            c.send_headers(sid, [('x-sum', '1')], end_stream=True)
    down = c.data_to_send()
    s = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False,
                                                             header_encoding='utf-8'))
    s.initiate_connection()
    # What the engine's client session sends first: its preface and SETTINGS, then requests.
    cc = h2.connection.H2Connection(cfg)
    cc.initiate_connection()
    for headers, body in requests:
        cc.send_headers(cc.get_next_available_stream_id(), headers, end_stream=True)
    s.receive_data(cc.data_to_send())
    for i, (status, body) in enumerate(responses):
        sid = 1 + 2 * i
        s.send_headers(sid, [(':status', str(status)), ('content-length', str(len(body)))])
        s.send_data(sid, body, end_stream=True)
    return down, s.data_to_send()


def req(path, method='GET'):
    return [(':method', method), (':scheme', 'http'), (':authority', 'svc'), (':path', path)]


def main():
    os.makedirs(OUT, exist_ok=True)
    ok = b'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi'
    seed('ok-h1-get', 0, b'GET /a HTTP/1.1\r\nHost: svc\r\n\r\n', ok)
    seed('ok-h1-pipelined', TRICKLE,
         b'GET /a HTTP/1.1\r\nHost: svc\r\n\r\nGET /b HTTP/1.1\r\nHost: svc\r\n\r\n', ok + ok)
    seed('ok-h1-chunked', INLINE | REWRITE,
         b'POST /c HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n'
         b'5\r\nhello\r\n0\r\nx-sum: 1\r\n\r\n',
         b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nx-t: 1\r\n\r\n')
    seed('ok-h1-http10', 0, b'GET /d HTTP/1.0\r\n\r\n', b'HTTP/1.1 200 OK\r\n\r\nclose-delimited')
    seed('ok-h1-expect', 0,
         b'PUT /e HTTP/1.1\r\nHost: svc\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc',
         b'HTTP/1.1 100 Continue\r\n\r\n' + ok)
    seed('bad-h1-smuggle', 0,
         b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n'
         b'0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n', ok + ok)
    seed('bad-h1-lowercase-method', 0, b'get / HTTP/1.1\r\nHost: a\r\n\r\n', ok)
    seed('bad-h1-obs-fold', 0, b'GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n', ok)
    seed('bad-h1-space-in-name', TRICKLE, b'GET / HTTP/1.1\r\nHost: a\r\nX Y: 1\r\n\r\n', ok)
    seed('bad-h1-upstream-garbage', 0, b'GET / HTTP/1.1\r\nHost: a\r\n\r\n', b'SSH-2.0-OpenSSH\r\n')
    seed('bad-h1-upstream-cut', 0, b'GET / HTTP/1.1\r\nHost: a\r\n\r\n',
         b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort')
    seed('deny-h1', DENY, b'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiGET / HTTP/1.1\r\nHost: a\r\n\r\n')
    seed('bad-h1-open-fails', OPEN_FAILS, b'GET / HTTP/1.1\r\nHost: a\r\n\r\n')
    down, up = h2_pair([(req('/h2a'), b'')], [(200, b'hello')])
    seed('ok-h2-get', 0, down, up)
    down, up = h2_pair([(req('/h2a'), b''), (req('/h2b', 'POST'), b'x' * 1000)],
                       [(200, b'one'), (200, b'two')])
    seed('ok-h2-two-streams', INLINE | REWRITE, down, up)
    down, up = h2_pair([(req('/h2t', 'POST'), b'body')], [(200, b'ok')], trailers=True)
    seed('ok-h2-trailers', INLINE, down, up)
    down, up = h2_pair([(req('/h2d'), b'')], [(200, b'no')])
    seed('deny-h2', DENY, down, up)
    seed('bad-h2-garbage', 0, b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' + b'\x00\x00\x05garbage!!', b'')
    down, up = h2_pair([(req('/h2u'), b'')], [(200, b'x')])
    seed('bad-h2-upstream-garbage', 0, down, b'HTTP/1.1 200 OK\r\n\r\n')


if __name__ == '__main__':
    main()
