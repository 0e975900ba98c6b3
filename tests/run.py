#!/usr/bin/env python3
"""Runs every minivmm test: the cmocka unit test binaries (each test case
counts) and the integration tests, plain functions named test_* in
tests/integration/test_*.py. Ends with 'N passed, N failed, N skipped' and
exits non-zero on any failure.

  python3 tests/run.py [SUBSTRING ...]   only tests whose name contains one

Unit tests: the AddressSanitizer/UBSan binaries in build/tests/ and the
ThreadSanitizer ones in build/tsan/tests/ (suites named tsan/test_...).
Results are read from cmocka's JUnit XML output (CMOCKA_MESSAGE_OUTPUT=xml),
never from its human text; a binary that crashes before writing them, exits
non-zero after its cases, or shows a sanitizer report fails as
"SUITE (exit)".

Integration tests: each runs in a child process of its own, in its own
process group and with its own temporary directory (MINIVMM_TEST_TMP, where
lib.Vm makes its directories). A test that outlives MINIVMM_TEST_TIMEOUT
seconds (default 300) is killed with its process group, so with its VMs,
and fails; huge page pools it had changed are restored from the record
lib.hugepages() keeps there. The directory goes after every test.
"""

import contextlib
import glob
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lib  # noqa: E402

TEST_TIMEOUT = int(os.environ.get("MINIVMM_TEST_TIMEOUT", "300"))
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer",
                     "WARNING: ThreadSanitizer")
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


# ---- unit tests ----

