"""The QMP monitor's published limits (README, "QMP limits"): each one
reached is reported to the client (an error reply) and in the log, the VM
keeps running and other clients keep being served.

- clients at once: 64; the 65th gets a GenericError line and is closed, and
  a slot freed by a client that leaves is usable again;
- request length: 1 MiB without a complete JSON value: a GenericError, then
  the connection closes; a 900 KiB request is served;
- JSON nesting: 2048 levels (jansson's parser); a 2000-deep id is echoed,
  a 3000-deep one is a parse error reply and the session goes on;
- replies and events waiting for one client: 8 MiB; a client that sends
  commands but never reads is dropped with a log line.
"""
import json
import os
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import lib  # noqa: E402

RUNNING = {"status": "running", "singlestep": False, "running": True}


def raw_connect(path, timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def read_line(s):
    """One reply line as bytes; b'' at EOF."""
    buf = b""
    while not buf.endswith(b"\n"):
        try:
            chunk = s.recv(1 << 20)
        except ConnectionResetError:
            return buf
        if not chunk:
            return buf
        buf += chunk
    return buf


def negotiated(path):
    s = raw_connect(path)
    assert b'"QMP"' in read_line(s)
    s.sendall(b'{"execute": "qmp_capabilities"}\n')
    assert b'"return"' in read_line(s)
    return s


def test_clients_at_once():
    with lib.start_vm(["--mem", "64M"], append="workload=idle") as vm:
        clients = [lib.Qmp(vm.qmp_path) for _ in range(64)]
        extra = raw_connect(vm.qmp_path)
        line = read_line(extra)
        err = json.loads(line)["error"]
        assert err["class"] == "GenericError" and "at most 64 at once" in err["desc"], line
        assert read_line(extra) == b"", "the refused client stays connected"
        extra.close()
        assert all(c.cmd("query-status") == RUNNING for c in clients)
        clients.pop().close()
        deadline = time.time() + 5
        while True:   # the server sees the close on its next loop turn
            try:
                again = lib.Qmp(vm.qmp_path)
                break
            except (ConnectionError, KeyError, ValueError):
                assert time.time() < deadline, "no slot after a client left"
                time.sleep(0.05)
        assert again.cmd("query-status") == RUNNING
        for c in clients + [again]:
            c.close()
        assert "client refused: 64 clients are connected" in vm.stderr(), vm.stderr()[-2000:]


def test_request_length():
    with lib.start_vm(["--mem", "64M"], append="workload=idle") as vm:
        s = negotiated(vm.qmp_path)
        big = '{"execute": "query-status", "id": "%s"}\n' % ("x" * (900 << 10))
        s.sendall(big.encode())
        reply = json.loads(read_line(s))
        assert reply["return"] == RUNNING and len(reply["id"]) == 900 << 10
        try:
            s.sendall(b'{"execute": "query-status", "id": "' + b"y" * ((1 << 20) + 4096))
        except (BrokenPipeError, ConnectionResetError):
            pass   # closed while we were still sending; the reply was sent first
        line = read_line(s)
        err = json.loads(line)["error"]
        assert "longer than 1 MiB" in err["desc"], line
        s.close()
        assert vm.qmp().cmd("query-status") == RUNNING
        assert "request larger than 1 MiB" in vm.stderr(), vm.stderr()[-2000:]


def test_json_nesting():
    with lib.start_vm(["--mem", "64M"], append="workload=idle") as vm:
        s = negotiated(vm.qmp_path)
        ok = '{"execute": "query-status", "id": %s%s}\n' % ("[" * 2000, "]" * 2000)
        s.sendall(ok.encode())
        line = read_line(s)
        assert line.startswith(b'{"return"') and line.count(b"[") == 2000, line[:200]
        deep = '{"execute": "query-status", "id": %s%s}\n' % ("[" * 3000, "]" * 3000)
        s.sendall(deep.encode())
        line = read_line(s)
        err = json.loads(line)["error"]
        assert "maximum parsing depth" in err["desc"], line
        # whatever follows the error is skipped up to the next object; the session goes on
        s.sendall(b'{"execute": "query-status"}\n')
        deadline = time.time() + 10
        while b'"return"' not in line:
            assert time.time() < deadline
            line = read_line(s)
            assert line, "the session ended after a nesting error"
        assert json.loads(line)["return"] == RUNNING
        s.close()


def test_client_that_does_not_read_is_dropped():
    with lib.start_vm(["--mem", "64M"], append="workload=idle") as vm:
        other = vm.qmp()
        s = negotiated(vm.qmp_path)
        s.settimeout(60)
        req = b'{"execute": "query-commands"}\n' * 1000
        dropped = False
        for _ in range(400):   # up to 400000 replies of about 1 KiB, never read
            try:
                s.sendall(req)
            except (BrokenPipeError, ConnectionResetError):
                dropped = True
                break
            if "does not read its replies" in vm.stderr():
                dropped = True
                break
        assert dropped, "a client that never reads was not dropped"
        s.close()
        assert other.cmd("query-status") == RUNNING
        assert "does not read its replies and events (over 8 MiB pending)" in vm.stderr()
