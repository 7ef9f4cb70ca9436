#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Packaging metadata stays in step with the code (PRODUCT.md §11):

- the version in meson.build, packaging/debian/changelog (upstream part)
  and packaging/rpm/tandem.spec is the same;
- every command of `tandem --help` has its entry in man/tandem.1.scd, and
  every option printed by `tandem --help`, `tandem CMD --help` and
  `tandem-relay --help` is named in the matching man page;
- the files the Debian .install lists and the RPM %files name are the ones
  meson installs (binaries, man pages, units).

Usage: check-metadata.py --source DIR --tandem EXE --relay EXE
Output is TAP; exit status 0 when every check passed.
"""
import argparse
import re
import subprocess
import sys

results = []


def check(ok, name, detail=""):
    results.append(ok)
    print(f"{'ok' if ok else 'not ok'} {len(results)} - {name}")
    if not ok and detail:
        for line in detail.splitlines():
            print(f"#   {line}")


def run_help(argv):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=30)
    return p.returncode, p.stdout


def options_in(text):
    return sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True)
    ap.add_argument("--tandem", required=True)
    ap.add_argument("--relay", required=True)
    a = ap.parse_args()
    src = a.source

    meson = open(f"{src}/meson.build").read()
    m = re.search(r"^\s*version\s*:\s*'([^']+)'", meson, re.M)
    version = m.group(1) if m else None
    m = re.match(r"tandem \(([^)]+)\)", open(f"{src}/packaging/debian/changelog").read())
    deb = m.group(1).rsplit("-", 1)[0] if m else None
    m = re.search(r"^Version:\s*(\S+)", open(f"{src}/packaging/rpm/tandem.spec").read(), re.M)
    rpm = m.group(1) if m else None
    check(version is not None and version == deb == rpm,
          f"one version everywhere: meson.build {version}, debian/changelog {deb}, "
          f"tandem.spec {rpm}",
          "bump packaging/debian/changelog (dch -v) and tandem.spec (Version:, "
          "%changelog) with meson.build's version")

    # tandem(1): commands and options.
    page = open(f"{src}/man/tandem.1.scd").read()
    rc, top = run_help([a.tandem, "--help"])
    check(rc == 0, "tandem --help exits 0", top)
    cmds = re.findall(r"^  ([a-z]+)  ", top.split("Commands:", 1)[-1].split("\n\n", 1)[0],
                      re.M)
    check(len(cmds) > 0, f"tandem --help lists commands ({' '.join(cmds)})", top)
    missing = [c for c in cmds if not re.search(rf"^\*{c}\*", page, re.M)]
    check(not missing, "man/tandem.1.scd has an entry for every command",
          f"no '*CMD*' entry for: {' '.join(missing)}")
    missing = []
    for opt in options_in(top):
        if f"*{opt}*" not in page:
            missing.append(f"tandem {opt}")
    for c in cmds:
        rc, text = run_help([a.tandem, c, "--help"])
        if rc != 0:
            missing.append(f"(tandem {c} --help exits {rc})")
        for opt in options_in(text.split("\n", 1)[1] if "\n" in text else text):
            if opt != "--home" and f"*{opt}*" not in page:
                missing.append(f"tandem {c} {opt}")
    check(not missing, "man/tandem.1.scd names every option of tandem's --help texts",
          "not in the man page: " + ", ".join(missing))

    # tandem-relay(8).
    page = open(f"{src}/man/tandem-relay.8.scd").read()
    rc, text = run_help([a.relay, "--help"])
    check(rc == 0, "tandem-relay --help exits 0", text)
    missing = [o for o in options_in(text) if f"*{o}*" not in page]
    check(not missing, "man/tandem-relay.8.scd names every option of tandem-relay --help",
          "not in the man page: " + ", ".join(missing))

    # What the packages ship is what meson installs.
    want_deb = {
        "tandem": {"usr/bin/tandem", "usr/share/man/man1/tandem.1",
                   "usr/lib/systemd/user/tandem@.service"},
        "tandem-relay": {"usr/bin/tandem-relay", "usr/share/man/man8/tandem-relay.8",
                         "lib/systemd/system/tandem-relay.service"},
    }
    for pkg, want in want_deb.items():
        have = {line.strip() for line in open(f"{src}/packaging/debian/{pkg}.install")
                if line.strip() and not line.startswith("#")}
        check(have == want, f"debian/{pkg}.install lists {', '.join(sorted(want))}",
              f"has: {sorted(have)}")
    spec = open(f"{src}/packaging/rpm/tandem.spec").read()
    want_rpm = ["%{_bindir}/tandem\n", "%{_bindir}/tandem-relay\n",
                "%{_userunitdir}/tandem@.service", "%{_unitdir}/tandem-relay.service",
                "%{_mandir}/man1/tandem.1*", "%{_mandir}/man8/tandem-relay.8*"]
    missing = [w.strip() for w in want_rpm if w not in spec]
    check(not missing, "tandem.spec %files names the binaries, units and man pages",
          "missing: " + ", ".join(missing))

    print(f"1..{len(results)}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
