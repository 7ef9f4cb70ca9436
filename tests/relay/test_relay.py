#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The real tandem-relay binary over loopback, endpoint by endpoint.

Usage: test_relay.py PATH-TO-tandem-relay

Each test starts its own relay on [::1] (and 127.0.0.1 where it needs IPv4)
with a port the OS picks, reads the port from the relay's stdout, and kills
it at the end. Python standard library only; TAP on stdout; exit 1 on any
failure.
"""

import base64
import fcntl
import http.client
import inspect
import json
import os
import re
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import traceback

TIMEOUT = 10          # seconds for any single network or process step
RELAY = None


def b64(raw):
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def new_token():
    raw = os.urandom(32)
    return raw, b64(raw)


SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                     "ThreadSanitizer", "runtime error:")
CURRENT = None        # the Checker of the running test


class Failure(Exception):
    pass


def fail(what):
    if CURRENT is not None:
        CURRENT.failures.append(what)
    else:
        print(what)


class Checker:
    """Collects failed checks of one test, with the line that failed."""

    def __init__(self):
        self.failures = []

    def check(self, cond, what=""):
        if not cond:
            line = inspect.stack()[1].lineno
            self.failures.append(f"line {line}: {what}")
        return bool(cond)

    def eq(self, got, want, what=""):
        if got != want:
            line = inspect.stack()[1].lineno
            self.failures.append(f"line {line}: {what}: got {got!r}, want {want!r}")
            return False
        return True


class Relay:
    """One tandem-relay process; use as a context manager."""

    def __init__(self, *args, listen=("[::1]:0",)):
        argv = [RELAY]
        for addr in listen:
            argv += ["--listen", addr]
        argv += list(args)
        self.stderr_file = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.stderr_file)
        self.urls = []
        out = b""
        deadline = time.monotonic() + TIMEOUT
        while out.count(b"\n") < len(listen):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if not ready:
                break
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                break
            out += chunk
        for line in out.decode(errors="replace").splitlines():
            m = re.fullmatch(r"listening on (https?)://(\[[0-9a-f:.]+\]|[0-9.]+):(\d+)", line)
            if not m:
                self.kill()
                raise Failure(f"unexpected relay output {line!r}; stderr: {self.stderr()}")
            self.urls.append((m.group(1), m.group(2).strip("[]"), int(m.group(3))))
        if len(self.urls) != len(listen):
            self.kill()
            raise Failure(f"relay did not start: stdout {out!r}, stderr: {self.stderr()}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        # A graceful stop, so that sanitizers get to report leaks at exit.
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            status = self.wait()
            if status != 0:
                fail(f"relay exit status {status} after SIGTERM at the end of the test")
        self.kill()
        log = self.stderr()
        self.stderr_file.close()
        if any(m in log for m in SANITIZER_MARKERS):
            fail("sanitizer report in the relay's log:\n" + log[-4000:])
        for line in log.splitlines():
            if re.match(r"tandem-relay\[\d+\]: error: ", line):
                fail(f"unexpected error in the relay's log: {line}")

    @property
    def host(self):
        return self.urls[0][1]

    @property
    def port(self):
        return self.urls[0][2]

    def conn(self, i=0):
        _, host, port = self.urls[i]
        # with an explicit port, http.client takes the host as is (no brackets)
        return http.client.HTTPConnection(host, port, timeout=TIMEOUT)

    def request(self, method, path, body=None, headers=None, i=0):
        c = self.conn(i)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def raw(self, data, i=0, wait_close=True, timeout=TIMEOUT):
        """Sends bytes on a fresh connection and reads the reply."""
        _, host, port = self.urls[i]
        s = socket.create_connection((host, port), timeout=TIMEOUT)
        try:
            s.sendall(data)
            return read_reply(s, wait_close, timeout)
        finally:
            s.close()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=TIMEOUT):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)
        if self.proc.stdout:
            self.proc.stdout.close()

    def stderr(self):
        self.stderr_file.seek(0)
        return self.stderr_file.read().decode(errors="replace")


def read_reply(s, wait_close=True, timeout=TIMEOUT):
    """Reads one HTTP reply (headers and Content-Length body) from socket s,
    and with wait_close until the peer closes; at most timeout seconds."""
    buf = b""
    deadline = time.monotonic() + timeout
    while True:
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0:
            m = re.search(rb"(?im)^content-length:\s*(\d+)", buf[:head_end])
            need = head_end + 4 + (int(m.group(1)) if m else 0)
            if len(buf) >= need and not wait_close:
                return buf
        s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            return buf
        if not chunk:
            return buf
        buf += chunk


def parse_reply(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def auth(token64):
    return {"Authorization": "Bearer " + token64}


def post_headers(token64, secret64=None):
    h = auth(token64)
    h["Content-Type"] = "application/json"
    if secret64 is not None:
        h["X-Tandem-Write-Secret"] = secret64
    return h


def record_body(blob=b"\x01\x02\x03", ttl=None):
    obj = {"blob": b64(blob)}
    if ttl is not None:
        obj["ttl"] = ttl
    return json.dumps(obj)


def check_error(t, reply, status, code=None, what=""):
    """The reply has this status and a JSON error body of the documented shape."""
    got_status, headers, data = reply
    ok = t.eq(got_status, status, f"{what} status")
    ok &= t.eq(headers.get("content-type"), "application/json", f"{what} content type")
    ok &= t.eq(headers.get("cache-control"), "no-store", f"{what} cache-control")
    try:
        obj = json.loads(data)
    except ValueError:
        t.check(False, f"{what} error body is not JSON: {data[:200]!r}")
        return False
    ok &= t.check(isinstance(obj, dict) and set(obj) == {"error", "message"},
                  f"{what} error body keys: {obj!r}")
    if isinstance(obj, dict):
        msg = obj.get("message", "")
        ok &= t.check(isinstance(obj.get("error"), str) and re.fullmatch(r"[a-z_]+", obj["error"]),
                      f"{what} error code {obj.get('error')!r}")
        ok &= t.check(isinstance(msg, str) and len(msg) > 20 and "\n" not in msg,
                      f"{what} message is a sentence: {msg!r}")
        if code:
            ok &= t.eq(obj.get("error"), code, f"{what} error code")
    return ok


def check_json(t, reply, status, what=""):
    got_status, headers, data = reply
    t.eq(got_status, status, f"{what} status")
    t.eq(headers.get("content-type"), "application/json", f"{what} content type")
    t.eq(headers.get("cache-control"), "no-store", f"{what} cache-control")
    try:
        return json.loads(data)
    except ValueError:
        t.check(False, f"{what} body is not JSON: {data[:200]!r}")
        return None


def metrics(r, i=0):
    status, headers, data = r.request("GET", "/metrics", i=i)
    if status != 200:
        raise Failure(f"/metrics answered {status}")
    values = {}
    for line in data.decode().splitlines():
        if line.startswith("#") or not line:
            continue
        name, _, value = line.rpartition(" ")
        values[name] = float(value)
    return headers, values


# ---------------------------------------------------------------- tests

def test_store_fetch_replace_delete(t):
    with Relay() as r:
        _, tok = new_token()
        sec = b64(os.urandom(32))
        check_error(t, r.request("GET", "/v1/records", headers=auth(tok)), 404, "not_found",
                    "GET before POST")
        obj = check_json(t, r.request("POST", "/v1/records", record_body(b"hello", 60),
                                      post_headers(tok, sec)), 201, "first POST")
        t.eq(obj, {"expires_in": 60}, "first POST body")
        obj = check_json(t, r.request("GET", "/v1/records", headers=auth(tok)), 200, "GET")
        t.eq(obj and obj.get("blob"), b64(b"hello"), "blob round trip")
        t.check(obj and obj.get("expires_in") in (59, 60), f"expires_in {obj}")
        obj = check_json(t, r.request("POST", "/v1/records", record_body(b"world", 30),
                                      post_headers(tok, sec)), 200, "replacing POST")
        t.eq(obj, {"expires_in": 30}, "replacing POST body")
        obj = check_json(t, r.request("GET", "/v1/records", headers=auth(tok)), 200, "GET 2")
        t.eq(obj and obj.get("blob"), b64(b"world"), "replaced blob")
        # several requests on one keep-alive connection
        c = r.conn()
        for _ in range(3):
            c.request("GET", "/v1/records", headers=auth(tok))
            resp = c.getresponse()
            resp.read()
            t.eq(resp.status, 200, "keep-alive GET")
        c.request("HEAD", "/v1/records", headers=auth(tok))
        resp = c.getresponse()
        t.eq((resp.status, resp.read()), (200, b""), "HEAD")
        c.close()
        status, headers, data = r.request("DELETE", "/v1/records",
                                          headers=post_headers(tok, sec))
        t.eq((status, data), (204, b""), "DELETE")
        t.eq(headers.get("cache-control"), "no-store", "DELETE cache-control")
        check_error(t, r.request("GET", "/v1/records", headers=auth(tok)), 404, "not_found",
                    "GET after DELETE")
        check_error(t, r.request("DELETE", "/v1/records", headers=post_headers(tok, sec)), 404,
                    "not_found", "DELETE again")
        # a blob of exactly 4096 bytes is the largest record
        big = os.urandom(4096)
        check_json(t, r.request("POST", "/v1/records", record_body(big),
                                post_headers(tok, sec)), 201, "4096-byte blob")
        obj = check_json(t, r.request("GET", "/v1/records", headers=auth(tok)), 200, "GET big")
        t.eq(obj and obj.get("blob"), b64(big), "big blob round trip")
        t.eq(obj and obj.get("expires_in"), 600, "default TTL")


def test_owner_only(t):
    with Relay() as r:
        _, tok = new_token()
        sec, other = b64(os.urandom(32)), b64(os.urandom(32))
        check_error(t, r.request("POST", "/v1/records", record_body(), post_headers(tok)), 400,
                    "missing_write_secret", "new record without secret")
        check_error(t, r.request("POST", "/v1/records", record_body(),
                                 post_headers(tok, "c2hvcnQ")), 400, "invalid_write_secret",
                    "malformed secret")
        check_json(t, r.request("POST", "/v1/records", record_body(b"mine"),
                                post_headers(tok, sec)), 201, "owner POST")
        check_error(t, r.request("DELETE", "/v1/records", headers=post_headers(tok, other)), 403,
                    "forbidden", "DELETE by a writer without a record")
        # another writer adds a record of its own next to the owner's (no squatting)
        check_json(t, r.request("POST", "/v1/records", record_body(b"evil"),
                                post_headers(tok, other)), 201, "second writer POST")
        check_json(t, r.request("POST", "/v1/records", record_body(b"evil2"),
                                post_headers(tok, other)), 200, "second writer replaces its own")
        obj = check_json(t, r.request("GET", "/v1/records", headers=auth(tok)), 200, "GET both")
        recs = obj.get("records") if obj else None
        t.eq([x.get("blob") for x in recs] if recs else None, [b64(b"evil2"), b64(b"mine")],
             "every writer's record, newest first")
        t.eq(obj and obj.get("blob"), b64(b"evil2"), "blob is the newest, for old clients")
        check_error(t, r.request("POST", "/v1/records", record_body(b"evil"),
                                 post_headers(tok)), 403, "forbidden", "missing secret POST")
        check_error(t, r.request("DELETE", "/v1/records", headers=auth(tok)), 403, "forbidden",
                    "missing secret DELETE")
        t.eq(r.request("DELETE", "/v1/records", headers=post_headers(tok, other))[0], 204,
             "second writer deletes its own")
        check_error(t, r.request("DELETE", "/v1/records", headers=post_headers(tok, other)), 403,
                    "forbidden", "wrong secret DELETE")
        obj = check_json(t, r.request("GET", "/v1/records", headers=auth(tok)), 200, "GET")
        t.eq(obj and obj.get("blob"), b64(b"mine"), "record intact")
        t.eq(obj and len(obj.get("records", [])), 1, "one record left")
        # duplicate Authorization headers are refused, not guessed at
        c = r.conn()
        c.putrequest("GET", "/v1/records")
        c.putheader("Authorization", "Bearer " + tok)
        c.putheader("Authorization", "Bearer " + new_token()[1])
        c.endheaders()
        resp = c.getresponse()
        check_error(t, (resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()),
                    400, "duplicate_header", "duplicate Authorization")
        c.close()


def test_bearer(t):
    with Relay() as r:
        sec = b64(os.urandom(32))
        for method, body in (("GET", None), ("POST", record_body()), ("DELETE", None)):
            reply = r.request(method, "/v1/records", body,
                              {"X-Tandem-Write-Secret": sec} if body else {})
            check_error(t, reply, 401, "unauthorized", f"{method} without Authorization")
            t.check(reply[1].get("www-authenticate", "").startswith("Bearer"),
                    f"{method} 401 has WWW-Authenticate")
        zero = b64(bytes(32))
        bad = [
            "Basic dXNlcjpwYXNz",
            "Bearer",
            "Bearer" + zero,
            "Bearer " + zero[:-1],
            "Bearer " + zero + "A",
            "Bearer " + zero[:-1] + "B",          # non-zero padding bits
            "Bearer " + zero + "=",
            "Bearer " + zero[:-1] + "+",
            "Bearer " + b64(bytes(33)),
            "Bearer " + b64(bytes(31)),
            "Bearer " + zero + " extra",
            "Token " + zero,
        ]
        for value in bad:
            check_error(t, r.request("GET", "/v1/records", headers={"Authorization": value}),
                        401, "unauthorized", f"Authorization {value!r}")
        # the scheme is case-insensitive; an all-zero token is still a token
        check_error(t, r.request("GET", "/v1/records", headers={"Authorization": "bearer " + zero}),
                    404, "not_found", "lower-case scheme")


def test_bad_bodies(t):
    with Relay("--max-ttl", "100", "--default-ttl", "50") as r:
        _, tok = new_token()
        sec = b64(os.urandom(32))
        h = post_headers(tok, sec)
        cases = [
            (b"", "invalid_json"),
            (b"not json", "invalid_json"),
            (b"[1, 2]", "invalid_json"),
            (b'"AQID"', "invalid_json"),
            (b'{"blob":"AQID","blob":"AQID"}', "invalid_json"),
            (b'{"blob":"AQ\\u0000"}', "invalid_json"),
            (b'{"blob":"AQID"', "invalid_json"),
            (b'\xff\xfe{"blob":"AQID"}', "invalid_json"),
            (b"[" * 3000 + b"]" * 3000, "invalid_json"),
            (b"{}", "invalid_blob"),
            (b'{"ttl":5}', "invalid_blob"),
            (b'{"blob":5}', "invalid_blob"),
            (b'{"blob":["AQID"]}', "invalid_blob"),
            (b'{"blob":""}', "invalid_blob"),
            (b'{"blob":"a+b/"}', "invalid_blob"),
            (b'{"blob":"AQ=="}', "invalid_blob"),
            (b'{"blob":"A"}', "invalid_blob"),
            (b'{"blob":"AQ ID"}', "invalid_blob"),
            (json.dumps({"blob": b64(bytes(4097))}).encode(), "invalid_blob"),
            (b'{"blob":"AQID","ttl":0}', "invalid_ttl"),
            (b'{"blob":"AQID","ttl":-1}', "invalid_ttl"),
            (b'{"blob":"AQID","ttl":101}', "invalid_ttl"),
            (b'{"blob":"AQID","ttl":"60"}', "invalid_ttl"),
            (b'{"blob":"AQID","ttl":1.5}', "invalid_ttl"),
            (b'{"blob":"AQID","ttl":null}', "invalid_ttl"),
            (b'{"blob":"AQID","ttl":true}', "invalid_ttl"),
            (b'{"blob":"AQID","owner":"me"}', "unknown_field"),
        ]
        for body, code in cases:
            check_error(t, r.request("POST", "/v1/records", body, h), 400, code,
                        f"body {body[:60]!r}")
        status, _, data = r.request("POST", "/v1/records", b'{"blob":"AQID","ttl":101}', h)
        t.check(b"from 1 to 100" in data, f"ttl message names the range: {data!r}")
        # nothing was stored by any of them
        check_error(t, r.request("GET", "/v1/records", headers=auth(tok)), 404, "not_found",
                    "nothing stored")
        obj = check_json(t, r.request("POST", "/v1/records", record_body(), h), 201, "default ttl")
        t.eq(obj, {"expires_in": 50}, "--default-ttl")
        obj = check_json(t, r.request("POST", "/v1/records", record_body(ttl=100), h), 200,
                         "max ttl")
        t.eq(obj, {"expires_in": 100}, "ttl at the maximum")


def test_too_large(t):
    with Relay("--max-body", "1024") as r:
        _, tok = new_token()
        sec = b64(os.urandom(32))
        # Content-Length above the cap: answered from the headers alone,
        # while the client has not sent a single body byte.
        head = (f"POST /v1/records HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer {tok}\r\n"
                f"X-Tandem-Write-Secret: {sec}\r\nContent-Type: application/json\r\n"
                f"Content-Length: 1000000\r\n\r\n").encode()
        _, host, port = r.urls[0]
        s = socket.create_connection((host, port), timeout=TIMEOUT)
        s.sendall(head)
        reply = parse_reply(read_reply(s, wait_close=False))
        s.close()
        check_error(t, reply, 413, "too_large", "Content-Length 1000000")
        t.check(b"1024" in reply[2], "413 message names the limit")
        # the same with Expect: 100-continue: no 100, a 413 at once
        raw = r.raw(head.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n"),
                    wait_close=False)
        t.check(raw.startswith(b"HTTP/1.1 413"), f"413 instead of 100 Continue: {raw[:40]!r}")
        # a body exactly at the cap is fine (padded with JSON whitespace)
        body = record_body().encode()
        body = body[:-1] + b" " * (1024 - len(body)) + b"}"
        t.eq(len(body), 1024, "padded body length")
        check_json(t, r.request("POST", "/v1/records", body, post_headers(tok, sec)), 201,
                   "body at the cap")
        check_error(t, r.request("POST", "/v1/records", body + b" ", post_headers(tok, sec)), 413,
                    "too_large", "body one byte over the cap")
        # chunked, no Content-Length: counted while reading, never buffered
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in [b" " * 700] * 3) + b"0\r\n\r\n"
        raw = r.raw((f"POST /v1/records HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer {tok}\r\n"
                     f"X-Tandem-Write-Secret: {sec}\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
                    + chunks, wait_close=False)
        check_error(t, parse_reply(raw), 413, "too_large", "chunked body over the cap")
        chunks = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        raw = r.raw((f"POST /v1/records HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer {tok}\r\n"
                     f"X-Tandem-Write-Secret: {sec}\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
                    + chunks, wait_close=False)
        check_json(t, parse_reply(raw), 200, "chunked body at the cap")
        # a client streaming far past the cap is cut off; the relay stays up
        _, host, port = r.urls[0]
        s = socket.create_connection((host, port), timeout=TIMEOUT)
        try:
            s.sendall((f"POST /v1/records HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer {tok}"
                       f"\r\nTransfer-Encoding: chunked\r\n\r\n").encode())
            for _ in range(64):
                s.sendall(b"1000\r\n" + b" " * 4096 + b"\r\n")
        except OSError:
            pass        # the relay hung up: that is the point
        s.close()
        status, _, _ = r.request("GET", "/healthz")
        t.eq(status, 200, "alive after an endless upload")
        _, m = metrics(r)
        t.check(m.get('tandem_relay_rejections_total{reason="too_large"}', 0) >= 4,
                "too_large rejections counted")


def test_rate_limit(t):
    with Relay("--rate", "5", listen=("[::1]:0", "127.0.0.1:0")) as r:
        _, tok = new_token()
        for i in range(5):
            check_error(t, r.request("GET", "/v1/records", headers=auth(tok)), 404, "not_found",
                        f"request {i + 1} of the burst")
        reply = r.request("GET", "/v1/records", headers=auth(tok))
        check_error(t, reply, 429, "rate_limited", "request over the rate")
        ra = reply[1].get("retry-after", "")
        t.check(ra.isdigit() and 1 <= int(ra) <= 12, f"Retry-After {ra!r} (12 s per request)")
        # an over-the-rate client gets 429 before its body is read
        head = (f"POST /v1/records HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer {tok}\r\n"
                f"Content-Length: 100\r\n\r\n").encode()
        check_error(t, parse_reply(r.raw(head, wait_close=False)), 429, "rate_limited",
                    "429 from the headers alone")
        # /healthz is never limited
        t.eq(r.request("GET", "/healthz")[0], 200, "/healthz while limited")
        # another client (IPv4 loopback) is not affected, and sees the counters
        _, m = metrics(r, i=1)
        t.check(m.get('tandem_relay_rejections_total{reason="rate_limited"}', 0) >= 2,
                "rate_limited rejections counted")
        t.check(m.get('tandem_relay_requests_total{status="429"}', 0) >= 2, "429s counted")


def test_capacity(t):
    with Relay("--max-records", "2") as r:
        toks = [new_token()[1] for _ in range(3)]
        sec = b64(os.urandom(32))
        for tok in toks[:2]:
            check_json(t, r.request("POST", "/v1/records", record_body(ttl=30),
                                    post_headers(tok, sec)), 201, "fill")
        reply = r.request("POST", "/v1/records", record_body(ttl=30), post_headers(toks[2], sec))
        check_error(t, reply, 503, "capacity", "full")
        ra = reply[1].get("retry-after", "")
        t.check(ra.isdigit() and 1 <= int(ra) <= 30, f"Retry-After {ra!r} until the first expiry")
        # replacing an existing record works when full
        check_json(t, r.request("POST", "/v1/records", record_body(ttl=30),
                                post_headers(toks[0], sec)), 200, "replace when full")
        t.eq(r.request("DELETE", "/v1/records", headers=post_headers(toks[1], sec))[0], 204,
             "make room")
        check_json(t, r.request("POST", "/v1/records", record_body(ttl=30),
                                post_headers(toks[2], sec)), 201, "room again")
        _, m = metrics(r)
        t.eq(m.get('tandem_relay_rejections_total{reason="capacity"}'), 1.0, "capacity counted")
        t.eq(m.get("tandem_relay_records"), 2.0, "records gauge")


def test_expiry(t):
    with Relay("--max-records", "1") as r:
        _, tok = new_token()
        sec = b64(os.urandom(32))
        check_json(t, r.request("POST", "/v1/records", record_body(ttl=1),
                                post_headers(tok, sec)), 201, "ttl 1")
        gone = False
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            status = r.request("GET", "/v1/records", headers=auth(tok))[0]
            if status == 404:
                gone = True
                break
            t.eq(status, 200, "still there before expiry")
            time.sleep(0.1)
        t.check(gone, "record gone within 5 s of a 1 s TTL")
        # an expired record does not count against --max-records 1
        _, tok2 = new_token()
        check_json(t, r.request("POST", "/v1/records", record_body(ttl=60),
                                post_headers(tok2, sec)), 201, "new record after expiry")
        _, m = metrics(r)
        t.eq(m.get("tandem_relay_records"), 1.0, "records gauge")
        t.eq(m.get("tandem_relay_records_expired_total"), 1.0, "expired counted")
        # and the expired token is free for a new owner
        check_error(t, r.request("POST", "/v1/records", record_body(),
                                 post_headers(tok, b64(os.urandom(32)))), 503, "capacity",
                    "store full again")


def test_health_metrics_routes(t):
    with Relay() as r:
        obj = check_json(t, r.request("GET", "/healthz"), 200, "/healthz")
        t.eq(obj, {"status": "ok"}, "/healthz body")
        t.eq(r.request("GET", "/healthz?probe=1")[0], 200, "/healthz with a query")
        status, headers, data = r.request("HEAD", "/healthz")
        t.eq((status, data), (200, b""), "HEAD /healthz")
        headers, m0 = metrics(r)
        t.check(headers.get("content-type", "").startswith("text/plain; version=0.0.4"),
                f"metrics content type {headers.get('content-type')!r}")
        for name in ("tandem_relay_records", "tandem_relay_uptime_seconds",
                     'tandem_relay_requests_total{status="200"}',
                     'tandem_relay_rejections_total{reason="rate_limited"}',
                     'tandem_relay_rejections_total{reason="capacity"}',
                     'tandem_relay_rejections_total{reason="too_large"}',
                     'tandem_relay_rejections_total{reason="unauthorized"}',
                     'tandem_relay_rejections_total{reason="forbidden"}',
                     'tandem_relay_rejections_total{reason="bad_request"}'):
            t.check(name in m0, f"metric {name} present")
        for path in ("/", "/v1", "/v1/records/", "/v1/Records", "/healthz/", "/../etc/passwd"):
            check_error(t, r.request("GET", path), 404, "not_found", f"GET {path}")
        for method, path, allow in (("PUT", "/v1/records", "GET, HEAD, POST, DELETE"),
                                    ("PATCH", "/v1/records", "GET, HEAD, POST, DELETE"),
                                    ("POST", "/healthz", "GET, HEAD"),
                                    ("DELETE", "/metrics", "GET, HEAD")):
            reply = r.request(method, path, b"{}" if method in ("PUT", "PATCH", "POST") else None)
            check_error(t, reply, 405, "method_not_allowed", f"{method} {path}")
            t.eq(reply[1].get("allow"), allow, f"Allow of {method} {path}")
        _, tok = new_token()
        sec = b64(os.urandom(32))
        r.request("GET", "/v1/records")                                   # 401
        r.request("POST", "/v1/records", b"{", post_headers(tok, sec))    # 400
        r.request("POST", "/v1/records", record_body(), post_headers(tok, sec))  # 201
        r.request("POST", "/v1/records", record_body(), post_headers(tok))       # 403
        _, m1 = metrics(r)

        def delta(name):
            return m1.get(name, 0) - m0.get(name, 0)
        t.eq(m1.get("tandem_relay_records"), 1.0, "records gauge")
        t.eq(delta('tandem_relay_requests_total{status="401"}'), 1, "401 counted")
        t.eq(delta('tandem_relay_requests_total{status="400"}'), 1, "400 counted")
        t.eq(delta('tandem_relay_requests_total{status="201"}'), 1, "201 counted")
        t.eq(delta('tandem_relay_requests_total{status="403"}'), 1, "403 counted")
        t.eq(delta('tandem_relay_requests_total{status="404"}'), 6, "404s counted")
        t.eq(delta('tandem_relay_requests_total{status="405"}'), 4, "405s counted")
        t.eq(delta('tandem_relay_rejections_total{reason="unauthorized"}'), 1, "unauthorized")
        t.eq(delta('tandem_relay_rejections_total{reason="bad_request"}'), 1, "bad_request")
        t.eq(delta('tandem_relay_rejections_total{reason="forbidden"}'), 1, "forbidden")
        t.check(m1.get("tandem_relay_uptime_seconds", -1) >= 0, "uptime")
        # garbage on the wire: the relay answers or hangs up, and lives on
        for junk in (b"\x00\x01\x02\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                     b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                     b"GET /healthz HTTP/1.1\r\n" + b"X-Long: " + b"a" * 65536 + b"\r\n\r\n"):
            reply = r.raw(junk, timeout=2)
            t.check(reply == b"" or re.match(rb"HTTP/1\.1 (400|413|431|505) ", reply),
                    f"garbage {junk[:30]!r} answered {reply[:40]!r}")
        t.eq(r.request("GET", "/healthz")[0], 200, "alive after garbage")


def test_ipv4_and_ipv6(t):
    with Relay(listen=("127.0.0.1:0", "[::1]:0")) as r:
        t.eq([u[1] for u in r.urls], ["127.0.0.1", "::1"], "one line per listener, in order")
        t.check(r.urls[0][2] != 0 and r.urls[1][2] != 0, "real ports")
        _, tok = new_token()
        sec = b64(os.urandom(32))
        check_json(t, r.request("POST", "/v1/records", record_body(b"v4"), post_headers(tok, sec),
                                i=0), 201, "POST over IPv4")
        obj = check_json(t, r.request("GET", "/v1/records", headers=auth(tok), i=1), 200,
                         "GET over IPv6")
        t.eq(obj and obj.get("blob"), b64(b"v4"), "one store behind both listeners")


def test_observed_header(t):
    """Every reply tells the client the address and port it came from
    (X-Tandem-Observed, for hole punching): on a publish, a lookup, an error
    and /healthz, over IPv4 and IPv6."""
    with Relay(listen=("127.0.0.1:0", "[::1]:0")) as r:
        for i, src, fmt in ((0, "127.0.0.2", "{}:{}"), (1, "::1", "[{}]:{}")):
            _, host, port = r.urls[i]
            _, tok = new_token()
            sec = b64(os.urandom(32))
            cases = [
                ("POST", "/v1/records", record_body(), post_headers(tok, sec), 201),
                ("GET", "/v1/records", None, auth(tok), 200),
                ("GET", "/v1/records", None, auth(new_token()[1]), 404),
                ("GET", "/healthz", None, {}, 200),
            ]
            for method, path, body, headers, want in cases:
                fam = socket.AF_INET6 if ":" in src else socket.AF_INET
                s = socket.socket(fam, socket.SOCK_STREAM)
                s.settimeout(TIMEOUT)
                s.bind((src, 0))
                s.connect((host, port))
                mine = s.getsockname()
                c = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
                c.sock = s
                try:
                    c.request(method, path, body=body, headers=headers)
                    resp = c.getresponse()
                    resp.read()
                    status = resp.status
                    got = resp.getheader("X-Tandem-Observed")
                finally:
                    c.close()
                t.eq(status, want, f"{method} {path} from {src}")
                t.eq(got, fmt.format(mine[0], mine[1]),
                     f"{method} {path} from {src}: the observed address is ours")


def test_concurrent_clients(t):
    """Many clients at once on two listeners (two server threads, one store)."""
    import threading
    with Relay("--rate", "0", listen=("[::1]:0", "127.0.0.1:0")) as r:
        errors = []

        def client(k):
            try:
                _, tok = new_token()
                sec = b64(os.urandom(32))
                for j in range(15):
                    blob = b"%d-%d" % (k, j)
                    st, _, _ = r.request("POST", "/v1/records", record_body(blob, 60),
                                         post_headers(tok, sec), i=k % 2)
                    if st not in (200, 201):
                        errors.append(f"client {k} POST {j}: {st}")
                    st, _, data = r.request("GET", "/v1/records", headers=auth(tok),
                                            i=(k + 1) % 2)
                    if st != 200 or json.loads(data).get("blob") != b64(blob):
                        errors.append(f"client {k} GET {j}: {st} {data[:80]!r}")
                st, _, _ = r.request("DELETE", "/v1/records", headers=post_headers(tok, sec))
                if st != 204:
                    errors.append(f"client {k} DELETE: {st}")
            except Exception as e:      # reported below, never lost in a thread
                errors.append(f"client {k}: {e!r}")

        threads = [threading.Thread(target=client, args=(k,)) for k in range(12)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=60)
        t.check(not any(th.is_alive() for th in threads), "clients finished")
        t.eq(errors[:5], [], "every request answered correctly")
        _, m = metrics(r)
        t.eq(m.get("tandem_relay_records"), 0.0, "all deleted")
        t.eq(m.get('tandem_relay_requests_total{status="204"}'), 12.0, "12 deletes counted")


def set_loopback_up():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ifr = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s, 0x8913, ifr))[1]    # SIOCGIFFLAGS
        fcntl.ioctl(s, 0x8914, struct.pack("16sH22x", b"lo", flags | 1))     # SIOCSIFFLAGS
    finally:
        s.close()


def inner_dual_stack():
    """Runs in a private network namespace: [::] and * take IPv4 and IPv6."""
    global CURRENT
    set_loopback_up()
    t = CURRENT = Checker()
    for spec in ("[::]:0", "*:0"):
        with Relay(listen=(spec,)) as r:
            t.eq(r.host, "::", f"{spec} URL")
            for host in ("127.0.0.1", "::1"):
                c = http.client.HTTPConnection(host, r.port, timeout=TIMEOUT)
                c.request("GET", "/healthz")
                t.eq(c.getresponse().status, 200, f"{spec} reached over {host}")
                c.close()
    for f in t.failures:
        print(f)
    return 1 if t.failures else 0


def test_dual_stack_any(t):
    unshare = shutil.which("unshare")
    if not unshare or subprocess.run([unshare, "-rn", "true"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, timeout=TIMEOUT).returncode:
        return "no unprivileged network namespace to bind [::] in (binding every address is " \
               "only done in a private namespace)"
    p = subprocess.run([unshare, "-rn", sys.executable, os.path.abspath(__file__), RELAY,
                        "--inner-dual-stack"], capture_output=True, timeout=60)
    t.eq(p.returncode, 0, f"dual stack in a namespace: {p.stdout!r} {p.stderr[-500:]!r}")
    return None


def checked_run(argv, timeout=TIMEOUT):
    """subprocess.run that fails the test on a sanitizer report."""
    p = subprocess.run(argv, capture_output=True, timeout=timeout)
    err = p.stderr.decode(errors="replace")
    if any(m in err for m in SANITIZER_MARKERS):
        fail(f"sanitizer report from {argv[1:4]}:\n" + err[-4000:])
    return p


def test_cli_errors(t):
    def run(args, timeout=TIMEOUT):
        return checked_run([RELAY] + args, timeout=timeout)

    p = run(["--help"])
    t.eq(p.returncode, 0, "--help exit")
    t.check(b"--listen ADDR:PORT" in p.stdout and b"--max-records" in p.stdout, "--help text")
    p = run(["--version"])
    t.eq(p.returncode, 0, "--version exit")
    t.check(re.fullmatch(rb"tandem-relay \d+\.\d+\.\d+\n", p.stdout), f"--version {p.stdout!r}")
    bad = [
        (["--bogus"], b"unknown option"),
        (["--rate"], b"needs a value"),
        (["--rate", "abc"], b"--rate"),
        (["--rate", "-1"], b"--rate"),
        (["--rate", "99999999999999999999999"], b"--rate"),
        (["--max-records", "0"], b"--max-records"),
        (["--max-body", "10"], b"--max-body"),
        (["--max-ttl", "0"], b"--max-ttl"),
        (["--default-ttl", "100", "--max-ttl", "50"], b"default TTL"),
        (["--request-timeout", "0"], b"--request-timeout"),
        (["--request-deadline", "0"], b"--request-deadline"),
        (["--max-connections", "x"], b"--max-connections"),
        (["--max-connections", "10", "--max-connections-per-ip", "20"], b"per-address"),
        (["--max-records", "10", "--max-records-per-client", "20"], b"per-client"),
        (["--max-records-per-client", "x"], b"--max-records-per-client"),
        (["--listen", "localhost:80"], b"listen address"),
        (["--listen", "[::1]"], b"listen address"),
        (["--listen", "[::1]:70000"], b"listen address"),
        (["--listen", "::1:80"], b"listen address"),
        (["--tls-cert", "cert.pem"], b"--tls-key"),
        (["--log-level", "loud"], b"log level"),
        (["stray"], b"unexpected argument"),
        (sum([["--listen", "[::1]:0"] for _ in range(9)], []), b"at most 8"),
    ]
    for args, needle in bad:
        p = run(args)
        err = p.stderr.decode(errors="replace")
        t.eq(p.returncode, 2, f"exit status of {args[:4]}")
        t.check(err.count("\n") == 1 and err.startswith("tandem-relay: ") and
                needle.decode() in err, f"one-line message for {args[:4]}: {err!r}")
        t.eq(p.stdout, b"", f"nothing on stdout for {args[:4]}")


def test_start_failures(t):
    with Relay() as r:
        p = checked_run([RELAY, "--listen", f"[::1]:{r.port}"])
        err = p.stderr.decode(errors="replace")
        t.eq(p.returncode, 1, "address in use: exit 1")
        t.check("cannot listen on [::1]:%d" % r.port in err and "in use" in err and
                "--listen" in err, f"address in use message: {err!r}")
        t.eq(r.request("GET", "/healthz")[0], 200, "the first relay is unharmed")
    p = checked_run([RELAY, "--listen", "[::1]:0", "--tls-cert", "/nonexistent/cert.pem",
                     "--tls-key", "/nonexistent/key.pem"])
    err = p.stderr.decode(errors="replace")
    t.eq(p.returncode, 1, "missing TLS file: exit 1")
    t.check("cannot read the TLS certificate" in err and "No such file" in err,
            f"missing TLS file message: {err!r}")


def test_tls(t):
    openssl = shutil.which("openssl")
    if not openssl:
        return "openssl is not installed to make a test certificate"
    with tempfile.TemporaryDirectory() as d:
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        p = subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                            "/CN=tandem-relay test", "-addext", "subjectAltName=IP:::1",
                            "-keyout", key, "-out", cert], capture_output=True, timeout=30)
        if p.returncode != 0:
            return "openssl could not make a test certificate: " + p.stderr.decode()[-200:]
        os.chmod(key, 0o600)
        with Relay("--tls-cert", cert, "--tls-key", key) as r:
            t.eq(r.urls[0][0], "https", "https URL")
            ctx = ssl.create_default_context(cafile=cert)
            c = http.client.HTTPSConnection("::1", r.port, context=ctx, timeout=TIMEOUT)
            c.request("GET", "/healthz")
            resp = c.getresponse()
            t.eq((resp.status, resp.read()), (200, b'{"status":"ok"}'), "HTTPS /healthz")
            c.close()
            # plain HTTP on the TLS port gets nothing useful, and the relay lives on
            r.raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            c = http.client.HTTPSConnection("::1", r.port, context=ctx, timeout=TIMEOUT)
            c.request("GET", "/healthz")
            t.eq(c.getresponse().status, 200, "HTTPS after a plain-text client")
            c.close()
        # a key that does not parse
        with open(key, "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
        p = checked_run([RELAY, "--listen", "[::1]:0", "--tls-cert", cert, "--tls-key", key])
        t.eq(p.returncode, 1, "bad key: exit 1")
        t.check(b"--tls-cert and --tls-key" in p.stderr, f"bad key message: {p.stderr!r}")
    return None


def https_request(port, ctx, method, path, body=None, headers=None, src=None):
    """One request over the relay's own HTTPS, from src (an address) if given:
    (status, headers with lower-case names, body, the client's (address, port))."""
    fam = socket.AF_INET6 if ":" in (src or "::1") else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.bind((src or "::1", 0))
    s.connect(("::1", port))
    mine = s.getsockname()
    c = http.client.HTTPSConnection("::1", port, context=ctx, timeout=TIMEOUT)
    c.sock = ctx.wrap_socket(s, server_hostname="::1")
    try:
        c.request(method, path, body=body, headers=headers or {})
        resp = c.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data, mine
    finally:
        c.close()


def test_tls_records_and_handshake_bound(t):
    """Over the relay's own HTTPS (its TLS front, docs/RELAY.md §6): the
    records API with its errors, X-Tandem-Observed with the client's real
    address and port, and /metrics. Connections that never finish their TLS
    handshake are closed at --request-deadline and counted; while they hold
    every slot of the listener, a real client still gets in (the oldest one
    still in its handshake is evicted)."""
    openssl = shutil.which("openssl")
    if not openssl:
        return "openssl is not installed to make a test certificate"
    with tempfile.TemporaryDirectory() as d:
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        p = subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                            "/CN=tandem-relay test", "-addext", "subjectAltName=IP:::1",
                            "-keyout", key, "-out", cert], capture_output=True, timeout=30)
        if p.returncode != 0:
            return "openssl could not make a test certificate: " + p.stderr.decode()[-200:]
        os.chmod(key, 0o600)
        deadline_s = 2
        with Relay("--tls-cert", cert, "--tls-key", key, "--request-deadline", str(deadline_s),
                   "--max-connections", "8", "--max-connections-per-ip", "0") as r:
            ctx = ssl.create_default_context(cafile=cert)
            _, tok = new_token()
            sec = b64(os.urandom(32))
            rep = https_request(r.port, ctx, "POST", "/v1/records", record_body(b"hi", 60),
                                post_headers(tok, sec))
            check_json(t, rep[:3], 201, "HTTPS POST")
            t.eq(rep[1].get("x-tandem-observed"), "[%s]:%d" % rep[3][:2],
                 "X-Tandem-Observed is the client's real address")
            rep = https_request(r.port, ctx, "GET", "/v1/records", None, auth(tok))
            t.eq(rep[0], 200, "HTTPS GET")
            check_error(t, https_request(r.port, ctx, "GET", "/v1/records", None,
                                         auth(new_token()[1]))[:3], 404, "not_found",
                        "HTTPS GET of a missing record")
            check_error(t, https_request(r.port, ctx, "POST", "/v1/records", b"x" * 9000,
                                         post_headers(tok, sec))[:3], 413, None,
                        "HTTPS body too large")
            rep = https_request(r.port, ctx, "GET", "/metrics")
            t.eq(rep[0], 200, "HTTPS /metrics")
            # hostile: TCP connections that never start (or never finish) a handshake
            stalled = []
            for i in range(12):
                s = socket.create_connection(("::1", r.port), timeout=TIMEOUT)
                if i % 2:
                    s.sendall(b"\x16\x03\x01\x02\x00\x01")  # a ClientHello cut short
                stalled.append(s)
            rep = https_request(r.port, ctx, "GET", "/healthz")
            t.eq(rep[0], 200, "a real client gets in while stalled handshakes hold the slots")
            limit = time.monotonic() + deadline_s + 10
            open_ones = list(stalled)
            while open_ones and time.monotonic() < limit:
                for s in list(open_ones):
                    s.settimeout(0.1)
                    try:
                        if s.recv(1) == b"":
                            open_ones.remove(s)
                    except socket.timeout:
                        pass
                    except OSError:
                        open_ones.remove(s)
            t.eq(len(open_ones), 0, "every stalled handshake was closed")
            for s in stalled:
                s.close()
            m = {}
            for line in https_request(r.port, ctx, "GET", "/metrics")[2].decode().splitlines():
                if line and not line.startswith("#"):
                    name, _, value = line.rpartition(" ")
                    m[name] = float(value)
            dl = m.get('tandem_relay_connections_closed_total{reason="deadline"}', 0)
            ev = m.get('tandem_relay_connections_closed_total{reason="evicted"}', 0)
            t.check(dl >= 1 and ev >= 1 and dl + ev >= 12,
                    f"closures counted: {dl} at the deadline, {ev} evicted")
            t.eq(https_request(r.port, ctx, "GET", "/healthz")[0], 200, "still serving")
    return None


