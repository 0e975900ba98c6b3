"""Helpers for minivmm's integration tests: start real VMs on /dev/kvm, talk
QMP to them, reserve huge pages (always restoring the pool), parse the
summary. Tests are plain functions named test_* in tests/integration/*.py;
raise Skip("reason") when the machine lacks a facility.

Temporary directories go under MINIVMM_TEST_TMP when the runner sets it (it
removes that after each test) and are removed at exit otherwise; VMs a
test leaves running are killed by cleanup()."""

import atexit
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
# Tests run the AddressSanitizer/UBSan build unless MINIVMM names another binary.
MINIVMM = os.environ.get("MINIVMM") or (
    os.path.join(BUILD, "asan", "minivmm")
    if os.path.exists(os.path.join(BUILD, "asan", "minivmm"))
    else os.path.join(BUILD, "minivmm"))
# The ThreadSanitizer build (make tsan), for the tests that run it.
TSAN_MINIVMM = os.path.join(BUILD, "tsan", "minivmm")
CTL = os.path.join(BUILD, "minivmm-ctl")
GUEST = os.path.join(BUILD, "guest.img")
TOOLS = os.path.join(BUILD, "tests")

# Exit statuses above minivmm's own (64-69): a sanitizer report is never
# mistaken for a stop reason.
SAN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=99",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=98",
    "TSAN_OPTIONS": "halt_on_error=1:exitcode=97:second_deadlock_stack=1",
}
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer",
                     "WARNING: ThreadSanitizer")
TMP = os.environ.get("MINIVMM_TEST_TMP")
_vms = []
_dirs = []


class Skip(Exception):
    """The test cannot run on this machine; the message says why."""


# What minivmm says when the machine has no KVM at all (vmm/kvm/kvm.c). A test
# that needs a VM is skipped there, not failed: nothing it checks could run.
# The runner skips any test whose failure carries this message; run_vm and
# Vm.wait, which return a failed status instead of raising, check it here.
KVM_MISSING = "/dev/kvm does not exist"
NO_KVM_REASON = ("this machine has no /dev/kvm (its kernel has no usable KVM), and the test "
                 "needs a VM")


def skip_if_no_kvm(text):
    """Raises Skip when minivmm could not start for want of /dev/kvm."""
    if KVM_MISSING in text and not os.path.exists("/dev/kvm"):
        raise Skip(NO_KVM_REASON)


def env():
    e = dict(os.environ)
    e.update(SAN_ENV)
    return e


def run_vm(args, append=None, timeout=120, image=None):
    """Runs minivmm to completion: returns (status, stdout, stderr)."""
    cmd = [MINIVMM] + list(args)
    if append is not None:
        cmd += ["--append", append]
    cmd.append(image or GUEST)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env())
    if p.returncode != 0:
        skip_if_no_kvm(p.stderr)
    return p.returncode, p.stdout, p.stderr


def check_sanitizers(stderr):
    """Fails on any sanitizer report in a VMM's stderr."""
    for marker in SANITIZER_MARKERS:
        assert marker not in stderr, "sanitizer report:\n" + stderr[-4000:]


def mkdtemp():
    d = tempfile.mkdtemp(prefix="minivmm-test-", dir=TMP)
    _dirs.append(d)
    return d


def cleanup():
    """Kills the VMs still running and removes the temporary directories."""
    for vm in _vms:
        with contextlib.suppress(Exception):
            vm.kill()
    _vms.clear()
    for d in _dirs:
        shutil.rmtree(d, ignore_errors=True)
    _dirs.clear()


atexit.register(cleanup)


@contextlib.contextmanager
def binary(path):
    """Runs the VMs started inside the block with another minivmm build."""
    global MINIVMM
    if not os.access(path, os.X_OK):
        raise Skip("%s is not built (make tsan)" % path)
    old, MINIVMM = MINIVMM, path
    try:
        yield
    finally:
        MINIVMM = old


