#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Relayed connections through the real tandem-relay binary (GET /v1/splice).

Usage: test_splice.py PATH-TO-tandem-relay

Pairing and bytes both ways, half-close, the wait and idle timeouts, the
session caps in total and per client, the rate limits (bytes arrive whole;
no speed is asserted), a third connection, a replaced one, malformed
requests, /metrics, a graceful stop with sessions open, and a log that
holds no token. Reuses test_relay.py's Relay and checks; TAP on stdout.
"""

import base64
import hashlib
import os
import re
import signal
import socket
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_relay as tr  # noqa: E402

TIMEOUT = tr.TIMEOUT


def Relay(*args, **kw):
    """A relay without the request rate limit: the tests poll /metrics."""
    if "--rate" not in args:
        args = args + ("--rate", "0")
    return tr.Relay(*args, **kw)


def new_token():
    raw = os.urandom(32)
    return raw, tr.b64(raw)


def splice_request(tok, side, extra_headers=""):
    return (f"GET /v1/splice HTTP/1.1\r\nHost: relay\r\nConnection: Upgrade\r\n"
            f"Upgrade: tandem-splice/1\r\nAuthorization: Bearer {tok}\r\n"
            f"X-Tandem-Splice-Side: {side}\r\n{extra_headers}\r\n").encode()


def dial(r, tok, side, source=None, i=0, data=b""):
    """Sends the upgrade request; returns the socket (the answer is not read)."""
    _, host, port = r.urls[i]
    s = socket.create_connection((host, port), timeout=TIMEOUT,
                                 source_address=(source, 0) if source else None)
    s.sendall(splice_request(tok, side) + data)
    return s


def read_head(s, timeout=TIMEOUT):
    """Reads exactly one reply head, byte by byte (the peer's bytes follow a 101)."""
    buf = b""
    deadline = time.monotonic() + timeout
    while not buf.endswith(b"\r\n\r\n"):
        s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            c = s.recv(1)
        except socket.timeout:
            break
        if not c:
            break
        buf += c
    return buf


def expect_101(t, s, what):
    head = read_head(s)
    ok = t.check(head.startswith(b"HTTP/1.1 101 "), f"{what}: want 101, got {head[:200]!r}")
    if ok:
        status, headers, _ = tr.parse_reply(head)
        t.eq(headers.get("upgrade", "").lower(), "tandem-splice/1", f"{what}: Upgrade header")
        t.check("upgrade" in headers.get("connection", "").lower(), f"{what}: Connection")
    s.settimeout(TIMEOUT)
    return ok


def expect_refusal(t, s, status, code, what, timeout=TIMEOUT):
    raw = tr.read_reply(s, wait_close=False, timeout=timeout)
    return tr.check_error(t, tr.parse_reply(raw), status, code, what), tr.parse_reply(raw)


def recv_exactly(s, n, timeout=TIMEOUT):
    out = bytearray()
    s.settimeout(timeout)
    while len(out) < n:
        c = s.recv(min(1 << 20, n - len(out)))
        if not c:
            break
        out += c
    return bytes(out)


def recv_eof(s, timeout=TIMEOUT):
    """True when the connection ends (EOF or reset) within timeout, any bytes dropped."""
    s.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not s.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


def pair(t, r, tok=None, i=0, source_a=None, source_b=None):
    if tok is None:
        _, tok = new_token()
    a = dial(r, tok, 1, source_a, i)
    wait_for(lambda: metric(r, 'tandem_relay_splice_sessions{state="waiting"}', i) >= 1)
    b = dial(r, tok, 2, source_b, i)
    ok = expect_101(t, b, "second side") & expect_101(t, a, "first side")
    return a, b, ok


def metric(r, name, i=0):
    _, values = tr.metrics(r, i)
    return values.get(name, 0)


def wait_for(cond, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def pump_both_ways(t, a, b, n):
    """n random bytes each way at once; both arrive whole."""
    da, db = os.urandom(n), os.urandom(n)
    got = {}

    def send(s, d):
        s.sendall(d)

    def recv(s, key):
        got[key] = recv_exactly(s, n, timeout=60)

    threads = [threading.Thread(target=send, args=(a, da)), threading.Thread(target=send, args=(b, db)),
               threading.Thread(target=recv, args=(a, "a")), threading.Thread(target=recv, args=(b, "b"))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(90)
    t.eq(len(got.get("b", b"")), n, "bytes a -> b")
    t.check(hashlib.sha256(got.get("b", b"")).digest() == hashlib.sha256(da).digest(), "a -> b intact")
    t.eq(len(got.get("a", b"")), n, "bytes b -> a")
    t.check(hashlib.sha256(got.get("a", b"")).digest() == hashlib.sha256(db).digest(), "b -> a intact")


# ---------------------------------------------------------------- tests

def test_pair_and_copy(t):
    with Relay("--log-level", "debug") as r:
        raw, tok = new_token()
        a, b, ok = pair(t, r, tok)
        if not ok:
            return
        t.eq(metric(r, 'tandem_relay_splice_sessions{state="active"}'), 1, "active session")
        t.eq(metric(r, 'tandem_relay_splice_sessions{state="waiting"}'), 0, "nobody waits")
        t.eq(metric(r, "tandem_relay_splice_sessions_total"), 1, "paired sessions")
        a.sendall(b"ping")
        t.eq(recv_exactly(b, 4), b"ping", "a -> b")
        b.sendall(b"pong")
        t.eq(recv_exactly(a, 4), b"pong", "b -> a")
        pump_both_ways(t, a, b, 8 << 20)
        # half-close passes through: b still talks after a is done sending
        a.shutdown(socket.SHUT_WR)
        b.settimeout(TIMEOUT)
        t.eq(b.recv(10), b"", "a's end reaches b")
        b.sendall(b"late")
        t.eq(recv_exactly(a, 4), b"late", "b -> a after a's end")
        b.shutdown(socket.SHUT_WR)
        t.check(recv_eof(a), "b's end reaches a")
        a.close()
        b.close()
        t.check(wait_for(lambda: metric(r, 'tandem_relay_splice_sessions{state="active"}') == 0),
                "session ended")
        t.eq(metric(r, 'tandem_relay_splice_sessions_ended_total{reason="closed"}'), 1, "closed")
        t.eq(metric(r, "tandem_relay_splice_bytes_total"), 2 * (8 << 20) + 12, "bytes counted")
        t.eq(metric(r, 'tandem_relay_requests_total{status="101"}'), 2, "101s counted")
        r.signal(signal.SIGTERM)
        r.wait()
        log = r.stderr()
        t.check(tok not in log and raw.hex() not in log, "the token is not in the log")
        t.check("GET /v1/splice -> 101" in log, "the splice is logged without its token")


def test_bytes_before_101(t):
    """A side that sends right behind its request (before 101) loses nothing."""
    with Relay() as r:
        _, tok = new_token()
        a = dial(r, tok, 1, data=b"early bytes of a")
        wait_for(lambda: metric(r, 'tandem_relay_splice_sessions{state="waiting"}') >= 1)
        b = dial(r, tok, 2, data=b"early b")
        if not (expect_101(t, b, "b") & expect_101(t, a, "a")):
            return
        t.eq(recv_exactly(b, 16), b"early bytes of a", "a's early bytes reach b")
        t.eq(recv_exactly(a, 7), b"early b", "b's early bytes reach a")
        a.close()
        b.close()


def test_wait_timeout(t):
    with Relay("--splice-wait-timeout", "1") as r:
        _, tok = new_token()
        a = dial(r, tok, 1)
        start = time.monotonic()
        ok, (status, headers, body) = expect_refusal(t, a, 504, "peer_timeout", "lonely side")
        t.check(time.monotonic() - start < TIMEOUT, "the wait ends")
        t.check(b"1 seconds" in body, "the message names the wait")
        a.close()
        t.eq(metric(r, 'tandem_relay_splice_rejections_total{reason="wait_timeout"}'), 1,
             "wait timeout counted")
        t.eq(metric(r, 'tandem_relay_splice_sessions{state="waiting"}'), 0, "nobody waits")
        # the token is free again: a late pair still meets
        a, b, ok = pair(t, r, tok)
        a.close()
        b.close()


def test_waiting_side_hangs_up(t):
    """A waiting side that gives up is dropped; the other side never pairs with it."""
    with Relay() as r:
        _, tok = new_token()
        a = dial(r, tok, 1)
        wait_for(lambda: metric(r, 'tandem_relay_splice_sessions{state="waiting"}') == 1)
        a.close()
        t.check(wait_for(lambda: metric(r, 'tandem_relay_splice_sessions{state="waiting"}') == 0),
                "the hung-up side no longer waits")
        t.eq(metric(r, 'tandem_relay_splice_rejections_total{reason="gone"}'), 1, "counted")
        b = dial(r, tok, 2)
        wait_for(lambda: metric(r, 'tandem_relay_splice_sessions{state="waiting"}') == 1)
        a2 = dial(r, tok, 1)
        t.check(expect_101(t, a2, "a again") & expect_101(t, b, "b"), "the live ones pair")
        a2.sendall(b"alive")
        t.eq(recv_exactly(b, 5), b"alive", "bytes flow")
        a2.close()
        b.close()


def test_idle_timeout(t):
    with Relay("--splice-idle-timeout", "1") as r:
        a, b, ok = pair(t, r)
        if not ok:
            return
        a.sendall(b"x")
        t.eq(recv_exactly(b, 1), b"x", "bytes before the idle time")
        t.check(recv_eof(a, timeout=TIMEOUT) and recv_eof(b, timeout=TIMEOUT),
                "an idle session is closed")
        t.check(wait_for(lambda: metric(r, 'tandem_relay_splice_sessions_ended_total{reason="idle"}') == 1),
                "idle end counted")
        a.close()
        b.close()


def test_outlives_request_timeouts(t):
    """--request-timeout and --request-deadline apply to neither a waiting nor a spliced side."""
    with Relay("--request-timeout", "1", "--request-deadline", "1") as r:
        _, tok = new_token()
        a = dial(r, tok, 1)
        time.sleep(2.5)
        b = dial(r, tok, 2)
        if not (expect_101(t, b, "b") & expect_101(t, a, "a after 2.5 s of waiting")):
            return
        time.sleep(2.5)
        a.sendall(b"still")
        t.eq(recv_exactly(b, 5), b"still", "a spliced session idle for 2.5 s lives on")
        a.close()
        b.close()


def test_per_client_cap(t):
    with Relay("--max-splice-sessions-per-client", "2", listen=("127.0.0.1:0",)) as r:
        socks = [dial(r, new_token()[1], 1, "127.0.0.1") for _ in range(2)]
        wait_for(lambda: metric(r, 'tandem_relay_splice_sessions{state="waiting"}') == 2)
        extra = dial(r, new_token()[1], 1, "127.0.0.1")
        ok, (status, headers, body) = expect_refusal(t, extra, 429, "too_many_sessions",
                                                     "third from one client")
        t.check(int(headers.get("retry-after", "0")) >= 1, "Retry-After")
        extra.close()
        # another client is not affected, and pairs with a waiting one
        _, tok = new_token()
        w = dial(r, tok, 1, "127.0.0.2")
        wait_for(lambda: metric(r, 'tandem_relay_splice_sessions{state="waiting"}') == 3)
        o = dial(r, tok, 2, "127.0.0.3")
        t.check(expect_101(t, o, "other client") and expect_101(t, w, "waiting"), "pairs")
        t.eq(metric(r, 'tandem_relay_splice_rejections_total{reason="per_client"}'), 1,
             "per-client refusal counted")
        t.eq(metric(r, 'tandem_relay_rejections_total{reason="too_many_sessions"}'), 1,
             "counted among all refusals")
        for s in socks + [w, o]:
            s.close()


def test_total_cap(t):
    with Relay("--max-splice-sessions", "2", "--max-splice-sessions-per-client", "0") as r:
        toks = [new_token()[1] for _ in range(3)]
        waiting = [dial(r, toks[0], 1), dial(r, toks[1], 2)]
        wait_for(lambda: metric(r, 'tandem_relay_splice_sessions{state="waiting"}') == 2)
        s = dial(r, toks[2], 1)
        ok, (status, headers, body) = expect_refusal(t, s, 503, "capacity", "a third session")
        t.check(int(headers.get("retry-after", "0")) >= 1, "Retry-After")
        s.close()
        # joining a waiting session needs no new one
        b = dial(r, toks[0], 2)
        t.check(expect_101(t, b, "join") and expect_101(t, waiting[0], "waited"), "pairs when full")
        t.eq(metric(r, 'tandem_relay_splice_rejections_total{reason="capacity"}'), 1, "counted")
        for x in waiting + [b]:
            x.close()
        # sessions that end give their place back
        t.check(wait_for(lambda: metric(r, 'tandem_relay_splice_sessions{state="active"}') == 0
                         and metric(r, 'tandem_relay_splice_sessions{state="waiting"}') == 1),
                "places given back")
        a2, b2, ok = pair(t, r)
        a2.close()
        b2.close()


def test_rate_limits(t):
    # 256 KiB/s per session and 384 KiB/s in all: 1 MiB each way still arrives whole
    with Relay("--splice-rate", str(256 << 10), "--splice-total-rate", str(384 << 10)) as r:
        a, b, ok = pair(t, r)
        c, d, ok2 = pair(t, r)
        if not (ok and ok2):
            return
        th = threading.Thread(target=pump_both_ways, args=(t, c, d, 256 << 10))
        th.start()
        pump_both_ways(t, a, b, 512 << 10)
        th.join(120)
        for s in (a, b, c, d):
            s.close()


def test_third_and_replaced(t):
    with Relay() as r:
        _, tok = new_token()
        a = dial(r, tok, 1)
        wait_for(lambda: metric(r, 'tandem_relay_splice_sessions{state="waiting"}') == 1)
        # the same side again: the newer connection takes the place
        a2 = dial(r, tok, 1)
        expect_refusal(t, a, 409, "replaced", "replaced side")
        a.close()
        b = dial(r, tok, 2)
        if not (expect_101(t, b, "b") & expect_101(t, a2, "a2")):
            return
        for side in (1, 2):
            c = dial(r, tok, side)
            expect_refusal(t, c, 409, "session_busy", f"third connection, side {side}")
            c.close()
        a2.sendall(b"still here")
        t.eq(recv_exactly(b, 10), b"still here", "the pair is unharmed")
        t.eq(metric(r, 'tandem_relay_splice_rejections_total{reason="busy"}'), 2, "busy counted")
        t.eq(metric(r, 'tandem_relay_splice_rejections_total{reason="replaced"}'), 1,
             "replaced counted")
        a2.close()
        b.close()


def test_malformed(t):
    with Relay() as r:
        _, tok = new_token()
        base = {"Host": "relay", "Connection": "Upgrade", "Upgrade": "tandem-splice/1",
                "Authorization": "Bearer " + tok, "X-Tandem-Splice-Side": "1"}

        def raw_req(method="GET", drop=(), **over):
            h = dict(base)
            for k in drop:
                h.pop(k, None)
            h.update({k.replace("_", "-"): v for k, v in over.items()})
            req = f"{method} /v1/splice HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
            return r.raw((req + "\r\n").encode(), wait_close=False)

        reply = tr.parse_reply(raw_req(drop=("Upgrade",)))
        tr.check_error(t, reply, 426, "upgrade_required", "no Upgrade")
        t.eq(reply[1].get("upgrade"), "tandem-splice/1", "426 names the protocol")
        tr.check_error(t, tr.parse_reply(raw_req(drop=("Connection",))), 426, "upgrade_required",
                       "no Connection: Upgrade")
        tr.check_error(t, tr.parse_reply(raw_req(Upgrade="websocket")), 426, "upgrade_required",
                       "another protocol")
        tr.check_error(t, tr.parse_reply(raw_req(drop=("Authorization",))), 401, "unauthorized",
                       "no token")
        tr.check_error(t, tr.parse_reply(raw_req(Authorization="Bearer abc")), 401,
                       "unauthorized", "short token")
        tr.check_error(t, tr.parse_reply(raw_req(Authorization="Bearer " + tok + "A")), 401,
                       "unauthorized", "long token")
        tr.check_error(t, tr.parse_reply(raw_req(drop=("X-Tandem-Splice-Side",))), 400,
                       "invalid_side", "no side")
        tr.check_error(t, tr.parse_reply(raw_req(X_Tandem_Splice_Side="0")), 400,
                       "invalid_side", "side 0")
        reply = tr.parse_reply(raw_req(method="POST"))
        tr.check_error(t, reply, 405, "method_not_allowed", "POST")
        t.eq(reply[1].get("allow"), "GET", "Allow")
        reply = tr.parse_reply(r.raw(splice_request(tok, 1, "Content-Length: 3\r\n") + b"abc",
                                     wait_close=False))
        tr.check_error(t, reply, 400, "unexpected_body", "a body")
        reply = tr.parse_reply(r.raw(
            splice_request(tok, 1, "X-Tandem-Splice-Side: 2\r\n"), wait_close=False))
        tr.check_error(t, reply, 400, "duplicate_header", "two sides")
        # HTTP/1.0 cannot upgrade
        reply = tr.parse_reply(r.raw(splice_request(tok, 1).replace(b"HTTP/1.1", b"HTTP/1.0"),
                                     wait_close=False))
        t.check(reply[0] != 101 and reply[0] >= 400, f"HTTP/1.0 refused: {reply[0]}")
        t.eq(metric(r, 'tandem_relay_splice_sessions{state="waiting"}'), 0, "none of them waits")
        status, _, _ = r.request("GET", "/healthz")
        t.eq(status, 200, "the relay is fine")


def make_cert(d):
    """A self-signed certificate for [::1] in d: (cert, key), or a reason to skip."""
    import shutil
    import subprocess
    openssl = shutil.which("openssl")
    if not openssl:
        return None, "openssl is not installed to make a test certificate"
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    p = subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                        "/CN=tandem-relay test", "-addext", "subjectAltName=IP:::1",
                        "-keyout", key, "-out", cert], capture_output=True, timeout=30)
    if p.returncode != 0:
        return None, "openssl could not make a test certificate"
    os.chmod(key, 0o600)
    return (cert, key), None


def tls_dial(r, ctx, tok, side, data=b""):
    """The upgrade request over TLS (and data right behind it, in the same record)."""
    raw = socket.create_connection(("::1", r.port), timeout=TIMEOUT)
    s = ctx.wrap_socket(raw, server_hostname="::1")
    s.sendall(splice_request(tok, side) + data)
    return s


def pump_nonblocking(t, a, b, n, timeout=180):
    """n random bytes each way at once from one thread (an SSL socket must not
    be read and written by two threads); both arrive whole and in order."""
    import select
    import ssl
    want = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError)
    data = {a: os.urandom(n), b: os.urandom(n)}
    sent = {a: 0, b: 0}
    got = {a: 0, b: 0}
    hashes = {a: hashlib.sha256(), b: hashlib.sha256()}
    eof = {a: False, b: False}
    chunk = 16384
    for s in (a, b):
        s.setblocking(False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (min(sent.values()) < n or min(got.values()) < n):
        progress = False
        for s in (a, b):
            if sent[s] < n:
                try:
                    k = s.send(data[s][sent[s]:sent[s] + chunk])
                    sent[s] += k
                    progress = progress or k > 0
                except want:
                    pass
            while got[s] < n and not eof[s]:
                try:
                    c = s.recv(65536)
                except want:
                    break
                if not c:
                    eof[s] = True
                    break
                hashes[s].update(c)
                got[s] += len(c)
                progress = True
        if not progress:
            pend = [s for s in (a, b) if getattr(s, "pending", lambda: 0)()]
            if not pend:
                select.select([a, b], [s for s in (a, b) if sent[s] < n], [], 0.05)
    for s in (a, b):
        s.setblocking(True)
        s.settimeout(TIMEOUT)
    t.eq((sent[a], sent[b]), (n, n), "everything sent")
    t.eq(got[b], n, "bytes a -> b")
    t.check(hashes[b].digest() == hashlib.sha256(data[a]).digest(), "a -> b intact")
    t.eq(got[a], n, "bytes b -> a")
    t.check(hashes[a].digest() == hashlib.sha256(data[b]).digest(), "b -> a intact")


def eof_after_writes(s, timeout=TIMEOUT):
    """Writes a byte every 0.2 s until the connection ends (True) or timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            s.sendall(b"x")
        except OSError:
            return True
        if recv_eof(s, timeout=0.2):
            return True
    return False


def test_https_splice(t):
    """A relay serving HTTPS itself splices: tens of MiB both ways at once, every
    byte checked; bytes sent behind the request; the end of one side ends the
    session; the metrics count it. Whatever the libmicrohttpd version: the
    relay's TLS front (docs/RELAY.md §6) hands microhttpd plain HTTP."""
    import ssl
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        pair_files, skip = make_cert(d)
        if skip:
            return skip
        cert, key = pair_files
        with Relay("--tls-cert", cert, "--tls-key", key, "--log-level", "debug") as r:
            ctx = ssl.create_default_context(cafile=cert)
            tok = new_token()[1]
            a = tls_dial(r, ctx, tok, 1, data=b"early bytes")
            t.check(wait_for(lambda: metric_tls(
                r, ctx, 'tandem_relay_splice_sessions{state="waiting"}') == 1),
                "the first side waits (not a 501: the relay terminates TLS itself)")
            b = tls_dial(r, ctx, tok, 2)
            if not (expect_101(t, b, "second side") & expect_101(t, a, "first side")):
                return None
            t.eq(recv_exactly(b, 11), b"early bytes", "bytes behind the request come first")
            t.eq(metric_tls(r, ctx, 'tandem_relay_splice_sessions{state="active"}'), 1,
                 "active session")
            pump_nonblocking(t, a, b, 48 << 20)
            a.sendall(b"ping")
            t.eq(recv_exactly(b, 4), b"ping", "a -> b after the bulk")
            b.sendall(b"pong")
            t.eq(recv_exactly(a, 4), b"pong", "b -> a after the bulk")
            # a's close_notify is a half-close: b sees the end, and can still send to a
            a.setblocking(False)
            try:
                a.unwrap()
            except ssl.SSLWantReadError:
                pass
            a.setblocking(True)
            a.settimeout(TIMEOUT)
            t.check(recv_eof(b), "b sees a's close_notify as the end of a's bytes")
            b.sendall(b"after the half-close")
            t.eq(recv_exactly(a, 20), b"after the half-close", "b -> a after a's half-close")
            a.close()
            # microhttpd passes a TLS client's hang-up on once the other side writes
            t.check(eof_after_writes(b), "b sees the end when a hangs up")
            b.close()
            t.check(wait_for(lambda: metric_tls(
                r, ctx, 'tandem_relay_splice_sessions{state="active"}') == 0),
                "the session ended")
            t.check(metric_tls(r, ctx, "tandem_relay_splice_bytes_total") >= 2 * (48 << 20),
                    "bytes counted")
    return None


def metric_tls(r, ctx, name):
    import http.client
    c = http.client.HTTPSConnection("::1", r.port, context=ctx, timeout=TIMEOUT)
    c.request("GET", "/metrics")
    data = c.getresponse().read().decode()
    c.close()
    for line in data.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_stop_with_sessions(t):
    r = Relay()
    with r:
        a, b, ok = pair(t, r)
        waiting = dial(r, new_token()[1], 2)
        wait_for(lambda: metric(r, 'tandem_relay_splice_sessions{state="waiting"}') == 1)
        r.signal(signal.SIGTERM)
        expect_refusal(t, waiting, 503, "stopping", "a waiting side at the stop")
        t.check(recv_eof(a) and recv_eof(b), "spliced sessions are closed at the stop")
        t.eq(r.wait(), 0, "exit status")
        for s in (a, b, waiting):
            s.close()


TESTS = [
    test_pair_and_copy,
    test_bytes_before_101,
    test_wait_timeout,
    test_waiting_side_hangs_up,
    test_idle_timeout,
    test_outlives_request_timeouts,
    test_per_client_cap,
    test_total_cap,
    test_rate_limits,
    test_third_and_replaced,
    test_malformed,
    test_https_splice,
    test_stop_with_sessions,
]


def main():
    if len(sys.argv) < 2:
        print("usage: test_splice.py PATH-TO-tandem-relay", file=sys.stderr)
        return 2
    tr.RELAY = os.path.abspath(sys.argv[1])
    only = [n for n in os.environ.get("RELAY_TESTS", "").split(",") if n]
    tests = [f for f in TESTS if not only or f.__name__[len("test_"):] in only]
    print(f"1..{len(tests)}")
    failed = 0
    for n, test in enumerate(tests, 1):
        name = test.__name__[len("test_"):]
        t = tr.CURRENT = tr.Checker()
        start = time.monotonic()
        skip = None
        try:
            skip = test(t)
        except Exception:
            tb = traceback.format_exc().splitlines()
            t.failures.append("exception:\n" + "\n".join(tb[-8:]))
        took = time.monotonic() - start
        if skip and not t.failures:
            print(f"ok {n} - {name} # SKIP {skip}")
        elif t.failures:
            print(f"not ok {n} - {name}")
            for f in t.failures:
                for line in f.splitlines():
                    print(f"#   {line}")
            failed += 1
        else:
            print(f"ok {n} - {name} ({took:.1f} s)")
        sys.stdout.flush()
    print(f"# {len(tests) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
