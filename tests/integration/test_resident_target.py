"""mm-set-resident-target: the lever minivmm-memd pulls before the balloon.

A guest keeps a small hot set busy inside a larger, verified working set
(workload=wss); the host sets a resident target well below what the guest
has touched. The scanner must bring guest RAM resident on the host down to
about the target within seconds, cold pages first, while the guest keeps
verifying every byte; clearing the target stops the squeeze. Bad arguments
and a VM without reclaim are refused with a clear error.
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import lib  # noqa: E402

MiB = 1 << 20


def test_resident_target_reached_guest_intact():
    # cold-age far away: only the target makes pages go
    args = ["--mem", "256M", "--mem-backing", "anon",
            "--mm", "cold-age=3600,scan-period=200"]
    with lib.start_vm(args, append="workload=wss size=128M hot=8M verify=2 duration=14") as vm:
        vm.wait_for(r"^wss: t=1 ", 120)
        q = vm.qmp()
        before = q.cmd("query-memory-manager")["host-resident"]
        assert before > 128 * MiB, before
        target = 64 * MiB
        q.cmd("mm-set-resident-target", bytes=target)
        t0 = time.time()
        reached = None
        while time.time() - t0 < 8:
            st = q.cmd("query-memory-manager")
            if st["host-resident"] <= target + 8 * MiB:
                reached = time.time() - t0
                break
            time.sleep(0.2)
        assert reached is not None, "resident %d MiB, target %d MiB" % (
            st["host-resident"] >> 20, target >> 20)
        assert st["resident-target"] == target and st["resident-target-passes"] > 0, st
        q.cmd("mm-set-resident-target", bytes=0)
        assert q.cmd("query-memory-manager")["resident-target"] == 0
        status, out = vm.wait(timeout=120)
    assert status == 0 and "wss: ok" in out and "mismatch " not in out, out[-2000:]
    print("  %d MiB -> target %d MiB reached in %.1f s" % (before >> 20, target >> 20, reached))


def test_resident_target_refusals():
    with lib.start_vm(["--mem", "64M", "--mm", "cold-age=30"], append="workload=idle") as vm:
        q = vm.qmp()
        r = q.cmd_raw("mm-set-resident-target", bytes=1 << 40)
        assert "more than guest RAM" in r["error"]["desc"], r
        r = q.cmd_raw("mm-set-resident-target")
        assert "error" in r and "bytes" in r["error"]["desc"], r
    with lib.start_vm(["--mem", "64M"], append="workload=idle") as vm:
        r = vm.qmp().cmd_raw("mm-set-resident-target", bytes=32 * MiB)
        assert "--mm" in r["error"]["desc"], r


def test_store_max_bounds_the_store_guest_intact():
    """--mm store-max: the store never holds more compressed bytes than
    that; pages it refuses stay resident (a target is then not reached,
    never a page lost), and its idle pages are not offered as takeable."""
    args = ["--mem", "256M", "--mem-backing", "anon", "--mm", "cold-age=3600,scan-period=200,store-max=4M"]
    with lib.start_vm(args, append="workload=wss size=128M hot=8M verify=2 duration=10") as vm:
        vm.wait_for(r"^wss: t=1 ", 120)
        q = vm.qmp()
        q.cmd("mm-set-resident-target", bytes=32 * MiB)
        deadline = time.time() + 8
        while time.time() < deadline:
            st = q.cmd("query-memory-manager")
            if st["store-full-refusals"] > 0 and st["compressed-bytes"] > 3 * MiB:
                break
            time.sleep(0.2)
        assert st["store-max-bytes"] == 4 * MiB, st
        assert st["store-full-refusals"] > 0, st
        assert st["compressed-bytes"] <= 4 * MiB, st
        # zero pages and duplicates still go (they take no store bytes, or share them)
        assert st["zero-pages"] > 0, st
        assert st["host-resident"] > 32 * MiB + 8 * MiB, st
        status, out = vm.wait(timeout=120)
    assert status == 0 and "wss: ok" in out and "mismatch " not in out, out[-2000:]
    print("  store-max 4M: %d bytes held, %d refusals" % (st["compressed-bytes"], st["store-full-refusals"]))


def test_uffd_chunk_cap_keeps_the_rest_resident_guest_intact():
    """--mm uffd-chunks: no more 2 MiB chunks are registered with
    userfaultfd than that; a reclaim wanting more evicts within those
    chunks only, counts every refusal in uffd-cap-hits, and the guest reads
    back every byte (the same path as the default 16384 on a guest of more
    than 32 GiB)."""
    args = ["--mem", "256M", "--mem-backing", "anon", "--mm", "cold-age=3600,scan-period=200,uffd-chunks=4"]
    with lib.start_vm(args, append="workload=wss size=128M hot=8M verify=2 duration=8") as vm:
        vm.wait_for(r"^wss: t=1 ", 120)
        q = vm.qmp()
        q.cmd("mm-reclaim", bytes=96 * MiB)
        st = q.cmd("query-memory-manager")
        assert st["uffd-max-chunks"] == 4, st
        assert st["uffd-registered-chunks"] <= 4, st
        assert st["uffd-cap-hits"] > 0, st
        # at most 4 chunks of pages are evicted, so nearly all of the 128 MiB stays
        assert st["host-resident"] > 128 * MiB - 4 * 2 * MiB, st
        status, out = vm.wait(timeout=120)
    assert status == 0 and "wss: ok" in out and "mismatch " not in out, out[-2000:]
    print("  uffd-chunks=4: %d registered, %d cap hits" % (st["uffd-registered-chunks"], st["uffd-cap-hits"]))
    r = lib.run_vm(["--mem", "64M", "--mm", "uffd-chunks=0"], append="workload=idle")
    assert r[0] == 65 and "uffd-chunks=0" in r[2] and "vm.max_map_count" in r[2], r


def test_compression_switched_off_and_on_at_run_time():
    args = ["--mem", "256M", "--mm", "cold-age=3600,scan-period=200"]
    with lib.start_vm(args, append="workload=wss size=96M hot=4M verify=2 duration=8") as vm:
        vm.wait_for(r"^wss: t=1 ", 120)
        q = vm.qmp()
        assert q.cmd("query-memory-manager")["compressing"] is True
        q.cmd("mm-set-compression", enabled=False)
        st0 = q.cmd("query-memory-manager")
        assert st0["compressing"] is False, st0
        q.cmd("mm-reclaim", bytes=48 * MiB)
        st1 = q.cmd("query-memory-manager")
        # zero pages and duplicates still go; nothing new is compressed
        assert st1["compressed-pages"] == st0["compressed-pages"], (st0, st1)
        # which of the two the coldest pages are depends on the scanner's timing
        freed0 = st0["zero-pages"] + st0["shared-pages"]
        assert st1["zero-pages"] + st1["shared-pages"] > freed0, (st0, st1)
        q.cmd("mm-set-compression", enabled=True)
        q.cmd("mm-reclaim", bytes=64 * MiB)
        st2 = q.cmd("query-memory-manager")
        assert st2["compressed-pages"] > st1["compressed-pages"], (st1, st2)
        r = q.cmd_raw("mm-set-compression")
        assert "enabled" in r["error"]["desc"], r
        status, out = vm.wait(timeout=120)
    assert status == 0 and "wss: ok" in out and "mismatch " not in out, out[-2000:]
    with lib.start_vm(["--mem", "64M", "--mm", "compress=off"], append="workload=idle") as vm:
        r = vm.qmp().cmd_raw("mm-set-compression", enabled=True)
        assert "compress=off" in r["error"]["desc"], r