class Vm:
    """A running minivmm with its output in files (no pipe can fill up)."""

    def __init__(self, args, append=None, qmp=True, image=None, wrapper=()):
        self.dir = mkdtemp()
        self.qmp_path = os.path.join(self.dir, "qmp.sock") if qmp else None
        cmd = list(wrapper) + [MINIVMM] + list(args)
        if qmp:
            cmd += ["--qmp", "unix:" + self.qmp_path]
        if append is not None:
            cmd += ["--append", append]
        cmd.append(image or GUEST)
        self.cmd = cmd
        self.out_path = os.path.join(self.dir, "stdout")
        self.err_path = os.path.join(self.dir, "stderr")
        self._out = open(self.out_path, "w")
        self._err = open(self.err_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, env=env())
        _vms.append(self)
        self.status = None
        if qmp:
            deadline = time.time() + 30
            while not os.path.exists(self.qmp_path):
                if self.proc.poll() is not None or time.time() > deadline:
                    raise AssertionError("VM did not open its QMP socket: %s\n%s"
                                         % (self.stderr(), self.stdout()[-2000:]))
                time.sleep(0.02)

    @property
    def pid(self):
        return self.proc.pid

    def stdout(self):
        with open(self.out_path) as f:
            return f.read()

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()

    def wait_for(self, pattern, timeout=60):
        """Waits until the console shows a line matching pattern; returns the match."""
        rx = re.compile(pattern, re.M)
        deadline = time.time() + timeout
        while True:
            m = rx.search(self.stdout())
            if m:
                return m
            if self.proc.poll() is not None:
                m = rx.search(self.stdout())
                if m:
                    return m
                raise AssertionError("VM exited (status %s) before printing /%s/:\n%s\n%s"
                                     % (self.proc.returncode, pattern, self.stdout()[-3000:],
                                        self.stderr()[-3000:]))
            if time.time() > deadline:
                raise AssertionError("timed out waiting for /%s/; console:\n%s"
                                     % (pattern, self.stdout()[-3000:]))
            time.sleep(0.05)

    def qmp(self):
        return Qmp(self.qmp_path)

    def wait(self, timeout=60):
        """Waits for exit; returns (status, stdout)."""
        try:
            self.status = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("VM did not exit within %ss; console:\n%s"
                                 % (timeout, self.stdout()[-3000:]))
        self._out.close()
        self._err.close()
        check_sanitizers(self.stderr())
        if self.status != 0:
            skip_if_no_kvm(self.stderr())
        return self.status, self.stdout()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        """Quits through QMP (or kills) and cleans up; safe to call twice."""
        if self.proc.poll() is None and self.qmp_path:
            with contextlib.suppress(Exception):
                q = self.qmp()
                q.cmd("quit")
                q.close()
                self.proc.wait(timeout=20)
        self.kill()
        with contextlib.suppress(Exception):
            self._out.close()
            self._err.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def start_vm(args, append=None, qmp=True, image=None, wrapper=()):
    """wrapper: a command the VM is started through (it must exec the rest), e.g. to join a cgroup."""
    return Vm(args, append=append, qmp=qmp, image=image, wrapper=wrapper)


class QmpError(Exception):
    def __init__(self, reply):
        self.reply = reply
        err = reply.get("error", {})
        self.cls = err.get("class")
        self.desc = err.get("desc")
        super().__init__("%s: %s" % (self.cls, self.desc))


