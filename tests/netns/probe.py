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
"""
import errno
import socket
import sys


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


def main(argv):
    if len(argv) == 4 and argv[1] == "serve":
        serve(argv[2], int(argv[3]))
        return 0
    if len(argv) == 5 and argv[1] == "hold":
        return hold(argv[2], int(argv[3]), argv[4])
    if len(argv) == 5 and argv[1] == "connect":
        return connect(argv[2], int(argv[3]), float(argv[4]))
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