def test_signals(t):
    for sig in (signal.SIGTERM, signal.SIGINT):
        with Relay() as r:
            t.eq(r.request("GET", "/healthz")[0], 200, "up")
            r.signal(sig)
            t.eq(r.wait(), 0, f"exit status after {sig.name}")
            t.check("stopped" in r.stderr(), f"stop logged after {sig.name}")


def test_graceful_stop(t):
    with Relay() as r:
        _, tok = new_token()
        sec = b64(os.urandom(32))
        body = record_body(b"in flight").encode()
        _, host, port = r.urls[0]
        s = socket.create_connection((host, port), timeout=TIMEOUT)
        s.sendall((f"POST /v1/records HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer {tok}\r\n"
                   f"X-Tandem-Write-Secret: {sec}\r\nContent-Length: {len(body)}\r\n\r\n")
                  .encode() + body[:5])
        time.sleep(0.3)
        r.signal(signal.SIGTERM)
        time.sleep(0.3)
        t.eq(r.proc.poll(), None, "still running while a request is in flight")
        s.sendall(body[5:])
        status, _, data = parse_reply(read_reply(s, wait_close=False))
        s.close()
        t.eq(status, 201, f"the in-flight request finished: {data!r}")
        t.eq(r.wait(), 0, "exit 0 after the in-flight request")


