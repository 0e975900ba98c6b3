#!/usr/bin/env python3
"""Benchmark: minivmm's own zero-page + dedup reclaim against Linux KSM on the
same guest memory: the time and CPU each needs to reach the same savings.

Every VM boots build/guest.img (1 GiB, anon 4 KiB backing, no balloon) with
`fill size=512M mix=dup:50,zero:25,random:25 rounds=0`. Once round 1 has
written the memory, the VM is paused with QMP `stop` (the vCPUs park; the
QMP loop, the scanner and ksmd keep running), because the fill workload
otherwise rewrites an eighth of its pages and re-reads all of them several
times a second, which would undo both KSM's merges and minivmm's evictions
while they are measured.

Savings are the drop of the whole VMM process's proportional set size
(/proc/PID/smaps_rollup Pss): Pss divides a KSM page among the mappings that
share it, and it counts minivmm's store (its copies of shared and raw pages)
as well as the guest RAM, so both methods are measured by the same ruler.

  (a) minivmm: --mm zero=on,compress=off,dedup=on; one forced mm-reclaim
      pass (every page counts as cold); CPU is the mm-scan thread's.
  (b) KSM: --mm ksm=on (MADV_MERGEABLE), /sys/kernel/mm/ksm/run=1 with the
      kernel defaults pages_to_scan=100, sleep_millisecs=20 (about 20 MB/s);
      CPU is ksmd's. (c) the same with pages_to_scan=10000.

The target X is 90% of what minivmm's pass saves. KSM's machine-wide settings
are restored in a finally block. Prints `name: value unit` lines.

  python3 bench/ksm.py [--quick]
"""

import os
import re
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
import lib  # noqa: E402

MINIVMM = os.path.join(lib.BUILD, "minivmm")   # the optimised build, never the ASan one
KSM = "/sys/kernel/mm/ksm"
MEM = "1G"
APPEND = "workload=fill size=512M mix=dup:50,zero:25,random:25 rounds=0"
TARGET_FRACTION = 0.90
KSM_CAP_S = 90 if "--quick" in sys.argv else 150   # wait for KSM at default speed (it needs ~65 s here)
KSM_FAST_CAP_S = 60
POLL_S = 0.05



def out(name, value, unit=""):
    if isinstance(value, float):
        value = "%.3f" % value
    print(("%s: %s %s" % (name, value, unit)).rstrip(), flush=True)


def pss(pid):
    with open("/proc/%d/smaps_rollup" % pid) as f:
        m = re.search(r"^Pss:\s+(\d+) kB", f.read(), re.M)
    return int(m.group(1)) * 1024


