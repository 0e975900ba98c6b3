"""Memory manager end to end: nothing lost while the host reclaims hard.

The guest fills 128 MiB with a known mix (zero, duplicate, random, text) and
keeps re-reading and rewriting it for several rounds, verifying every byte,
while the host runs the manager at cold-age 0 and forces extra passes with
QMP mm-reclaim. Each case checks: every round reports mismatches=0 and the
guest ends with "fill: ok"; reclaim really happened (host-resident fell, zero,
compressed and shared pages were produced, pages were faulted back in);
no checksum failure. Cases: anon on 1 and 2 vCPUs, memfd on 2 vCPUs,
hugetlb 2M on 1 vCPU (huge pages reserved and the pool restored), THP
(KVM's 2 MiB mappings before and after are reported). Also option errors,
mm-reclaim without --mm, and KSM mode figures.
"""
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import lib  # noqa: E402
from lib import Skip  # noqa: E402

MiB = 1 << 20
FILL = "workload=fill size=128M mix=zero:25,dup:25,random:25,text:25 rounds=%d"
MM = "cold-age=0,max-refault-rate=0,scan-period=300"


def _run_fill(backing_args, cpus, rounds=8, min_reclaims=3, mm=MM):
    args = ["--mem", "256M", "--cpus", str(cpus), "--mm", mm] + backing_args
    with lib.start_vm(args, append=FILL % rounds) as vm:
        vm.wait_for(r"fill: round 1 ", 120)
        q = vm.qmp()
        before = q.cmd("query-memory-manager")
        low = before["host-resident"]
        reclaims = []
        deadline = time.time() + 240
        while time.time() < deadline:
            if "fill: ok" in vm.stdout() or vm.proc.poll() is not None:
                break
            try:
                r = q.cmd("mm-reclaim")
                reclaims.append(r)
                st = q.cmd("query-memory-manager")
            except (ConnectionError, OSError):
                # the guest may finish and the VM exit between the check and the command
                assert vm.proc.wait(timeout=60) is not None
                break
            low = min(low, st["host-resident"])
            time.sleep(0.2)
        status, out = vm.wait(timeout=240)
        # the console is the guest's verdict on every byte
        rounds_seen = re.findall(r"fill: round (\d+) .* mismatches=(\d+)", out)
        assert status == 0, "guest exit status %s:\n%s\n%s" % (status, out[-3000:], vm.stderr()[-3000:])
        assert "fill: ok" in out and "FAILED" not in out, out[-3000:]
        assert len(rounds_seen) == rounds, rounds_seen
        assert all(m == "0" for _, m in rounds_seen), rounds_seen
        assert len(reclaims) >= min_reclaims, \
            "guest finished before %d forced passes (%d): raise rounds" % (min_reclaims, len(reclaims))
        return before, reclaims, low, vm


def _check_reclaimed(before, reclaims, low, label):
    zero = sum(r["zero-pages"] for r in reclaims)
    comp = sum(r["compressed-pages"] for r in reclaims)
    shared = sum(r["shared-pages"] for r in reclaims)
    freed = sum(r["freed-bytes"] for r in reclaims)
    print("  %s: %d passes, zero=%d compressed=%d shared=%d freed=%d MiB, host-resident %d -> %d MiB"
          % (label, len(reclaims), zero, comp, shared, freed >> 20, before["host-resident"] >> 20, low >> 20))
    assert zero > 0 and comp > 0 and shared > 0, reclaims
    # The guest keeps all 128 MiB it filled and verifies every byte each
    # round, so without reclaim at least that much stays resident. (The
    # first sample is no baseline: at cold-age 0 reclaim may already have
    # taken most of it by then, the faster the devices the sooner.)
    assert low < 128 * MiB - 16 * MiB, (before["host-resident"], low)


def _query_at_end(args, cpus):
    """A short run whose figures are read while the VM still lives."""
    with lib.start_vm(["--mem", "256M", "--cpus", str(cpus), "--mm", MM] + args,
                      append=FILL % 0 + " quiet") as vm:
        vm.wait_for(r"cpu 0: up", 60)
        q = vm.qmp()
        time.sleep(1.5)
        q.cmd("mm-reclaim")
        time.sleep(1.0)
        q.cmd("mm-reclaim")
        time.sleep(0.5)
        st = q.cmd("query-memory-manager")
        out = vm.stdout()
        assert "FAILED" not in out, out[-2000:]
        return st