def test_connection_limits(t):
    with Relay("--max-connections", "2", "--request-timeout", "2") as r:
        _, host, port = r.urls[0]
        held = [socket.create_connection((host, port), timeout=TIMEOUT) for _ in range(2)]
        time.sleep(0.2)
        third = socket.create_connection((host, port), timeout=TIMEOUT)
        try:
            third.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            third.settimeout(1.5)
            reply = third.recv(100)
        except (socket.timeout, ConnectionResetError, BrokenPipeError):
            reply = b""
        third.close()
        t.eq(reply, b"", "no answer past --max-connections")
        # an idle connection is closed after --request-timeout
        start = time.monotonic()
        held[0].sendall(b"GET /healthz HTTP/1.1\r\n")        # never finished
        held[0].settimeout(TIMEOUT)
        try:
            data = held[0].recv(100)
        except ConnectionResetError:
            data = b""
        t.eq(data, b"", "slow request closed")
        t.check(time.monotonic() - start < 6, "closed within a few seconds of the timeout")
        for s in held:
            s.close()
        time.sleep(0.3)
        t.eq(r.request("GET", "/healthz")[0], 200, "serving again once connections closed")


def request_from(r, source, method, path, body=None, headers=None, i=0):
    """One request from the loopback address source (e.g. "127.0.0.2")."""
    _, host, port = r.urls[i]
    c = http.client.HTTPConnection(host, port, timeout=TIMEOUT, source_address=(source, 0))
    try:
        c.request(method, path, body=body, headers=headers or {})
        resp = c.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        c.close()


