#!/usr/bin/python3
"""HBONE client for lab tests: TLS 1.3 + ALPN h2 + HTTP/2 CONNECT, and hostile variants.

Needs python3's ssl module and the `h2` package (Debian: python3-h2); run it with the
interpreter that has h2 (/usr/bin/python3 on Debian).

Good client (the default):
  hbone_client.py --ca ROOT --cert CERT --key KEY [--server-id URI] --authority IP:PORT \
                  [--header NAME:VALUE]... [--send TEXT | --send-file FILE] HOST:15008
      TLS 1.3 with the client certificate (ALPN h2, no SNI, server chain verified against
      ROOT when --ca is given), HTTP/2, one CONNECT stream to --authority. On 200 it relays
      stdin -> stream and stream -> stdout (end of stdin ends the stream), or with --send sends
      that payload, ends the stream and prints the reply.

Hostile variants (each replaces part of the above):
  --tls 1.2                  offer only TLS 1.2          --alpn P (repeat; "none": no ALPN)
  --no-cert                  no client certificate
  --raw-instead-of-tls FILE  send FILE's bytes on plain TCP instead of a ClientHello
  --raw-after-handshake FILE complete the TLS handshake, then send FILE's bytes instead of HTTP/2
  --truncate frame           valid preface + SETTINGS, then half a PING frame
  --truncate headers         ... then a CONNECT HEADERS frame cut in the middle of its block
  --truncate continuation    ... then a CONNECT HEADERS frame without END_HEADERS holding half
                             the block, and no CONTINUATION
  After the raw bytes / truncated frame, --shut-write (default for --truncate, unless
  --keep-open) sends a TCP FIN (no close_notify); then the client reads until the server
  closes or --timeout passes (result=closed or result=open).

Output: "key=value" lines on stderr, the tunnelled reply (only) on stdout:
  local=IP:PORT                       the client's address (to find ztunnel's log lines)
  tls=TLSv1.3 cipher=... alpn=h2      the handshake as the client saw it
  server_id=URI                       the server certificate's URI SANs (with --server-id)
  status=NNN                          the CONNECT response
  frames=SETTINGS,GOAWAY(...)         HTTP/2 frames received (raw / truncate modes; a
                                      HEADERS frame shows its :status)
  tls_error=REASON tls_detail=TEXT    a TLS failure (an alert from the server, ...)
  error=...                           why it ended otherwise, if not cleanly
  server_closed=yes|no                whether the server closed the connection (hostile modes)
  result=tunnel|rejected|tls-failed|closed|open|timeout|connect-failed|protocol-error|
         wrong-server
Exit status: 0 only for result=tunnel (200, and with --send the reply up to the stream's end);
1 rejected (non-200), 2 tls-failed, 3 anything else (closed, open, timeout, ...), 64 usage.
"""
import argparse
import codecs
import os
import select
import socket
import ssl
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_TYPES = {0: "DATA", 1: "HEADERS", 2: "PRIORITY", 3: "RST_STREAM", 4: "SETTINGS",
               5: "PUSH_PROMISE", 6: "PING", 7: "GOAWAY", 8: "WINDOW_UPDATE", 9: "CONTINUATION"}
H2_ERRORS = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
             4: "SETTINGS_TIMEOUT", 5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR",
             7: "REFUSED_STREAM", 8: "CANCEL", 9: "COMPRESSION_ERROR", 10: "CONNECT_ERROR",
             11: "ENHANCE_YOUR_CALM", 12: "INADEQUATE_SECURITY", 13: "HTTP_1_1_REQUIRED"}


def info(**kv):
    sys.stderr.write(" ".join(f"{k}={v}" for k, v in kv.items()) + "\n")
    sys.stderr.flush()


def tls_error(e):
    """An ssl.SSLError as key=values: OpenSSL's reason code (when Python knows it), the text."""
    return {"tls_error": e.reason or "-", "tls_detail": repr(str(e))}


