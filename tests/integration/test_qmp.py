"""QMP monitor tests: raw JSON over the unix socket of a running minivmm.

Each test_* function boots build/guest.img with --qmp unix:PATH and speaks
the protocol byte by byte (greeting, capabilities negotiation, ids, errors,
malformed input, several clients, socket mode, quit), then checks
build/minivmm-ctl against the same VM. Python 3 standard library only.
"""
import json
import os
import select
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))

try:  # the shared test library, when the lead's tests/lib.py is there
    import lib as _lib
except ImportError:
    _lib = None

MINIVMM = getattr(_lib, "MINIVMM", os.path.join(ROOT, "build", "minivmm"))
GUEST = getattr(_lib, "GUEST", os.path.join(ROOT, "build", "guest.img"))
CTL = getattr(_lib, "CTL", os.path.join(ROOT, "build", "minivmm-ctl"))
_env = getattr(_lib, "env", lambda: dict(os.environ))


def check_sanitizers(text):
    if _lib is not None and hasattr(_lib, "check_sanitizers"):
        _lib.check_sanitizers(text)
    for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
        assert marker not in text, "sanitizer report:\n" + text[-4000:]

if _lib is not None and hasattr(_lib, "Skip"):
    Skip = _lib.Skip
else:
    class Skip(Exception):
        """Raised to report a test as skipped, with the reason."""


MEM = 96 << 20


def _guest_append():
    """workload=idle when the guest has it; otherwise a fill that never ends."""
    try:
        with open(GUEST, "rb") as f:
            if b"idle" in f.read():
                return "workload=idle"
    except OSError:
        pass
    return "workload=fill size=16M rounds=0"


def vm_command(sock_path, mem, cpus):
    """The command line of the VM under test (a dev harness may replace this)."""
    return [MINIVMM, "--mem", str(mem), "--cpus", str(cpus), "--qmp", "unix:" + sock_path,
            "--append", _guest_append(), GUEST]


class Vm:
    """A running minivmm with a QMP socket in a private directory."""

    def __init__(self, mem=MEM, sock_path=None, cpus=1):
        for path in (MINIVMM, GUEST):
            if not os.path.exists(path) and vm_command is _default_vm_command:
                raise Skip("%s is not built" % path)
        if not os.path.exists("/dev/kvm") and vm_command is _default_vm_command:
            raise Skip("/dev/kvm is missing")
        self.dir = tempfile.mkdtemp(prefix="minivmm-qmp-")
        self.qmp_path = sock_path or os.path.join(self.dir, "qmp.sock")
        self.out = open(os.path.join(self.dir, "output"), "w+b")
        self.proc = subprocess.Popen(vm_command(self.qmp_path, mem, cpus), stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=subprocess.STDOUT, env=_env())

    def wait_socket(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("minivmm exited with %d before its QMP socket appeared:\n%s"
                                     % (self.proc.returncode, self.output()))
            if os.path.exists(self.qmp_path):
                try:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.connect(self.qmp_path)
                    s.close()
                    return
                except OSError:
                    pass
            time.sleep(0.02)
        raise AssertionError("no QMP socket at %s after %d s:\n%s"
                             % (self.qmp_path, timeout, self.output()))

    def output(self):
        self.out.flush()
        self.out.seek(0)
        return self.out.read().decode(errors="replace")

    def wait(self, timeout=20):
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("minivmm still running after %d s:\n%s" % (timeout, self.output()))
        out = self.output()
        check_sanitizers(out)
        return status, out

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.out.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        self.wait_socket()
        return self

    def __exit__(self, exc_type, exc, tb):
        # A test that passed ends its VM through QMP, so every test also checks
        # a clean quit (status 0, no sanitizer report, socket removed).
        try:
            if exc_type is None and self.proc.poll() is None:
                q = connect(self)
                assert q.execute("quit") == {"return": {}}
                status, out = self.wait(20)
                assert status == 0, "exit status %d after quit:\n%s" % (status, out)
                assert not os.path.exists(self.qmp_path), "socket file left behind"
        finally:
            self.kill()


_default_vm_command = vm_command


class Qmp:
    """A raw QMP connection: bytes out, one JSON message at a time in."""

    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.timeout = timeout
        self.buf = b""
        self.events = []
        self.dec = json.JSONDecoder()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, obj):
        self.send_raw(json.dumps(obj).encode() + b"\n")

    def recv(self, timeout=None):
        """The next message; raises AssertionError on timeout or EOF."""
        deadline = time.time() + (timeout if timeout is not None else self.timeout)
        while True:
            text = self.buf.decode()
            stripped = text.lstrip()
            if stripped:
                try:
                    msg, end = self.dec.raw_decode(stripped)
                    rest = stripped[end:]
                    self.buf = rest.encode()
                    return msg
                except ValueError:
                    pass
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError("no QMP message within the timeout (buffered %r)" % self.buf[:200])
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                continue
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("QMP connection closed (buffered %r)" % self.buf[:200])
            self.buf += data

    def reply(self, timeout=None):
        """The next non-event message; events are kept in self.events."""
        while True:
            msg = self.recv(timeout)
            if "event" in msg:
                self.events.append(msg)
                continue
            return msg

    def execute(self, name, args=None, **extra):
        req = {"execute": name}
        if args is not None:
            req["arguments"] = args
        req.update(extra)
        self.send(req)
        return self.reply()

    def cmd(self, name, **args):
        """Runs a command and returns its "return" value; fails on an error reply."""
        msg = self.execute(name, args or None)
        assert "return" in msg, "%s failed: %r" % (name, msg)
        return msg["return"]

    def negotiate(self):
        greeting = self.recv()
        assert "QMP" in greeting, greeting
        assert self.execute("qmp_capabilities") == {"return": {}}
        return greeting

    def close(self):
        self.sock.close()


