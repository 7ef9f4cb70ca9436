#!/usr/bin/env python3
# Writes the seed corpus of fuzz_engine.c into tests/fuzz/corpus/engine/:
# a handful of realistic peer conversations in the harness's input format
# (see the comment at the top of fuzz_engine.c; the opcodes and tables here
# must match it). Run from anywhere; it overwrites the seeds it owns and
# leaves other files (crash reproducers) alone.
#
#   tests/fuzz/gen-engine-corpus.py
import os
import struct

FL_LAZY, FL_STRUCTURED, FL_SYMLINKS_ALL, FL_CACHE_SMALL, FL_RATE, FL_UMASK, FL_HUGE = (
    1, 2, 4, 8, 16, 32, 64)
(OP_RAW, OP_START, OP_INDEX, OP_DONE, OP_ANSWER, OP_ANSWER_ALL, OP_REQUEST,
 OP_CANCEL, OP_TICK, OP_ENSURE, OP_RECONNECT, OP_LOCAL, OP_ROOM) = range(13)

# fuzz_engine.c's tables, by name
PATHS = ["a", "b", "c", "d", "d/a", "d/b", "d/e", "d/e/f", "e", "e/a", "big", "l", "d/l",
         ".tandem", "a/b", "sub dir/\u00fc"]
TARGETS = ["a", "d/a", "../outside", "../outside/x", "../../outside", "..", "d",
           "nonexistent"]
# contents: 0 empty, 1 "hello\n", 2 5000 bytes, 3 1 MiB + 100, 4 2 MiB + 1, 5-6 from the input
EMPTY, HELLO, SMALL, TWO_BLOCKS, THREE_BLOCKS, DYN0, DYN1 = range(7)
FILE, DIR, SYMLINK = 0, 1, 2  # kind byte: kind = 1 + b % 3
DELETED = 4
TICK_MS = [1, 40, 101, 500, 2001, 3001, 5001, 60000]
ENS_LEN = {"1": 0, "4k": 1, "1m": 2, "3m": 3, "100": 4, "0": 5, "all": 6, "max-1": 7}
ENS_OFF = {"0": 0, "1m": 1, "end-1": 2, "half": 3, "1t-1": 4, "last-block": 5}


def p(name):
    return PATHS.index(name)


def start(device=0, since=0, expect=0):
    """device: 0 peer A, 6 peer B, 7 our own id; expect: 0 none, 1 the engine's id."""
    return bytes([OP_START, device, since * 16, expect])


def vv_byte(counter):
    """The vector {peer: counter} (0: an empty vector)."""
    return next(v for v in range(256) if v % 3 == min(counter, 1) and
                (counter == 0 or (v >> 2) + 1 == counter))


def entry(path, kind=FILE, content=HELLO, mode=0, mtime=1, vv=1, seq_step=0, deleted=False,
          huge=None, target=None):
    """One entry of OP_INDEX. vv: the peer's counter in the version vector.
    huge: index into huge_sizes (0 = 1 TiB + 1, 1 = 2^52 + 1, 2 = 2^62 + 1, 3 = 1 TiB)."""
    kf = kind | (DELETED if deleted else 0)
    if kind == SYMLINK:
        cs = TARGETS.index(target)
    else:
        cs = content
        if huge is not None:
            cs = 0xc0 | (huge << 3) | content
    return bytes([p(path), kf, mode, cs, mtime & 0xff, vv_byte(vv), seq_step])


def index(*entries):
    return bytes([OP_INDEX, len(entries) - 1]) + b"".join(entries)


def done(b=0):
    return bytes([OP_DONE, b])


def answer(sel=0, how=0):
    """how: 0 right, 1 BLOCK_ERROR, 2 corrupt, 3 short / manifest in chunks,
    4 wrong offset / chunks out of order, 5 a 1 TiB manifest, 6 a chunk short,
    7 right but the request stays (a duplicate answer later)."""
    return bytes([OP_ANSWER, sel, how])


def answer_all(rounds=63):
    return bytes([OP_ANSWER_ALL, rounds])


def request(manifest, req_id, path, content, block=0, bad_hash=False):
    return bytes([OP_REQUEST, 1 if manifest else 0, req_id, p(path),
                  content | (0x80 if bad_hash else 0), block])


def cancel(req_id):
    return bytes([OP_CANCEL, req_id])


def tick(ms):
    return bytes([OP_TICK, TICK_MS.index(ms)])


def ensure(path=None, off="0", length="1", stat=False):
    """path None: the file announced last."""
    return bytes([OP_ENSURE, 0 if path is None else 0x80 | p(path), ENS_OFF[off],
                  ENS_LEN[length] | (8 if stat else 0)])


def reconnect(stay_down=False):
    return bytes([OP_RECONNECT, 1 if stay_down else 0])


