#!/usr/bin/env python3
"""make overcommit: N minivmm VMs under a budget of half their guest RAM,
enforced for real by a memory cgroup (v1 here) around them, run under each
host policy of minivmm-memd, side by side:

  nolimit   no cgroup limit and no daemon: the throughput reference
  none      the limit, the daemon observing only: what happens without a manager
  mom       oVirt MOM's default balloon rules (the baseline users know)
  minivmm   minivmm-memd's own policy

Each VM runs the guest's verified working-set workload (workload=wss), with
working sets that differ and one that grows mid-run; every byte is
re-verified. Prints a table (throughput as a ratio to nolimit, peak and mean
memory, savings by kind, OOM kills, time to get under budget after a
pressure step, mismatches) and draws PNG plots into build/overcommit/.

  python3 bench/overcommit.py [--vms 4] [--mem 1G] [--duration 90] [--verify 45]
                              [--policies nolimit,none,mom,minivmm] [--quick]
  python3 bench/overcommit.py --replot   # table and plots again from the last run

A VM killed by the cgroup's OOM killer is reported loudly in the table and
on stderr, never silently.
"""
import argparse
import contextlib
import json
import os
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
OUT = os.path.join(lib.BUILD, "overcommit")
CG_ROOT = "/sys/fs/cgroup/memory"
MiB = 1 << 20


def size(s):
    m = re.fullmatch(r"(\d+)([KMG]?)", s)
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


class Cgroup:
    """A v1 memory cgroup for the VMs, removed afterwards."""

    def __init__(self, name, limit):
        if not os.path.isdir(CG_ROOT):
            sys.exit("overcommit: no cgroup v1 memory controller at %s" % CG_ROOT)
        self.path = os.path.join(CG_ROOT, name)
        os.makedirs(self.path, exist_ok=True)
        if limit:
            self.write("memory.limit_in_bytes", limit)

    def write(self, f, v):
        with open(os.path.join(self.path, f), "w") as fh:
            fh.write(str(v))

    def read(self, f):
        with open(os.path.join(self.path, f)) as fh:
            return fh.read()

    def usage(self):
        return int(self.read("memory.usage_in_bytes"))

    def oom_kills(self):
        m = re.search(r"oom_kill (\d+)", self.read("memory.oom_control"))
        return int(m.group(1)) if m else 0

    def remove(self):
        for _ in range(50):
            with contextlib.suppress(OSError):
                os.rmdir(self.path)
                return
            time.sleep(0.1)