def test_records_per_client(t):
    with Relay("--max-records-per-client", "3", "--rate", "0", listen=("127.0.0.1:0",)) as r:
        sec = b64(os.urandom(32))
        mine = [new_token()[1] for _ in range(4)]
        for k, tok in enumerate(mine[:3]):
            check_json(t, request_from(r, "127.0.0.2", "POST", "/v1/records",
                                       record_body(ttl=30 + k), post_headers(tok, sec)), 201,
                       f"record {k + 1} of the cap")
        reply = request_from(r, "127.0.0.2", "POST", "/v1/records", record_body(ttl=30),
                             post_headers(mine[3], sec))
        check_error(t, reply, 429, "too_many_records", "a record over the per-client cap")
        ra = reply[1].get("retry-after", "")
        t.check(ra.isdigit() and 1 <= int(ra) <= 30,
                f"Retry-After {ra!r} until the client's oldest record expires")
        t.check(b"3" in reply[2], f"the message names the cap: {reply[2]!r}")
        # replacing one's own record does not count twice
        check_json(t, request_from(r, "127.0.0.2", "POST", "/v1/records", record_body(ttl=60),
                                   post_headers(mine[0], sec)), 200, "replace at the cap")
        # another client still publishes
        check_json(t, request_from(r, "127.0.0.3", "POST", "/v1/records", record_body(),
                                   post_headers(new_token()[1], sec)), 201,
                   "another client publishes")
        # DELETE releases a slot
        t.eq(request_from(r, "127.0.0.2", "DELETE", "/v1/records",
                          headers=post_headers(mine[1], sec))[0], 204, "DELETE")
        check_json(t, request_from(r, "127.0.0.2", "POST", "/v1/records", record_body(ttl=30),
                                   post_headers(mine[3], sec)), 201, "a slot freed by DELETE")
        _, m = metrics(r)
        t.eq(m.get('tandem_relay_rejections_total{reason="too_many_records"}'), 1.0,
             "the rejection is counted")
        t.eq(m.get("tandem_relay_records"), 4.0, "records gauge")


