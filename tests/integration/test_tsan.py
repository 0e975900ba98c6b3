"""Short boots of the ThreadSanitizer build (make tsan, build/tsan/minivmm):
the same checks as the balloon and memory manager tests, with every VMM
thread at work (vCPUs, the balloon's worker, the main loop serving QMP, the
scanner and the fault service). TSAN_OPTIONS (lib.SAN_ENV) stops the VM at
the first report with status 97, and the report in its stderr fails the test.

- the balloon inflates a 512 MiB guest by 256 MiB and deflates it again,
  and takes the pages a guest frees through free page reporting;
- --mm reclaims under a guest that verifies every byte, on 2 vCPUs.
"""
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import lib  # noqa: E402


def _sibling(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_tsan_balloon_inflate_deflate():
    with lib.binary(lib.TSAN_MINIVMM):
        _sibling("test_balloon")._inflate_and_back(["--mem-backing", "anon"])


def test_tsan_balloon_free_page_reporting():
    with lib.binary(lib.TSAN_MINIVMM):
        _sibling("test_balloon").test_balloon_free_page_reporting()


def test_tsan_mm_reclaim():
    mm = _sibling("test_mm")
    with lib.binary(lib.TSAN_MINIVMM):
        before, reclaims, low, _ = mm._run_fill(["--mem-backing", "anon"], 2, rounds=12, min_reclaims=2)
        mm._check_reclaimed(before, reclaims, low, "tsan anon 2 vCPUs")