def _check_figures(st):
    for k in ("guest-ram", "host-resident", "zero-pages", "compressed-pages", "compressed-bytes",
              "compression-ratio", "shared-pages", "shared-bytes-saved", "refaults",
              "fault-in-p50-us", "fault-in-p99-us", "scanner-cpu-seconds", "metadata-bytes",
              "kvm-pages-4k", "kvm-pages-2m", "ballooned-pages", "discarded-bytes"):
        assert k in st, (k, st)
    assert st["refaults"] > 0, st
    assert st["checksum-failures"] == 0, st
    assert st["fault-in-p50-us"] > 0 and st["fault-in-p99-us"] >= st["fault-in-p50-us"], st
    assert st["scanner-cpu-seconds"] > 0, st
    assert st["metadata-bytes"] * 200 <= st["guest-ram"], st   # <= 0.5%


def test_mm_anon_1cpu():
    before, reclaims, low, _ = _run_fill(["--mem-backing", "anon"], 1)
    _check_reclaimed(before, reclaims, low, "anon 1 vCPU")


def test_mm_anon_2cpu():
    before, reclaims, low, _ = _run_fill(["--mem-backing", "anon"], 2)
    _check_reclaimed(before, reclaims, low, "anon 2 vCPUs")


def test_mm_memfd_2cpu():
    before, reclaims, low, _ = _run_fill(["--mem-backing", "memfd"], 2)
    _check_reclaimed(before, reclaims, low, "memfd 2 vCPUs")


def test_mm_hugetlb_1cpu():
    with lib.hugepages(128):
        before, reclaims, low, _ = _run_fill(["--mem-backing", "hugetlb", "--hugepage-size", "2M"], 1,
                                             rounds=10, min_reclaims=2)
        huge = sum(r["huge-pages"] for r in reclaims)
        print("  hugetlb: %d huge pages evicted whole" % huge)
        assert huge > 0, reclaims
        _check_reclaimed(before, reclaims, low, "hugetlb 2M 1 vCPU")


def test_mm_figures_thp():
    st = _query_at_end(["--mem-backing", "thp"], 2)
    _check_figures(st)
    print("  thp: kvm pages_2m before reclaim %s, now %s; pages_4k now %s"
          % (st.get("kvm-pages-2m-before-reclaim"), st["kvm-pages-2m"], st["kvm-pages-4k"]))
    assert "kvm-pages-2m-before-reclaim" in st
    # THP gave KVM 2 MiB mappings until reclaim's dirty logging and 4 KiB evictions split them
    assert st["kvm-pages-2m-before-reclaim"] > 0, st
    assert st["kvm-pages-2m"] < st["kvm-pages-2m-before-reclaim"], st


def test_mm_option_errors():
    status, out, err = lib.run_vm(["--mem", "64M", "--mm", "policy=lru"], append="")
    assert status != 0 and "policy=lru" in err and "clock" in err, err
    status, out, err = lib.run_vm(["--mem", "64M", "--mm", "zstd-level=x"], append="")
    assert status != 0 and "zstd-level" in err, err
    status, out, err = lib.run_vm(["--mem", "64M", "--mem-backing", "memfd", "--mm", "ksm=on"], append="")
    assert status != 0 and "ksm=on" in err and "anon" in err, err


def test_mm_reclaim_needs_mm():
    with lib.start_vm(["--mem", "64M"], append="workload=idle") as vm:
        q = vm.qmp()
        r = q.cmd_raw("mm-reclaim")
        assert "error" in r and "--mm" in r["error"]["desc"], r
        st = q.cmd("query-memory-manager")
        assert st["reclaim"] is False and st["guest-ram"] == 64 * MiB, st
        r = q.cmd_raw("mm-reclaim", bytes=-1)
        assert "error" in r, r


def test_mm_ksm_mode():
    with lib.start_vm(["--mem", "256M", "--mm", "ksm=on"], append=FILL % 0 + " quiet") as vm:
        vm.wait_for(r"cpu 0: up", 60)
        time.sleep(0.5)
        st = vm.qmp().cmd("query-memory-manager")
        assert st["reclaim"] is False, st
        k = st["ksm"]
        assert "sys-pages-sharing" in k and "sys-run" in k, k
        assert "ksm-merging-pages" in k or "ksm-rmap-items" in k, k
