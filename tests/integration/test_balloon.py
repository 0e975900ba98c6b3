"""virtio-balloon end to end: real guests on /dev/kvm driven through QMP.

- inflate a 512 MiB guest to 256 MiB and back under anon, memfd and hugetlb
  2M backing: host resident memory of guest RAM (query-memory-manager's
  host-resident) falls by at least 90% of the inflated amount, BALLOON_CHANGE
  events arrive, and the memory comes back when the guest uses it again;
- stats arrive with plausible values and keep arriving at the polling period;
- deflate-on-oom: a workload needing more than the balloon leaves completes,
  and the balloon gives pages back without the host asking;
- free page reporting: memory freed inside the guest returns to the host;
- option and QMP errors, with and without a balloon device.

Tests that need the guest's balloon driver skip (saying so) while
guest-driver/ still links its driver stub.

    python3 tests/integration/test_balloon.py --bench   end-to-end 1 GiB
        inflate/deflate times as `name: value unit` lines for make bench.
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import lib  # noqa: E402
from lib import Skip  # noqa: E402

MiB = 1 << 20
RAM = 512 * MiB
TARGET = 256 * MiB
QOM = "/machine/peripheral/balloon0"
STAT_NAMES = [
    "stat-swap-in", "stat-swap-out", "stat-major-faults", "stat-minor-faults",
    "stat-free-memory", "stat-total-memory", "stat-available-memory", "stat-disk-caches",
    "stat-htlb-pgalloc", "stat-htlb-pgfail", "stat-oom-kills", "stat-alloc-stalls",
    "stat-async-scans", "stat-direct-scans", "stat-async-reclaims", "stat-direct-reclaims",
]


def _need_driver():
    stub = os.path.join(lib.ROOT, "guest-driver", "drivers_stub.c")
    if os.path.exists(stub):
        raise Skip("the guest has no balloon driver yet (guest-driver/drivers_stub.c is linked)")


def _resident(q, vm):
    """Host resident bytes of guest RAM (hugetlb included)."""
    try:
        return q.cmd("query-memory-manager")["host-resident"]
    except (lib.QmpError, KeyError):
        return lib.smaps_rss(vm.pid)


def _actual(q):
    return q.cmd("query-balloon")["actual"]


def _wait_actual(q, vm, pred, what, timeout=120):
    deadline = time.time() + timeout
    a = _actual(q)
    while not pred(a):
        if time.time() > deadline:
            raise AssertionError("balloon: guest memory stayed at %d MiB, wanted %s within %ss;"
                                 " console:\n%s" % (a >> 20, what, timeout, vm.stdout()[-2000:]))
        if vm.proc.poll() is not None:
            raise AssertionError("VM exited (%s) while waiting for %s:\n%s\n%s"
                                 % (vm.proc.returncode, what, vm.stdout()[-2000:],
                                    vm.stderr()[-2000:]))
        time.sleep(0.2)
        a = _actual(q)
    return a


def _drain_events(q):
    """All events still in the connection, until the VM closes it."""
    try:
        while True:
            obj = q.recv()
            if "event" in obj:
                q.events.append(obj)
    except (ConnectionError, OSError):
        pass
    return q.events


def _quit(vm, q):
    q.cmd("quit")
    status, _ = vm.wait(timeout=60)
    assert status == 0, "minivmm exited %s after quit:\n%s" % (status, vm.stderr()[-2000:])


def _inflate_and_back(backing_args):
    _need_driver()
    # churn keeps 192 MiB busy; it reuses pages once the balloon gives them back.
    # Free page reporting is off: served off the vCPU it runs alongside the
    # churn and hands its freed pages back as fast as they are touched, so
    # resident memory after deflate would measure reporting too (which
    # test_balloon_free_page_reporting covers).
    args = ["--mem", "512M", "--prealloc", "--balloon", "free-page-reporting=off"] + backing_args
    with lib.start_vm(args, append="workload=churn size=192M rounds=0 pause=200 quiet") as vm:
        q = vm.qmp()
        r0 = _resident(q, vm)
        assert r0 >= RAM * 9 // 10, "prealloc left only %d MiB resident" % (r0 >> 20)

        q.cmd("balloon", value=TARGET)
        actual = _wait_actual(q, vm, lambda a: a <= TARGET + MiB, "<= 257 MiB")
        ev = q.wait_event("BALLOON_CHANGE", timeout=10)
        assert 0 < ev["data"]["actual"] <= RAM, ev
        time.sleep(1)
        r1 = _resident(q, vm)
        inflated = RAM - actual
        assert r0 - r1 >= inflated * 9 // 10, (
            "inflating %d MiB freed only %d MiB of host memory (%d -> %d MiB)"
            % (inflated >> 20, (r0 - r1) >> 20, r0 >> 20, r1 >> 20))
        info = q.cmd("query-memory-manager")
        if "ballooned-bytes" in info:
            assert info["ballooned-bytes"] >= inflated * 9 // 10, info

        q.cmd("balloon", value=RAM)
        _wait_actual(q, vm, lambda a: a >= RAM, "back to 512 MiB")
        # deflated pages are ordinary memory again: the churn touches them
        deadline = time.time() + 60
        r2 = _resident(q, vm)
        while r2 - r1 < 64 * MiB and time.time() < deadline:
            time.sleep(0.5)
            r2 = _resident(q, vm)
        assert r2 - r1 >= 64 * MiB, ("memory did not come back on use: %d -> %d MiB resident"
                                     % (r1 >> 20, r2 >> 20))
        assert "churn: mismatch" not in vm.stdout(), vm.stdout()[-2000:]
        _quit(vm, q)


def test_balloon_inflate_deflate_anon():
    _inflate_and_back(["--mem-backing", "anon"])


def test_balloon_inflate_deflate_memfd():
    _inflate_and_back(["--mem-backing", "memfd"])


def test_balloon_inflate_deflate_hugetlb_2m():
    _need_driver()
    with lib.hugepages(RAM // (2 * MiB) + 4):
        _inflate_and_back(["--mem-backing", "hugetlb", "--hugepage-size", "2M"])


def test_balloon_stats():
    _need_driver()
    with lib.start_vm(["--mem", "512M", "--balloon", "stats-period=1"],
                      append="workload=idle") as vm:
        q = vm.qmp()
        assert q.cmd("qom-get", path=QOM, property="guest-stats-polling-interval") == 1
        deadline = time.time() + 60
        while True:
            st = q.cmd("qom-get", path=QOM, property="guest-stats")
            if st["last-update"] > 0 and st["stats"]["stat-total-memory"] > 0:
                break
            assert time.time() < deadline, "no stats within 60 s: %s" % st
            time.sleep(0.5)
        s = st["stats"]
        assert sorted(s) == sorted(STAT_NAMES), s
        total, free = s["stat-total-memory"], s["stat-free-memory"]
        assert RAM // 2 <= total <= RAM, "total %d is not about the 512 MiB of RAM" % total
        assert 0 <= free <= total, s
        if s["stat-available-memory"] != -1:
            assert 0 <= s["stat-available-memory"] <= total, s
        assert abs(time.time() - st["last-update"]) < 30, st
        # polling goes on at the period
        first = st["last-update"]
        deadline = time.time() + 15
        while q.cmd("qom-get", path="balloon0", property="guest-stats")["last-update"] <= first:
            assert time.time() < deadline, "stats were not refreshed within 15 s"
            time.sleep(0.5)
        assert q.cmd("qom-set", path=QOM, property="guest-stats-polling-interval", value=0) == {}
        _quit(vm, q)


def test_balloon_deflate_on_oom():
    _need_driver()
    # the guest is allowed 256 MiB but its workload needs 320 MiB each round
    with lib.start_vm(["--mem", "512M", "--balloon", "deflate-on-oom=on"],
                      append="workload=churn size=320M rounds=4 pause=2000") as vm:
        q = vm.qmp()
        q.cmd("balloon", value=TARGET)
        status, out = vm.wait(timeout=280)
        events = [e["data"]["actual"] for e in _drain_events(q) if e["event"] == "BALLOON_CHANGE"]
        assert status == 0, "guest exited %s:\n%s" % (status, out[-3000:])
        assert "churn: ok" in out and "churn: mismatch" not in out, out[-3000:]
        assert events, "no BALLOON_CHANGE event: the balloon never inflated"
        low = min(events)
        assert low < RAM, events
        # the host never raised the target: any rise after the low is the guest deflating on OOM
        after = events[events.index(low):]
        assert max(after) > low, "the balloon never gave memory back: %s" % events


def _churn_then_idle(reporting):
    """Resident MiB of guest RAM a while after the guest freed 256 MiB it had used."""
    # one round of 256 MiB, then a minute of pause with that memory free
    with lib.start_vm(["--mem", "512M", "--balloon", "free-page-reporting=" + reporting],
                      append="workload=churn size=256M rounds=0 pause=60000") as vm:
        q = vm.qmp()
        vm.wait_for(r"churn: round 1 ", timeout=120)
        t0 = time.time()
        r = _resident(q, vm)
        while r > 128 * MiB and time.time() - t0 < (20 if reporting == "on" else 3):
            time.sleep(0.5)
            r = _resident(q, vm)
        info = q.cmd("query-memory-manager")
        _quit(vm, q)
        return r, time.time() - t0, info


def test_balloon_free_page_reporting():
    _need_driver()
    r, secs, info = _churn_then_idle("on")
    assert r <= 128 * MiB, ("256 MiB freed in the guest still %d MiB resident after %.0f s"
                            % (r >> 20, secs))
    if "reported-bytes" in info:
        assert info["reported-bytes"] >= 64 * MiB, info
    # the control: without reporting the freed memory stays with the guest
    r, secs, info = _churn_then_idle("off")
    assert r >= 200 * MiB, "without reporting only %d MiB stayed resident" % (r >> 20)


def test_balloon_qmp_and_options():
    """Runs without the guest driver: the device, its QMP face, its errors."""
    with lib.start_vm(["--mem", "256M", "--balloon", "stats-period=0"],
                      append="workload=idle") as vm:
        q = vm.qmp()
        b = q.cmd("query-balloon")
        assert b["actual"] == 256 * MiB, b
        # QEMU's reply is `actual`; minivmm adds the device's own counters
        # (QMP clients ignore members they do not know)
        for k in ("target", "inflated-pages", "deflated-pages", "bad-pfns", "skipped-pfns",
                  "reported-bytes", "reports", "discard-errors", "stats-updates",
                  "stats-unknown-tags"):
            assert isinstance(b.get(k), int), (k, b)
        assert b["target"] == 256 * MiB, b
        assert q.cmd("balloon", value=128 * MiB) == {}
        for bad in (256 * MiB + 1, 0, -4096, "128M"):
            r = q.cmd_raw("balloon", value=bad)
            assert r["error"]["class"] == "GenericError", r
        r = q.cmd_raw("balloon")
        assert "error" in r, r
        st = q.cmd("qom-get", path=QOM, property="guest-stats")
        assert sorted(st["stats"]) == sorted(STAT_NAMES), st
        assert q.cmd("qom-get", path="balloon0", property="guest-stats-polling-interval") == 0
        assert q.cmd("qom-set", path=QOM, property="guest-stats-polling-interval", value=2) == {}
        assert q.cmd("qom-get", path=QOM, property="guest-stats-polling-interval") == 2
        for args in ({"path": QOM, "property": "guest-stats-polling-interval", "value": -1},
                     {"path": QOM, "property": "guest-stats-polling-interval", "value": 1 << 33},
                     {"path": QOM, "property": "guest-stats", "value": 1},
                     {"path": QOM, "property": "colour", "value": 1}):
            r = q.cmd_raw("qom-set", **args)
            assert r["error"]["class"] == "GenericError", r
        r = q.cmd_raw("qom-get", path="/machine/peripheral/nothing", property="guest-stats")
        assert "not found" in r["error"]["desc"], r
        assert r["error"]["class"] == "DeviceNotFound", r
        r = q.cmd_raw("qom-get", path=QOM, property="colour")
        assert "colour" in r["error"]["desc"], r
        assert q.cmd("query-status")["status"] == "running"
        _quit(vm, q)

    with lib.start_vm(["--mem", "256M", "--no-balloon"], append="workload=idle") as vm:
        q = vm.qmp()
        for cmd, args in (("balloon", {"value": 128 * MiB}), ("query-balloon", {})):
            r = q.cmd_raw(cmd, **args)
            assert r["error"]["desc"] == "No balloon device has been activated", r
            assert r["error"]["class"] == "DeviceNotActive", r
        _quit(vm, q)

    status, out, err = lib.run_vm(["--mem", "256M", "--balloon", "colour=blue"],
                                  append="workload=idle", timeout=30)
    assert status != 0 and "colour" in err and err.count("\n") <= 3, (status, err)
    status, out, err = lib.run_vm(["--mem", "256M", "--balloon", "stats-period=soon"],
                                  append="workload=idle", timeout=30)
    assert status != 0 and "stats-period" in err, (status, err)


def bench_inflate_deflate_1g():
    """End-to-end time for the guest to give 1 GiB to the host and take it back."""
    _need_driver()
    with lib.start_vm(["--mem", "1280M"], append="workload=idle") as vm:
        q = vm.qmp()
        ram = 1280 * MiB
        time.sleep(1)
        t0 = time.time()
        q.cmd("balloon", value=ram - 1024 * MiB)
        _wait_actual(q, vm, lambda a: a <= ram - 1024 * MiB, "1 GiB in the balloon", timeout=600)
        t1 = time.time()
        q.cmd("balloon", value=ram)
        _wait_actual(q, vm, lambda a: a >= ram, "an empty balloon", timeout=600)
        t2 = time.time()
        _quit(vm, q)
    print("balloon_e2e_inflate_1g: %.2f s" % (t1 - t0))
    print("balloon_e2e_deflate_1g: %.2f s" % (t2 - t1))


if __name__ == "__main__":
    if "--bench" in sys.argv:
        try:
            bench_inflate_deflate_1g()
        except Skip as e:
            print("balloon_e2e: skipped (%s)" % e)
    else:
        print(__doc__)
