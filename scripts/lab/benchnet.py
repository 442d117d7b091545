#!/usr/bin/env python3
"""Benchmark helpers for scripts/bench-mtls.sh (stdlib only).

  benchnet.py serve PORT [--procs 2]
      Echo server: every byte is sent back; connections stay open until the peer closes, so
      the same server answers request/response, connection-rate and "hold 1000 sockets"
      clients. PROCS worker processes share the port (SO_REUSEPORT), each an epoll loop;
      no per-connection logging. Prints "listening PORT procs=N" once bound.
  benchnet.py cps HOST PORT [--duration 5] [--procs 4] [--warmup 0.3]
      New connections per second: each of PROCS processes loops connect, send 1 byte, read
      1 byte back, close. Prints one JSON object
      {"conns": N, "per_s": X, "errors": E, "procs": P, "first_error": "..."}.
  benchnet.py hold HOST PORT [--count 1000] [--seconds 120]
      Opens COUNT connections, each proven end to end by a 1-byte echo, prints
      "held COUNT" and keeps them open for SECONDS (or until killed). Exit 1 (after printing
      "failed after K: ERROR") if not all could be opened.
  benchnet.py iperf < iperf3-J-output
      Prints "GBIT_PER_S BYTES" of the received side (exit 1 with iperf3's error otherwise).
  benchnet.py report RESULTS [--out FILE]
      RESULTS: lines "ROW KEY VALUE" (and "meta KEY VALUE..."), written by bench-mtls.sh.
      Prints the table and the issue-3 target lines; writes FILE as JSON, or TSV if FILE
      ends in .tsv.
"""
import argparse
import ctypes
import errno
import json
import math
import multiprocessing
import os
import resource
import selectors
import signal
import socket
import sys
import time


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, max(hard, need)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --------------------------------------------------------------------------------------------
# serve


def die_with_parent():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def echo_loop(port):
    die_with_parent()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    try:
        ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        addr = ("::", port)
    except OSError:
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        addr = ("0.0.0.0", port)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    ls.bind(addr)
    ls.listen(4096)
    ls.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ, None)
    pending = {}

    def close(c):
        sel.unregister(c)
        pending.pop(c, None)
        c.close()

    while True:
        for key, ev in sel.select():
            s = key.fileobj
            if s is ls:
                for _ in range(64):
                    try:
                        c, _addr = ls.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError as e:  # EMFILE and friends: back off a little
                        if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                            time.sleep(0.01)
                        break
                    c.setblocking(False)
                    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    sel.register(c, selectors.EVENT_READ, None)
                continue
            try:
                if ev & selectors.EVENT_WRITE:
                    buf = pending[s]
                    n = s.send(buf)
                    if n < len(buf):
                        pending[s] = buf[n:]
                    else:
                        del pending[s]
                        sel.modify(s, selectors.EVENT_READ, None)
                    continue
                data = s.recv(65536)
                if not data:
                    close(s)
                    continue
                n = s.send(data)
                if n < len(data):
                    pending[s] = data[n:]
                    sel.modify(s, selectors.EVENT_WRITE, None)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                close(s)


def cmd_serve(a):
    raise_nofile(65536)
    children = []
    for _ in range(a.procs):
        pid = os.fork()
        if pid == 0:
            try:
                echo_loop(a.port)
            finally:
                os._exit(1)
        children.append(pid)

    def stop(*_):
        for p in children:
            try:
                os.kill(p, signal.SIGTERM)
            except ProcessLookupError:
                pass
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"listening {a.port} procs={a.procs}", flush=True)
    # A worker that dies takes the server down (the benchmark's readiness probe notices).
    pid, status = os.wait()
    print(f"worker {pid} exited with status {status}", flush=True)
    stop()


# --------------------------------------------------------------------------------------------
# cps


def cps_worker(host, port, start, end, out):
    n = errs = 0
    first = ""
    addr = (host, port)
    while time.monotonic() < start:
        time.sleep(0.001)
    while time.monotonic() < end:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.settimeout(5)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.connect(addr)
            s.sendall(b"x")
            if s.recv(1) != b"x":
                raise ConnectionError("connection closed before the echo")
            n += 1
        except OSError as e:
            errs += 1
            if not first:
                first = repr(e)
            time.sleep(0.001)
        finally:
            s.close()
    out.send((n, errs, first))
    out.close()