def test_slow_clients(t):
    """40 clients that send one header byte a second hold no slot for long:
    /healthz from another address keeps answering, and the relay closes every
    slow connection by its deadline (10 s by default) although each of them
    sends a byte well within --request-timeout."""
    import threading
    deadline_s = 10
    with Relay("--max-connections", "40", "--max-connections-per-ip", "10",
               "--request-timeout", "3", listen=("127.0.0.1:0",)) as r:
        _, host, port = r.urls[0]
        line = b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Pad: " + b"a" * 64 + b"\r\n\r\n"
        slow = []
        for k in range(40):
            s = socket.create_connection((host, port), timeout=TIMEOUT,
                                         source_address=(f"127.0.0.{2 + k % 4}", 0))
            s.setblocking(False)
            slow.append({"sock": s, "start": time.monotonic(), "sent": 0, "closed": None})
        stop = threading.Event()
        problems = []

        def health():
            while not stop.is_set():
                start = time.monotonic()
                try:
                    c = http.client.HTTPConnection(host, port, timeout=1,
                                                   source_address=("127.0.0.9", 0))
                    c.request("GET", "/healthz")
                    status = c.getresponse().status
                    c.close()
                except OSError as e:
                    status = repr(e)
                took = time.monotonic() - start
                if status != 200 or took > 1.0:
                    problems.append(f"/healthz answered {status} after {took:.2f} s")
                stop.wait(0.5)

        checker = threading.Thread(target=health)
        checker.start()
        limit = time.monotonic() + deadline_s + 8
        try:
            while time.monotonic() < limit and any(c["closed"] is None for c in slow):
                now = time.monotonic()
                for c in slow:
                    if c["closed"] is not None:
                        continue
                    try:
                        if c["sock"].recv(4096) == b"":
                            c["closed"] = now
                            continue
                    except BlockingIOError:
                        pass
                    except OSError:
                        c["closed"] = now
                        continue
                    if now - c["start"] >= c["sent"] and c["sent"] < len(line):
                        try:
                            c["sock"].send(line[c["sent"]:c["sent"] + 1])
                            c["sent"] += 1
                        except BlockingIOError:
                            pass
                        except OSError:
                            c["closed"] = now
                time.sleep(0.05)
        finally:
            stop.set()
            checker.join(timeout=TIMEOUT)
            for c in slow:
                c["sock"].close()
        t.eq(problems[:3], [], "/healthz answered within 1 s throughout")
        late = [c["closed"] and round(c["closed"] - c["start"], 1) for c in slow
                if c["closed"] is None or c["closed"] - c["start"] > deadline_s + 3]
        t.eq(late, [], "every slow connection closed by the deadline (seconds open)")
        t.eq(r.request("GET", "/healthz")[0], 200, "serving after the slow clients")
        _, m = metrics(r)
        deadline = m.get('tandem_relay_connections_closed_total{reason="deadline"}', 0)
        evicted = m.get('tandem_relay_connections_closed_total{reason="evicted"}', 0)
        t.check(deadline >= 1 and evicted >= 1 and deadline + evicted <= 40,
                f"closures counted: {deadline} at the deadline, {evicted} evicted")


