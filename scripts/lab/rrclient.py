#!/usr/bin/env python3
"""Request/response latency over ONE persistent TCP connection (stdlib only).

  rrclient.py HOST PORT [--duration 5] [--size 1] [--warmup 0.5]

Against an echo server (whoami.py echo): send SIZE bytes, wait for SIZE bytes back, repeat
for DURATION seconds. Prints one JSON object:
{"n": N, "rr_per_s": X, "p50_us": X, "p90_us": X, "p99_us": X, "max_us": X}
The numbers include the Python client's own overhead (tens of microseconds); compare paths
measured with the same tool, not against netperf.
"""
import argparse
import json
import socket
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--size", type=int, default=1)
    ap.add_argument("--warmup", type=float, default=0.5)
    a = ap.parse_args()
    s = socket.create_connection((a.host, a.port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    payload = b"x" * a.size
    clock = time.perf_counter_ns

    def one():
        s.sendall(payload)
        got = 0
        while got < a.size:
            chunk = s.recv(a.size - got)
            if not chunk:
                raise ConnectionError("connection closed by peer")
            got += len(chunk)

    end_warm = time.monotonic() + a.warmup
    while time.monotonic() < end_warm:
        one()
    lat = []
    start = clock()
    deadline = start + int(a.duration * 1e9)
    t = start
    while t < deadline:
        one()
        t2 = clock()
        lat.append(t2 - t)
        t = t2
    elapsed = (t - start) / 1e9
    s.close()
    lat.sort()

    def pct(p):
        return round(lat[min(len(lat) - 1, int(len(lat) * p))] / 1000.0, 1)

    print(json.dumps({"n": len(lat), "rr_per_s": round(len(lat) / elapsed, 1),
                      "p50_us": pct(0.50), "p90_us": pct(0.90), "p99_us": pct(0.99),
                      "max_us": round(lat[-1] / 1000.0, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
