"""minivmm-memd with real libvirt domains: libvirtd and QEMU (software
emulation: these machines have no hardware virtualization) run Debian's
kernel with a busybox initramfs whose own virtio_balloon driver answers
(tests/libvirt_env.py; ../shared/LIBVIRT-TCG.md is the recipe).

Two 512 MiB domains fill 300 MiB of tmpfs in the guest, free it and idle;
free page reporting is off, so the freed memory stays resident in QEMU
until the balloon takes it. minivmm-memd --libvirt qemu:///system with a
budget the QEMU processes exceed must lower each domain's balloon target,
libvirt must report actual = that target, the QEMU processes' resident
memory must fall by about what was ballooned; libvirtd is restarted under
the daemon, which reports the lost connection, opens it again and manages
both domains on; a guest that fills memory again shows pressure and is
given memory back under the same budget, taken from the other guest's
free memory; and neither guest may see the OOM killer.
The figures are printed (run with python3 tests/run.py test_libvirt).
"""
import contextlib
import os
import re
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import lib  # noqa: E402
from lib import Skip  # noqa: E402
from test_memd import Daemon  # noqa: E402

MiB = 1 << 20
RAM_MIB = 512
OOM = re.compile(r"Out of memory|oom-kill|invoked oom-killer|Kernel panic", re.I)


def console(path):
    with contextlib.suppress(OSError), open(path, errors="replace") as f:
        return f.read()
    return ""


def wait_console(path, pattern, timeout, what):
    rx = re.compile(pattern, re.M)
    deadline = time.time() + timeout
    while not rx.search(console(path)):
        if time.time() > deadline:
            raise AssertionError("no %s within %ss; console:\n%s" % (what, timeout, console(path)[-2000:]))
        time.sleep(0.5)


def dommemstat(lv, name):
    out = lv.virsh("dommemstat", name)
    return {k: int(v) for k, v in (l.split() for l in out.splitlines() if l.strip())}


