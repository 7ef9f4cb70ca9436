#!/usr/bin/env python3
"""TCP probes for the netns suite (tests/netns/lib.sh).

  probe.py serve ADDR PORT     listen on ADDR:PORT (ADDR "::" is dual-stack);
                               print "ready" once listening, then answer every
                               connection with the address it came from
                               ("198.51.100.50\n") and close it. Runs until killed.
  probe.py connect ADDR PORT S connect with a bound of S seconds; prints one line
                               and exits: "ok SEEN" (0, SEEN is what the server
                               saw as our address), "refused" (1), "timeout" (2),
                               "unreachable" (3), "error: ..." (4).
  probe.py hold ADDR PORT TEXT connect, send TEXT, print "sent", then hold the
                               connection open until the server closes it or
                               the probe is killed.
  probe.py observe LPORT ADDR PORT
                               GET /healthz from local port LPORT (SO_REUSEADDR,
                               closed with a reset, as tandem's punch port) and
                               print the relay's X-Tandem-Observed header
                               ("none" when absent); exit 0, or 4 on error.
  probe.py punch LPORT ADDR PORT WINDOW AT
                               a TCP simultaneous open as tandem tries it: from
                               local port LPORT, connect() to ADDR:PORT, again
                               after each refusal, from the unix time AT for
                               WINDOW seconds; once connected, send our name
                               and read the other's. Prints "ok OTHER-NAME
                               AFTER-S" (0) or "timeout AFTER-S TRIES" (2).
"""
import errno
import os
import select
import socket
import struct
import sys
import time


def serve(addr, port):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6 and addr == "::":
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((addr, port))
    s.listen(16)
    print("ready", flush=True)
    while True:
        c, peer = s.accept()
        host = peer[0]
        if host.startswith("::ffff:"):
            host = host[len("::ffff:"):]
        try:
            c.sendall((host + "\n").encode())
        except OSError:
            pass
        c.close()


def connect(addr, port, seconds):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(seconds)
    try:
        s.connect((addr, port))
        line = b""
        while not line.endswith(b"\n"):
            chunk = s.recv(256)
            if not chunk:
                break
            line += chunk
    except socket.timeout:
        print("timeout")
        return 2
    except ConnectionRefusedError:
        print("refused")
        return 1
    except OSError as e:
        if e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EACCES, errno.EPERM):
            print("unreachable")
            return 3
        print("error: %s" % e)
        return 4
    print("ok " + line.decode(errors="replace").strip())
    return 0


def hold(addr, port, text):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect((addr, port))
    s.sendall(text.encode())
    print("sent", flush=True)
    s.settimeout(None)
    while s.recv(4096):
        pass
    return 0


def bound_socket(fam, lport):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", lport))
    return s


def observe(lport, addr, port):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = bound_socket(fam, lport)
    # a reset on close: no TIME_WAIT keeps the next try from this port
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.settimeout(5)
    try:
        s.connect((addr, port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError as e:
        print("error: %s" % e)
        return 4
    finally:
        s.close()
    for line in data.split(b"\r\n")[1:]:
        k, _, v = line.decode(errors="replace").partition(":")
        if k.strip().lower() == "x-tandem-observed":
            print(v.strip())
            return 0
    print("none")
    return 0


def punch(lport, addr, port, window, at):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    delay = at - time.time()
    if delay > 0:
        time.sleep(delay)
    start = time.monotonic()
    tries = 0
    while time.monotonic() - start < window:
        tries += 1
        s = bound_socket(fam, lport)
        s.setblocking(False)
        try:
            s.connect((addr, port))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            time.sleep(0.25)
            continue
        left = window - (time.monotonic() - start)
        _, w, _ = select.select([], [s], [], max(left, 0))
        if not w:
            s.close()
            break
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            s.close()
            time.sleep(0.25)
            continue
        s.setblocking(True)
        s.settimeout(5)
        try:
            s.sendall((os.environ.get("PROBE_NAME", socket.gethostname()) + "\n").encode())
            line = b""
            while not line.endswith(b"\n"):
                chunk = s.recv(256)
                if not chunk:
                    break
                line += chunk
        except OSError as e:
            print("error: %s" % e)
            return 4
        print("ok %s %.1f" % (line.decode(errors="replace").strip(), time.monotonic() - start))
        return 0
    print("timeout %.1f %d" % (time.monotonic() - start, tries))
    return 2


def main(argv):
    if len(argv) == 4 and argv[1] == "serve":
        serve(argv[2], int(argv[3]))
        return 0
    if len(argv) == 5 and argv[1] == "hold":
        return hold(argv[2], int(argv[3]), argv[4])
    if len(argv) == 5 and argv[1] == "observe":
        return observe(int(argv[2]), argv[3], int(argv[4]))
    if len(argv) == 7 and argv[1] == "punch":
        return punch(int(argv[2]), argv[3], int(argv[4]), float(argv[5]), float(argv[6]))
    if len(argv) == 5 and argv[1] == "connect":
        return connect(argv[2], int(argv[3]), float(argv[4]))
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
