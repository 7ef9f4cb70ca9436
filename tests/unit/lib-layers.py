#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The layers of src/ hold on the built archives (issue 13, point 3).

Usage: lib-layers.py NM NAME=ARCHIVE...

For every library archive, each undefined symbol that another of tandem's
libraries defines must come from a library it may depend on: one listed
below, or one those depend on. A call into a layer above, or sideways,
prints the symbol, the object that calls it and the library that defines
it, and the test fails. A symbol defined by two libraries fails too.
Prints TAP.
"""
import subprocess
import sys

# Who may link whom, directly; what they depend on is allowed too.
ALLOWED = {
    'base': [],
    'identity': ['base'],
    'chan': ['identity'],
    'sync': ['base'],
    'relay_client': ['identity'],
    'relay': ['base'],            # the relay server (relay/)
    'tfs': ['base'],              # the FUSE adapter (fuse/)
    'daemon': ['sync', 'chan', 'relay_client', 'tfs'],
    'cli': ['daemon'],
    'selftest': ['cli', 'relay'],
}

DEFINED = set('TDBRCGSVWiu')


def closure(name, seen=None):
    seen = set() if seen is None else seen
    for dep in ALLOWED[name]:
        if dep not in seen:
            seen.add(dep)
            closure(dep, seen)
    return seen


def symbols(nm, archive):
    """Yields (object, symbol, type) for the global symbols of an archive."""
    out = subprocess.run([nm, '-A', '-P', archive], check=True, capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        # "lib.a[obj.o]: symbol T 0 10" (GNU) or "lib.a:obj.o: symbol T ..." (llvm)
        where, _, rest = line.partition(': ')
        parts = rest.split()
        if len(parts) < 2:
            continue
        obj = where.rsplit('[', 1)[-1].rstrip(']') if '[' in where else where.rsplit(':', 1)[-1]
        yield obj, parts[0], parts[1]


def main():
    nm = sys.argv[1]
    if not nm:
        print('1..0 # SKIP no nm (binutils or llvm) to read the archives with')
        return 77
    libs = dict(arg.split('=', 1) for arg in sys.argv[2:])
    unknown = sorted(set(libs) - set(ALLOWED))
    if unknown:
        print('1..0 # error: no layer for ' + ', '.join(unknown))
        return 1

    defs = {}      # symbol -> library
    dups = []
    undefs = {}    # library -> [(object, symbol)]
    for name, archive in sorted(libs.items()):
        undefs[name] = []
        for obj, sym, typ in symbols(nm, archive):
            if typ == 'U':
                undefs[name].append((obj, sym))
            elif typ in DEFINED:
                if sym in defs and defs[sym] != name:
                    dups.append(f'{sym} in {defs[sym]} and {name} ({obj})')
                defs.setdefault(sym, name)

    n = 0
    failed = 0
    for name in sorted(libs):
        allowed = closure(name)
        bad = sorted({(obj, sym, defs[sym]) for obj, sym in undefs[name]
                      if sym in defs and defs[sym] != name and defs[sym] not in allowed})
        n += 1
        if bad:
            failed += 1
            print(f'not ok {n} - {name} calls only into '
                  f'{", ".join(sorted(allowed)) or "nothing of tandem"}')
            for obj, sym, owner in bad:
                print(f'#   {name}: {obj} uses {sym} from {owner} (not a layer below it)')
        else:
            print(f'ok {n} - {name} calls only into '
                  f'{", ".join(sorted(allowed)) or "nothing of tandem"}')
    n += 1
    if dups:
        failed += 1
        print(f'not ok {n} - every symbol has one library')
        for d in dups:
            print('#   defined twice: ' + d)
    else:
        print(f'ok {n} - every symbol has one library')
    print(f'1..{n}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
