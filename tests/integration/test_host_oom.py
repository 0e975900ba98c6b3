"""Host memory exhaustion: a VM and minivmm-memd inside a v1 memory cgroup
whose limit is then lowered below what the guest has resident.

The safe way down is the soft limit first (memd takes it as its budget):
the VM must get under it by reclaiming and ballooning, keep running and
verify every byte, after which the hard limit goes down too. A hard limit
below what the VM can be brought to is refused by the v1 kernel (EBUSY),
never an OOM kill. And when the kernel's OOM killer does end a process in
the cgroup (a limit set while a guest fills), memd says so, with the limit
and usage, as an event and in query-host: never silent.
"""
import contextlib
import errno
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import lib  # noqa: E402
from lib import Skip  # noqa: E402
from test_memd import Daemon, WSS, scratch  # noqa: E402

MiB = 1 << 20
CG_ROOT = "/sys/fs/cgroup/memory"


@contextlib.contextmanager
def cgroup(name):
    if not os.path.exists(os.path.join(CG_ROOT, "memory.limit_in_bytes")):
        raise Skip("no cgroup v1 memory controller at %s" % CG_ROOT)
    path = os.path.join(CG_ROOT, "%s-%d" % (name, os.getpid()))
    os.makedirs(path, exist_ok=True)
    try:
        yield path
    finally:
        # its processes are gone with the test's process group; then it can go
        for _ in range(100):
            with contextlib.suppress(OSError):
                os.rmdir(path)
                break
            time.sleep(0.1)


def cg_write(path, f, v):
    with open(os.path.join(path, f), "w") as fh:
        fh.write(str(v))


def cg_read(path, f):
    with open(os.path.join(path, f)) as fh:
        return fh.read()


def oom_kills(path):
    return int(re.search(r"^oom_kill (\d+)", cg_read(path, "memory.oom_control"), re.M).group(1))


def vm_in(path, run, name, append, mem="256M"):
    """A minivmm with --name in the cgroup (it joins before exec, so all its memory is charged there)."""
    # memfd: a hole punched in it leaves the cgroup at once; on this kernel, anonymous pages
    # discarded with MADV_DONTNEED stay charged to the cgroup (measured; see README)
    vm = lib.start_vm(["--mem", mem, "--mem-backing", "memfd", "--name", name, "--run-dir", run,
                       "--mm", "cold-age=120",
                       "--balloon", "stats-period=1"], append=append, qmp=False,
                      wrapper=["sh", "-c", 'echo $$ > "$0"/cgroup.procs && exec "$@"', path])
    return vm


def test_host_oom_soft_limit_first_vm_kept_and_hard_limit_below_refused():
    # the release build: the cgroup charges AddressSanitizer's shadow and quarantine too,
    # which no policy can take back
    with cgroup("minivmm-test-oom") as cg, scratch() as (tmp, vms, daemons), \
            lib.binary(os.path.join(lib.BUILD, "minivmm")):
        run = os.path.join(tmp, "run")
        vms.append(vm_in(cg, run, "g", "workload=wss size=160M hot=16M verify=60"))
        vms[0].wait_for(r"^wss: filled ", timeout=60)
        time.sleep(2)
        usage = int(cg_read(cg, "memory.usage_in_bytes"))
        d = Daemon(["--cgroup", cg, "--run-dir", run, "--vm-floor", "*=64M", "--interval", "0.5"], tmp)
        daemons.append(d)
        d.wait(lambda: len(d.vms()) == 1, "the VM managed")
        # below what the guest has resident: the soft limit first
        soft = usage - 64 * MiB
        cg_write(cg, "memory.soft_limit_in_bytes", soft)
        t0 = time.time()
        d.wait(lambda: d.host()["usage"] <= soft, "usage under the soft limit", timeout=60)
        took = time.time() - t0
        h = d.host()
        assert h["budget"] == soft and h["cgroup"]["soft-limit"] == soft, h
        # now the hard limit can follow
        cg_write(cg, "memory.limit_in_bytes", soft + 16 * MiB)
        time.sleep(4)
        assert vms[0].proc.poll() is None, vms[0].stderr()[-2000:]
        assert oom_kills(cg) == 0
        print("usage %d MiB -> under %d MiB in %.1f s; hard limit %d MiB held"
              % (usage >> 20, soft >> 20, took, (soft + 16 * MiB) >> 20))
        # a hard limit under what the VM can be brought to: v1 refuses it, the VM lives on
        cg_write(cg, "memory.soft_limit_in_bytes", 24 * MiB)
        time.sleep(3)
        fd = os.open(os.path.join(cg, "memory.limit_in_bytes"), os.O_WRONLY)
        try:
            os.write(fd, str(24 * MiB).encode())
            raise AssertionError("the kernel took a limit under the VM's usage")
        except OSError as e:
            assert e.errno == errno.EBUSY, e
        finally:
            os.close(fd)
        h = d.host()
        assert "short by" in h["why"] or "at floor" in h["why"], h["why"]
        assert vms[0].proc.poll() is None and oom_kills(cg) == 0
        assert d.host()["oom-kills"] == 0
        d.stop()
        q = lib.Qmp(os.path.join(run, "g.qmp"))
        q.cmd("quit")
        q.close()
        status, out = vms[0].wait(timeout=60)
        assert status == 0 and "FAILED" not in out, (status, out[-1500:], vms[0].stderr()[-1500:])
        m = WSS.findall(out)
        assert m and all(x == "0" for x in m), out[-2000:]


def test_host_oom_kill_is_reported():
    with cgroup("minivmm-test-oomkill") as cg, scratch() as (tmp, vms, daemons):
        run = os.path.join(tmp, "run")
        d = Daemon(["--cgroup", cg, "--run-dir", run, "--policy", "none"], tmp)
        daemons.append(d)
        # a limit the guest's fill cannot fit in: the kernel's OOM killer ends the VM
        cg_write(cg, "memory.limit_in_bytes", 96 * MiB)
        vms.append(vm_in(cg, run, "victim", "workload=fill size=200M", mem="256M"))
        status, out = vms[0].wait(timeout=60)
        assert status == -9, (status, out[-1000:])
        d.wait(lambda: d.host()["oom-kills"] == 1, "the OOM kill in query-host", timeout=10)
        msgs = [r["text"] for r in d.records("message") if "OOM killer" in r["text"]]
        assert msgs and cg in msgs[0] and "limit 96 MiB" in msgs[0], msgs
        d.stop()
        print(msgs[0])