def local(path, action, content=HELLO):
    """action: write, unlink, mkdir, chmod, rmdir."""
    a = {"write": 0, "unlink": 2, "mkdir": 3, "chmod": 4, "rmdir": 5}[action]
    return bytes([OP_LOCAL, p(path), a | (content << 3)])


def room(n):
    return bytes([OP_ROOM, {0: 0, 100: 1, 9000: 2, "big": 3}[n]])


def raw(msg):
    return bytes([OP_RAW]) + struct.pack(">H", len(msg)) + msg


# ---- raw messages (docs/SYNC-PROTOCOL.md) ----

PEER_A = bytes(range(1, 9))


def m_start(since=0, expect=bytes(8)):
    return bytes([10]) + PEER_A + struct.pack(">Q", since) + expect


def m_done(seq):
    return bytes([3]) + struct.pack(">Q", seq)


def m_entry(path, kind, size, h, seq, deleted=False, mode=0o644, target=b"", vv=()):
    b = struct.pack(">H", len(path)) + path
    b += bytes([kind, 1 if deleted else 0]) + struct.pack(">HQq", mode, size, 1000000000)
    b += h
    if kind == 3:
        b += struct.pack(">H", len(target)) + target
    b += bytes([len(vv)])
    for dev, ctr in vv:
        b += dev + struct.pack(">Q", ctr)
    return b + struct.pack(">Q", seq)


def m_index(*entries):
    return bytes([2]) + struct.pack(">H", len(entries)) + b"".join(entries)


def m_block_data(req_id, off, data):
    return bytes([5]) + struct.pack(">IQI", req_id, off, len(data)) + data


def m_block_request(req_id, path, h, index, off, length):
    return (bytes([4, ]) + struct.pack(">I", req_id) + struct.pack(">H", len(path)) + path + h +
            struct.pack(">IQI", index, off, length))


def framed(*msgs):
    return b"".join(struct.pack(">H", len(m)) + m for m in msgs)