def test_connections_per_client(t):
    """--max-connections-per-ip counts a client over all listen addresses."""
    with Relay("--max-connections-per-ip", "2", listen=("127.0.0.1:0", "127.0.0.1:0")) as r:
        held = [socket.create_connection(r.urls[0][1:], timeout=TIMEOUT,
                                         source_address=("127.0.0.2", 0)) for _ in range(2)]
        try:
            time.sleep(0.2)
            s = socket.create_connection(r.urls[1][1:], timeout=TIMEOUT,
                                         source_address=("127.0.0.2", 0))
            try:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                reply = read_reply(s, wait_close=True, timeout=5)
            except OSError:
                reply = b""
            s.close()
            t.eq(reply, b"", "a third connection of 127.0.0.2, on the other listener, is closed")
            t.eq(request_from(r, "127.0.0.3", "GET", "/healthz", i=1)[0], 200,
                 "another client is served")
        finally:
            for s in held:
                s.close()
        _, m = metrics(r)
        t.eq(m.get('tandem_relay_connections_closed_total{reason="per_client"}'), 1.0,
             "the refusal is counted")
        time.sleep(0.3)
        t.eq(request_from(r, "127.0.0.2", "GET", "/healthz", i=1)[0], 200,
             "127.0.0.2 is served again once its connections closed")


