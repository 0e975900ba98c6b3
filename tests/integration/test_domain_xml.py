"""minivmm --domain FILE: a libvirt domain definition as the configuration.

The example definitions in configs/ boot as they are; the command line
overrides them and says so; currentMemory starts the balloon at that
target; the domain's name puts the QMP socket in the run directory for
minivmm-memd; malformed XML and elements minivmm does not support are
refused with one line naming the line and the element (exit status 64).
configs/memd.conf is a working minivmm-memd configuration.
"""
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import lib  # noqa: E402

MiB = 1 << 20
DEMO = os.path.join(lib.ROOT, "configs", "minivmm-demo.xml")
HUGE = os.path.join(lib.ROOT, "configs", "hugetlb-domain.xml")


def run(args, timeout=120):
    p = subprocess.run([lib.MINIVMM] + args, capture_output=True, text=True, timeout=timeout,
                       env=lib.env(), cwd=lib.ROOT)
    lib.check_sanitizers(p.stderr)
    return p.returncode, p.stdout, p.stderr


def test_demo_domain_boots():
    status, out, err = run(["--domain", DEMO])
    assert status == 0 and "fill: ok" in out, (status, out[-2000:], err)
    assert "cpus=2 mem=512M" in out, out[:500]


def test_current_memory_starts_the_balloon_and_name_is_the_socket():
    rd = tempfile.mkdtemp(prefix="minivmm-rundir-")
    p = subprocess.Popen([lib.MINIVMM, "--domain", DEMO, "--run-dir", rd, "--append", "workload=idle"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=lib.env(),
                         cwd=lib.ROOT)
    try:
        sock = os.path.join(rd, "demo.qmp")
        for _ in range(300):
            if os.path.exists(sock):
                break
            if p.poll() is not None:
                raise AssertionError("minivmm exited with %d before opening %s: %s"
                                     % (p.returncode, sock, p.stderr.read()))
            time.sleep(0.05)
        q = lib.Qmp(sock)
        deadline = time.time() + 30
        while time.time() < deadline:
            actual = q.cmd("query-balloon")["actual"]
            if actual <= 384 * MiB:
                break
            time.sleep(0.2)
        assert actual == 384 * MiB, actual
        hints = q.cmd("query-minivmm")
        assert hints == {"name": "demo", "memd-floor": 192 * MiB, "memd-weight": 2}, hints
        q.cmd("quit")
        q.close()
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read()
    lib.check_sanitizers(err)
    assert "--append overrides <cmdline> of the domain demo" in err, err
    assert not os.path.exists(os.path.join(rd, "demo.qmp")), "socket left behind"


def test_hugetlb_domain_boots():
    with lib.hugepages(128):
        status, out, err = run(["--domain", HUGE], timeout=180)
    assert status == 0 and "churn: ok" in out, (status, out[-2000:], err)


def _refused(xml, words):
    d = tempfile.mkdtemp(prefix="minivmm-xml-")
    path = os.path.join(d, "bad.xml")
    with open(path, "w") as f:
        f.write(xml)
    status, out, err = run(["--domain", path], timeout=30)
    lines = [l for l in err.splitlines() if l.strip()]
    assert status == 64 and len(lines) == 1, (status, err)
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_bad_domains_refused_by_name():
    _refused("<domain type='kvm'>\n<memory unit='MiB'>64</memory>\n<name>x</nam>\n</domain>\n",
             ["bad.xml:3:", "malformed XML"])
    _refused("<domain type='kvm'><memory unit='MiB'>64</memory><os><kernel>build/guest.img</kernel></os>\n"
             "<devices>\n<interface type='network'/>\n</devices></domain>", ["bad.xml:3:", "<interface>"])
    _refused("<domain type='kvm'><memory unit='MiB'>64</memory></domain>", ["no <os><kernel>"])
    _refused("<domain type='kvm'><memory unit='MiB'>64</memory><currentMemory unit='MiB'>32</currentMemory>"
             "<os><kernel>build/guest.img</kernel></os><devices><memballoon model='none'/></devices></domain>",
             ["needs the balloon"])


def test_memd_example_config_is_valid():
    # the example file as it is, its run directory and budget overridden for the test
    rd = tempfile.mkdtemp(prefix="minivmm-memd-conf-")
    ctl = os.path.join(rd, "memd.sock")
    memd = os.path.join(lib.BUILD, "asan", "minivmm-memd")
    if not os.path.exists(memd):
        memd = os.path.join(lib.BUILD, "minivmm-memd")
    p = subprocess.Popen([memd, "--config", os.path.join(lib.ROOT, "configs", "memd.conf"), "--run-dir", rd,
                          "--control", "unix:" + ctl], stderr=subprocess.PIPE, text=True, env=lib.env())
    try:
        for _ in range(200):
            if os.path.exists(ctl):
                break
            time.sleep(0.05)
        q = lib.Qmp(ctl)
        host = q.cmd("query-host")
        q.close()
        assert host["policy"] == "minivmm" and host["budget"] == 8 << 30, host
    finally:
        p.terminate()
        p.wait(timeout=10)
    lib.check_sanitizers(p.stderr.read())