def seeds():
    S = bytes([FL_STRUCTURED])
    L = bytes([FL_STRUCTURED | FL_LAZY])
    tree = index(entry("d", DIR, mode=1), entry("a", content=HELLO),
                 entry("big", content=THREE_BLOCKS), entry("d/a", content=SMALL),
                 entry("d/b", content=EMPTY), entry("l", SYMLINK, target="a"),
                 entry("e", DIR, mode=1), entry("e/a", content=TWO_BLOCKS))
    yield "plain-fetch-tree", S + start() + tree + done() + answer_all() + tick(101) + \
        answer_all() + tick(101) + tick(2001)
    yield "plain-fetch-wrong-answers", S + start() + tree + done() + answer(0, 2) + \
        answer(0, 3) + answer(0, 4) + answer(0, 6) + answer(1, 1) + answer(0, 7) + \
        answer_all() + tick(2001) + answer_all() + answer(0, 5) + tick(101)
    yield "plain-manifest-chunks", S + start() + index(entry("big", content=THREE_BLOCKS)) + \
        done() + answer(0, 3) + answer_all() + tick(101) + \
        index(entry("e/a", content=TWO_BLOCKS, vv=2)) + done() + answer(0, 4) + tick(2001) + \
        answer_all() + tick(101)
    yield "plain-update-conflict-delete", S + start() + tree + done() + answer_all() + \
        tick(101) + local("a", "write", SMALL) + \
        index(entry("a", content=DYN0, vv=2), entry("b", content=HELLO)) + done() + \
        answer_all() + tick(101) + \
        index(entry("d/a", content=SMALL, deleted=True, vv=2),
              entry("d/b", content=EMPTY, deleted=True, vv=2),
              entry("d", DIR, deleted=True, vv=2, mode=1),
              entry("l", SYMLINK, target="a", deleted=True, vv=2)) + done() + tick(101)
    yield "plain-serve", S + start() + local("b", "write", TWO_BLOCKS) + \
        local("c", "write", HELLO) + tick(101) + request(True, 1, "b", TWO_BLOCKS) + \
        request(False, 2, "b", TWO_BLOCKS, 0) + request(False, 3, "b", TWO_BLOCKS, 1) + \
        request(False, 4, "c", HELLO, 0) + request(False, 5, "c", HELLO, 0, bad_hash=True) + \
        cancel(3) + request(False, 6, "a", HELLO, 0) + tick(101) + room(0) + \
        request(False, 7, "b", TWO_BLOCKS, 1) + room("big") + tick(101)
    yield "plain-reconnect-mid-fetch", S + start() + tree + answer(0, 0) + done() + \
        answer(0, 0) + reconnect() + start(expect=1) + tree + done() + answer_all() + \
        tick(101) + reconnect(stay_down=True) + tick(2001) + reconnect() + start(since=1) + \
        done() + tick(101)
    yield "plain-room-and-retry", S + room(0) + start() + tree + done() + room(9000) + \
        answer(0, 1) + room("big") + tick(2001) + tick(2001) + answer_all() + tick(101)
    yield "plain-symlinks-all-outside", bytes([FL_STRUCTURED | FL_SYMLINKS_ALL]) + start() + \
        index(entry("d", SYMLINK, target="../outside"), entry("l", SYMLINK, target="../outside/x"),
              entry("d/l", SYMLINK, target="../../outside")) + done() + \
        index(entry("d", DIR, vv=2, mode=1), entry("d/a", content=HELLO),
              entry("l", content=SMALL, vv=2)) + done() + answer_all() + tick(101)
    yield "plain-huge-size", S + start() + index(entry("big", huge=0), entry("a")) + done() + \
        answer_all() + tick(101)
    yield "lazy-ensure-ranges", L + start() + tree + done() + tick(101) + \
        ensure("big", "0", "1") + answer_all() + ensure("big", "last-block", "all", stat=True) + \
        answer(0, 0) + answer(0, 2) + answer_all() + ensure("a", "0", "all") + answer_all() + \
        ensure("e/a", "half", "4k") + answer(0, 3) + answer_all() + tick(5001) + tick(101)
    yield "lazy-huge-size", L + start() + index(entry("big", huge=1, content=THREE_BLOCKS)) + \
        done() + ensure("big", "end-1", "1") + ensure("big", "0", "all") + answer_all() + \
        tick(101)
    yield "lazy-huge-1tib", L + start() + index(entry("big", huge=3, content=THREE_BLOCKS)) + \
        done() + ensure("big", "1t-1", "1") + ensure("big", "end-1", "1") + answer(0, 5) + \
        answer_all() + tick(101)
    yield "lazy-huge-every-file", bytes([FL_STRUCTURED | FL_LAZY | FL_HUGE]) + start() + tree + \
        done() + ensure(off="end-1") + ensure("big", "half", "all") + answer_all() + tick(101)
    yield "lazy-cache-evict", bytes([FL_STRUCTURED | FL_LAZY | FL_CACHE_SMALL]) + start() + \
        tree + done() + ensure("big", "0", "all") + answer_all() + ensure("e/a", "0", "all") + \
        answer_all() + tick(5001) + tick(3001) + ensure("big", "0", "1") + answer_all() + \
        tick(60000)
    yield "lazy-replace-while-reading", L + start() + tree + done() + \
        ensure("big", "0", "1m", stat=True) + answer(0, 0) + \
        index(entry("big", content=TWO_BLOCKS, vv=2)) + done() + \
        ensure("big", "1m", "1m", stat=True) + answer_all() + \
        index(entry("big", content=TWO_BLOCKS, vv=3, deleted=True)) + done() + tick(101) + \
        reconnect() + start() + ensure("e/a", "0", "all") + answer_all()
    yield "lazy-serve-and-rate", bytes([FL_STRUCTURED | FL_LAZY | FL_RATE | FL_UMASK]) + \
        start() + tree + done() + request(False, 1, "big", THREE_BLOCKS, 0) + \
        request(True, 2, "a", HELLO) + local("c", "write", TWO_BLOCKS) + \
        request(False, 3, "c", TWO_BLOCKS, 0) + request(False, 4, "c", TWO_BLOCKS, 1) + \
        tick(500) + tick(2001) + ensure("a", "0", "all") + answer_all() + tick(101)

    # raw: length-prefixed messages as they are
    h = bytes(32)
    yield "raw-start-done", bytes([0]) + framed(m_start(), m_done(0), m_done(5))
    yield "raw-index", bytes([0]) + framed(
        m_start(),
        m_index(m_entry(b"docs", 2, 0, h, 1, mode=0o755, vv=((PEER_A, 1),)),
                m_entry(b"docs/x", 1, 6, bytes([7]) * 32, 2, vv=((PEER_A, 1),)),
                m_entry(b"ln", 3, 1, h, 3, target=b"docs", vv=((PEER_A, 1),))),
        m_done(3), m_block_data(1, 0, b"hello\n"), m_block_data(2, 0, b""),
        m_block_request(1, b"docs/x", bytes(32), 0, 0, 6), bytes([9, 0, 0, 0, 1]))
    yield "raw-lazy-index", bytes([FL_LAZY]) + framed(
        m_start(),
        m_index(m_entry(b"f", 1, 3 << 20, bytes([3]) * 32, 1, vv=((PEER_A, 1),))),
        m_done(1), m_block_data(1, 0, bytes(100)))
    yield "raw-before-start", bytes([0]) + framed(m_done(1), m_start())


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "engine")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
