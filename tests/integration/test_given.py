"""Guest data is never lost to pages the guest gave up and then reused.

Free page reporting lets a guest reuse reported pages without telling the
host; on hugetlb those 4 KiB pieces live inside huge pages that the balloon
and the reclaim scanner discard whole. These tests run the guest's churn
workload (allocate, fill, verify, free, again: every freed block is
reported and soon reused) under the combinations that once lost data, and
check every byte through the guest's own verification:

- the reproduction of the data-loss report: hugetlb 2M, cold-age 0, a 10 ms
  scan period (background whole-page eviction at full speed);
- hugetlb with 1 GiB pages and the balloon inflating and deflating (partial
  huge pages everywhere);
- a soak that combines what the other tests keep apart, on anon and hugetlb:
  free page reporting, balloon inflate/deflate, forced and background
  reclaim, the guest reusing memory all the while;
- a fault that cannot be resolved (the huge page pool emptied under an
  evicted guest) stops the VM within seconds with its own exit status,
  whichever thread touched the page.
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
GiB = 1 << 30
STOP_UNRESOLVABLE = 68   # vmm/lib/stop.h


def _churn_verdict(status, out, err, rounds):
    lines = re.findall(r"^churn: round (\d+) .*mismatches=(\d+)", out, re.M)
    assert status == 0, "exit %s:\n%s\n%s" % (status, out[-3000:], err[-3000:])
    assert "churn: ok rounds=%d" % rounds in out and "mismatch " not in out, out[-3000:]
    assert len(lines) == rounds and all(m == "0" for _, m in lines), lines


def test_hugetlb_reported_reuse_reproduction():
    # the exact command of the data-loss report, which read zeros back
    with lib.hugepages(130):
        status, out, err = lib.run_vm(
            ["--mem", "256M", "--mem-backing", "hugetlb",
             "--mm", "cold-age=0,scan-period=10,max-refault-rate=0"],
            append="workload=churn size=64M rounds=15 pause=50", timeout=240)
    lib.check_sanitizers(err)
    _churn_verdict(status, out, err, 15)


def _drive(vm, seconds, ram, reclaim=True, low=96 * MiB):
    """Host side of a soak: forced reclaim every 0.2 s, the balloon target
    swinging between ram - low and ram every second. Returns what it saw."""
    q = vm.qmp()
    seen = {"actual_min": ram, "reclaims": 0, "freed": 0}
    deadline = time.time() + seconds
    n = 0
    try:
        while time.time() < deadline and vm.proc.poll() is None:
            if n % 5 == 0:
                q.cmd("balloon", value=ram - low if (n // 5) % 2 == 0 else ram)
            if reclaim:
                r = q.cmd("mm-reclaim")
                seen["reclaims"] += 1
                seen["freed"] += r["freed-bytes"]
            seen["actual_min"] = min(seen["actual_min"], q.cmd("query-balloon")["actual"])
            n += 1
            time.sleep(0.2)
        seen["mm"] = q.cmd("query-memory-manager")
        q.cmd("balloon", value=ram)
    except (ConnectionError, OSError):
        pass   # the guest finished and the VM exited: its console has the verdict
    finally:
        q.close()
    return seen


def _soak(backing_args, seconds=20):
    """The guest churns until told to stop (rounds=0), verifying every round;
    the host drives for `seconds`, then quits the VM."""
    ram = 256 * MiB
    args = ["--mem", "256M", "--mm", "cold-age=0,scan-period=100,max-refault-rate=0",
            "--balloon", "free-page-reporting=on"] + backing_args
    with lib.start_vm(args, append="workload=churn size=64M rounds=0 pause=100") as vm:
        vm.wait_for(r"churn: round 1 ", 120)
        seen = _drive(vm, seconds, ram)
        assert vm.proc.poll() is None, "the guest stopped during the soak:\n" + vm.stdout()[-3000:]
        q = vm.qmp()
        q.cmd("quit")
        q.close()
        status, out = vm.wait(timeout=120)
    rounds = re.findall(r"^churn: round (\d+) .*mismatches=(\d+)", out, re.M)
    assert status == 0, (status, out[-3000:])
    assert "mismatch " not in out and "FAILED" not in out, out[-3000:]
    assert len(rounds) >= 5 and all(m == "0" for _, m in rounds), rounds
    assert seen["reclaims"] >= 10, seen
    assert seen["actual_min"] < ram, "the guest never inflated: %s" % seen
    mm = seen["mm"]
    assert mm["reported-bytes"] > 0 or mm["discarded-bytes"] > 0, mm
    assert mm["checksum-failures"] == 0 and mm["unresolvable-faults"] == 0, mm
    assert seen["freed"] > 0 and mm["refaults"] > 0, (seen, mm)
    seen["rounds"] = len(rounds)
    return seen


def test_soak_given_pages_anon():
    _soak(["--mem-backing", "anon"])


def test_soak_given_pages_hugetlb_2m():
    with lib.hugepages(130):
        seen = _soak(["--mem-backing", "hugetlb"])
    print("  hugetlb 2M soak: %d guest rounds verified, %d forced passes, %d MiB freed, live given pieces "
          "kept: %d" % (seen["rounds"], seen["reclaims"], seen["freed"] >> 20, seen["mm"]["huge-live-pieces"]))


def test_hugetlb_1g_balloon_and_reporting():
    # 1 GiB pages: every huge page is partly given almost all the time
    with lib.hugepages(1, GiB):
        args = ["--mem", "1G", "--mem-backing", "hugetlb", "--hugepage-size", "1G",
                "--balloon", "free-page-reporting=on"]
        with lib.start_vm(args, append="workload=churn size=128M rounds=8 pause=100") as vm:
            vm.wait_for(r"churn: round 1 ", 180)
            seen = _drive(vm, 15, GiB, reclaim=False, low=512 * MiB)
            status, out = vm.wait(timeout=300)
            _churn_verdict(status, out, vm.stderr(), 8)
    assert seen["actual_min"] < GiB, seen


def test_unresolvable_fault_stops_within_seconds():
    # Evict the whole guest, then take every free huge page out of the pool:
    # the next touch (a vCPU, or the main loop returning a stats buffer)
    # cannot be resolved. The VM must stop with its own status, saying why.
    pool = os.path.join(lib.hugepage_dir(2 << 20), "nr_hugepages")
    with lib.hugepages(130):
        with open(pool) as f:
            before = int(f.read())
        try:
            args = ["--mem", "256M", "--mem-backing", "hugetlb", "--balloon", "stats-period=1",
                    "--mm", "cold-age=0,scan-period=60000,max-refault-rate=0"]
            with lib.start_vm(args, append="workload=idle") as vm:
                vm.wait_for(r"cpu 0: up", 60)
                q = vm.qmp()
                r = q.cmd("mm-reclaim")
                assert r["huge-pages"] > 0, r
                with open(os.path.join(lib.hugepage_dir(2 << 20), "free_hugepages")) as f:
                    free = int(f.read())
                with open(pool, "w") as f:
                    f.write(str(before - free))
                t0 = time.time()
                status, _ = vm.wait(timeout=60)
                took = time.time() - t0
                err = vm.stderr()
        finally:
            with open(pool, "w") as f:
                f.write(str(before))
    assert status == STOP_UNRESOLVABLE, (status, err[-3000:])
    assert "nr_hugepages" in err and "cannot be restored" in err, err[-3000:]
    assert took < 15, "the VM took %.1f s to stop" % took
    print("  stopped %.1f s after the pool emptied" % took)
