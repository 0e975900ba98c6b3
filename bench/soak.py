#!/usr/bin/env python3
"""make soak: proves over a long run that no guest byte is lost while
everything that moves guest memory moves at once.

Four VMs (release build, seccomp on), on several vCPUs and every backing:
  fill-anon   2 vCPUs, anon     fill/verify rounds (each round rewrites an
                                eighth of its memory and verifies all of it)
  wss-memfd   2 vCPUs, memfd    working set growing mid-run, full verify
                                every 5 s
  fill-thp    1 vCPU,  THP      fill/verify rounds
  fill-huge   1 vCPU,  hugetlb  fill/verify rounds (2 MiB pages; the pool
                                is restored afterwards, also on failure)
all under minivmm-memd with a budget below what they touch, while a seeded
random driver, every 0.5-2 s, inflates or deflates a balloon, forces a
reclaim, switches a VM's compression off or on, or moves the daemon's
budget. At the end every VM is asked to quit and the run prints: bytes
verified by the guests, mismatches, checksum failures, unresolvable faults,
balloon changes, reclaims, compression switches, budget moves, refaults,
and each VM's peak resident memory (VmHWM, which leaves out hugetlb pages). It exits non-zero on any mismatch,
checksum failure or VM that died.

  python3 bench/soak.py [--seconds 600] [--seed 1]
"""
import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
import lib  # noqa: E402

MINIVMM = os.path.join(lib.BUILD, "minivmm")
MEMD = os.path.join(lib.BUILD, "minivmm-memd")
OUT = os.path.join(lib.BUILD, "soak")
MiB = 1 << 20

VMS = [
    # name, vCPUs, RAM MiB, backing, workload
    ("fill-anon", 2, 512, "anon", "workload=fill size=256M rounds=1000000"),
    ("wss-memfd", 2, 512, "memfd", "workload=wss size=320M hot=32M,160M@60s verify=5 duration=%(s)d"),
    ("fill-thp", 1, 384, "thp", "workload=fill size=192M rounds=1000000"),
    ("fill-huge", 1, 256, "hugetlb", "workload=fill size=128M rounds=1000000"),
]


def vm_cmd(rd, name, cpus, mem, backing, append):
    cmd = [MINIVMM, "--name", name, "--run-dir", rd, "--mem", "%dM" % mem, "--cpus", str(cpus),
           "--mem-backing", backing, "--mm", "cold-age=3,scan-period=500",
           "--balloon", "stats-period=1,free-page-reporting=on", "--append", append, lib.GUEST]
    if backing == "hugetlb":
        cmd[cmd.index("--mem-backing") + 2:cmd.index("--mem-backing") + 2] = ["--hugepage-size", "2M"]
    return cmd


def qmp_at(path, timeout=30):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        if time.time() > deadline:
            raise RuntimeError("no QMP socket at %s" % path)
        time.sleep(0.05)
    return lib.Qmp(path)


def vm_hwm(pid):
    with contextlib.suppress(OSError), open("/proc/%d/status" % pid) as f:
        m = re.search(r"^VmHWM:\s+(\d+) kB", f.read(), re.M)
        return int(m.group(1)) << 10 if m else 0
    return 0


def verified(out):
    """Bytes the guest verified, and its mismatches, from its console."""
    size = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    b = mism = 0
    for s, unit, m in re.findall(r"^fill: round \d+ size=(\d+)([KMG]) .* mismatches=(\d+)$", out, re.M):
        b += int(s) * size[unit]
        mism += int(m)
    for pages, m in re.findall(r"^wss: verify t=\d+ pages=(\d+) ms=\d+ mismatches=(\d+)$", out, re.M):
        b += int(pages) * 4096
        mism += int(m)
    mism += sum(int(m) for m in re.findall(r"^(?:fill|wss): FAILED mismatches=(\d+)", out, re.M))
    return b, mism


