#!/usr/bin/python3
"""HTTP/2 prior-knowledge test client (python3-h2) for tests/waypoint/http.

usage: h2client.py <port> '<json list of requests>'
Each request: {"method", "path", "headers": [[k, v]...], "body": <bytes to send>,
"trailers": [[k, v]...], "rst": true (send half the body, then RST_STREAM(CANCEL))}.
All requests go concurrently on one connection. Prints one JSON object: {"results": [{"status",
"headers", "body_len", "body" (first 4 KiB), "sha256", "trailers", "reset"}...],
"goaway": <error code or null>}.
"""
import hashlib
import json
import socket
import sys

import h2.config
import h2.connection
import h2.events
import h2.settings

BLOCK = bytes((i * 13 + 5) % 256 for i in range(65536))


def pairs(h):
    """[[k, v]...] or {k: v} as a list of (bytes, bytes)."""
    items = h.items() if isinstance(h, dict) else h
    return [(k.encode(), v.encode()) for k, v in items]


def main():
    port = int(sys.argv[1])
    reqs = json.loads(sys.argv[2])
    s = socket.create_connection(('127.0.0.1', port), timeout=20)
    c = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, header_encoding='utf-8', validate_outbound_headers=False,
        normalize_outbound_headers=False, validate_inbound_headers=False))
    c.initiate_connection()
    c.increment_flow_control_window(16 << 20)
    c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 4 << 20})
    streams = {}
    for i, r in enumerate(reqs):
        sid = c.get_next_available_stream_id()
        body = r.get('body', 0)
        trailers = r.get('trailers')
        hdrs = [(':method', r.get('method', 'GET')), (':scheme', 'http'),
                (':authority', r.get('authority', 'svc.test')), (':path', r['path'])]
        hdrs += [(k.decode(), v.decode()) for k, v in pairs(r.get('headers', []))]
        end = body == 0 and not trailers and not r.get('rst')
        c.send_headers(sid, hdrs, end_stream=end)
        streams[sid] = {'i': i, 'left': body // 2 if r.get('rst') else body, 'trailers': trailers,
                        'rst': r.get('rst'), 'sent_end': end, 'res': {
                            'status': None, 'headers': [], 'body_len': 0, 'body': '',
                            'sha': hashlib.sha256(), 'trailers': [], 'reset': None},
                        'done': False}
    goaway = None

    def pump():
        for sid, st in streams.items():
            if st['sent_end'] or st['done']:
                continue
            while st['left'] > 0:
                w = min(c.local_flow_control_window(sid), c.max_outbound_frame_size, st['left'],
                        len(BLOCK))
                if w <= 0:
                    break
                c.send_data(sid, BLOCK[:w])
                st['left'] -= w
            if st['left'] == 0:
                if st['rst']:
                    c.reset_stream(sid, 8)
                    st['done'] = True
                elif st['trailers']:
                    c.send_headers(sid, pairs(st['trailers']), end_stream=True)
                else:
                    c.end_stream(sid)
                st['sent_end'] = True

    pump()
    s.sendall(c.data_to_send())
    while not all(st['done'] for st in streams.values()):
        try:
            data = s.recv(1 << 16)
        except socket.timeout:
            break
        if not data:
            break
        for ev in c.receive_data(data):
            st = streams.get(getattr(ev, 'stream_id', None))
            if isinstance(ev, h2.events.ResponseReceived):
                st['res']['headers'] = [[k, v] for k, v in ev.headers if not k.startswith(':')]
                st['res']['status'] = int(dict(ev.headers)[':status'])
            elif isinstance(ev, h2.events.DataReceived):
                if st:
                    st['res']['body_len'] += len(ev.data)
                    st['res']['sha'].update(ev.data)
                    if len(st['res']['body']) < 4096:
                        st['res']['body'] += ev.data.decode('latin-1')
                c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.TrailersReceived):
                st['res']['trailers'] = [[k, v] for k, v in ev.headers]
            elif isinstance(ev, h2.events.StreamEnded):
                if st:
                    st['done'] = True
            elif isinstance(ev, h2.events.StreamReset):
                if st:
                    st['res']['reset'] = int(ev.error_code)
                    st['done'] = True
            elif isinstance(ev, h2.events.ConnectionTerminated):
                goaway = int(ev.error_code)
                for st2 in streams.values():
                    st2['done'] = True
        pump()
        s.sendall(c.data_to_send())
    out = []
    for st in sorted(streams.values(), key=lambda x: x['i']):
        r = st['res']
        r['sha256'] = r.pop('sha').hexdigest()
        out.append(r)
    print(json.dumps({'results': out, 'goaway': goaway}))


if __name__ == '__main__':
    main()