def cmocka_cases(path):
    """(status, case, message) per test case from cmocka's XML file; [] when
    the file is missing or cut short (the binary died first)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return []
    cases = []
    for tc in root.iter("testcase"):
        failure = tc.find("failure")
        if failure is None:
            failure = tc.find("error")
        if failure is not None:
            cases.append(("failed", tc.get("name"), (failure.text or "").strip()))
        elif tc.find("skipped") is not None:
            cases.append(("skipped", tc.get("name"), ""))
        else:
            cases.append(("passed", tc.get("name"), ""))
    return cases


def skip_reason(out):
    """The test's own SKIP: line, if it printed one (a reason only; the
    verdict comes from the XML)."""
    for line in reversed(out.splitlines()):
        if line.startswith("SKIP: "):
            return line[6:].strip()
    return "skipped by the test"


def run_unit_binary(binary, suite):
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="minivmm-unit-")
    xml = os.path.join(tmp, "results.xml")
    env = lib.env()
    env["CMOCKA_MESSAGE_OUTPUT"] = "xml"
    env["CMOCKA_XML_FILE"] = xml
    # unit tests may grow the huge page pools a little; they restore them
    env.setdefault("MINIVMM_TEST_HUGEPAGES", "1")
    try:
        p = subprocess.run([binary], capture_output=True, text=True, timeout=TEST_TIMEOUT,
                           env=env, cwd=lib.ROOT)
        out, code = p.stdout + p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") + (e.stderr or b"").decode(errors="replace")
        report("failed", suite, time.time() - t0, "timed out after %ds:\n%s" % (TEST_TIMEOUT, out[-3000:]))
        shutil.rmtree(tmp, ignore_errors=True)
        return
    cases = cmocka_cases(xml)
    shutil.rmtree(tmp, ignore_errors=True)
    if not cases:
        report("failed", suite, time.time() - t0,
               "no cmocka results (exit %d):\n%s" % (code, out[-3000:]))
        return
    for status, case, msg in cases:
        name = "%s.%s" % (suite, case)
        if status == "passed":
            report("passed", name, 0)
        elif status == "skipped":
            report("skipped", name, 0, skip_reason(out))
        else:
            report("failed", name, 0, (msg + "\n" + out[-3000:]).strip())
    sanitizer = [m for m in SANITIZER_MARKERS if m in out]
    if sanitizer or (code != 0 and all(c[0] != "failed" for c in cases)):
        report("failed", suite + " (exit)", time.time() - t0,
               "exit %d %s\n%s" % (code, sanitizer, out[-3000:]))


def run_unit(filters):
    binaries = [(b, os.path.basename(b)) for b in sorted(glob.glob(os.path.join(lib.TOOLS, "test_*")))]
    binaries += [(b, "tsan/" + os.path.basename(b))
                 for b in sorted(glob.glob(os.path.join(lib.BUILD, "tsan", "tests", "test_*")))]
    for binary, suite in binaries:
        if binary.endswith(".d") or not os.access(binary, os.X_OK) or not selected(suite, filters):
            continue
        run_unit_binary(binary, suite)


# ---- integration tests ----

def child_main(path, name, result_path):
    """Runs one test function in this (child) process and writes its verdict."""
    modname = os.path.splitext(os.path.basename(path))[0]
    verdict = {"kind": "passed", "detail": ""}
    try:
        spec = importlib.util.spec_from_file_location(modname, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        getattr(mod, name)()
    except lib.Skip as e:
        verdict = {"kind": "skipped", "detail": str(e)}
    except Exception as e:  # noqa: BLE001 - every failure is reported
        text = traceback.format_exc()
        if type(e).__name__ in ("SkipTest", "Skip"):
            verdict = {"kind": "skipped", "detail": str(e)}
        elif lib.KVM_MISSING in text and not os.path.exists("/dev/kvm"):
            # a VM started some other way (a daemon's, libvirt's) said so
            verdict = {"kind": "skipped", "detail": lib.NO_KVM_REASON}
        else:
            verdict = {"kind": "failed", "detail": text[-4000:]}
    finally:
        lib.cleanup()
        sys.stdout.flush()
        with open(result_path, "w") as f:
            json.dump(verdict, f)


def run_one(path, name, full):
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="minivmm-test-")
    result = os.path.join(tmp, "result.json")
    env = dict(os.environ, MINIVMM_TEST_TMP=tmp)
    p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", path, name, result],
                         env=env, cwd=lib.ROOT, start_new_session=True)
    timed_out = False
    try:
        p.wait(timeout=TEST_TIMEOUT)
    except subprocess.TimeoutExpired:
        timed_out = True
    # the test's process group: the child and every VM it started and left
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    restored = lib.restore_hugepages(tmp)
    try:
        with open(result) as f:
            verdict = json.load(f)
    except (OSError, ValueError):
        verdict = None
    shutil.rmtree(tmp, ignore_errors=True)
    secs = time.time() - t0
    if timed_out:
        detail = "timed out after %ds; killed with its VMs" % TEST_TIMEOUT
        if restored:
            detail += " (huge page pools restored: %s)" % ", ".join(restored)
        report("failed", full, secs, detail)
    elif verdict is None:
        report("failed", full, secs, "the test process died (exit %d) before reporting" % p.returncode)
    else:
        report(verdict["kind"], full, secs, verdict["detail"])


def run_integration(filters):
    for path in sorted(glob.glob(os.path.join(HERE, "integration", "test_*.py"))):
        modname = os.path.splitext(os.path.basename(path))[0]
        # imported here only to list its tests; each runs in a child
        spec = importlib.util.spec_from_file_location(modname, path)
        mod = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(mod)
        except Exception:  # noqa: BLE001
            report("failed", modname, 0, "cannot import:\n" + traceback.format_exc())
            continue
        for name in sorted(n for n in dir(mod) if n.startswith("test_")):
            full = "%s.%s" % (modname, name)
            if callable(getattr(mod, name)) and selected(full, filters):
                run_one(path, name, full)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child_main(*sys.argv[2:])
        return
    filters = sys.argv[1:]
    t0 = time.time()
    if not os.path.exists("/dev/kvm"):
        print("note: /dev/kvm is missing: every test that needs a VM is skipped, so this run "
              "checks the unit tests, fuzz smoke runs and what needs no KVM, not the VMM on KVM",
              flush=True)
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