def test_libvirt_domains_ballooned_to_budget_and_given_back():
    try:
        import libvirt_env
    except ImportError as e:
        raise Skip("tests/libvirt_env.py cannot be imported: %s" % e)
    if not shutil.which("virsh"):
        raise Skip("libvirt-clients is not installed (scripts/deps.sh installs it)")
    tmp = tempfile.mkdtemp(prefix="memd-libvirt-")
    d = None
    t0 = time.time()
    try:
        with libvirt_env.Libvirtd() as lv:
            # a refills 240 MiB (more than it has free once ballooned) at guest time 40 s; b stays idle
            cons = {
                "memd-a": lv.create("memd-a", RAM_MIB, "fill=300 free_at=4 refill_at=40 refill=240",
                                    free_page_reporting=False),
                "memd-b": lv.create("memd-b", RAM_MIB, "fill=300 free_at=4", free_page_reporting=False),
            }
            for n, c in cons.items():
                wait_console(c, r"^guest: freed", 150, "'guest: freed' from " + n)
            t_freed = time.time() - t0
            time.sleep(2)
            before = {n: libvirt_env.qemu_rss(n) for n in cons}
            assert all(before.values()), before
            # the daemon has to take about 160 MiB from each guest
            budget = sum(before.values()) - 320 * MiB
            print("domains filled and freed after %.0f s; QEMU RSS %s MiB; budget %d MiB"
                  % (t_freed, {n: v // MiB for n, v in before.items()}, budget // MiB))
            run = os.path.join(tmp, "run")
            os.makedirs(run)
            d = Daemon(["--libvirt", "qemu:///system", "--budget", str(budget), "--run-dir", run,
                        "--interval", "1", "-v"], tmp)
            t_start = time.time()
            vms = d.wait(lambda: (lambda v: v if set(cons) <= set(v) else None)(d.vms()),
                         "both domains in query-vms", timeout=20)
            for n in cons:
                assert vms[n]["kind"] == "libvirt", vms[n]
                assert vms[n]["uri"] == "qemu:///system", vms[n]
                # the floor and weight from the domain's minivmm metadata (configs/linux-tcg-domain.xml)
                assert vms[n]["libvirt"]["metadata-floor"] == 128 * MiB, vms[n]
                assert vms[n]["libvirt"]["metadata-weight"] == 1, vms[n]
                assert vms[n]["libvirt"]["stats-period"] == 2, vms[n]

            def ballooned():
                v = d.vms()
                done = {}
                for n in cons:
                    t = v[n].get("balloon-target")
                    if t is None or t > (RAM_MIB - 64) * MiB:
                        return None
                    actual = dommemstat(lv, n)["actual"] * 1024
                    if abs(actual - t) > 2 * MiB:
                        return None
                    done[n] = (t, actual)
                h = d.host()
                return done if h["usage"] is not None and h["usage"] <= budget else None

            got = d.wait(ballooned, "both domains ballooned (actual = target) and usage within the budget",
                         timeout=90, step=1)
            t_ballooned = time.time() - t_start
            time.sleep(2)
            after = {n: libvirt_env.qemu_rss(n) for n in cons}
            for n in cons:
                target, actual = got[n]
                taken = RAM_MIB * MiB - actual
                fell = before[n] - after[n]
                print("%s: target %d MiB, libvirt actual %d MiB; QEMU RSS %d -> %d MiB (-%d MiB for %d MiB "
                      "ballooned)" % (n, target // MiB, actual // MiB, before[n] // MiB, after[n] // MiB,
                                      fell // MiB, taken // MiB))
                # freed memory was touched, so ballooning it must release most of it
                assert fell >= taken * 6 // 10, (n, before[n], after[n], taken)
            print("within the budget %.1f s after the daemon started" % t_ballooned)
            reached = d.records("balloon-reached")
            assert reached, "no BALLOON_CHANGE reached a target: " + d.stderr()[-2000:]
            print("targets reached (BALLOON_CHANGE) after %s ms" % sorted(r["ms"] for r in reached)[:8])

            # libvirtd restarts under the daemon: the loss is reported, the connection opened
            # again, and both domains are managed on as before
            lv.restart()
            d.wait(lambda: [r for r in d.records("message") if "open again" in r["text"]],
                   "the libvirt connection open again after libvirtd restarted", timeout=60, step=0.5)
            d.wait(lambda: (lambda v: all(n in v and v[n]["connected"] for n in cons))(d.vms()),
                   "both domains managed again", timeout=30, step=0.5)
            lost = [r["text"] for r in d.records("message") if "libvirt" in r["text"]]
            print("libvirtd restarted: %s" % lost[-3:])

            # memd-a fills 240 MiB again, more than it has free: it shows pressure. The budget
            # stays as it is: memory for memd-a comes from memd-b, which has free memory.
            low = got["memd-a"][0]
            # counted before the refill: the daemon may act in the very tick it
            # sees the pressure, before this test sees it (or the console line)
            n_dec = len(d.records("decision"))
            b_before = d.vms()["memd-b"]["balloon-target"]
            wait_console(cons["memd-a"], r"^guest: refilled", 120, "'guest: refilled' from memd-a")
            t_refill = time.time()
            d.wait(lambda: d.vms()["memd-a"].get("pressured"), "memd-a under pressure after refilling",
                   timeout=30, step=0.5)
            print("memd-a under pressure %.1f s after its guest refilled: %s"
                  % (time.time() - t_refill, d.vms()["memd-a"]["why"]))
            t_press = time.time()
            v = d.wait(lambda: (lambda x: x if x["memd-a"]["balloon-target"] >= low + 32 * MiB else None)(d.vms()),
                       "memd-a given memory back under the same budget", timeout=45, step=0.5)
            assert d.host()["budget"] == budget, d.host()
            grow = [r for r in d.records("decision")[n_dec:] if r["vm"] == "memd-a" and "deflated" in r["why"]]
            assert grow and "guest under pressure" in grow[0]["why"], grow[:4]
            took = [r for r in d.records("decision")[n_dec:] if r["vm"] == "memd-b" and "balloon target" in r["why"]]
            assert took and v["memd-b"]["balloon-target"] < b_before, (b_before, v["memd-b"], took[:3])
            print("memd-a given back %d -> %d MiB %.1f s after its pressure showed, memd-b %d -> %d MiB, "
                  "budget unchanged: %s" % (low // MiB, v["memd-a"]["balloon-target"] // MiB, time.time() - t_press,
                                            b_before // MiB, v["memd-b"]["balloon-target"] // MiB, grow[0]["why"]))
            d.wait(lambda: abs(dommemstat(lv, "memd-a")["actual"] * 1024 - d.vms()["memd-a"]["balloon-target"])
                   <= 2 * MiB, "libvirt's actual at memd-a's raised target", timeout=20, step=0.5)

            for n, c in cons.items():
                text = console(c)
                assert not OOM.search(text), "%s saw the OOM killer:\n%s" % (n, text[-3000:])
                assert "running" in lv.virsh("domstate", n), n
                # still alive: its /init keeps printing
                last = re.findall(r"^guest: t=(\d+)", text, re.M)
                assert last, text[-1000:]
            d.stop()
            d = None
    except libvirt_env.Unavailable:
        raise
    finally:
        if d:
            d.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    print("test took %.0f s" % (time.time() - t0))