def connect(vm, negotiate=True):
    q = Qmp(vm.qmp_path)
    if negotiate:
        q.negotiate()
    return q


def assert_error(msg, cls="GenericError", desc_has=None):
    assert "error" in msg, "expected an error, got %r" % (msg,)
    assert msg["error"]["class"] == cls, msg
    assert isinstance(msg["error"]["desc"], str) and msg["error"]["desc"], msg
    if desc_has is not None:
        assert desc_has in msg["error"]["desc"], msg


def run_ctl(vm_or_path, *args, timeout=20):
    if not os.path.exists(CTL):
        raise Skip("%s is not built" % CTL)
    path = vm_or_path if isinstance(vm_or_path, str) else vm_or_path.qmp_path
    p = subprocess.run([CTL, path] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


# ---- tests ----

def test_qmp_greeting():
    with Vm() as vm:
        q = connect(vm, negotiate=False)
        g = q.recv()
        assert set(g) == {"QMP"}, g
        ver = g["QMP"]["version"]
        assert {"major", "minor", "micro"} <= set(ver["qemu"]), g
        assert all(isinstance(ver["qemu"][k], int) for k in ("major", "minor", "micro")), g
        assert ver["package"].startswith("minivmm "), g
        assert g["QMP"]["capabilities"] == [], g
        # query-version says the same thing after negotiation
        assert q.execute("qmp_capabilities") == {"return": {}}
        assert q.cmd("query-version") == ver


def test_qmp_commands_refused_before_capabilities():
    with Vm() as vm:
        q = connect(vm, negotiate=False)
        q.recv()
        for name in ("query-status", "quit", "no-such-command"):
            assert_error(q.execute(name), "CommandNotFound", "qmp_capabilities")
        assert vm.proc.poll() is None, "quit before negotiation must not stop the VM"
        assert_error(q.execute("qmp_capabilities", {"enable": ["oob"]}), "GenericError")
        assert q.execute("qmp_capabilities") == {"return": {}}
        assert_error(q.execute("qmp_capabilities"), "CommandNotFound", "already complete")
        assert q.cmd("query-status")["running"] is True


def test_qmp_id_echoed():
    with Vm() as vm:
        q = connect(vm, negotiate=False)
        q.recv()
        # echoed on errors before negotiation, on success and on errors after
        assert q.execute("query-status", id="early")["id"] == "early"
        r = q.execute("qmp_capabilities", id=1)
        assert r == {"return": {}, "id": 1}, r
        for ident in ("abc", 42, {"nested": [1, 2, {"x": None}]}, [1, "two"], 3.5):
            r = q.execute("query-kvm", id=ident)
            assert r.get("id") == ident and "return" in r, r
            r = q.execute("no-such-command", id=ident)
            assert r.get("id") == ident and "error" in r, r
        r = q.execute("query-kvm")
        assert "id" not in r, r
        assert r["return"] == {"enabled": True, "present": True}, r


def test_qmp_unknown_command_and_bad_arguments():
    with Vm() as vm:
        q = connect(vm)
        assert_error(q.execute("frobnicate"), "CommandNotFound", "frobnicate")
        assert_error(q.execute("query-status", {"bogus": 1}), "GenericError", "bogus")
        q.send({"execute": "query-status", "arguments": [1, 2]})
        assert_error(q.reply(), "GenericError", "arguments")
        q.send({"execute": 7})
        assert_error(q.reply(), "GenericError", "execute")
        q.send({"arguments": {}})
        assert_error(q.reply(), "GenericError", "execute")
        q.send({"execute": "query-status", "extra": True})
        assert_error(q.reply(), "GenericError", "extra")
        assert q.cmd("query-status")["status"] == "running"


def test_qmp_malformed_json_keeps_serving():
    with Vm() as vm:
        q = connect(vm)
        bad_inputs = [
            b"{bad}\n",
            b'{"execute": "query-status",}\n',
            b'{"execute": nul}\n',
            b"not json at all\n",
            b'{"execute": "query-\xff\xfestatus"}\n',   # invalid UTF-8
            b'{"execute": "query-status\x00"}\n',      # raw NUL
            b"]\n",
        ]
        for bad in bad_inputs:
            q.send_raw(bad)
            assert_error(q.reply(), "GenericError")
            r = q.execute("query-status", id="after")
            assert r.get("id") == "after" and r["return"]["running"], (bad, r)
        # JSON that is not an object
        q.send_raw(b"[1, 2, 3]\n")
        assert_error(q.reply(), "GenericError", "object")
        q.send_raw(b'"just a string"\n')
        assert_error(q.reply(), "GenericError", "object")
        # one request split over several writes, then two in one write without newlines
        q.send_raw(b'{"exec')
        time.sleep(0.1)
        q.send_raw(b'ute": "query-kvm", ')
        time.sleep(0.1)
        q.send_raw(b'"id": "split"}')
        r = q.reply()
        assert r.get("id") == "split" and r["return"]["enabled"], r
        q.send_raw(b'{"execute": "query-kvm", "id": 1}{"execute": "query-status", "id": 2}')
        assert q.reply()["id"] == 1
        assert q.reply()["id"] == 2
        # garbage glued to a good request: one error, then the request runs
        q.send_raw(b'{"execute": oops}{"execute": "query-kvm", "id": "glued"}')
        assert_error(q.reply(), "GenericError")
        r = q.reply()
        assert r.get("id") == "glued" and "return" in r, r
        # no reply is owed for whitespace
        q.send_raw(b"\n\r\n   \t\n")
        assert q.execute("query-kvm", id="ws").get("id") == "ws"


def test_qmp_oversized_request_drops_only_that_client():
    with Vm() as vm:
        good = connect(vm)
        big = connect(vm)
        # 2 MiB inside an unterminated string: never a complete value
        payload = b'{"execute": "query-status", "id": "' + b"a" * (2 << 20)
        # How far the send gets depends on the host's socket buffers: where
        # they hold the whole 2 MiB, the send completes and the reply is read.
        closed = False
        try:
            big.send_raw(payload)
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        answered = []
        while not closed and len(answered) < 2:
            try:
                answered.append(big.recv(timeout=10))
            except (EOFError, ConnectionResetError):
                closed = True
        # the one thing the server may say first is why it closes
        assert len(answered) <= 1, answered
        for msg in answered:
            assert msg.get("error", {}).get("class") == "GenericError", msg
            assert "1 MiB" in msg["error"]["desc"], msg
        assert closed
        assert good.cmd("query-status")["running"] is True
        assert vm.proc.poll() is None
        assert "1 MiB" in vm.output(), vm.output()


def test_qmp_several_clients():
    with Vm() as vm:
        clients = [connect(vm) for _ in range(6)]
        # interleave: everyone sends, then everyone reads its own replies in order
        for round_ in range(5):
            for i, q in enumerate(clients):
                q.send({"execute": "query-status", "id": [i, round_]})
                q.send({"execute": "query-kvm", "id": [i, round_, "kvm"]})
            for i, q in enumerate(clients):
                assert q.reply()["id"] == [i, round_]
                assert q.reply()["id"] == [i, round_, "kvm"]
        # a client that vanishes mid-request and one that never negotiates do not disturb others
        rude = Qmp(vm.qmp_path)
        rude.send_raw(b'{"execute": "qmp_capabilities"}\n{"execute": "query-sta')
        rude.close()
        silent = Qmp(vm.qmp_path)
        for q in clients:
            q.close()
        fresh = connect(vm)
        assert fresh.cmd("query-status")["running"] is True
        assert silent.recv()["QMP"]
        assert vm.proc.poll() is None


def test_qmp_socket_mode_0600():
    with Vm() as vm:
        st = os.stat(vm.qmp_path)
        assert stat.S_ISSOCK(st.st_mode), oct(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)


def test_qmp_stale_socket_replaced_live_socket_refused():
    d = tempfile.mkdtemp(prefix="minivmm-qmp-stale-")
    try:
        path = os.path.join(d, "qmp.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.close()  # a socket file nobody listens on, as a crashed VM leaves it
        with Vm(sock_path=path) as vm:
            assert connect(vm).cmd("query-status")["running"] is True
            # a second VM on the same live socket must refuse, not steal it
            second = Vm(sock_path=path)
            try:
                status, out = second.wait(20)
                assert status != 0, out
                assert path in out, out
            finally:
                second.kill()
            assert connect(vm).cmd("query-status")["running"] is True
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_qmp_query_status_and_friends():
    with Vm(cpus=2) as vm:
        q = connect(vm)
        assert q.cmd("query-status") == {"status": "running", "singlestep": False, "running": True}
        assert q.cmd("query-kvm") == {"enabled": True, "present": True}
        cpus = q.cmd("query-cpus-fast")
        assert [c["cpu-index"] for c in cpus] == [0, 1], cpus
        names = {c["name"] for c in q.cmd("query-commands")}
        for n in ("qmp_capabilities", "query-version", "query-commands", "query-status", "quit",
                  "query-memory-size-summary", "query-kvm", "query-cpus-fast"):
            assert n in names, (n, names)


def test_qmp_memory_size_summary_matches_mem():
    with Vm(mem=MEM) as vm:
        r = connect(vm).cmd("query-memory-size-summary")
        assert r == {"base-memory": MEM, "plugged-memory": 0}, r


def test_qmp_quit_exits_zero_and_tells_clients():
    vm = Vm()
    try:
        vm.wait_socket()
        q = connect(vm)
        watcher = connect(vm)
        unnegotiated = Qmp(vm.qmp_path)
        assert unnegotiated.recv()["QMP"]
        r = q.execute("quit", id="bye")
        assert r == {"return": {}, "id": "bye"}, r
        status, out = vm.wait(20)
        assert status == 0, "exit status %d:\n%s" % (status, out)
        ev = watcher.recv(timeout=5)
        assert ev["event"] == "SHUTDOWN", ev
        ts = ev["timestamp"]
        assert ts["seconds"] > 1.7e9 and 0 <= ts["microseconds"] < 1000000, ev
        try:
            msg = unnegotiated.recv(timeout=5)
            raise AssertionError("a client before negotiation got %r" % (msg,))
        except EOFError:
            pass
        assert not os.path.exists(vm.qmp_path), "socket file left behind"
    finally:
        vm.kill()


def test_ctl_info_against_running_vm():
    with Vm() as vm:
        rc, out, err = run_ctl(vm, "info")
        assert rc == 0, (rc, out, err)
        assert "running" in out, out
        assert "96.00 MiB" in out or "96 MiB" in out or str(MEM) in out, out
        assert "balloon" in out, out
        rc, out, err = run_ctl(vm, "raw", '{"execute": "query-kvm", "id": 5}')
        assert rc == 0 and json.loads(out) == {"return": {"enabled": True, "present": True}, "id": 5}, out
        rc, out, err = run_ctl(vm, "raw", "no-such-command")
        assert rc == 1 and "CommandNotFound" in out, (rc, out, err)
        rc, out, err = run_ctl(vm, "balloon", "lots")
        assert rc != 0 and "lots" in err, (rc, out, err)
        rc, out, err = run_ctl(vm, "quit")
        assert rc == 0, (rc, out, err)
        status, out = vm.wait(20)
        assert status == 0, out


def test_ctl_missing_socket_says_what_to_do():
    d = tempfile.mkdtemp(prefix="minivmm-qmp-")
    try:
        path = os.path.join(d, "nothing.sock")
        rc, out, err = run_ctl(path, "info")
        assert rc != 0, (rc, out, err)
        assert "cannot connect to " + path in err and "--qmp unix:" + path in err, err
        rc, out, err = run_ctl(path, "frob")
        assert rc == 2 and "unknown command" in err, (rc, err)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    failed = 0
    names = sys.argv[1:] or sorted(n for n in dict(globals()) if n.startswith("test_"))
    for name in names:
        t0 = time.time()
        try:
            globals()[name]()
            print("PASS %s (%.1fs)" % (name, time.time() - t0))
        except Skip as e:
            print("SKIP %s: %s" % (name, e))
        except Exception as e:  # noqa: BLE001 - report every failure and go on
            failed += 1
            print("FAIL %s: %s: %s" % (name, type(e).__name__, e))
    sys.exit(1 if failed else 0)
