"""The control plane with real guests: QMP stop/cont and asynchronous commands.

- stop/cont: the guest's console stops growing while paused and grows again
  after cont; STOP and RESUME reach every client (STOP before stop's reply);
  query-status says "paused" (running false) as QEMU does; stop twice and
  cont while running succeed without events; devices keep answering while
  the vCPUs are parked; quit and SIGTERM end a paused VM with status 0.
- mm-reclaim runs off the main loop: during a forced reclaim of a large
  filled guest another client's query-status answers at once, before the
  reclaim's reply, and the reclaiming client's next command is answered
  after its reclaim (replies in order per client). The guest then verifies
  every byte.
"""
import json
import os
import re
import select
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import lib  # noqa: E402

RUNNING = {"status": "running", "singlestep": False, "running": True}
PAUSED = {"status": "paused", "singlestep": False, "running": False}
CHURN = "workload=churn size=8M pause=20"


def rounds(vm):
    return len(re.findall(r"^churn: round ", vm.stdout(), re.M))


def event_names(q):
    """The events q received so far, after a round trip flushed what was sent before."""
    q.cmd("query-kvm")
    return [e["event"] for e in q.events]


def test_stop_cont_pauses_and_resumes_the_guest():
    with lib.start_vm(["--mem", "128M", "--cpus", "2"], append=CHURN) as vm:
        vm.wait_for(r"^churn: round 3 ", 60)
        q = vm.qmp()
        watcher = vm.qmp()
        assert q.cmd("query-status") == RUNNING

        assert q.cmd_raw("stop") == {"return": {}}
        assert [e["event"] for e in q.events] == ["STOP"], q.events   # before the reply
        assert "data" not in q.events[0] and q.events[0]["timestamp"]["seconds"] > 1.7e9
        assert q.cmd("query-status") == PAUSED
        assert watcher.cmd("query-status") == PAUSED
        before = rounds(vm)
        time.sleep(1.0)
        assert rounds(vm) == before, "the guest printed while paused:\n" + vm.stdout()[-1000:]

        # devices and the monitor still work while every vCPU is parked
        ram = q.cmd("query-memory-size-summary")["base-memory"]
        assert q.cmd("balloon", value=ram - (16 << 20)) == {}
        assert q.cmd("query-balloon")["actual"] == ram
        assert q.cmd("qom-get", path="/machine/peripheral/balloon0",
                     property="guest-stats-polling-interval") == 0

        assert q.cmd_raw("stop") == {"return": {}}    # as QEMU: no error, no second STOP
        assert q.cmd("query-status") == PAUSED
        assert q.cmd_raw("cont") == {"return": {}}
        assert q.cmd("query-status") == RUNNING
        assert q.cmd_raw("cont") == {"return": {}}    # running already: nothing happens
        assert event_names(q) == ["STOP", "RESUME"], q.events
        assert event_names(watcher) == ["STOP", "RESUME"], watcher.events

        # the guest goes on (and now deflates the balloon it was told about)
        vm.wait_for(r"^churn: round %d " % (before + 5), 30)
        assert q.cmd("query-status") == RUNNING
        for c in (q, watcher):
            c.close()


def test_quit_and_sigterm_end_a_paused_vm():
    with lib.start_vm(["--mem", "64M", "--cpus", "2"], append=CHURN) as vm:
        vm.wait_for(r"^churn: round 1 ", 60)
        q = vm.qmp()
        q.cmd("stop")
        assert q.cmd("quit") == {}
        status, _ = vm.wait(20)
        assert status == 0, vm.stderr()[-2000:]
    with lib.start_vm(["--mem", "64M"], append=CHURN) as vm:
        vm.wait_for(r"^churn: round 1 ", 60)
        vm.qmp().cmd("stop")
        vm.proc.send_signal(signal.SIGTERM)
        status, _ = vm.wait(20)
        assert status == 0, vm.stderr()[-2000:]


def test_mm_reclaim_is_async():
    """A long forced reclaim does not hold up another client."""
    mm = "cold-age=3600,max-refault-rate=0,scan-period=60000"
    fill = "workload=fill size=512M mix=random:50,text:50 rounds=0"
    with lib.start_vm(["--mem", "1G", "--mm", mm], append=fill) as vm:
        vm.wait_for(r"^fill: round 1 .*mismatches=0", 180)
        a = vm.qmp()
        b = vm.qmp()
        a.cmd("stop")    # the guest's rewrites would undo the reclaim while it runs
        t0 = time.monotonic()
        a.send_raw(json.dumps({"execute": "mm-reclaim", "id": "reclaim"}) + "\n"
                   + json.dumps({"execute": "query-status", "id": "after"}) + "\n")
        time.sleep(0.1)
        latencies = []
        for _ in range(5):
            t = time.monotonic()
            assert b.cmd("query-status") == PAUSED
            latencies.append(time.monotonic() - t)
        # b was answered while a still waited for its reclaim
        pending = not select.select([a.sock], [], [], 0)[0] and not a.buf.strip()
        b_done = time.monotonic() - t0
        r = a.reply()
        a_done = time.monotonic() - t0
        assert r.get("id") == "reclaim" and "return" in r, r
        took = r["return"]["seconds"]
        assert took >= 0.5, "the reclaim took %.2f s: too short to show anything" % took
        assert pending, "the reclaim's reply came before the other client's"
        assert b_done < a_done, (b_done, a_done)
        assert max(latencies) < 0.5, "query-status waited %.2f s during a reclaim" % max(latencies)
        # a's own later command waited for its reclaim: replies in order
        r = a.reply()
        assert r == {"return": PAUSED, "id": "after"}, r
        a.cmd("cont")
        vm.wait_for(r"^fill: round 2 .*mismatches=0", 180)
        assert "mismatches=0" in vm.stdout() and "FAILED" not in vm.stdout()
        for c in (a, b):
            c.close()