class Done(Exception):
    def __init__(self, result, code, **kv):
        super().__init__(result)
        self.result, self.code, self.kv = result, code, kv


def frame(ftype, flags, stream, payload, length=None):
    n = len(payload) if length is None else length
    return struct.pack(">I", n)[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def hpack_connect(authority, headers):
    import hpack  # shipped with h2
    return hpack.Encoder().encode([(":method", "CONNECT"), (":authority", authority)] + headers)


class Parser(argparse.ArgumentParser):
    def error(self, message):  # exit 64, not argparse's 2 (which means tls-failed here)
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(64)


def parse_args():
    ap = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("target", metavar="HOST:PORT", help="the HBONE listener (e.g. POD_IP:15008)")
    ap.add_argument("--ca", help="CA file to verify the server's chain (default: no verification)")
    ap.add_argument("--cert", help="client certificate (PEM)")
    ap.add_argument("--key", help="client private key (PEM)")
    ap.add_argument("--no-cert", action="store_true", help="present no client certificate")
    ap.add_argument("--server-id", metavar="URI",
                    help="require this SPIFFE URI SAN in the server's certificate (needs --ca)")
    ap.add_argument("--authority", help="CONNECT :authority, IP:PORT (required for CONNECT)")
    ap.add_argument("--header", action="append", default=[], metavar="NAME:VALUE",
                    help="extra request header (repeatable)")
    ap.add_argument("--alpn", action="append", metavar="PROTO",
                    help="ALPN protocol to offer (repeatable; default h2; 'none' offers none)")
    ap.add_argument("--tls", choices=["1.2", "1.3"], default="1.3",
                    help="the only TLS version offered (default 1.3)")
    ap.add_argument("--send", metavar="TEXT",
                    help="after 200, send TEXT (backslash escapes like \\r\\n allowed), end the "
                    "stream and print the reply; default: relay stdin/stdout")
    ap.add_argument("--send-file", metavar="FILE", help="like --send, with FILE's bytes")
    ap.add_argument("--raw-instead-of-tls", metavar="FILE",
                    help="send FILE's bytes on plain TCP in place of the ClientHello")
    ap.add_argument("--raw-after-handshake", metavar="FILE",
                    help="after the TLS handshake send FILE's bytes instead of HTTP/2")
    ap.add_argument("--truncate", choices=["frame", "headers", "continuation"],
                    help="preface + SETTINGS, then a truncated frame, then FIN")
    ap.add_argument("--shut-write", action="store_true",
                    help="after raw bytes send a TCP FIN (implied by --truncate)")
    ap.add_argument("--keep-open", action="store_true",
                    help="with --truncate: no FIN, just wait (a stalled client)")
    ap.add_argument("--timeout", type=float, default=10.0, help="overall deadline (default 10 s)")
    a = ap.parse_args()
    modes = [m for m in (a.raw_instead_of_tls, a.raw_after_handshake, a.truncate) if m]
    if len(modes) > 1:
        ap.error("--raw-instead-of-tls, --raw-after-handshake and --truncate exclude each other")
    if not modes and not a.authority:
        ap.error("--authority is required for CONNECT")
    if a.truncate in ("headers", "continuation") and not a.authority:
        ap.error(f"--truncate {a.truncate} needs --authority")
    if a.send is not None and a.send_file:
        ap.error("--send and --send-file exclude each other")
    if not a.no_cert and bool(a.cert) != bool(a.key):
        ap.error("--cert and --key go together")
    if a.server_id and not a.ca:
        ap.error("--server-id needs --ca")
    if a.keep_open and (a.shut_write or not a.truncate):
        ap.error("--keep-open goes with --truncate, not with --shut-write")
    if a.truncate and not a.keep_open:
        a.shut_write = True
    return a


class Client:
    def __init__(self, a):
        self.a = a
        self.deadline = time.monotonic() + a.timeout
        host, _, port = a.target.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        self.sock = None

    def left(self):
        t = self.deadline - time.monotonic()
        if t <= 0:
            raise Done("timeout", 3, error="deadline passed")
        return t

    def connect_tcp(self):
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.left())
        except OSError as e:
            raise Done("connect-failed", 3, error=repr(str(e)))
        local = sock.getsockname()
        info(local=f"{local[0]}:{local[1]}")
        return sock

    def context(self):
        a = self.a
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ver = ssl.TLSVersion.TLSv1_3 if a.tls == "1.3" else ssl.TLSVersion.TLSv1_2
        ctx.minimum_version = ctx.maximum_version = ver
        ctx.check_hostname = False
        if a.ca:
            ctx.load_verify_locations(a.ca)
        else:
            ctx.verify_mode = ssl.CERT_NONE
        if a.cert and not a.no_cert:
            ctx.load_cert_chain(a.cert, a.key)
        alpn = a.alpn or ["h2"]
        if alpn != ["none"]:
            ctx.set_alpn_protocols([p for p in alpn if p != "none"])
        return ctx

    def handshake(self):
        raw = self.connect_tcp()
        try:
            raw.settimeout(self.left())
            s = self.context().wrap_socket(raw, server_side=False, server_hostname=None)
        except ssl.SSLError as e:
            raise Done("tls-failed", 2, **tls_error(e))
        except socket.timeout:
            raise Done("timeout", 3, error="TLS handshake timed out")
        except OSError as e:
            raise Done("closed", 3, error=repr(str(e)))
        info(tls=s.version(), cipher=s.cipher()[0], alpn=s.selected_alpn_protocol() or "-")
        self.sock = s
        if self.a.server_id:
            uris = [v for k, v in (s.getpeercert() or {}).get("subjectAltName", ()) if k == "URI"]
            info(server_id=",".join(uris) or "-")
            if self.a.server_id not in uris:
                raise Done("wrong-server", 3, error=f"server is not {self.a.server_id}")
        return s

    # ---- reading helpers ------------------------------------------------------------------

    def recv(self, n=65536):
        """Bytes from the server; b"" when it closed. Raises Done on TLS errors / deadline."""
        s = self.sock
        try:
            s.settimeout(self.left())
            return s.recv(n)
        except socket.timeout:
            raise Done("timeout", 3, error="no answer before the deadline")
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return b""
        except ssl.SSLError as e:
            raise Done("tls-failed", 2, **tls_error(e))
        except ConnectionResetError:
            return b""

    def watch_until_closed(self, plain=False):
        """Hostile modes: read until the server closes (or the deadline), noting frames."""
        import hpack  # shipped with h2
        decoder = hpack.Decoder()
        buf, frames, statuses, total = b"", [], [], 0
        closed, note = False, {}
        while True:
            try:
                if plain:
                    self.sock.settimeout(max(self.deadline - time.monotonic(), 0.001))
                    data = self.sock.recv(65536)
                else:
                    data = self.recv()
            except (socket.timeout, Done) as e:
                if isinstance(e, Done) and e.result != "timeout":
                    note = e.kv
                    closed = True
                break
            except ConnectionResetError:
                note = {"error": "reset"}
                closed = True
                break
            if not data:
                closed = True
                break
            total += len(data)
            if plain:
                if "first_bytes" not in note:
                    note["first_bytes"] = data[:8].hex()
                continue
            buf += data
            while len(buf) >= 9:
                n = int.from_bytes(buf[:3], "big")
                if len(buf) < 9 + n:
                    break
                t, flags, payload = buf[3], buf[4], buf[9:9 + n]
                name = FRAME_TYPES.get(t, f"TYPE{t}")
                if t == 1:  # a response: decode it (HPACK state is per connection)
                    if flags & 0x8:  # PADDED
                        payload = payload[1:len(payload) - payload[0]]
                    if flags & 0x20:  # PRIORITY
                        payload = payload[5:]
                    try:
                        hdrs = dict(decoder.decode(payload))
                        status = hdrs.get(":status", "?")
                    except Exception:  # noqa: BLE001 - a CONTINUATION-split block, garbage
                        status = "?"
                    statuses.append(status)
                    name += f"({status})"
                if t == 7 and len(payload) >= 8:
                    code = int.from_bytes(payload[4:8], "big")
                    name += f"({H2_ERRORS.get(code, code)})"
                frames.append(name)
                buf = buf[9 + n:]
        if not plain:
            info(frames=",".join(frames) or "-")
        info(received_bytes=total, **note)
        info(server_closed="yes" if closed else "no")
        if statuses:
            info(status=",".join(statuses))
        if any(st not in ("400", "503") for st in statuses):
            raise Done("protocol-error", 3, error="a hostile client got a non-error response")
        raise Done("closed" if closed else "open", 3)

    def shut_write(self):
        # A TCP FIN without close_notify; SSLSocket.shutdown would drop the TLS state.
        try:
            socket.socket.shutdown(self.sock, socket.SHUT_WR)
        except OSError:
            pass

    def send_raw(self, data):
        try:
            self.sock.sendall(data)
        except ssl.SSLError as e:
            raise Done("tls-failed", 2, **tls_error(e))
        except OSError as e:
            raise Done("closed", 3, error=repr(str(e)))

    # ---- modes ------------------------------------------------------------------------------

    def raw_instead_of_tls(self):
        self.sock = self.connect_tcp()
        with open(self.a.raw_instead_of_tls, "rb") as f:
            data = f.read()
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise Done("closed", 3, error=repr(str(e)))
        info(sent_bytes=len(data))
        if self.a.shut_write:
            self.sock.shutdown(socket.SHUT_WR)
        self.watch_until_closed(plain=True)

    def raw_after_handshake(self):
        self.handshake()
        with open(self.a.raw_after_handshake, "rb") as f:
            data = f.read()
        self.send_raw(data)
        info(sent_bytes=len(data))
        if self.a.shut_write:
            self.shut_write()
        self.watch_until_closed()

    def truncate(self):
        self.handshake()
        data = PREFACE + frame(4, 0, 0, b"")
        kind = self.a.truncate
        if kind == "frame":
            data += frame(6, 0, 0, b"\x00" * 8)[:9 + 4]  # PING: header + 4 of its 8 bytes
        else:
            block = hpack_connect(self.a.authority, self.extra_headers())
            half = block[:max(1, len(block) // 2)]
            if kind == "headers":  # declares the whole block, carries half of it
                data += frame(1, 0x4, 1, half, length=len(block))
            else:  # a complete HEADERS frame, END_HEADERS unset, no CONTINUATION follows
                data += frame(1, 0x0, 1, half)
        self.send_raw(data)
        info(sent_bytes=len(data), truncated=kind)
        if self.a.shut_write:
            self.shut_write()
        self.watch_until_closed()

    def extra_headers(self):
        out = []
        for h in self.a.header:
            name, sep, value = h.partition(":")
            if not sep or not name:
                raise Done("usage", 64, error=f"bad --header {h!r}")
            out.append((name.strip().lower(), value.strip()))
        return out

    def connect(self):
        import h2.config
        import h2.connection
        import h2.events
        import h2.exceptions

        a = self.a
        self.handshake()
        if a.send is not None:
            payload = codecs.decode(a.send, "unicode_escape").encode("latin-1")
        elif a.send_file:
            with open(a.send_file, "rb") as f:
                payload = f.read()
        else:
            payload = None  # relay stdin
        c = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, validate_outbound_headers=False, header_encoding=None))
        c.initiate_connection()
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, [(":method", "CONNECT"), (":authority", a.authority)]
                       + self.extra_headers())
        self.send_raw(c.data_to_send())
        status = None
        pending = b""  # bytes for the stream, waiting for flow-control window
        end_pending = False  # END_STREAM after `pending`
        stdin_open = payload is None
        got_reply_end = False
        out = sys.stdout.buffer

        def flush_pending():
            nonlocal pending, end_pending
            while pending:
                n = min(len(pending), c.local_flow_control_window(sid), c.max_outbound_frame_size)
                if n <= 0:
                    break
                c.send_data(sid, pending[:n])
                pending = pending[n:]
            if not pending and end_pending:
                c.end_stream(sid)
                end_pending = False

        while True:
            rlist = [self.sock]
            if status == 200 and stdin_open and not pending:
                rlist.append(sys.stdin.buffer)
            if self.sock.pending() == 0:
                ready, _, _ = select.select(rlist, [], [], self.left())
                if not ready:
                    continue
            else:
                ready = [self.sock]
            if sys.stdin.buffer in ready:
                chunk = os.read(sys.stdin.fileno(), 65536)
                if chunk:
                    pending += chunk
                else:
                    stdin_open = False
                    end_pending = True
                flush_pending()
            if self.sock in ready:
                data = self.recv()
                if not data:
                    if status is None:
                        raise Done("closed", 3, error="server closed before answering the CONNECT")
                    if status == 200 and not got_reply_end:
                        raise Done("closed", 3, error="server closed the tunnel mid-stream")
                    break
                try:
                    events = c.receive_data(data)
                except h2.exceptions.ProtocolError as e:
                    raise Done("protocol-error", 3, error=repr(str(e)))
                for ev in events:
                    if isinstance(ev, h2.events.ResponseReceived):
                        hdrs = {k.decode(): v.decode() for k, v in ev.headers}
                        status = int(hdrs.get(":status", "0"))
                        info(status=status)
                        if status != 200:
                            raise Done("rejected", 1)
                        if payload is not None:
                            pending += payload
                            end_pending = True
                    elif isinstance(ev, h2.events.DataReceived):
                        out.write(ev.data)
                        out.flush()
                        c.acknowledge_received_data(ev.flow_controlled_length, sid)
                    elif isinstance(ev, h2.events.WindowUpdated):
                        pass
                    elif isinstance(ev, h2.events.StreamEnded):
                        got_reply_end = True
                    elif isinstance(ev, h2.events.StreamReset):
                        if status is None:
                            raise Done("closed", 3, error=f"stream reset ({ev.error_code!r})")
                        raise Done("closed", 3, error=f"tunnel reset ({ev.error_code!r})")
                    elif isinstance(ev, h2.events.ConnectionTerminated):
                        code = H2_ERRORS.get(int(ev.error_code), ev.error_code)
                        if status is None:
                            raise Done("closed", 3, error=f"GOAWAY({code}) before an answer")
                        if not got_reply_end:
                            raise Done("closed", 3, error=f"GOAWAY({code}) mid-stream")
                flush_pending()
            if status == 200 and got_reply_end and not stdin_open and not pending \
                    and not end_pending:
                break
            self.send_raw(c.data_to_send())
        c.close_connection()  # GOAWAY(NO_ERROR): a polite goodbye
        try:
            self.sock.sendall(c.data_to_send())
        except OSError:
            pass
        raise Done("tunnel", 0)

    def run(self):
        a = self.a
        if a.raw_instead_of_tls:
            self.raw_instead_of_tls()
        elif a.raw_after_handshake:
            self.raw_after_handshake()
        elif a.truncate:
            self.truncate()
        else:
            self.connect()


def main():
    a = parse_args()
    cl = Client(a)
    try:
        cl.run()
        code, result, kv = 3, "closed", {}
    except Done as d:
        code, result, kv = d.code, d.result, d.kv
    except KeyboardInterrupt:
        code, result, kv = 3, "interrupted", {}
    finally:
        if cl.sock is not None:
            try:
                cl.sock.close()
            except OSError:
                pass
    if kv:
        info(**kv)
    info(result=result)
    return code


if __name__ == "__main__":
    sys.exit(main())
