#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_virtio (corpus/fuzz_virtio/): programs in
the target's operation encoding (see fuzz_virtio.c) that bring the balloon
up as the Linux driver does and use each queue once, so the fuzzer starts
from working inflate, deflate, stats and free page reporting exchanges."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_virtio")
STATS_VQ, DEFLATE_ON_OOM, REPORTING = 1, 2, 5


def gpa(a):                       # pick_gpa mode 2: u32 % (RAM + 8K)
    return struct.pack("<BI", 2, a)


def driver_up(features, sizes):   # op 5
    return bytes([5]) + struct.pack("<IB", features, 1) + bytes([len(sizes)]) + bytes(sizes)


def desc(q, i, addr, length, flags=0, nxt=0):   # op 6, 16-bit length
    return bytes([6, q, i]) + gpa(addr) + bytes([0]) + struct.pack("<HBB", length, flags, nxt)


def push(q, head):                # op 7, head < num
    return bytes([7, q, 0, head])


def notify(q):                    # op 3
    return bytes([3, 0, q])


def pfns(addr, lst):              # op 8, each PFN < 128 as one byte
    return bytes([8]) + gpa(addr) + bytes([len(lst)]) + bytes(lst)


def stats(addr, entries):         # op 9
    out = bytes([9]) + gpa(addr) + bytes([len(entries)])
    for tag, val in entries:
        out += bytes([tag]) + struct.pack("<Q", val)
    return out


ALL = 1 << STATS_VQ | 1 << DEFLATE_ON_OOM | 1 << REPORTING
seeds = {
    "inflate": driver_up(ALL, [3, 3, 3, 3]) + pfns(0x40000, [100, 101, 102, 110]) +
    desc(0, 0, 0x40000, 16) + push(0, 0) + notify(0),
    "inflate-deflate": driver_up(ALL, [3, 3, 3, 3]) + pfns(0x40000, [100, 101, 7]) +
    desc(0, 0, 0x40000, 12) + push(0, 0) + notify(0) + pfns(0x41000, [101, 7]) +
    desc(1, 0, 0x41000, 8) + push(1, 0) + notify(1),
    "chain": driver_up(ALL, [3, 3, 3, 3]) + pfns(0x40000, [120, 121]) + pfns(0x40100, [122]) +
    desc(0, 0, 0x40000, 8, 1, 1) + desc(0, 1, 0x40100, 4) + push(0, 0) + notify(0),
    "stats": driver_up(1 << STATS_VQ, [2, 2, 2]) +
    stats(0x50000, [(0, 1), (1, 2), (4, 1 << 20), (5, 1 << 28), (15, 9)]) +
    desc(2, 0, 0x50000, 50) + push(2, 0) + notify(2) + bytes([11]) +
    desc(2, 1, 0x50000, 20) + push(2, 1) + notify(2),
    "report": driver_up(1 << REPORTING, [2, 2, 2]) + desc(2, 0, 0x60000, 0x2000, 2) +
    push(2, 0) + notify(2),
    "target": bytes([10]) + struct.pack("<H", 128) + driver_up(ALL, [1, 1]) +
    bytes([2, 0x40, 0x81]) + struct.pack("<Q", 64) + bytes([2, 0x42]),
}
os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