def cmd_cps(a):
    raise_nofile(4096)
    ctx = multiprocessing.get_context("fork")
    t0 = time.monotonic() + 0.2
    start = t0 + a.warmup
    end = start + a.duration
    procs, pipes = [], []
    # Warm-up: the same loop for --warmup seconds, not counted.
    if a.warmup > 0:
        wp = []
        for _ in range(a.procs):
            r, w = ctx.Pipe(duplex=False)
            p = ctx.Process(target=cps_worker, args=(a.host, a.port, t0, start, w))
            p.start()
            wp.append((p, r))
        for p, r in wp:
            r.recv()
            p.join()
        start = time.monotonic() + 0.05
        end = start + a.duration
    for _ in range(a.procs):
        r, w = ctx.Pipe(duplex=False)
        p = ctx.Process(target=cps_worker, args=(a.host, a.port, start, end, w))
        p.start()
        procs.append(p)
        pipes.append(r)
    total = errs = 0
    first = ""
    for r in pipes:
        n, e, f = r.recv()
        total += n
        errs += e
        first = first or f
    for p in procs:
        p.join()
    print(json.dumps({"conns": total, "per_s": round(total / a.duration, 1), "errors": errs,
                      "procs": a.procs, "first_error": first}))
    return 0 if total > 0 else 1


# --------------------------------------------------------------------------------------------
# hold


def cmd_hold(a):
    raise_nofile(a.count + 256)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    socks = []
    try:
        for _ in range(a.count):
            s = socket.create_connection((a.host, a.port), timeout=10)
            s.sendall(b"x")
            if s.recv(1) != b"x":
                raise ConnectionError("connection closed before the echo")
            socks.append(s)
    except OSError as e:
        print(f"failed after {len(socks)}: {e!r}", flush=True)
        return 1
    print(f"held {len(socks)}", flush=True)
    time.sleep(a.seconds)
    return 0


# --------------------------------------------------------------------------------------------
# iperf


def cmd_iperf(_a):
    raw = sys.stdin.read()
    try:
        d = json.loads(raw)
    except ValueError:
        print(f"not iperf3 JSON: {raw[:300]!r}", file=sys.stderr)
        return 1
    if d.get("error"):
        print(f"iperf3: {d['error']}", file=sys.stderr)
        return 1
    r = d["end"]["sum_received"]
    print("%.3f %d" % (r["bits_per_second"] / 1e9, r["bytes"]))
    return 0


# --------------------------------------------------------------------------------------------
# report

ROWS = ["direct", "zmesh", "stunnel", "haproxy"]
PEERS = ["stunnel", "haproxy"]


