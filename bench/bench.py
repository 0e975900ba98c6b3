#!/usr/bin/env python3
"""make bench: minivmm's figures, each against its baseline measured in the
same run (these machines are shared and noisy, so ratios are what carry
over). Uses the optimised build (build/minivmm), not the sanitizer one.

  python3 bench/bench.py [--quick]
"""

import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
import lib  # noqa: E402

MINIVMM = os.path.join(lib.BUILD, "minivmm")
REPEAT = 1 if "--quick" in sys.argv else 3
rows = []


def row(name, value, unit, baseline=None, note=""):
    rows.append((name, value, unit, baseline, note))
    ratio = ""
    if baseline:
        ratio = "  (%.2fx %s)" % (value / baseline[0], baseline[1])
    print("%-46s %12.2f %-8s%s %s" % (name, value, unit, ratio, note), flush=True)


def vm(args, append, timeout=600):
    cmd = [MINIVMM] + args + ["--append", append, lib.GUEST]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("%s failed: %s %s" % (" ".join(cmd), p.stdout[-2000:], p.stderr[-2000:]))
    return p.stdout, p.stderr


def boot_time():
    """Process start to the guest's first console line, median of 5."""
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        p = subprocess.Popen([MINIVMM, "--mem", "128M", lib.GUEST], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
        p.stdout.readline()
        times.append((time.perf_counter() - t0) * 1000)
        p.wait()
    t0 = time.perf_counter()
    subprocess.run(["/bin/true"])
    spawn = (time.perf_counter() - t0) * 1000
    row("boot to first guest line", statistics.median(times), "ms", (125.0, "of Firecracker's 125 ms"),
        "(bare process spawn here: %.2f ms)" % spawn)


def overhead():
    _, err = vm(["--mem", "256M", "--stats"], "workload=fill size=64M rounds=1")
    st = lib.parse_summary(err)
    mib = st["overhead_bytes"] / (1 << 20)
    row("VMM resident memory besides guest RAM", mib, "MiB", (5.0, "of Firecracker's 5 MiB"))


def bandwidth():
    configs = [
        ("anon 4K host, 4K guest", ["--mem-backing", "anon", "--guest-pages", "4K"], 0),
        ("anon 4K host, 2M guest", ["--mem-backing", "anon", "--guest-pages", "2M"], 0),
        ("thp host, 4K guest", ["--mem-backing", "thp", "--guest-pages", "4K"], 0),
        ("thp host, 2M guest", ["--mem-backing", "thp", "--guest-pages", "2M"], 0),
        ("hugetlb 2M host, 2M guest", ["--mem-backing", "hugetlb", "--guest-pages", "2M"], 512),
    ]
    fill = {c[0]: [] for c in configs}
    verify = {c[0]: [] for c in configs}
    touch = {c[0]: [] for c in configs}
    size = "256M"
    for _ in range(REPEAT):
        for name, args, huge in configs:   # interleaved, so drift hits all alike
            try:
                ctx = lib.hugepages(huge) if huge else None
                if ctx:
                    ctx.__enter__()
                try:
                    out, _ = vm(["--mem", "512M"] + args,
                                "workload=fill size=%s mix=random:50,text:50 rounds=2" % size)
                    m = re.findall(r"fill_MBps=([\d.]+) verify_MBps=([\d.]+)", out)
                    fill[name].append(float(m[-1][0]))
                    verify[name].append(float(m[-1][1]))
                    out, _ = vm(["--mem", "1G"] + args,
                                "workload=touch size=768M accesses=20000000")
                    m = re.search(r"ns_per_access=([\d.]+)", out)
                    touch[name].append(float(m.group(1)))
                finally:
                    if ctx:
                        ctx.__exit__(None, None, None)
            except lib.Skip as e:
                print("skip %s: %s" % (name, e))
    base = configs[0][0]
    for name, _, _ in configs:
        if not fill[name]:
            continue
        row("fill bandwidth, " + name, statistics.median(fill[name]), "MB/s",
            (statistics.median(fill[base]), "of anon 4K/4K"))
        row("verify bandwidth, " + name, statistics.median(verify[name]), "MB/s",
            (statistics.median(verify[base]), "of anon 4K/4K"))
        row("random touch latency, " + name, statistics.median(touch[name]), "ns",
            (statistics.median(touch[base]), "of anon 4K/4K"))


def tool_figures(name, *args):
    path = os.path.join(lib.TOOLS, name)
    if not os.path.exists(path):
        print("skip %s: not built" % name)
        return
    p = subprocess.run([path] + list(args), capture_output=True, text=True, timeout=900)
    print(p.stdout, end="")
    if p.returncode != 0:
        print("%s failed: %s" % (name, p.stderr[-2000:]))


def main():
    print("minivmm bench, %s, %d cores, kernel %s" % (time.strftime("%Y-%m-%d"), os.cpu_count(),
                                                      os.uname().release))
    boot_time()
    overhead()
    bandwidth()
    for backing in ("anon", "thp", "memfd"):
        tool_figures("bench_balloon", "1G", "3", backing)
    p = subprocess.run([sys.executable, os.path.join(lib.ROOT, "tests", "integration", "test_balloon.py"),
                        "--bench"], capture_output=True, text=True, timeout=900,
                       env=dict(os.environ, MINIVMM=MINIVMM))
    print(p.stdout, end="")
    tool_figures("bench_mm")
    print(subprocess.run([sys.executable, os.path.join(HERE, "ksm.py")] + sys.argv[1:], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=900).stdout, end="")
    # the TLB table: guest x host page sizes with each run's translation summary
    print(subprocess.run([sys.executable, os.path.join(HERE, "tlb.py")] + sys.argv[1:], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=1800).stdout, end="")


if __name__ == "__main__":
    main()
