#!/usr/bin/env python3
"""Runs every minivmm test: the cmocka unit test binaries in build/tests/
(each test case counts) and the integration tests, plain functions named
test_* in tests/integration/test_*.py. Ends with 'N passed, N failed,
N skipped' and exits non-zero on any failure.

  python3 tests/run.py [SUBSTRING ...]   only tests whose name contains one
"""

import glob
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lib  # noqa: E402

TEST_TIMEOUT = int(os.environ.get("MINIVMM_TEST_TIMEOUT", "300"))
results = {"passed": 0, "failed": 0, "skipped": 0}
failures = []


def selected(name, filters):
    return not filters or any(f in name for f in filters)


def report(kind, name, secs, detail=""):
    results[kind] += 1
    tag = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}[kind]
    line = "%s %s (%.1fs)" % (tag, name, secs)
    if detail:
        line += ": " + detail
    print(line, flush=True)
    if kind == "failed":
        failures.append(name)


def run_unit(filters):
    for binary in sorted(glob.glob(os.path.join(lib.TOOLS, "test_*"))):
        if not os.access(binary, os.X_OK) or binary.endswith(".d"):
            continue
        suite = os.path.basename(binary)
        if not selected(suite, filters):
            continue
        t0 = time.time()
        env = lib.env()
        env["CMOCKA_MESSAGE_OUTPUT"] = "stdout"
        # unit tests may grow the huge page pools a little; they restore them
        env.setdefault("MINIVMM_TEST_HUGEPAGES", "1")
        try:
            p = subprocess.run([binary], capture_output=True, text=True, timeout=TEST_TIMEOUT,
                               env=env, cwd=lib.ROOT)
        except subprocess.TimeoutExpired:
            report("failed", suite, time.time() - t0, "timed out")
            continue
        out = p.stdout + p.stderr
        cases = []
        reason = None
        for line in p.stdout.splitlines():
            if line.startswith("SKIP: "):
                reason = line[6:].strip()
            m = re.match(r"^\[\s+(OK|FAILED|SKIPPED|ERROR)\s+\] (\S+)", line)
            if m:
                cases.append((m.group(1), m.group(2), reason))
                reason = None
        if not cases:
            report("failed", suite, time.time() - t0,
                   "no cmocka results (exit %d):\n%s" % (p.returncode, out[-3000:]))
            continue
        for status, case, why in cases:
            name = "%s.%s" % (suite, case)
            if status == "OK":
                report("passed", name, 0)
            elif status == "SKIPPED":
                report("skipped", name, 0, why or "skipped by the test")
            else:
                report("failed", name, 0, out[-3000:])
        sanitizer = [m for m in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")
                     if m in out]
        if sanitizer or (p.returncode != 0 and all(c[0] in ("OK", "SKIPPED") for c in cases)):
            report("failed", suite + " (exit)", time.time() - t0,
                   "exit %d %s\n%s" % (p.returncode, sanitizer, out[-3000:]))


class Timeout(Exception):
    pass


def on_alarm(signum, frame):
    raise Timeout("test took longer than %ds" % TEST_TIMEOUT)


def run_integration(filters):
    signal.signal(signal.SIGALRM, on_alarm)
    for path in sorted(glob.glob(os.path.join(HERE, "integration", "test_*.py"))):
        modname = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(modname, path)
        mod = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(mod)
        except Exception:
            report("failed", modname, 0, "cannot import:\n" + traceback.format_exc())
            continue
        for name in sorted(n for n in dir(mod) if n.startswith("test_")):
            fn = getattr(mod, name)
            full = "%s.%s" % (modname, name)
            if not callable(fn) or not selected(full, filters):
                continue
            t0 = time.time()
            signal.alarm(TEST_TIMEOUT)
            try:
                fn()
                report("passed", full, time.time() - t0)
            except lib.Skip as e:
                report("skipped", full, time.time() - t0, str(e))
            except Exception as e:  # noqa: BLE001 - every failure is reported
                if type(e).__name__ in ("SkipTest", "Skip"):
                    report("skipped", full, time.time() - t0, str(e))
                else:
                    report("failed", full, time.time() - t0, traceback.format_exc()[-4000:])
            finally:
                signal.alarm(0)


def main():
    filters = sys.argv[1:]
    t0 = time.time()
    if not os.path.exists("/dev/kvm"):
        print("note: /dev/kvm is missing; integration tests will fail", flush=True)
    run_unit(filters)
    run_integration(filters)
    print()
    if failures:
        print("failed: " + ", ".join(failures))
    print("total time %.0fs" % (time.time() - t0))
    print("%d passed, %d failed, %d skipped" % (results["passed"], results["failed"], results["skipped"]))
    sys.exit(1 if results["failed"] else 0)


if __name__ == "__main__":
    main()