class Qmp:
    """A QMP client: greeting and capabilities done on connect."""

    def __init__(self, path, negotiate=True, timeout=30):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.events = []
        self.greeting = self.recv()
        if negotiate:
            self.cmd("qmp_capabilities")

    def send_raw(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def recv(self):
        """Next JSON object from the server (events included)."""
        dec = json.JSONDecoder()
        while True:
            text = self.buf.decode(errors="replace").lstrip()
            if text:
                try:
                    obj, end = dec.raw_decode(text)
                    self.buf = text[end:].encode()
                    return obj
                except ValueError:
                    pass
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("QMP connection closed")
            self.buf += chunk

    def reply(self):
        """Next reply to a command, keeping events aside."""
        while True:
            obj = self.recv()
            if "event" in obj:
                self.events.append(obj)
                continue
            return obj

    def cmd_raw(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.send_raw(json.dumps(msg) + "\n")
        return self.reply()

    def cmd(self, name, **args):
        r = self.cmd_raw(name, **args)
        if "error" in r:
            raise QmpError(r)
        return r.get("return")

    def wait_event(self, name, timeout=30):
        deadline = time.time() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e["event"] == name:
                    return self.events.pop(i)
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError("no %s event within %ss" % (name, timeout))
            self.sock.settimeout(left)
            try:
                obj = self.recv()
            except socket.timeout:
                continue
            finally:
                self.sock.settimeout(30)
            if "event" in obj:
                self.events.append(obj)

    def close(self):
        with contextlib.suppress(Exception):
            self.sock.close()


def qmp_connect(path, negotiate=True):
    return Qmp(path, negotiate=negotiate)


def hugepage_dir(size):
    return "/sys/kernel/mm/hugepages/hugepages-%dkB" % (size // 1024)


def hugepages_available(size=2 << 20):
    """Free huge pages a new mapping can get (free minus reserved)."""
    d = hugepage_dir(size)
    with open(os.path.join(d, "free_hugepages")) as f:
        free = int(f.read())
    with open(os.path.join(d, "resv_hugepages")) as f:
        resv = int(f.read())
    return free - resv


@contextlib.contextmanager
def hugepages(count, size=2 << 20):
    """Makes at least count huge pages of size available, restoring the pool
    afterwards (also on failure); raises Skip if the host cannot."""
    d = hugepage_dir(size)
    path = os.path.join(d, "nr_hugepages")
    if not os.path.exists(path):
        raise Skip("no %d kB huge page pool on this host" % (size // 1024))
    with open(path) as f:
        old = int(f.read())
    want = old + max(0, count - hugepages_available(size))
    try:
        if want != old:
            _record_pool(path, old)
            try:
                with open(path, "w") as f:
                    f.write(str(want))
            except OSError as e:
                raise Skip("cannot reserve %d huge pages of %d kB: %s" % (count, size // 1024, e))
            if hugepages_available(size) < count:
                raise Skip("host could reserve only %d of %d huge pages of %d kB"
                           % (hugepages_available(size), count, size // 1024))
        yield
    finally:
        with contextlib.suppress(OSError):
            with open(path, "w") as f:
                f.write(str(old))
        _record_pool(path, None)


def _pool_record_file(tmp):
    return os.path.join(tmp, "hugepage-pools.json")


def _record_pool(path, old):
    """Notes (old is not None) or forgets a pool size to restore, in the
    runner's directory, so a test killed on its timeout still gets its
    pools back (restore_hugepages)."""
    if not TMP:
        return
    f = _pool_record_file(TMP)
    pools = {}
    with contextlib.suppress(OSError, ValueError):
        with open(f) as fh:
            pools = json.load(fh)
    if old is None:
        pools.pop(path, None)
    else:
        pools.setdefault(path, old)   # the first value is the one to restore
    with open(f, "w") as fh:
        json.dump(pools, fh)


def restore_hugepages(tmp):
    """Restores the pools a test in tmp changed and did not restore; returns
    the pools restored (the runner calls it after every test)."""
    pools = {}
    with contextlib.suppress(OSError, ValueError):
        with open(_pool_record_file(tmp)) as fh:
            pools = json.load(fh)
    for path, old in pools.items():
        with contextlib.suppress(OSError):
            with open(path, "w") as f:
                f.write(str(old))
    return sorted(pools)


def parse_summary(text):
    """The --stats summary as a dict of name -> int for its key=value figures,
    plus 'resident_bytes' and 'overhead_bytes'."""
    out = {}
    for k, v in re.findall(r"(\w+)=(\d+)", text):
        out.setdefault(k, int(v))
    units = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
    m = re.search(r"host resident:\s+([\d.]+) (\w+)", text)
    if m:
        out["resident_bytes"] = int(float(m.group(1)) * units[m.group(2)])
    m = re.search(r"VMM overhead:\s+([\d.]+) (\w+)", text)
    if m:
        out["overhead_bytes"] = int(float(m.group(1)) * units[m.group(2)])
    return out


def tool(name, *args, timeout=300):
    """Runs a host helper program from build/tests; returns stdout."""
    p = subprocess.run([os.path.join(TOOLS, name)] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, "%s failed (%d): %s" % (name, p.returncode, p.stderr)
    return p.stdout


def smaps_rss(pid, lo=None, hi=None):
    """Resident bytes (Rss + hugetlb) of a process, optionally within [lo, hi)."""
    total = 0
    inside = lo is None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line)
            if m:
                a, b = int(m.group(1), 16), int(m.group(2), 16)
                inside = lo is None or (a >= lo and b <= hi)
                continue
            if inside and re.match(r"^(Rss|Shared_Hugetlb|Private_Hugetlb):", line):
                total += int(line.split()[1]) * 1024
    return total
