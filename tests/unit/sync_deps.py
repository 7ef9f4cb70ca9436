#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""
The object files of src/sync form no dependency cycle (docs/SYNC.md
"Parts and threads"): object A depends on B when A uses a symbol B
defines. Reads the core static library with nm; prints every cycle found
(one per strongly connected group) and fails. TAP output.

usage: sync_deps.py NM LIBRARY [FOLDER]

FOLDER names the library's folder in the messages (default src/sync); the
daemon's library is checked the same way (docs/DAEMON.md, "Layers").
"""
import subprocess
import sys

PREFIX = ""


def member_name(line):
    # "build/src/sync/libtandem_sync.a.p/engine.c.o:" (thin archive) or "engine.c.o:"
    name = line[:-1].rsplit("/", 1)[-1]
    if name.endswith(".o"):
        name = name[:-2]
    if name.startswith(PREFIX):
        return name[len(PREFIX):]
    return None


def read_objects(nm, lib):
    out = subprocess.run([nm, lib], check=True, capture_output=True, text=True).stdout
    defs, uses, cur = {}, {}, None
    for line in out.splitlines():
        if not line.strip():
            continue
        if line.endswith(":") and " " not in line.strip():
            cur = member_name(line.strip())
            if cur:
                defs.setdefault(cur, set())
                uses.setdefault(cur, set())
            continue
        if cur is None:
            continue
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            uses[cur].add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBRCGSVWi" and parts[1].isupper():
            defs[cur].add(parts[2])
    return defs, uses


def graph(defs, uses):
    owner = {}
    for obj, syms in defs.items():
        for s in syms:
            owner[s] = obj
    edges = {obj: {} for obj in defs}
    for obj, syms in uses.items():
        for s in sorted(syms):
            o = owner.get(s)
            if o and o != obj:
                edges[obj].setdefault(o, []).append(s)
    return edges


def sccs(edges):
    """Tarjan's strongly connected components."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [c for c in out if len(c) > 1]


def one_cycle(edges, comp):
    """A shortest cycle through comp's first member, as a list of nodes."""
    start, inside = comp[0], set(comp)
    prev, queue = {start: None}, [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(edges[v]):
            if w not in inside:
                continue
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return comp


def main():
    if len(sys.argv) not in (3, 4):
        print("usage: sync_deps.py NM LIBRARY [FOLDER]", file=sys.stderr)
        return 2
    folder = sys.argv[3] if len(sys.argv) == 4 else "src/sync"
    defs, uses = read_objects(sys.argv[1], sys.argv[2])
    print("1..1")
    if not defs:
        print("not ok 1 - no %s objects found in %s" % (folder, sys.argv[2]))
        return 1
    edges = graph(defs, uses)
    bad = sccs(edges)
    for comp in bad:
        cyc = one_cycle(edges, comp)
        print("# cycle among %s:" % ", ".join(c + ".o" for c in comp))
        for a, b in zip(cyc, cyc[1:]):
            syms = edges[a][b]
            more = " ..." if len(syms) > 4 else ""
            print("#   %s.o -> %s.o (%s%s)" % (a, b, ", ".join(syms[:4]), more))
    if bad:
        print("not ok 1 - the objects of %s form %d dependency cycle(s)" % (folder, len(bad)))
        return 1
    print("ok 1 - the %d objects of %s form no dependency cycle" % (len(defs), folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