def cpu_ns(path):
    """CPU time of a task in ns: schedstat's run time, else utime+stime."""
    try:
        with open(path + "/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        with open(path + "/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def ksmd_path():
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/comm" % pid) as f:
                    if f.read().strip() == "ksmd":
                        return "/proc/" + pid
            except OSError:
                pass
    raise lib.Skip("no ksmd kernel thread (host kernel without CONFIG_KSM?)")


def ksm_get(name):
    with open(os.path.join(KSM, name)) as f:
        return f.read().strip()


def ksm_set(name, value):
    with open(os.path.join(KSM, name), "w") as f:
        f.write(str(value))


def threads(pid):
    res = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                res[int(tid)] = f.read().strip()
        except OSError:
            pass
    return res


def boot(mm):
    args = ["--mem", MEM, "--mem-backing", "anon", "--no-balloon", "--mm", mm]
    vm = lib.start_vm(args, append=APPEND)
    try:
        m = vm.wait_for(r"^fill: round 1 .*mismatches=0", timeout=120)
        q = vm.qmp()
        q.cmd("stop")
        q.close()
    except BaseException:
        vm.kill()
        raise
    time.sleep(0.3)   # let in-flight host work settle
    return vm, m.group(0)


def stop(vm):
    vm.kill()


def minivmm_run():
    vm, line = boot("zero=on,compress=off,dedup=on,cold-age=3600,max-refault-rate=0,"
                            "scan-period=60000")
    try:
        pid = vm.pid
        scan = [t for t, c in threads(pid).items() if c == "mm-scan"]
        assert scan, "no mm-scan thread"
        scan_path = "/proc/%d/task/%d" % (pid, scan[0])
        q = vm.qmp()
        q0 = q.cmd("query-memory-manager")
        p0 = pss(pid)
        c0 = cpu_ns(scan_path)
        result = {}

        def reclaim():
            try:
                result["r"] = q.cmd("mm-reclaim", bytes=0)
            except Exception as e:   # reported by the main thread
                result["e"] = e

        t0 = time.monotonic()
        th = threading.Thread(target=reclaim)
        th.start()
        series = []
        deadline = t0 + 120
        while th.is_alive() and time.monotonic() < deadline:
            series.append((time.monotonic() - t0, p0 - pss(pid), cpu_ns(scan_path) - c0))
            time.sleep(POLL_S)
        th.join(max(0.0, deadline - time.monotonic()))
        t_end = time.monotonic() - t0
        if th.is_alive() or "e" in result:
            raise RuntimeError("mm-reclaim did not complete: %s" % result.get("e", "timeout"))
        series.append((t_end, p0 - pss(pid), cpu_ns(scan_path) - c0))
        q1 = q.cmd("query-memory-manager")
        q.close()
        r = result["r"]
        return {
            "line": line, "pss0": p0, "series": series, "final": series[-1][1],
            "pass_s": t_end, "pass_cpu_s": series[-1][2] / 1e9, "reply": r,
            "resident_drop": q0["host-resident"] - q1["host-resident"],
            "scanner_cpu_s": q1["scanner-cpu-seconds"] - q0["scanner-cpu-seconds"],
            "zero": q1["zero-pages"], "shared": q1["shared-pages"],
            "raw": q1["compressed-pages"], "shared_saved": q1["shared-bytes-saved"],
        }
    finally:
        stop(vm)


def first_reach(series, x):
    for t, s, c in series:
        if s >= x:
            return t, c
    return None


def other_mergeable(exclude=None):
    """Pids of other processes with KSM-mergeable memory: ksmd scans them
    too (its CPU then includes them) and our pages may merge with theirs."""
    res = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == exclude:
            continue
        try:
            with open("/proc/%s/ksm_stat" % pid) as f:
                if re.search(r"ksm_mergeable: yes|ksm_merge_any: yes", f.read()):
                    res.append(pid)
        except OSError:
            pass
    return res


def ksm_run(pages_to_scan, target, cap_s, ksmd):
    """One KSM run on a fresh VM; returns its series and where it stopped."""
    ksm_set("run", 0)
    ksm_set("pages_to_scan", pages_to_scan)
    ksm_set("sleep_millisecs", 20)
    vm, line = boot("ksm=on")
    try:
        pid = vm.pid
        p0 = pss(pid)
        c0 = cpu_ns(ksmd)
        others = set(other_mergeable(pid))
        t0 = time.monotonic()
        ksm_set("run", 1)
        series = [(0.0, 0, 0)]
        poll = 0.25 if pages_to_scan <= 1000 else POLL_S
        while time.monotonic() - t0 < cap_s:
            time.sleep(poll)
            series.append((time.monotonic() - t0, p0 - pss(pid), cpu_ns(ksmd) - c0))
            if series[-1][1] >= target:
                break
        # Someone else on this shared machine may have changed the settings
        # or started a mergeable process meanwhile: the figures say so.
        changed = [n for n, v in (("run", "1"), ("pages_to_scan", str(pages_to_scan)),
                                  ("sleep_millisecs", "20")) if ksm_get(n) != v]
        others |= set(other_mergeable(pid))
        ksm_set("run", 0)
        with open("/proc/%d/ksm_stat" % pid) as f:
            stat = dict(re.findall(r"^(\w+)\s+(\d+)", f.read(), re.M))
        return {"line": line, "pss0": p0, "series": series,
                "stat": stat, "others": sorted(others, key=int), "changed": changed}
    finally:
        ksm_set("run", 0)
        stop(vm)


def report_ksm(tag, k, target, mv_t, mv_cpu):
    s = k["series"]
    hit = first_reach(s, target)
    if k["others"] or k["changed"]:
        out("%s CONTAMINATED (figures not clean)" % tag,
            "other mergeable pids: %s; KSM settings changed by someone else: %s"
            % (" ".join(k["others"]) or "none", " ".join(k["changed"]) or "none"))
    out("%s savings at end" % tag, s[-1][1] / 2**20, "MiB")
    out("%s ksm_merging_pages" % tag, int(k["stat"].get("ksm_merging_pages", 0)), "pages")
    out("%s ksm_process_profit" % tag, int(k["stat"].get("ksm_process_profit", 0)) / 2**20, "MiB")
    if hit:
        t, c = hit
        out("%s time to X" % tag, t, "s")
        out("%s ksmd CPU to X" % tag, c / 1e9, "s")
        out("%s time to X / minivmm" % tag, t / mv_t if mv_t else 0.0, "x")
        out("%s CPU to X / minivmm" % tag, (c / 1e9) / mv_cpu if mv_cpu else 0.0, "x")
        return
    # Not reached within the cap: extrapolate linearly from the last third.
    t_end, s_end, c_end = s[-1]
    ref = s[max(0, len(s) - 1 - len(s) // 3)]
    rate = (s_end - ref[1]) / (t_end - ref[0]) if t_end > ref[0] else 0.0
    crate = (c_end - ref[2]) / (t_end - ref[0]) if t_end > ref[0] else 0.0
    out("%s reached X" % tag, "no (stopped after %.1f s at %.1f%% of X)" % (t_end, 100.0 * s_end / target))
    if rate > 0:
        t_est = t_end + (target - s_end) / rate
        c_est = c_end + crate * (t_est - t_end)
        out("%s time to X (EXTRAPOLATED)" % tag, t_est, "s")
        out("%s ksmd CPU to X (EXTRAPOLATED)" % tag, c_est / 1e9, "s")
        out("%s time to X / minivmm (EXTRAPOLATED)" % tag, t_est / mv_t if mv_t else 0.0, "x")
        out("%s CPU to X / minivmm (EXTRAPOLATED)" % tag, (c_est / 1e9) / mv_cpu if mv_cpu else 0.0, "x")
    else:
        out("%s time to X" % tag, "not extrapolable (no progress at the end)")
    out("%s ksmd CPU in %.0f s" % (tag, t_end), c_end / 1e9, "s")


def main():
    lib.MINIVMM = MINIVMM
    # SIGTERM and SIGINT unwind through the finally blocks (KSM settings, VMs).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if not os.path.exists(MINIVMM):
        print("ksm: skip: %s not built" % MINIVMM)
        return
    if not os.path.exists(os.path.join(KSM, "run")):
        print("ksm: skip: no %s (host kernel without CONFIG_KSM)" % KSM)
        return
    names = ("run", "pages_to_scan", "sleep_millisecs")
    saved = {n: ksm_get(n) for n in names}
    try:
        ksmd = ksmd_path()
        out("ksm bench host", "%s, %d cores, kernel %s" % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                                           os.cpu_count(), os.uname().release))
        out("ksm host settings found (run pages_to_scan sleep_millisecs)",
            " ".join(saved[n] for n in names))
        for n in ("smart_scan", "use_zero_pages", "max_page_sharing", "advisor_mode"):
            if os.path.exists(os.path.join(KSM, n)):
                out("ksm " + n, ksm_get(n))
        others = other_mergeable()
        if others:
            out("ksm WARNING other mergeable processes (ksmd CPU includes them)", " ".join(others))

        mv = minivmm_run()
        target = TARGET_FRACTION * mv["final"]
        hit = first_reach(mv["series"], target)
        mv_t, mv_c = (hit[0], hit[1] / 1e9) if hit else (mv["pass_s"], mv["pass_cpu_s"])
        out("guest memory", "1 GiB VM, fill 512M dup:50,zero:25,random:25, paused after round 1")
        out("minivmm Pss before", mv["pss0"] / 2**20, "MiB")
        out("minivmm savings (Pss drop)", mv["final"] / 2**20, "MiB")
        out("minivmm guest RAM host-resident drop", mv["resident_drop"] / 2**20, "MiB")
        out("minivmm pages zero/shared/raw", "%d/%d/%d" % (mv["zero"], mv["shared"], mv["raw"]))
        out("target X (%.0f%% of minivmm's savings)" % (100 * TARGET_FRACTION), target / 2**20, "MiB")
        out("minivmm time to X (polled every %.0f ms)" % (POLL_S * 1000), mv_t, "s")
        out("minivmm scanner CPU to X", mv_c, "s")
        out("minivmm full pass", mv["pass_s"], "s")
        out("minivmm full pass scanner CPU (mm-scan thread)", mv["pass_cpu_s"], "s")
        out("minivmm full pass scanner-cpu-seconds (QMP)", mv["scanner_cpu_s"], "s")

        k = ksm_run(100, target, KSM_CAP_S, ksmd)
        out("ksm default (pages_to_scan=100 sleep_millisecs=20) Pss before", k["pss0"] / 2**20, "MiB")
        report_ksm("ksm default", k, target, mv_t, mv_c)
        k = ksm_run(10000, target, KSM_FAST_CAP_S, ksmd)
        out("ksm fast (pages_to_scan=10000 sleep_millisecs=20) Pss before", k["pss0"] / 2**20, "MiB")
        report_ksm("ksm fast", k, target, mv_t, mv_c)
    except lib.Skip as e:
        print("ksm: skip: %s" % e)
    finally:
        # run last: pages_to_scan and sleep_millisecs first, so ksmd never
        # runs with our settings after this point.
        for n in ("pages_to_scan", "sleep_millisecs", "run"):
            try:
                ksm_set(n, saved[n])
            except OSError as e:
                print("ksm: WARNING could not restore %s/%s=%s: %s" % (KSM, n, saved[n], e))


if __name__ == "__main__":
    main()
