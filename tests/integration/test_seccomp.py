"""seccomp: every thread of minivmm and minivmm-memd runs under its own filter
after set-up (README "Least privilege").

- A running VM with the memory manager, the balloon and two vCPUs: every
  thread (main, vcpu0, vcpu1, balloon-wk, mm-fault, mm-scan, qmp-worker,
  stop-watchdog) shows `Seccomp: 2` in /proc/PID/task/*/status, also after
  a forced reclaim ran on the QMP worker; the VM then stops with status 0.
- A forbidden call (socket(2), from the hidden --test-forbidden-call option
  compiled only into the ASan test build with -DMINIVMM_TEST_HOOKS) on each
  kind of thread ends the process with status 70 and the line naming the
  thread and the call.
- --seccomp off runs unfiltered and says it is unsafe; a bad value is refused.
- minivmm-memd: its thread shows Seccomp: 2 while it manages a VM, and a
  forbidden call ends it with status 70 and the line.
"""
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import lib  # noqa: E402

MEMD = (os.path.join(lib.BUILD, "asan", "minivmm-memd")
        if os.path.exists(os.path.join(lib.BUILD, "asan", "minivmm-memd"))
        else os.path.join(lib.BUILD, "minivmm-memd"))
MM = ["--mm", "zero=on,compress=on,cold-age=1,scan-period=200"]
THREADS = {"vcpu0", "vcpu1", "balloon-wk", "mm-fault", "mm-scan", "qmp-worker", "stop-watchdog"}
LINE = re.compile(r"^(minivmm(?:-memd)?): seccomp: thread (\S+) made forbidden system call (\S+) \((\d+)\)",
                  re.M)