def test_logs_keep_secrets(t):
    with Relay("--log-level", "debug", listen=("[::1]:0", "127.0.0.1:0")) as r:
        raw_tok, tok = new_token()
        sec = b64(os.urandom(32))
        blob = os.urandom(200)
        r.request("POST", "/v1/records", record_body(blob), post_headers(tok, sec))
        r.request("GET", "/v1/records", headers=auth(tok))
        r.request("GET", "/v1/records", headers=auth(tok), i=1)
        r.request("POST", "/v1/records", record_body(blob), post_headers(tok, b64(os.urandom(32))))
        r.request("GET", "/v1/records", headers={"Authorization": "Bearer " + tok + "x"})
        r.request("GET", "/" + tok)
        r.request("GET", "/v1/records?token=" + tok)
        r.raw(f"GET /{tok} HTTP/1.1\r\nHost: {tok}\r\n\r\n".encode(), wait_close=False)
        r.request("DELETE", "/v1/records", headers=post_headers(tok, sec))
        r.signal(signal.SIGTERM)
        t.eq(r.wait(), 0, "clean exit")
        log = r.stderr()
        for name, needle in (("token", tok), ("token (hex)", raw_tok.hex()),
                             ("write secret", sec), ("blob", b64(blob)), ("blob (hex)", blob.hex()),
                             ("blob prefix", b64(blob)[:16])):
            t.check(needle not in log, f"the log holds the {name}")
        t.check(re.search(r"debug: (GET|POST|DELETE) /v1/records -> \d{3}$", log, re.M),
                "request lines are logged at debug")
        for line in log.splitlines():
            m = re.match(r"tandem-relay\[\d+\]: (\w+): (.*)$", line)
            t.check(m is not None, f"log line format: {line!r}")
            if m and m.group(1) == "debug" and re.match(r"[A-Z(]", m.group(2)) and "->" in line:
                t.check(re.fullmatch(r"(GET|HEAD|POST|DELETE|PUT|OPTIONS|\(other method\)) "
                                     r"(/v1/records|/healthz|/metrics|-) -> \d{3}", m.group(2)),
                        f"request line is method, route, status only: {line!r}")
            if m and m.group(1) != "debug":
                client = re.search(r"(127\.0\.0\.1|::1)(?!\]:%d|:%d)" % (r.urls[0][2], r.urls[1][2]),
                                   m.group(2))
                t.check(client is None, f"client address at {m.group(1)}: {line!r}")


