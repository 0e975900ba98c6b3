"""The guest's working-set workload (workload=wss): one throughput line per
second, the hot-size schedule, full verifications with zero mismatches,
running until the VMM quits, and bad keys or values refused with status 2."""

import re

from lib import run_vm, start_vm

LINE = re.compile(r"^wss: t=(\d+) ops=(\d+) ops_per_s=(\d+) hot=(\S+) mismatches=(\d+)$", re.M)


def lines(out):
    return [(int(t), int(ops), int(rate), hot, int(m)) for t, ops, rate, hot, m in LINE.findall(out)]


def test_wss_reports_every_second_and_follows_schedule():
    status, out, err = run_vm(["--mem", "128M"], timeout=120,
                              append="workload=wss size=32M hot=4M,16M@2s verify=2 duration=5")
    assert status == 0, "exit %d\n%s\n%s" % (status, out[-3000:], err[-3000:])
    assert re.search(r"^wss: filled size=32M hot=4M steps=2 ms=\d+$", out, re.M), out
    got = lines(out)
    secs = [t for t, *_ in got]
    # one line a second; a host busy with other tests may delay one past the next second
    assert secs[-1] == 5 and len(secs) >= 4 and secs == sorted(set(secs)), out
    assert all(m == 0 for *_, m in got), out
    ops = [o for _, o, *_ in got]
    assert ops == sorted(ops) and ops[0] > 0, out
    assert all(rate > 0 for _, _, rate, _, _ in got), out
    # line t=N covers (N-1, N]: the step at 2 s shows from the line t=3 on
    assert all(h == ("4M" if t <= 2 else "16M") for t, _, _, h, _ in got), out
    assert re.search(r"^wss: t=2 hot=16M step=1$", out, re.M), out
    verifies = re.findall(r"^wss: verify t=\d+ pages=8192 ms=\d+ mismatches=(\d+)$", out, re.M)
    assert len(verifies) >= 2 and all(v == "0" for v in verifies), out
    m = re.search(r"^wss: ok t=5 ops=(\d+) full_verifies=(\d+) verified_bytes=(\d+) mismatches=0$",
                  out, re.M)
    assert m and int(m.group(1)) == ops[-1], out
    assert int(m.group(3)) == int(m.group(2)) * (32 << 20), out
    assert "guest: exit status=0" in out


def test_wss_default_hot_is_a_quarter():
    status, out, err = run_vm(["--mem", "64M"], timeout=60,
                              append="workload=wss size=8M duration=1 quiet")
    assert status == 0, out + err
    assert [h for _, _, _, h, _ in lines(out)] == ["2M"], out
    assert "wss: verify" not in out     # quiet: no verification lines, still verified at the end
    assert re.search(r"^wss: ok t=1 .* full_verifies=1 .*mismatches=0$", out, re.M), out


def test_wss_runs_until_quit():
    vm = start_vm(["--mem", "128M"], append="workload=wss size=16M hot=8M verify=1")
    try:
        vm.wait_for(r"^wss: t=2 ", timeout=60)
        q = vm.qmp()
        q.cmd("quit")
        q.close()
        status, out = vm.wait(timeout=30)
    finally:
        vm.close()
    assert status == 0, (status, vm.stderr())
    got = lines(out)
    assert len(got) >= 2 and all(m == 0 for *_, m in got), out
    assert "FAILED" not in out and "mismatch page" not in out, out


def test_wss_bad_parameters_give_status_2():
    cases = [
        ("size=16M hot=32M", "larger than size"),
        ("size=16M hot=4M@5s", "hot=4M@5s"),                 # the first step has no time
        ("size=16M hot=4M,8M@5s,6M@3s", "increasing times"),
        ("size=16M hot=4M,8M@", "hot=4M,8M@"),
        ("size=16M hot=lots", "hot=lots"),
        ("size=16M verify=soon", "verify=soon"),
        ("size=16M duration=-1", "duration=-1"),
        ("size=16M hotness=1", "unknown parameter 'hotness'"),
    ]
    for args, msg in cases:
        status, out, err = run_vm(["--mem", "64M"], append="workload=wss " + args, timeout=60)
        assert status == 2, (args, status, out, err)
        assert msg in out, (args, out)
        assert "wss: filled" not in out, (args, out)
