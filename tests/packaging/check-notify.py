#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The contract behind tandem@.service's Type=notify (PRODUCT.md §11):
`tandem up --foreground` started with $NOTIFY_SOCKET sends READY=1 with its
own MAINPID once it runs, then STATUS= lines, and STOPPING=1 on SIGTERM
before it exits with 0. The test plays systemd's part: an abstract
AF_UNIX datagram socket with SO_PASSCRED, so it also sees which pid spoke.
No relay is needed (the daemon is ready before it reaches the relay).

Usage: check-notify.py --tandem EXE
Output is TAP; exit status 0 when every check passed.
"""
import argparse
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

results = []


def check(ok, name, detail=""):
    results.append(ok)
    print(f"{'ok' if ok else 'not ok'} {len(results)} - {name}")
    if not ok and detail:
        for line in str(detail).splitlines():
            print(f"#   {line}")
    sys.stdout.flush()


def recv_note(sock, deadline):
    """One datagram as (dict of assignments, sender pid), or None at the deadline."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([sock], [], [], left)
        if not r:
            return None
        data, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = 0
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
        fields = {}
        for line in data.decode(errors="replace").split("\n"):
            if "=" in line:
                k, v = line.split("=", 1)
                fields[k] = v
        return fields, pid


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tandem", required=True)
    exe = os.path.abspath(ap.parse_args().tandem)

    p = subprocess.run([exe, "up", "--help"], capture_output=True, timeout=30)
    if p.returncode != 0:
        # A TAP skip: meson reads the plan (exit status 77 would be an error).
        print("1..0 # SKIP this tandem has no 'up' command (the daemon) yet")
        return 0

    # Short paths: the daemon's control socket lives under --home.
    with tempfile.TemporaryDirectory(prefix="tnfy.", dir="/tmp") as tmp:
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        home_a, home_b, share = (os.path.join(tmp, n) for n in ("a", "b", "s"))
        os.mkdir(share)
        for h in (home_a, home_b):
            p = subprocess.run([exe, "--home", h, "init"], env=env, capture_output=True,
                               text=True, timeout=30)
            if p.returncode != 0:
                check(False, f"tandem --home {h} init", p.stdout + p.stderr)
                return 1
        peer = subprocess.run([exe, "--home", home_b, "id"], env=env, capture_output=True,
                              text=True, timeout=30).stdout.strip()

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        name = f"tandem-check-notify-{os.getpid()}"
        sock.bind("\0" + name)
        env["NOTIFY_SOCKET"] = "@" + name

        log = open(os.path.join(tmp, "daemon.log"), "w+")
        # Port 9 (discard) on ::1: nothing answers there, and it must not matter.
        proc = subprocess.Popen([exe, "--home", home_a, "up", "--foreground",
                                 "--peer", peer, "--relay", "http://[::1]:9",
                                 "--dir", share, "--listen", "[::1]:0"],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            ready = None
            statuses = []
            deadline = time.monotonic() + 20
            while ready is None:
                note = recv_note(sock, deadline)
                if note is None:
                    break
                if "READY" in note[0]:
                    ready = note
                elif "STATUS" in note[0]:
                    statuses.append(note[0]["STATUS"])
            log.seek(0)
            check(ready is not None and ready[0].get("READY") == "1",
                  "tandem up --foreground sends READY=1 to $NOTIFY_SOCKET", log.read()[-2000:])
            if ready is None:
                return 1
            check(ready[0].get("MAINPID") == str(proc.pid) and ready[1] == proc.pid,
                  f"READY=1 comes from the daemon itself with MAINPID={proc.pid}",
                  f"MAINPID={ready[0].get('MAINPID')}, sender pid {ready[1]}")

            note = recv_note(sock, time.monotonic() + 5)
            while note is not None and "STATUS" not in note[0]:
                note = recv_note(sock, time.monotonic() + 5)
            if note is not None:
                statuses.append(note[0]["STATUS"])
            check(len(statuses) > 0, "it reports STATUS= (shown by systemctl status): "
                  + (repr(statuses[-1]) if statuses else "none"))

            proc.send_signal(signal.SIGTERM)
            stopping = False
            deadline = time.monotonic() + 20
            while not stopping:
                note = recv_note(sock, deadline)
                if note is None:
                    break
                stopping = note[0].get("STOPPING") == "1"
            check(stopping, "SIGTERM: it sends STOPPING=1")
            rc = proc.wait(timeout=30)
            log.seek(0)
            check(rc == 0, f"and exits with status 0 (got {rc})", log.read()[-2000:])
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            sock.close()
    print(f"1..{len(results)}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