def test_squatter_cannot_evict(t):
    """Token squatting: a client that floods a token with writers only churns its own."""
    with Relay("--rate", "0", listen=("127.0.0.1:0",)) as r:
        _, tok = new_token()

        def post_from(src, blob, sec):
            c = http.client.HTTPConnection(r.host, r.port, timeout=TIMEOUT,
                                           source_address=(src, 0))
            try:
                c.request("POST", "/v1/records", body=record_body(blob),
                          headers=post_headers(tok, sec))
                resp = c.getresponse()
                resp.read()
                return resp.status
            finally:
                c.close()

        t.eq(post_from("127.0.0.2", b"squat-first", b64(os.urandom(32))), 201, "squatter first")
        t.eq(post_from("127.0.0.3", b"owner", b64(os.urandom(32))), 201, "owner still gets in")
        codes = {post_from("127.0.0.2", b"squat%d" % i, b64(os.urandom(32))) for i in range(30)}
        t.eq(codes, {201}, "the squatter's writers are taken")
        obj = check_json(t, r.request("GET", "/v1/records", headers=auth(tok)), 200, "GET")
        blobs = [x.get("blob") for x in obj.get("records", [])] if obj else []
        t.eq(len(blobs), 8, "at most 8 writers per token")
        t.check(b64(b"owner") in blobs, "the owner's record survived the flood")
        _, m = metrics(r)
        t.eq(m.get("tandem_relay_records_evicted_total"), 24.0, "evictions counted")


TESTS = [
    test_store_fetch_replace_delete,
    test_owner_only,
    test_squatter_cannot_evict,
    test_bearer,
    test_bad_bodies,
    test_too_large,
    test_rate_limit,
    test_capacity,
    test_expiry,
    test_health_metrics_routes,
    test_ipv4_and_ipv6,
    test_observed_header,
    test_concurrent_clients,
    test_dual_stack_any,
    test_cli_errors,
    test_start_failures,
    test_tls,
    test_tls_records_and_handshake_bound,
    test_signals,
    test_graceful_stop,
    test_connection_limits,
    test_logs_keep_secrets,
    test_records_per_client,
    test_slow_clients,
    test_connections_per_client,
]


def main():
    global RELAY
    if len(sys.argv) < 2:
        print("usage: test_relay.py PATH-TO-tandem-relay", file=sys.stderr)
        return 2
    RELAY = os.path.abspath(sys.argv[1])
    if sys.argv[2:] == ["--inner-dual-stack"]:
        return inner_dual_stack()
    if not os.access(RELAY, os.X_OK):
        print(f"Bail out! {RELAY} is not an executable")
        return 1
    global CURRENT
    passed = failed = skipped = 0
    # RELAY_TESTS=name,name runs only those (names without "test_")
    only = [n for n in os.environ.get("RELAY_TESTS", "").split(",") if n]
    tests = [f for f in TESTS if not only or f.__name__[len("test_"):] in only]
    print(f"1..{len(tests)}")
    for n, test in enumerate(tests, 1):
        name = test.__name__[len("test_"):]
        t = CURRENT = Checker()
        skip = None
        start = time.monotonic()
        try:
            skip = test(t)
        except Exception:   # a test that crashed failed, with its traceback
            tb = traceback.format_exc().splitlines()
            t.failures.append("exception:\n" + "\n".join(tb[-8:]))
        took = time.monotonic() - start
        if skip and not t.failures:
            print(f"ok {n} - {name} # SKIP {skip}")
            skipped += 1
        elif t.failures:
            print(f"not ok {n} - {name}")
            for f in t.failures:
                for line in f.splitlines():
                    print(f"#   {line}")
            failed += 1
        else:
            print(f"ok {n} - {name} ({took:.1f} s)" if took > 2 else f"ok {n} - {name}")
            passed += 1
        sys.stdout.flush()
    summary = f"{passed} passed, {failed} failed"
    if skipped:
        summary += f", {skipped} skipped"
    print(f"# {summary}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
