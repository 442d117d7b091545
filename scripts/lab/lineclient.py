#!/usr/bin/env python3
"""Long-lived echo client for lab tests (stdlib only).

  lineclient.py HOST PORT [--interval 0.1] [--stop-file PATH] [--timeout 2]

Opens ONE TCP connection to an echo server (whoami.py echo), then sends "seq N\\n" every
interval and checks the echo. Prints "connected ..." once, "progress ok=N" every 10 lines and
"done sent=N ok=N" at the end. Stops cleanly (exit 0) when PATH exists or on SIGTERM;
exits 1 at the first failure (timeout, reset, wrong echo), printing why.
"""
import argparse
import os
import signal
import socket
import sys
import time

stop = False


def on_term(_sig, _frm):
    global stop
    stop = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--stop-file")
    ap.add_argument("--timeout", type=float, default=2.0)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    family = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(a.timeout)
    s.connect((a.host, a.port))
    print(f"connected local={s.getsockname()[0]}:{s.getsockname()[1]} "
          f"peer={s.getpeername()[0]}:{s.getpeername()[1]}", flush=True)
    sent = ok = 0
    f = s.makefile("rb")
    while not stop and not (a.stop_file and os.path.exists(a.stop_file)):
        msg = f"seq {sent}\n".encode()
        try:
            s.sendall(msg)
            sent += 1
            got = f.readline()
        except OSError as e:
            print(f"FAIL at seq {sent - 1}: {e!r}", flush=True)
            print(f"done sent={sent} ok={ok}", flush=True)
            return 1
        if got != msg:
            print(f"FAIL at seq {sent - 1}: got {got!r}", flush=True)
            print(f"done sent={sent} ok={ok}", flush=True)
            return 1
        ok += 1
        if ok % 10 == 0:
            print(f"progress ok={ok}", flush=True)
        time.sleep(a.interval)
    s.close()
    print(f"done sent={sent} ok={ok}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
