"""Smoke runs of the libFuzzer targets (tests/fuzz/fuzz_*.c, built by `make
test` in build/fuzz/ with ASan and UBSan): each replays its regression
inputs (tests/fuzz/regressions/NAME/, crashes found earlier and fixed), then
fuzzes for a few seconds from its checked-in corpus and must exit 0 having
run a fair number of inputs with no sanitizer report. `make fuzz` runs the
same targets for FUZZ_SECONDS each."""

import glob
import os
import re
import subprocess
import tempfile

from lib import BUILD, ROOT

FUZZ = os.path.join(ROOT, "tests", "fuzz")
SECONDS = 3
# Inputs a target must get through in SECONDS on a busy two-core machine;
# the slowest (fuzz_qmp, a socket round trip per input) does ~500/s there.
MIN_EXECS = 200
MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "ERROR: libFuzzer")


def binary(name):
    path = os.path.join(BUILD, "fuzz", name)
    assert os.access(path, os.X_OK), "%s is missing: `make test` (or make fuzz-build) builds it" % path
    return path


def run(args, timeout):
    env = dict(os.environ)
    env.pop("MINIVMM_FUZZ_LOG", None)
    # libFuzzer prints what it learnt (dictionary entries) as raw bytes
    p = subprocess.run(args, capture_output=True, text=True, errors="replace", timeout=timeout,
                       cwd=ROOT, env=env)
    return p.returncode, p.stdout + p.stderr


def smoke(name):
    exe = binary(name)
    tmp = tempfile.mkdtemp(prefix="minivmm-fuzz-", dir=os.environ.get("MINIVMM_TEST_TMP"))
    common = ["-timeout=10", "-rss_limit_mb=4096", "-artifact_prefix=%s/" % tmp]

    regressions = sorted(glob.glob(os.path.join(FUZZ, "regressions", name, "*")))
    if regressions:
        code, out = run([exe] + common + regressions, 120)
        assert code == 0 and not any(m in out for m in MARKERS), \
            "%s: a regression input fails again (exit %d):\n%s" % (name, code, out[-4000:])
        assert out.count("Executed ") == len(regressions), out[-2000:]

    corpus = os.path.join(FUZZ, "corpus", name)
    assert len(os.listdir(corpus)) >= 3, "%s: its seed corpus has fewer than 3 files" % name
    work = os.path.join(tmp, "work")
    os.mkdir(work)
    code, out = run([exe] + common + ["-max_total_time=%d" % SECONDS, "-print_final_stats=1",
                                      work, corpus], SECONDS + 120)
    found = [m for m in MARKERS if m in out]
    assert code == 0 and not found, "%s: exit %d %s:\n%s" % (name, code, found, out[-4000:])
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", out)
    assert m, "%s: no final statistics:\n%s" % (name, out[-2000:])
    execs = int(m.group(1))
    assert execs >= MIN_EXECS, "%s: only %d executions in %d s" % (name, execs, SECONDS)
    print("%s: %d executions in %d s" % (name, execs, SECONDS))


def test_every_target_has_a_smoke_test():
    targets = sorted(os.path.basename(p)[:-2] for p in glob.glob(os.path.join(FUZZ, "fuzz_*.c")))
    tested = sorted(n[len("test_"):] for n in globals() if n.startswith("test_fuzz_"))
    assert targets == tested, "targets %s, smoke tests %s" % (targets, tested)
    for d in glob.glob(os.path.join(FUZZ, "regressions", "*")):
        assert os.path.basename(d) in targets, "%s: regressions of no target" % d


def test_fuzz_virtio():
    smoke("fuzz_virtio")


def test_fuzz_qmp():
    smoke("fuzz_qmp")


def test_fuzz_boot():
    smoke("fuzz_boot")


def test_fuzz_domain():
    smoke("fuzz_domain")


def test_fuzz_memd_config():
    smoke("fuzz_memd_config")


def test_fuzz_memd_control():
    smoke("fuzz_memd_control")
