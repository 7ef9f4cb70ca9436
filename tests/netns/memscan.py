#!/usr/bin/env python3
"""memscan.py PID MARKER...: search a live process's memory for plaintext.

Reads every readable mapping of PID through /proc/PID/mem (root, or the
same user with ptrace permission) and looks for each MARKER (a string).
Mappings over 1 GiB are skipped: in a sanitizer build they are the shadow
memory, terabytes reserved (reading them would take hours), never data.
Prints what it found; exit 0: none found, 1: a marker found, 2: cannot read.
"""
import re
import sys

HUGE = 1 << 30


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    pid = int(argv[1])
    markers = [m.encode() for m in argv[2:]]
    found = []
    scanned = 0
    skipped = []
    try:
        maps = open("/proc/%d/maps" % pid).read().splitlines()
        mem = open("/proc/%d/mem" % pid, "rb", 0)
    except OSError as e:
        print("cannot read the memory of pid %d: %s" % (pid, e))
        return 2
    for line in maps:
        m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
        if not m or m.group(3)[0] != "r":
            continue
        start, end = int(m.group(1), 16), int(m.group(2), 16)
        if "[vvar" in line or "[vsyscall]" in line:
            continue
        if end - start > HUGE:
            # a sanitizer's shadow memory: terabytes reserved, never data
            skipped.append(line)
            continue
        try:
            mem.seek(start)
            data = mem.read(end - start)
        except (OSError, OverflowError, ValueError):
            continue
        scanned += len(data)
        for mk in markers:
            if mk in data:
                found.append("%s in %s" % (mk.decode(), line))
    if scanned == 0:
        print("read nothing of the memory of pid %d" % pid)
        return 2
    for f in found:
        print("found " + f)
    if found:
        return 1
    note = ""
    if skipped:
        note = ", skipped %d mappings over 1 GiB (sanitizer shadow)" % len(skipped)
    print("scanned %d bytes of pid %d%s: no marker" % (scanned, pid, note))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