def wss_args(i, n, mem, duration, step, verify):
    """An idle-heavy mix: each guest touches 3/4 of its RAM, keeps a hot set
    of a tenth to a third of that busy, and leaves the rest cold; VM 0's
    working set grows at the pressure step. Every byte is re-verified every
    `verify` seconds and at the end: a full read makes every page hot for
    that moment, so at 15 s the whole of each guest's memory was its
    working set and nothing stayed cold (run with --verify 15 to see it)."""
    size_b = mem * 3 // 4
    hots = [size_b // 10, size_b // 5, size_b // 3, size_b // 8]
    hot = "%dM" % (hots[i % len(hots)] >> 20)
    if i == 0:
        hot += ",%dM@%ds" % ((size_b * 3 // 5) >> 20, step)
    return "workload=wss size=%dM hot=%s verify=%d duration=%d seed=%d" % (size_b >> 20, hot, verify, duration,
                                                                           i + 1)


def run_policy(policy, a, run_dir):
    """One scenario; returns a dict of figures and time series."""
    name = "minivmm-overcommit-%d-%s" % (os.getpid(), policy)
    total = a.vms * a.mem
    budget = total // 2
    cg = Cgroup(name, 0 if policy == "nolimit" else budget)
    rd = os.path.join(run_dir, policy)
    os.makedirs(rd, exist_ok=True)
    vms, memd = [], None
    series = {"t": [], "usage": [], "vm": {}}
    try:
        if policy != "nolimit":
            # MOM runs with its KSM controller, over guest RAM marked mergeable as QEMU's is
            # (KSM merges private anonymous memory only: with memfd guest RAM it has nothing to do)
            ksm = ["--ksm", "on"] if policy == "mom" and a.backing in ("anon", "thp") else []
            memd = subprocess.Popen([MEMD, "--cgroup", cg.path, "--run-dir", rd, "--policy", policy,
                                     "--log", os.path.join(rd, "timeline.jsonl"),
                                     "--control", "unix:" + os.path.join(rd, "memd.sock")] + ksm,
                                    stdout=subprocess.DEVNULL, stderr=open(os.path.join(rd, "memd.err"), "w"))
        t0 = time.time()
        series["t0"] = t0

        def sample_for(seconds):
            end = time.time() + seconds
            while time.time() < end:
                series["t"].append(time.time() - t0)
                series["usage"].append(cg.usage())
                if "step" not in series and vms:
                    # the pressure step: VM 0's console says its working set grew
                    with contextlib.suppress(OSError), open(os.path.join(rd, "vm0.out")) as f:
                        if re.search(r"^wss: t=\d+ hot=\S+ step=1$", f.read(), re.M):
                            series["step"] = time.time() - t0
                time.sleep(0.5)

        for i in range(a.vms):
            if i:
                sample_for(a.stagger)   # guests come up one after another, as on a host
            # memfd: reclaim punches holes that leave the cgroup at once; with the anon backing,
            # discarded guest pages stayed charged to the cgroup here (README, "make overcommit")
            cmd = [MINIVMM, "--name", "vm%d" % i, "--run-dir", rd, "--mem", "%dM" % (a.mem >> 20),
                   "--mem-backing", a.backing,
                   "--mm", "cold-age=30" + (",ksm=on" if policy == "mom" and a.backing in ("anon", "thp") else ""),
                   "--balloon", "stats-period=1,free-page-reporting=on",
                   "--append", wss_args(i, a.vms, a.mem, a.duration, a.step, a.verify), lib.GUEST]
            out = open(os.path.join(rd, "vm%d.out" % i), "w")
            # Joins the cgroup before exec, so all of its memory is charged there.
            p = subprocess.Popen(["sh", "-c", 'echo $$ > "$0"/cgroup.procs && exec "$@"', cg.path] + cmd,
                                 stdout=out, stderr=open(os.path.join(rd, "vm%d.err" % i), "w"))
            vms.append(p)
        while any(p.poll() is None for p in vms) and time.time() - t0 < a.duration + 240:
            sample_for(0.5)
        codes = [p.wait(timeout=60) for p in vms]
    finally:
        for p in vms:
            with contextlib.suppress(Exception):
                p.kill()
        if memd:
            memd.send_signal(signal.SIGTERM)
            with contextlib.suppress(Exception):
                memd.wait(timeout=10)
        oom = cg.oom_kills()
        cg.remove()
    return collect(policy, a, rd, series, codes, oom, budget)


def collect(policy, a, rd, series, codes, oom, budget):
    r = {"policy": policy, "budget": budget, "series": series, "codes": codes, "oom": oom,
         "ops": [], "ops_t": [], "mismatches": 0, "verified": 0, "failed": []}
    for i in range(a.vms):
        with open(os.path.join(rd, "vm%d.out" % i)) as f:
            out = f.read()
        lines = re.findall(r"^wss: t=(\d+) ops=\d+ ops_per_s=(\d+)", out, re.M)
        r["ops_t"].append([int(t) for t, _ in lines])
        r["ops"].append([int(o) for _, o in lines])
        r["mismatches"] += sum(int(m) for m in re.findall(r"mismatches=(\d+)", out)[-1:])
        if "mismatch " in out or codes[i] != 0:
            r["failed"].append("vm%d exit %s" % (i, codes[i]))
        m = re.search(r"verified_bytes=(\d+)", out)
        r["verified"] += int(m.group(1)) if m else 0
    r["timeline"] = []
    with contextlib.suppress(OSError):
        with open(os.path.join(rd, "timeline.jsonl")) as f:
            r["timeline"] = [json.loads(l) for l in f if l.strip()]
    us = series["usage"]
    r["peak"] = max(us) if us else 0
    r["mean"] = sum(us) / len(us) if us else 0
    # Pressure step: VM 0's working set grows (seen on its console). The
    # cgroup holds usage at the limit, so "under the budget" means back
    # under 95% of it, for 3 s in a row: seconds from the step until then
    # (0 when usage never rose that high; None when VM 0 never got there).
    r["step_t"] = series.get("step")
    r["under_after_step"] = None
    if r["step_t"] is not None:
        since = None
        for t, u in zip(series["t"], us):
            if t < r["step_t"]:
                continue
            if u <= budget * 0.95:
                since = t if since is None else since
                if t - since >= 3:
                    r["under_after_step"] = since - r["step_t"]
                    break
            else:
                since = None
    return r


def throughput(r):
    """Aggregate operations over the run: a VM killed mid-run counts zero after its death."""
    return sum(sum(o) for o in r["ops"])


def samples(r):
    """The daemon's per-second samples: (seconds since the bench's start, [VM figures])."""
    out = []
    for e in r.get("timeline", []):
        if e.get("type") != "sample":
            continue
        # runs before t0 was kept: the daemon started just before the first VM
        t = e["time"] - r["series"]["t0"] if "t0" in r["series"] else e["t"]
        out.append((t, e.get("vms", [])))
    return out


SAVED = ("balloon", "reported", "zero", "shared", "compressed")


def savings(r):
    """Mean MiB saved per kind over the daemon's samples, all VMs together (None without a daemon)."""
    ss = samples(r)
    if not ss:
        return None
    tot = dict.fromkeys(SAVED, 0)
    for _, vms in ss:
        for v in vms:
            if v.get("ram") and v.get("balloon-actual") is not None:
                tot["balloon"] += v["ram"] - v["balloon-actual"]
            for k in SAVED[1:]:
                tot[k] += (v.get("saved") or {}).get(k) or 0
    return {k: tot[k] / len(ss) / MiB for k in SAVED}


def guest_ooms(r):
    """OOM kills the guests themselves reported (virtio-balloon stats), summed over VMs."""
    worst = {}
    for _, vms in samples(r):
        for v in vms:
            n = (v.get("guest-stats") or {}).get("oom-kills")
            if n is not None:
                worst[v["name"]] = max(worst.get(v["name"], 0), n)
    return sum(worst.values()) if worst else None


def table(results):
    ref = next((r for r in results if r["policy"] == "nolimit"), None)
    print("\n%-9s %8s %10s %10s %10s %8s %9s %10s %s" % (
        "policy", "overcomm", "thruput", "peak MiB", "mean MiB", "OOM", "under(s)", "mismatch", "notes"))
    for r in results:
        ratio = throughput(r) / throughput(ref) if ref and throughput(ref) else float("nan")
        print("%-9s %7.2f:1 %9.2fx %10d %10d %8d %9s %10d %s" % (
            r["policy"], 2.0 if r["policy"] != "nolimit" else 0, ratio, r["peak"] >> 20, int(r["mean"]) >> 20,
            r["oom"], "%.1f" % r["under_after_step"] if r["under_after_step"] is not None and r["policy"] != "nolimit"
            else "-",
            r["mismatches"], ", ".join(r["failed"])))
        if r["oom"] or r["failed"]:
            print("overcommit: %s: %d OOM kill(s), failures: %s" % (r["policy"], r["oom"], r["failed"]),
                  file=sys.stderr)
    print("\n%-9s %s %10s   mean MiB saved: %s" % ("policy", " ".join("%6s" % ("vm%d" % i) for i in range(
        len(results[0]["ops"]))), "guest OOM", " ".join("%10s" % k for k in SAVED)))
    for r in results:
        per = []
        for i, o in enumerate(r["ops"]):
            base = sum(ref["ops"][i]) if ref and i < len(ref["ops"]) else 0
            per.append("%5.2fx" % (sum(o) / base) if base else "     -")
        sv, go = savings(r), guest_ooms(r)
        print("%-9s %s %10s   %s" % (r["policy"], " ".join(per), "-" if go is None else go,
                                     " ".join("%10.0f" % sv[k] for k in SAVED) if sv else "(no daemon)"))


def plots(results, a):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("overcommit: python3-matplotlib missing: no plots", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for r in results:
        line, = ax.plot(r["series"]["t"], [u / MiB for u in r["series"]["usage"]], label=r["policy"])
        if r.get("step_t") is not None:
            ax.axvline(r["step_t"], color=line.get_color(), linestyle=":", linewidth=1)
    ax.axhline(results[0]["budget"] / MiB, color="black", linestyle="--", label="budget")
    ax.plot([], [], color="grey", linestyle=":", label="VM 0's working set grows (per run)")
    for k in range(1, a.vms):
        ax.axvline(k * a.stagger, color="lightgrey", linestyle="-", linewidth=0.8)
    ax.set_xlabel("seconds since the first VM started (grey lines: the next VMs start)")
    ax.set_ylabel("memory of the VMs (MiB, cgroup usage)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(OUT, "memory.png"))
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for r in results:
        n = max((len(o) for o in r["ops"]), default=0)
        agg = [sum(o[k] for o in r["ops"] if k < len(o)) for k in range(n)]
        ax.plot(range(1, n + 1), agg, label=r["policy"])
    ax.set_xlabel("seconds after the fill")
    ax.set_ylabel("aggregate operations per second")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(OUT, "throughput.png"))
    managed = [r for r in results if samples(r)]
    if managed:
        fig, axes = plt.subplots(len(managed), 1, figsize=(9, 2.6 * len(managed) + 0.6), sharex=True,
                                 squeeze=False)
        for ax, r in zip(axes[:, 0], managed):
            ss = samples(r)
            for i in range(len(r["ops"])):
                name, color = "vm%d" % i, "C%d" % i

                def fig_of(key, ss=ss, name=name):
                    pts = [(t, v.get(key)) for t, vms in ss for v in vms if v["name"] == name]
                    return [t for t, _ in pts], [x / MiB if x is not None else float("nan") for _, x in pts]
                ax.plot(*fig_of("resident"), color=color, label=name + " resident")
                ax.plot(*fig_of("balloon-actual"), color=color, linestyle="--", linewidth=0.9)
                ax.plot(*fig_of("resident-target"), color=color, linestyle=":", linewidth=1.2)
            ax.set_title("%s: resident (solid), balloon actual (dashed), resident target (dotted)"
                         % r["policy"], fontsize=9)
            ax.set_ylabel("MiB")
        axes[0, 0].legend(fontsize=7, ncol=len(managed[0]["ops"]))
        axes[-1, 0].set_xlabel("seconds since the first VM started")
        fig.tight_layout()
        fig.savefig(os.path.join(OUT, "vms.png"))
    print("plots: %s/memory.png, %s/throughput.png, %s/vms.png" % (OUT, OUT, OUT))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vms", type=int, default=4)
    ap.add_argument("--mem", type=size, default=size("1G"))
    ap.add_argument("--duration", type=int, default=90)
    ap.add_argument("--step", type=int, default=30, help="seconds after its fill VM 0's working set grows")
    ap.add_argument("--stagger", type=int, default=8, help="seconds between VM starts")
    ap.add_argument("--policies", default="nolimit,none,mom,minivmm")
    ap.add_argument("--verify", type=int, default=45, help="seconds between full re-verifications in each guest")
    ap.add_argument("--backing", default="memfd", help="guest RAM backing of the VMs (memfd)")
    ap.add_argument("--quick", action="store_true", help="2 VMs of 768M for 40 s")
    ap.add_argument("--replot", action="store_true", help="no run: the table and plots of the last run again")
    a = ap.parse_args()
    if a.quick:
        a.vms, a.mem, a.duration, a.step = 2, size("768M"), 40, 15
    os.makedirs(OUT, exist_ok=True)
    run_dir = os.path.join(OUT, "run")
    if a.replot:
        with open(os.path.join(OUT, "results.json")) as f:
            results = json.load(f)
        for r in results:
            with contextlib.suppress(OSError), open(os.path.join(run_dir, r["policy"], "timeline.jsonl")) as f:
                r["timeline"] = [json.loads(line) for line in f if line.strip()]
        a.vms = len(results[0]["ops"])
        table(results)
        plots(results, a)
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    results = []
    for p in a.policies.split(","):
        print("overcommit: %s: %d VMs x %d MiB, budget %d MiB, %d s ..." % (
            p, a.vms, a.mem >> 20, (a.vms * a.mem // 2) >> 20, a.duration), flush=True)
        results.append(run_policy(p, a, run_dir))
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump([{k: v for k, v in r.items() if k != "timeline"} for r in results], f)
    table(results)
    plots(results, a)
    print("date: %s" % time.strftime("%Y-%m-%d"))


if __name__ == "__main__":
    main()
