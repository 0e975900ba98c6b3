"""The source tree keeps its layering: scripts/check-deps.sh passes on the
tree, fails naming file:line and the rule when an include crosses it, and no
file in vmm/, mm/, balloon/ grows past 800 lines."""

import glob
import os
import shutil
import subprocess
import tempfile

from lib import ROOT

SCRIPT = os.path.join(ROOT, "scripts", "check-deps.sh")
MAX_LINES = 800


def check_deps(root):
    p = subprocess.run([SCRIPT, root], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def copy_tree():
    """A temporary copy of the sources the script reads."""
    tmp = tempfile.mkdtemp(prefix="minivmm-deps-")
    for d in ("vmm", "mm", "balloon", "guest-driver", "scripts"):
        shutil.copytree(os.path.join(ROOT, d), os.path.join(tmp, d))
    return tmp


def test_dependency_rule_holds():
    status, out = check_deps(ROOT)
    assert status == 0, out
    assert "check-deps: ok" in out, out


def plant(tmp, path, include):
    """Adds an include at the top of path (a file in the copy); its line number is 1."""
    full = os.path.join(tmp, path)
    with open(full) as f:
        text = f.read()
    with open(full, "w") as f:
        f.write("#include %s\n" % include + text)


def test_dependency_rule_catches_bad_includes():
    cases = [
        # (file, include, words the message must hold)
        ("mm/store.c", '"vmm/kvm/kvm.h"', "mm/ includes only mm/, vmm/lib/ and vmm/qmp/"),
        ("mm/pagestate.c", '"balloon/balloon.h"', "mm/ includes only"),
        ("vmm/lib/size.c", '"vmm/qmp/qmp.h"', "lib may not include qmp"),
        ("vmm/kvm/bus.c", '"vmm/machine.h"', "kvm may not include machine"),
        ("vmm/devices/uart.c", '"vmm/qmp/server.h"', "QMP server internals"),
        ("balloon/qmp.c", '"vmm/qmp/events.h"', "QMP server internals"),
        ("mm/qmp_mm.c", '"vmm/qmp/dispatch.h"', "registry internals"),
        ("vmm/virtio/virtqueue.c", '"../../mm/mm.h"', 'no "../"'),
        ("vmm/virtio/virtqueue.c", '"virtio.h"', "not a path from the repository root"),
        ("mm/store.c", "<linux/kvm.h>", "mm/ never talks to KVM"),
        ("guest-driver/main.c", '"vmm/lib/log.h"', "guest-driver/ is freestanding"),
    ]
    for path, include, words in cases:
        tmp = copy_tree()
        try:
            plant(tmp, path, include)
            status, out = check_deps(tmp)
            assert status != 0, "%s including %s passed:\n%s" % (path, include, out)
            want = "%s:1: includes %s" % (path, include.strip('"'))
            assert want in out, "no %r in:\n%s" % (want, out)
            assert words in out, "no %r in:\n%s" % (words, out)
        finally:
            shutil.rmtree(tmp)


def test_qmp_knows_no_vm():
    """vmm/qmp/ handlers get their own object as context, never struct vm."""
    tmp = copy_tree()
    try:
        with open(os.path.join(tmp, "vmm/qmp/registry.c"), "a") as f:
            f.write("struct vm;\n")
        status, out = check_deps(tmp)
        assert status != 0 and "vmm/qmp/registry.c" in out and "struct vm" in out, out
    finally:
        shutil.rmtree(tmp)


def test_dependency_exceptions_must_shrink():
    """An exception whose include is gone fails until its line is deleted."""
    tmp = copy_tree()
    try:
        with open(os.path.join(tmp, "scripts", "deps-exceptions.txt"), "a") as f:
            f.write("mm/store.c: vmm/kvm/kvm.h\n")
        status, out = check_deps(tmp)
        assert status != 0, out
        assert '"mm/store.c: vmm/kvm/kvm.h" no longer occurs' in out, out
    finally:
        shutil.rmtree(tmp)


def test_files_stay_small():
    big = []
    for d in ("vmm", "mm", "balloon"):
        for path in glob.glob(os.path.join(ROOT, d, "**", "*.[ch]"), recursive=True):
            with open(path) as f:
                n = sum(1 for _ in f)
            if n > MAX_LINES:
                big.append("%s: %d lines" % (os.path.relpath(path, ROOT), n))
    assert not big, "over %d lines (split by what each part owns): %s" % (MAX_LINES, ", ".join(big))
