"""The man pages (beside each program: vmm/minivmm.1, vmm/ctl/minivmm-ctl.1,
balloon/memd/minivmm-memd.8) agree with each program's --help: every long option
--help lists has an entry in the man page's OPTIONS, and every option the
man page documents is one --help lists. The pages are valid roff (man
renders them without warnings) and `make install` installs them."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import lib  # noqa: E402
from lib import Skip  # noqa: E402

PAGES = [("minivmm", "vmm/minivmm.1"), ("minivmm-ctl", "vmm/ctl/minivmm-ctl.1"),
         ("minivmm-memd", "balloon/memd/minivmm-memd.8")]


def help_options(prog):
    p = subprocess.run([os.path.join(lib.BUILD, prog), "--help"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, (prog, p.returncode, p.stderr)
    # option lines only: "  -m, --mem SIZE   ..." or "      --prealloc  ..."
    return set(re.findall(r"^\s+(?:-\w, )?--([a-z0-9-]+)", p.stdout, re.M))


def man_options(path):
    with open(os.path.join(lib.ROOT, path)) as f:
        text = f.read()
    # an option entry: ".TP" then a line that starts with the bold option
    return set(re.findall(r"^\.TP\n\\fB(?:\\-\w\\fR, \\fB)?\\-\\-([a-z0-9\\-]+)\\fR", text, re.M)), text


def test_man_pages_list_every_option_of_help():
    for prog, path in PAGES:
        want = help_options(prog)
        got, _ = man_options(path)
        got = {o.replace("\\-", "-") for o in got}
        assert want, "%s --help lists no options" % prog
        assert got == want, "%s: --help lists %s but %s documents %s (missing: %s, extra: %s)" % (
            prog, sorted(want), path, sorted(got), sorted(want - got), sorted(got - want))


def test_man_pages_render_cleanly():
    if not shutil.which("man"):
        raise Skip("man is not installed")
    for _, path in PAGES:
        p = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", os.path.join(lib.ROOT, path)],
                           capture_output=True, text=True, timeout=30, env=dict(os.environ, MANWIDTH="80"))
        assert p.returncode == 0 and p.stdout.strip(), (path, p.returncode, p.stderr)
        assert not p.stderr.strip(), "%s: %s" % (path, p.stderr)


def test_make_install_installs_man_pages():
    dest = tempfile.mkdtemp(prefix="minivmm-install-")
    try:
        p = subprocess.run(["make", "--no-print-directory", "-s", "install", "DESTDIR=" + dest, "PREFIX=/usr"],
                           cwd=lib.ROOT, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stdout + p.stderr
        for rel in ("usr/bin/minivmm-memd", "usr/share/man/man8/minivmm-memd.8",
                    "usr/share/man/man1/minivmm.1", "usr/share/man/man1/minivmm-ctl.1"):
            assert os.path.exists(os.path.join(dest, rel)), rel
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def test_readme_memd_table_matches_help():
    """README's minivmm-memd option table lists exactly the options of --help."""
    with open(os.path.join(lib.ROOT, "README.md")) as f:
        text = f.read()
    sec = text.split("\n## minivmm-memd\n", 1)[1].split("\n## ", 1)[0]
    got = set(re.findall(r"^\| `(?:-\w, )?--([a-z0-9-]+)", sec, re.M))
    want = help_options("minivmm-memd") - {"help", "version"}
    assert got == want, "README lists %s, --help %s" % (sorted(got), sorted(want))
