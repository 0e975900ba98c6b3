#!/usr/bin/env python3
"""make bench, TLB table: the touch workload (8-byte read-modify-writes over
768 MiB, random and sequential at a 4 KiB stride) over guest page size (4K,
2M) x host backing (anon 4 KiB, THP, hugetlb 2 MiB), each as a ratio to
4K guest / anon 4K host of the same pattern in the same run, with the
translation summary (query-translation-summary) of each run beside it:
what the guest mapped with 2 MiB pages, how much of the host backing is
huge, and KVM's own pages_4k/pages_2m. Runs are interleaved so drift on
this shared machine hits every configuration alike; the median of REPEAT
runs is shown. The hugetlb pool is raised for the hugetlb runs and restored
afterwards (lib.hugepages), also on failure.

  python3 bench/tlb.py [--quick]
"""

import os
import re
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
import lib  # noqa: E402

MINIVMM = os.path.join(lib.BUILD, "minivmm")
REPEAT = 1 if "--quick" in sys.argv else 3
MEM, SIZE, ACCESSES = "1G", "768M", 20000000
GUEST = ("4K", "2M")
HOST = (("anon", 0), ("thp", 0), ("hugetlb", 520))   # (backing, 2 MiB pages it needs)
PATTERNS = ("random", "seq")
# EPT/NPT walk references, 4-level stages: g * (h + 1) + h (mm/translate.c)
REFS = {("4K", "anon"): 24, ("2M", "anon"): 19, ("4K", "thp"): 19, ("2M", "thp"): 15,
        ("4K", "hugetlb"): 19, ("2M", "hugetlb"): 15}


def run_one(guest, backing, pattern):
    """One touch run; returns (ns per access, the translation summary)."""
    append = "workload=touch size=%s accesses=%d pattern=%s hold=600 quiet" % (SIZE, ACCESSES, pattern)
    vm = lib.Vm(["--mem", MEM, "--guest-pages", guest, "--mem-backing", backing], append=append)
    try:
        vm.wait_for(r"^touch: holding", timeout=300)
        m = re.search(r"ns_per_access=([\d.]+)", vm.stdout())
        q = vm.qmp()
        s = q.cmd("query-translation-summary")
        q.close()
        return float(m.group(1)), s
    finally:
        vm.close()


def summary_cells(s):
    g = s["guest"]["mapped-ram-bytes"]
    tot = sum(g.values()) or 1
    k = s.get("kvm", {})
    return "%3.0f%% | %3.0f%% | %d / %d | %s" % (
        100.0 * (tot - g.get("4k", 0)) / tot, 100.0 * s["huge-fraction"]["host"],
        k.get("pages_4k", -1), k.get("pages_2m", -1), "yes" if s["stages-agree"] else "no")


def main():
    lib.MINIVMM = MINIVMM   # the optimised build, not the sanitizer one
    print("TLB table, %s, %d cores, kernel %s: touch %s of %s guest RAM, %d accesses, median of %d"
          % (time.strftime("%Y-%m-%d"), os.cpu_count(), os.uname().release, SIZE, MEM, ACCESSES, REPEAT),
          flush=True)
    ns = {}
    summ = {}
    skipped = set()
    for _ in range(REPEAT):
        for backing, huge in HOST:
            try:
                ctx = lib.hugepages(huge) if huge else None
                if ctx:
                    ctx.__enter__()
                try:
                    for guest in GUEST:
                        for pattern in PATTERNS:
                            v, s = run_one(guest, backing, pattern)
                            ns.setdefault((guest, backing, pattern), []).append(v)
                            summ[(guest, backing, pattern)] = s
                finally:
                    if ctx:
                        ctx.__exit__(None, None, None)
            except lib.Skip as e:
                skipped.add(backing)
                print("skip %s: %s" % (backing, e), flush=True)
    print()
    print("| guest / host pages | pattern | ns per access | vs 4K/anon 4K | EPT/NPT refs per miss | "
          "guest 2M-mapped | host huge | KVM pages_4k / pages_2m | stages agree |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for pattern in PATTERNS:
        base = statistics.median(ns[("4K", "anon", pattern)])
        for backing, _ in HOST:
            for guest in GUEST:
                key = (guest, backing, pattern)
                if key not in ns:
                    continue
                v = statistics.median(ns[key])
                print("| %s / %s | %s | %.2f | %.2fx | %d | %s |" % (
                    guest, "anon 4K" if backing == "anon" else backing + (" 2M" if backing == "hugetlb" else ""),
                    pattern, v, v / base, REFS[(guest, backing)], summary_cells(summ[key])), flush=True)
    print()
    print("Shadow paging here (nested KVM, no EPT/NPT): the CPU walks KVM's shadow tables, one "
          "dimension, whose leaves are at most min(guest page, host page); the EPT/NPT column is "
          "what hardware two-dimensional paging would take and is not what these ratios measure. "
          "KVM's pages_2m counts the 2 MiB shadow leaves it built.")


if __name__ == "__main__":
    main()
