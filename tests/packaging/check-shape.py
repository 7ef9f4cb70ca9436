#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The shape of a build with and without the selftest (meson -Dselftest):

- with it, `tandem selftest` runs and the daemon has its test seams (the
  TANDEM_TEST_* knobs, the hidden control command "ensure");
- without it, the binary holds no TANDEM_TEST_ string at all, --help lists
  no selftest, `tandem selftest [--list]` says this build has none and
  exits 2, and
  the daemon answers "ensure" as an unknown command;
- in both, `tandem up --cache-max SIZE` and `cache-max = SIZE` in tandem.conf
  are parsed strictly (a bad size: exit 2 with the reason) and a good one
  starts the daemon.

No relay is needed: the daemon answers its control socket before it
reaches one.

Usage: check-shape.py --tandem EXE --selftest true|false
Output is TAP; exit status 0 when every check passed.
"""
import argparse
import glob
import json
import os
import socket
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


def run(argv, env, timeout=30):
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)


def control(sock_path, line, timeout=10):
    """One request line to the daemon's control socket; the reply as JSON."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        s.sendall(line.encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf.decode())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tandem", required=True)
    ap.add_argument("--selftest", choices=("true", "false"), required=True)
    a = ap.parse_args()
    exe = os.path.abspath(a.tandem)
    with_st = a.selftest == "true"

    with open(exe, "rb") as f:
        blob = f.read()
    n = blob.count(b"TANDEM_TEST_")
    if with_st:
        check(n > 0, f"the binary has the TANDEM_TEST_ knobs ({n} strings)")
    else:
        check(n == 0, f"the binary has no TANDEM_TEST_ string (found {n})")

    env = {k: v for k, v in os.environ.items()
           if k != "NOTIFY_SOCKET" and not k.startswith("TANDEM_TEST_")}
    p = run([exe, "--help"], env)
    listed = any(line.split()[:1] == ["selftest"] for line in p.stdout.splitlines())
    check(p.returncode == 0 and listed == with_st,
          f"tandem --help {'lists' if with_st else 'does not list'} the selftest", p.stdout)
    if with_st:
        p = run([exe, "selftest", "--list"], env)
        check(p.returncode == 0 and "daemon-cli" in p.stdout, "tandem selftest --list runs",
              p.stdout[-1000:] + p.stderr)
    else:
        # --list: should this build have the selftest after all, it only lists.
        p = run([exe, "selftest", "--list"], env)
        check(p.returncode == 2 and "without the selftest" in p.stderr
              and "-Dselftest" in p.stderr,
              "tandem selftest: exit 2, this build has no selftest",
              f"exit {p.returncode}: {p.stderr}")

    # Short paths: the daemon's control socket lives under --home.
    with tempfile.TemporaryDirectory(prefix="tshp.", dir="/tmp") as tmp:
        home_a, home_b, share = (os.path.join(tmp, n) for n in ("a", "b", "s"))
        os.mkdir(share)
        for h in (home_a, home_b):
            p = run([exe, "--home", h, "init"], env)
            if p.returncode != 0:
                check(False, f"tandem --home {h} init", p.stdout + p.stderr)
                return 1
        peer = run([exe, "--home", home_b, "id"], env).stdout.strip()
        # Port 9 (discard) on ::1: nothing answers there, and it must not matter.
        up = [exe, "--home", home_a, "up", "--peer", peer, "--relay", "http://[::1]:9",
              "--dir", share, "--listen", "none"]

        for bad in ("10X", "1.5G", "-1", "10GB", "", "99999999999999999999"):
            p = run(up + ["--cache-max", bad], env)
            check(p.returncode == 2 and "--cache-max" in p.stderr
                  and "K, M, G or T" in p.stderr,
                  f"up --cache-max '{bad}': exit 2 with the reason",
                  f"exit {p.returncode}: {p.stderr}")
        conf = os.path.join(home_a, "tandem.conf")  # --home H: the config dir is H
        with open(conf, "w") as f:
            f.write("# test\ncache-max = 3 G\n")
        p = run(up, env)
        check(p.returncode == 2 and "tandem.conf:2: cache-max: '3 G' is not a size" in p.stderr,
              "cache-max = '3 G' in tandem.conf: exit 2 naming file:line",
              f"exit {p.returncode}: {p.stderr}")
        with open(conf, "w") as f:
            f.write("cache-max = 10X\n")
        p = run(up + ["--cache-max", "1G"], env)
        check(p.returncode == 2 and "tandem.conf:1:" in p.stderr,
              "a bad tandem.conf is an error even when --cache-max is given",
              f"exit {p.returncode}: {p.stderr}")
        with open(conf, "w") as f:
            f.write("cache-max = 2G\n")

        log = open(os.path.join(tmp, "daemon.log"), "w+")
        proc = subprocess.Popen(up + ["--foreground", "--cache-max", "512M"], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            sock_path = None
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and proc.poll() is None:
                socks = glob.glob(os.path.join(home_a, "**", "tandem.sock"), recursive=True)
                if socks:
                    try:
                        st = control(socks[0], '{"cmd":"status"}')
                        if "pid" in st:
                            sock_path = socks[0]
                            break
                    except (OSError, ValueError):
                        pass
                time.sleep(0.05)
            log.seek(0)
            check(sock_path is not None,
                  "up --cache-max 512M (over cache-max = 2G in tandem.conf) runs",
                  log.read()[-2000:])
            if sock_path is None:
                return 1
            r = control(sock_path, '{"cmd":"ensure"}')
            err = r.get("error")
            if with_st:
                check(err == "bad_request", "the daemon knows the test command ensure",
                      json.dumps(r))
            else:
                check(err == "unknown_command", "the daemon has no ensure command",
                      json.dumps(r))
            r = control(sock_path, '{"cmd":"down"}')
            check(r.get("ok") is True, "down", json.dumps(r))
            try:
                rc = proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                rc = None
            check(rc == 0, f"the daemon exits 0 (exit {rc})")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()

    print(f"1..{len(results)}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
