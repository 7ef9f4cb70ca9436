#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A TLS front for test-splice-chan: terminates TLS on [::1] and, for
GET /v1/splice, passes the connection to a plain-http tandem-relay (as a
TLS proxy that passes Upgrade would), or misbehaves when the request's path
prefix asks for it:

  /garbage/v1/splice      answers bytes that are not HTTP
  /short/v1/splice        half a 101 head, then closes
  /after101/v1/splice     a good 101 head, then bytes that are not the channel
  /midstream/v1/splice    a good 101 head, 1000 bytes, then a TCP close
                          without a TLS close_notify

Usage: tls_proxy.py CERT KEY UPSTREAM-HOST UPSTREAM-PORT
Prints "listening on https://[::1]:PORT" and serves until killed.
"""

import os
import select
import socket
import ssl
import sys
import threading

WANT = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError)
HEAD_101 = (b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
            b"Upgrade: tandem-splice/1\r\n\r\n")


def read_head(s):
    buf = b""
    while b"\r\n\r\n" not in buf and len(buf) < 16384:
        c = s.recv(4096)
        if not c:
            break
        buf += c
    return buf


def forward(tls, up, first):
    """Copies both ways from one thread (an SSL socket is not for two)."""
    tls.setblocking(False)
    up.setblocking(False)
    to_up, to_tls = bytearray(first), bytearray()
    tls_eof = up_eof = up_shut = False
    while True:
        moved = False
        if not tls_eof and len(to_up) < 65536:
            try:
                c = tls.recv(65536)
                if c:
                    to_up += c
                else:
                    tls_eof = True
                moved = True
            except WANT:
                pass
            except (OSError, ssl.SSLError):
                tls_eof = True
                moved = True
        if to_up:
            try:
                n = up.send(to_up)
                del to_up[:n]
                moved = True
            except WANT:
                pass
            except OSError:
                return
        if tls_eof and not to_up and not up_shut:
            try:
                up.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            up_shut = True
        if not up_eof and len(to_tls) < 65536:
            try:
                c = up.recv(65536)
                if c:
                    to_tls += c
                else:
                    up_eof = True
                moved = True
            except WANT:
                pass
            except OSError:
                up_eof = True
        if to_tls:
            try:
                n = tls.send(to_tls[:16384])
                del to_tls[:n]
                moved = True
            except WANT:
                pass
            except (OSError, ssl.SSLError):
                return
        if up_eof and not to_tls:
            return
        if not moved and not tls.pending():
            rd = [s for s, on in ((tls, not tls_eof), (up, not up_eof)) if on]
            wr = [s for s, on in ((tls, bool(to_tls)), (up, bool(to_up))) if on]
            select.select(rd, wr, [], 1.0)


def serve(ctx, raw, upstream):
    try:
        tls = ctx.wrap_socket(raw, server_side=True)
    except (OSError, ssl.SSLError):
        raw.close()
        return
    try:
        head = read_head(tls)
        line = head.split(b"\r\n", 1)[0]
        if line.startswith(b"GET /garbage/"):
            tls.sendall(b"\x00\xffSSH-2.0-not-a-relay\r\n" * 8)
        elif line.startswith(b"GET /short/"):
            tls.sendall(HEAD_101[:20])
        elif line.startswith(b"GET /after101/"):
            tls.sendall(HEAD_101 + os.urandom(4096))
            tls.settimeout(10)
            tls.recv(1)
        elif line.startswith(b"GET /midstream/"):
            tls.sendall(HEAD_101 + b"m" * 1000)
            raw.shutdown(socket.SHUT_RDWR)  # no close_notify
        else:
            up = socket.create_connection(upstream)
            i = head.index(b"\r\n\r\n") + 4
            up.sendall(head[:i])
            forward(tls, up, head[i:])
            up.close()
    except (OSError, ssl.SSLError, ValueError):
        pass
    finally:
        tls.close()


def main():
    cert, key, host, port = sys.argv[1:5]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("::1", 0))
    ls.listen(64)
    print(f"listening on https://[::1]:{ls.getsockname()[1]}", flush=True)
    while True:
        raw, _ = ls.accept()
        threading.Thread(target=serve, args=(ctx, raw, (host, int(port))), daemon=True).start()


if __name__ == "__main__":
    main()