def chaos(rng, vms, memd, counts, total_mem):
    """One random action; what it did, for the log."""
    name = rng.choice(list(vms))
    q, mem = vms[name]["qmp"], vms[name]["mem"]
    kind = rng.choice(["balloon", "balloon", "reclaim", "compression", "budget"])
    if kind == "balloon":
        target = rng.randint(mem // 2, mem) * MiB
        q.cmd("balloon", value=target)
        counts["balloon changes"] += 1
        return "%s balloon %d MiB" % (name, target >> 20)
    if kind == "reclaim":
        b = rng.randint(8, 96) * MiB
        q.cmd("mm-reclaim", bytes=b)
        counts["forced reclaims"] += 1
        return "%s mm-reclaim %d MiB" % (name, b >> 20)
    if kind == "compression":
        on = rng.random() < 0.5
        q.cmd("mm-set-compression", enabled=on)
        counts["compression switches"] += 1
        return "%s compression %s" % (name, "on" if on else "off")
    # from below the VMs' floors (refused, saying so) to all they have
    budget = int(total_mem * rng.uniform(0.55, 1.0))
    r = memd.cmd_raw("set-budget", bytes=budget)
    if "error" in r:
        counts["budgets refused"] += 1
        return "budget %d MiB refused: %s" % (budget >> 20, r["error"]["desc"])
    counts["budget moves"] += 1
    return "budget %d MiB" % (budget >> 20)


def run(a):
    rd = os.path.join(OUT, "run")
    shutil.rmtree(rd, ignore_errors=True)
    os.makedirs(rd)
    rng = random.Random(a.seed)
    total_mem = sum(v[2] for v in VMS) * MiB
    procs, vms, memd = {}, {}, None
    counts = {k: 0 for k in ("balloon changes", "forced reclaims", "compression switches", "budget moves",
                             "budgets refused")}
    log = open(os.path.join(OUT, "actions.log"), "w")
    try:
        memd = subprocess.Popen([MEMD, "--budget", str(total_mem * 3 // 4), "--run-dir", rd,
                                 "--control", "unix:" + os.path.join(rd, "memd.sock"),
                                 "--log", os.path.join(OUT, "timeline.jsonl")],
                                stdout=subprocess.DEVNULL, stderr=open(os.path.join(OUT, "memd.err"), "w"))
        for name, cpus, mem, backing, append in VMS:
            p = subprocess.Popen(vm_cmd(rd, name, cpus, mem, backing, append % {"s": a.seconds + 30}),
                                 stdout=open(os.path.join(OUT, name + ".out"), "w"),
                                 stderr=open(os.path.join(OUT, name + ".err"), "w"))
            procs[name] = p
            vms[name] = {"qmp": qmp_at(os.path.join(rd, name + ".qmp")), "mem": mem, "pid": p.pid}
        mq = qmp_at(os.path.join(rd, "memd.sock"))
        t0 = time.time()
        last_print = t0
        while time.time() - t0 < a.seconds:
            dead = [n for n, p in procs.items() if p.poll() is not None]
            if dead:
                print("soak: %s ended early" % ", ".join(dead), file=sys.stderr)
                break
            what = chaos(rng, vms, mq, counts, total_mem)
            log.write("%.1f %s\n" % (time.time() - t0, what))
            for v in vms.values():
                v["hwm"] = max(v.get("hwm", 0), vm_hwm(v["pid"]))
            if time.time() - last_print >= 30:
                got = sum(verified(open(os.path.join(OUT, n + ".out")).read())[0] for n in vms)
                print("soak: %4.0f s, %.2f GiB verified so far" % (time.time() - t0, got / (1 << 30)), flush=True)
                last_print = time.time()
            time.sleep(rng.uniform(0.5, 2.0))
        # a calm end: compression on, balloons back, then every figure once more
        figures = {}
        for name, v in vms.items():
            if procs[name].poll() is None:
                v["qmp"].cmd("mm-set-compression", enabled=True)
                figures[name] = v["qmp"].cmd("query-memory-manager")
                v["hwm"] = max(v.get("hwm", 0), vm_hwm(v["pid"]))
                v["qmp"].cmd("quit")
        codes = {}
        for name, p in procs.items():
            try:
                codes[name] = p.wait(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
                codes[name] = "hung"
    finally:
        for p in procs.values():
            with contextlib.suppress(Exception):
                p.kill()
        if memd:
            memd.send_signal(signal.SIGTERM)
            with contextlib.suppress(Exception):
                memd.wait(timeout=10)
        log.close()
    return report(a, vms, figures, codes, counts)


def report(a, vms, figures, codes, counts):
    rows, bad = [], []
    tot = {"verified": 0, "mismatches": 0, "checksum": 0, "unresolvable": 0, "refaults": 0}
    for name in vms:
        with open(os.path.join(OUT, name + ".out")) as f:
            b, m = verified(f.read())
        fg = figures.get(name, {})
        cs, ur, rf = fg.get("checksum-failures", 0), fg.get("unresolvable-faults", 0), fg.get("refaults", 0)
        tot["verified"] += b
        tot["mismatches"] += m
        tot["checksum"] += cs
        tot["unresolvable"] += ur
        tot["refaults"] += rf
        rows.append((name, b, m, cs, rf, vms[name].get("hwm", 0), codes.get(name)))
        if m or cs or ur or codes.get(name) not in (0,):
            bad.append(name)
    print("\n%-10s %12s %10s %9s %9s %10s %6s" % ("vm", "verified", "mismatch", "checksum", "refaults",
                                                 "peak MiB", "exit"))
    for name, b, m, cs, rf, hwm, code in rows:
        print("%-10s %9.2f GiB %10d %9d %9d %10d %6s" % (name, b / (1 << 30), m, cs, rf, hwm >> 20, code))
    print("total: %.2f GiB verified, %d mismatches, %d checksum failures, %d unresolvable faults, %d refaults"
          % (tot["verified"] / (1 << 30), tot["mismatches"], tot["checksum"], tot["unresolvable"], tot["refaults"]))
    print("driver: " + ", ".join("%d %s" % (v, k) for k, v in counts.items()))
    print("seconds %d, seed %d, date %s" % (a.seconds, a.seed, time.strftime("%Y-%m-%d")))
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump({"rows": rows, "total": tot, "counts": counts, "seconds": a.seconds, "seed": a.seed}, f)
    if bad:
        print("soak: FAILED: %s" % ", ".join(bad), file=sys.stderr)
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("SOAK_SECONDS", "600")))
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    huge = sum(v[2] for v in VMS if v[3] == "hugetlb") // 2
    with lib.hugepages(huge):
        return run(a)


if __name__ == "__main__":
    sys.exit(main())