def task_seccomp(pid):
    """{thread name: Seccomp mode} of every thread of pid; kernel workers
    attached to the process (kvm-nx-lpage-recovery) are reported too."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                name = f.read().strip()
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                mode = re.search(r"^Seccomp:\s+(\d+)", f.read(), re.M).group(1)
        except (OSError, AttributeError):
            continue   # the thread ended meanwhile
        out[name if tid != str(pid) else "main"] = int(mode)
    return out


def has_test_hooks(binary):
    p = subprocess.run([binary, "--test-forbidden-call", "x", "--help"], capture_output=True, text=True)
    return p.returncode == 0


def test_every_vm_thread_is_confined():
    with lib.start_vm(["--mem", "256M", "--cpus", "2"] + MM, append="workload=fill size=64M rounds=0") as vm:
        vm.wait_for(r"^fill: round 2 ", 60)
        q = vm.qmp()
        q.cmd("mm-reclaim", bytes=16 << 20)   # runs on the QMP worker
        q.cmd("query-memory-manager")         # /proc/self/smaps through the early descriptor
        modes = task_seccomp(vm.pid)
        missing = THREADS - set(modes)
        assert not missing, "threads not found: %s (got %s)" % (missing, modes)
        loose = {n: m for n, m in modes.items() if m != 2}
        assert not loose, "threads not in seccomp filter mode (2): %s" % loose
        vm.wait_for(r"^fill: round 4 ", 60)   # the guest keeps going under the filters
        q.cmd("quit")
        status, _ = vm.wait()
        assert status == 0, vm.stderr()[-3000:]
        assert "seccomp" not in vm.stderr(), vm.stderr()[-3000:]


def test_forbidden_call_kills_with_the_thread_and_call_named():
    if not has_test_hooks(lib.MINIVMM):
        raise lib.Skip("%s has no test hooks (only the ASan build has -DMINIVMM_TEST_HOOKS)" % lib.MINIVMM)
    for thread in ["main", "vcpu1", "balloon-wk", "mm-fault", "mm-scan", "qmp-worker", "stop-watchdog"]:
        vm = lib.start_vm(["--mem", "128M", "--cpus", "2", "--test-forbidden-call", thread] + MM,
                          append="workload=idle", qmp=False)
        status, _ = vm.wait(60)
        err = vm.stderr()
        assert status == 70, "%s: status %s\n%s" % (thread, status, err[-3000:])
        m = LINE.search(err)
        assert m, "%s: no seccomp line:\n%s" % (thread, err[-3000:])
        assert m.groups() == ("minivmm", thread, "socket", "41"), (thread, m.group(0))


def test_seccomp_off_is_unfiltered_and_says_unsafe():
    with lib.start_vm(["--mem", "128M", "--seccomp", "off"] + MM, append="workload=idle") as vm:
        vm.qmp().cmd("query-status")
        modes = task_seccomp(vm.pid)
        assert set(modes.values()) == {0}, modes
        assert "--seccomp off" in vm.stderr() and "unsafe" in vm.stderr(), vm.stderr()
    status, _, err = lib.run_vm(["--seccomp", "maybe"])
    assert status == 64 and "--seccomp 'maybe' is not valid: use on or off" in err, (status, err)


def start_memd(tmp, *args):
    ctl = os.path.join(tmp, "memd.sock")
    err = open(os.path.join(tmp, "memd.stderr"), "w")
    p = subprocess.Popen([MEMD, "--budget", "1G", "--control", "unix:" + ctl,
                          "--log", os.path.join(tmp, "memd.jsonl")] + list(args),
                         stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=lib.env())
    return p, ctl, err.name


def test_memd_is_confined():
    tmp = lib.mkdtemp()
    with lib.start_vm(["--mem", "128M"], append="workload=idle") as vm:
        p, ctl, err_path = start_memd(tmp, "--vm", "unix:" + vm.qmp_path)
        try:
            deadline = time.time() + 20
            while not os.path.exists(ctl):
                assert p.poll() is None and time.time() < deadline, open(err_path).read()
                time.sleep(0.05)
            q = lib.Qmp(ctl)
            deadline = time.time() + 20
            while not q.cmd("query-vms"):
                assert time.time() < deadline, "memd never saw the VM:\n" + open(err_path).read()
                time.sleep(0.2)
            time.sleep(1.0)   # a few samples: /proc of the VM, its monitor, the timeline
            modes = task_seccomp(p.pid)
            assert modes and set(modes.values()) == {2}, modes
            q.close()
        finally:
            p.terminate()
            status = p.wait(20)
        err = open(err_path).read()
        lib.check_sanitizers(err)
        assert status == 0 and "seccomp" not in err, (status, err[-3000:])


def test_memd_forbidden_call_kills_with_the_call_named():
    if not has_test_hooks(MEMD):
        raise lib.Skip("%s has no test hooks (only the ASan build has -DMINIVMM_TEST_HOOKS)" % MEMD)
    tmp = lib.mkdtemp()
    p, _, err_path = start_memd(tmp, "--test-forbidden-call", "memd")
    status = p.wait(30)
    err = open(err_path).read()
    assert status == 70, (status, err[-3000:])
    m = LINE.search(err)
    assert m and m.groups() == ("minivmm-memd", "memd", "socket", "41"), err[-3000:]


def test_release_build_confined_through_reclaim_balloon_and_queries():
    """The suite's VMs run the sanitizer build, whose malloc is not glibc's;
    the release build (what make run starts) is driven here through every
    path that frees and allocates on its threads: reclaim to a resident
    target and back, refaults, balloon inflate and deflate, forced reclaim,
    every query. No filter may fire."""
    release = os.path.join(lib.BUILD, "minivmm")
    with lib.binary(release):
        args = ["--mem", "256M", "--cpus", "2", "--mem-backing", "memfd", "--mm", "cold-age=1,scan-period=200",
                "--balloon", "stats-period=1,free-page-reporting=on"]
        with lib.start_vm(args, append="workload=wss size=96M hot=8M,48M@4s verify=3 duration=10") as vm:
            vm.wait_for(r"^wss: t=1 ", 60)
            try:
                q = vm.qmp()
            except ConnectionError:
                raise AssertionError("QMP closed: " + vm.stderr()[-2000:])
            q.cmd("mm-set-resident-target", bytes=32 << 20)
            time.sleep(2)
            q.cmd("balloon", value=192 << 20)
            for c in ("query-memory-manager", "query-balloon", "query-status", "query-translation-summary"):
                q.cmd(c)
            q.cmd("mm-set-resident-target", bytes=0)
            q.cmd("balloon", value=256 << 20)
            q.cmd("mm-reclaim", bytes=16 << 20)
            status, out = vm.wait(timeout=120)
            err = vm.stderr()
    assert "seccomp:" not in err, err[-2000:]
    assert status == 0 and "wss: ok" in out, (status, out[-1500:], err[-1500:])