def num(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def cmd_report(a):
    rows = {r: {} for r in ROWS}
    meta = {}
    with open(a.results) as f:
        for line in f:
            parts = line.rstrip("\n").split(" ", 2)
            if len(parts) < 3:
                continue
            row, key, val = parts
            if row == "meta":
                meta[key] = val
            else:
                rows.setdefault(row, {})[key] = val

    clk = num(meta.get("clk_tck")) or 100.0
    for r, d in rows.items():
        g = num(d.get("p1_bytes"))
        t0, t1 = num(d.get("cpu0_ticks")), num(d.get("cpu1_ticks"))
        if g and t0 is not None and t1 is not None and g > 0:
            d["cpu_s_per_gb"] = "%.2f" % (((t1 - t0) / clk) / (g / 1e9))
        for k in ("rss_idle_kb", "rss_hold_kb"):
            if d.get(k):
                vals = [num(x) for x in d[k].split("/")]
                d[k.replace("_kb", "_mb")] = "/".join(
                    "%.1f" % (v / 1024) if v is not None else "-" for v in vals)

    cols = [("p1_gbps", "1 stream Gbit/s"), ("p4_gbps", "4 streams Gbit/s"),
            ("rr_p50_us", "1KiB p50 us"), ("rr_p99_us", "1KiB p99 us"),
            ("cps", "conn/s"), ("cpu_s_per_gb", "CPU s/GB"),
            ("rss_idle_mb", "RSS idle MB n1/n2"), ("rss_hold_mb", "RSS %s conns MB n1/n2"
                                                    % meta.get("hold_count", "1000"))]
    out_rows = [r for r in ROWS if rows.get(r)]
    widths = [max(8, *(len(r) for r in out_rows))]
    for key, title in cols:
        widths.append(max(len(title), *(len(rows[r].get(key, "-")) for r in out_rows)))
    head = ["row"] + [t for _k, t in cols]
    print(" | ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths))))
    print("-+-".join("-" * w for w in widths))
    for r in out_rows:
        vals = [r] + [rows[r].get(k, "-") for k, _t in cols]
        print(" | ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(vals, widths))))

    # ----- targets
    print()
    targets = []

    def line(name, ok, text):
        status = "N/A " if ok is None else ("PASS" if ok else "MISS")
        targets.append({"target": name, "status": status.strip(), "detail": text})
        print(f"{status} {name}: {text}")

    def best_peer(key, better):
        c = [(num(rows[p].get(key)), p) for p in PEERS if num(rows[p].get(key)) is not None]
        if not c:
            return None, None
        return (max(c) if better == "high" else min(c))

    z = rows["zmesh"]
    v, p = best_peer("p1_gbps", "high")
    zt = num(z.get("p1_gbps"))
    if zt is not None and v:
        ratio = zt / v
        line("throughput", ratio >= 1.5,
             f"zmesh 1-stream {zt:.2f} Gbit/s / best peer {p} {v:.2f} = {ratio:.2f}x (target >= 1.5x)")
    else:
        line("throughput", None, "not measured for zmesh or the peers")

    d50 = num(rows["direct"].get("rr_p50_us"))
    z50 = num(z.get("rr_p50_us"))
    peers_added = [(num(rows[p].get("rr_p50_us")) - d50, p) for p in PEERS
                   if d50 is not None and num(rows[p].get("rr_p50_us")) is not None]
    if d50 is not None and z50 is not None and peers_added:
        pa, pp = min(peers_added)
        za = z50 - d50
        if pa > 0:
            ratio = za / pa
            line("latency", ratio <= 0.5,
                 f"added 1KiB p50 over direct: zmesh {za:.1f} us vs best peer {pp} {pa:.1f} us = "
                 f"{ratio:.2f}x (target <= 0.5x)")
        else:
            line("latency", None, f"best peer {pp} adds {pa:.1f} us (<= 0): too noisy to compare")
    else:
        line("latency", None, "p50 not measured for direct, zmesh or the peers")

    v, p = best_peer("cps", "high")
    zc = num(z.get("cps"))
    if zc is not None and v:
        ratio = zc / v
        line("connection rate", ratio >= 10,
             f"zmesh {zc:.0f} conn/s / best peer {p} {v:.0f} conn/s = {ratio:.1f}x (target >= 10x)")
    else:
        line("connection rate", None, "not measured for zmesh or the peers")

    idle = [num(x) for x in z.get("rss_idle_kb", "").split("/") if x]
    idle = [x for x in idle if x is not None]
    if idle:
        mb = max(idle) / 1024
        line("idle RSS", mb <= 20, f"largest idle ztunnel VmRSS {mb:.1f} MB (target <= 20 MB)")
    else:
        line("idle RSS", None, "ztunnel RSS not measured")

    if a.out:
        if a.out.endswith(".tsv"):
            keys = sorted({k for r in out_rows for k in rows[r]})
            with open(a.out, "w") as f:
                f.write("row\t" + "\t".join(keys) + "\n")
                for r in out_rows:
                    f.write(r + "\t" + "\t".join(rows[r].get(k, "") for k in keys) + "\n")
                for t in targets:
                    f.write(f"#target\t{t['target']}\t{t['status']}\t{t['detail']}\n")
        else:
            with open(a.out, "w") as f:
                json.dump({"meta": meta, "rows": {r: rows[r] for r in out_rows},
                           "targets": targets}, f, indent=2, sort_keys=True)
                f.write("\n")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("serve")
    p.add_argument("port", type=int)
    p.add_argument("--procs", type=int, default=2)
    p.set_defaults(fn=cmd_serve)
    p = sub.add_parser("cps")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--procs", type=int, default=4)
    p.add_argument("--warmup", type=float, default=0.3)
    p.set_defaults(fn=cmd_cps)
    p = sub.add_parser("hold")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=120.0)
    p.set_defaults(fn=cmd_hold)
    p = sub.add_parser("iperf")
    p.set_defaults(fn=cmd_iperf)
    p = sub.add_parser("report")
    p.add_argument("results")
    p.add_argument("--out")
    p.set_defaults(fn=cmd_report)
    a = ap.parse_args()
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
