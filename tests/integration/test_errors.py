"""Bad input from the user gets one clear line on stderr and a non-zero exit,
never a crash (the sanitizer build would report one)."""

import os
import shutil
import struct
import subprocess

from lib import GUEST, MINIVMM, NO_KVM_REASON, Skip, check_sanitizers, env, hugepage_dir, mkdtemp, run_vm


def expect_error(args, pattern, image=None, append=None, code=None):
    status, out, err = run_vm(args, append=append, image=image, timeout=60)
    check_sanitizers(err)
    assert status != 0, "exit 0 for %s: %s" % (args, err)
    if code is not None:
        assert status == code, "exit %d, wanted %d: %s" % (status, code, err)
    lines = [l for l in err.splitlines() if l.strip()]
    assert lines, "no error message for %s" % args
    assert any(pattern in l for l in lines), "no %r in:\n%s" % (pattern, err)
    assert len(lines) <= 2, "error is not short:\n%s" % err
    return err


def tmpfile(data, name="img"):
    d = mkdtemp()
    path = os.path.join(d, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def elf(paddr, memsz=0x1000, filesz=0x10, phoff=64, truncate_at=None, entry=None, code=b"\xf4"):
    """A minimal ELF64 x86-64 executable with one PT_LOAD segment."""
    entry = paddr if entry is None else entry
    eh = struct.pack("<4sBBBBB7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0,
                     2, 62, 1, entry, phoff, 0, 0, 64, 56, 1, 0, 0, 0)
    ph = struct.pack("<IIQQQQQQ", 1, 7, 0x1000, paddr, paddr, filesz, memsz, 0x1000)
    data = eh + ph
    data += b"\0" * (0x1000 - len(data)) + (code * filesz)[:filesz]
    return data[:truncate_at] if truncate_at else data


def test_missing_image():
    expect_error(["--mem", "64M"], "cannot open guest image", image="/nonexistent/guest.img")


def test_image_is_a_directory():
    expect_error(["--mem", "64M"], "not a regular file", image=mkdtemp())


def test_unreadable_image_as_unprivileged_user():
    if os.getuid() != 0 or not shutil.which("setpriv"):
        raise Skip("needs root and setpriv to run as another user")
    path = tmpfile(b"\x7fELF" + b"\0" * 100)
    os.chmod(path, 0o600)
    os.chmod(os.path.dirname(path), 0o755)
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        MINIVMM, "--mem", "64M", path], capture_output=True, text=True,
                       timeout=60, env=env())
    if "Permission denied" in p.stderr and "guest image" not in p.stderr:
        raise Skip("the build directory is not reachable by an unprivileged user")
    assert p.returncode != 0
    assert "cannot open guest image" in p.stderr and "Permission denied" in p.stderr, p.stderr


def test_kvm_not_permitted():
    if os.getuid() != 0 or not shutil.which("setpriv"):
        raise Skip("needs root and setpriv to run as another user")
    if not os.path.exists("/dev/kvm"):
        raise Skip(NO_KVM_REASON)
    if os.stat("/dev/kvm").st_mode & 0o006:
        raise Skip("/dev/kvm is world-accessible here")
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        MINIVMM, "--mem", "64M", GUEST], capture_output=True, text=True,
                       timeout=60, env=env())
    if "cannot open guest image" in p.stderr:
        raise Skip("the build directory is not readable by an unprivileged user")
    assert p.returncode != 0
    assert "permission denied opening /dev/kvm" in p.stderr, p.stderr


def test_kvm_missing():
    if os.getuid() != 0 or not shutil.which("unshare"):
        raise Skip("needs root and unshare for a private /dev")
    script = ('mount -t tmpfs none /dev && ln -s /proc/self/fd /dev/fd && touch /dev/null '
              '&& mount --bind /proc/sys/kernel/random/uuid /dev/null 2>/dev/null; '
              'exec "$0" --mem 64M "$1"')
    p = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                        MINIVMM, GUEST], capture_output=True, text=True, timeout=60, env=env())
    assert p.returncode != 0
    assert "/dev/kvm does not exist" in p.stderr, p.stderr


def test_not_elf():
    expect_error(["--mem", "64M"], "not an ELF file", image=tmpfile(b"#!/bin/sh\necho hi\n" * 10))


def test_truncated_image():
    with open(GUEST, "rb") as f:
        head = f.read(40)
    expect_error(["--mem", "64M"], "truncated", image=tmpfile(head))


def test_truncated_segment():
    expect_error(["--mem", "64M"], "truncated", image=tmpfile(elf(0x100000, truncate_at=0x1008)))


def test_program_headers_outside_file():
    expect_error(["--mem", "64M"], "truncated", image=tmpfile(elf(0x100000, phoff=1 << 40)))


def test_segment_outside_ram():
    expect_error(["--mem", "64M"], "outside guest RAM", image=tmpfile(elf(0x200000000)))


def test_segment_in_hole():
    expect_error(["--mem", "4G"], "outside guest RAM", image=tmpfile(elf(0xC0000000 - 0x800)))


def test_segment_wraps_address_space():
    expect_error(["--mem", "64M"], "outside guest RAM",
                 image=tmpfile(elf(0xfffffffffffff000, memsz=0x2000)))


def test_entry_outside_segments():
    expect_error(["--mem", "64M"], "entry point", image=tmpfile(elf(0x100000, entry=0x5000000)))


def test_mem_not_a_size():
    expect_error(["--mem", "lots"], "is not a size")
    expect_error(["--mem", "12Q"], "is not a size")
    expect_error(["--mem", "99999999999999999999G"], "is not a size")


def test_mem_too_small_for_image():
    expect_error(["--mem", "2M"], "too small for this image")


def test_mem_more_than_host_can_map():
    expect_error(["--mem", "64T"], "more than the host can map", code=65)


def test_cpus_zero():
    expect_error(["--cpus", "0"], "--cpus")


def test_cpus_above_limit():
    expect_error(["--cpus", "1000"], "out of range")


def test_cpus_not_a_number():
    expect_error(["--cpus", "two"], "--cpus")


def test_hugetlb_without_free_pages():
    with open(os.path.join(hugepage_dir(2 << 20), "free_hugepages")) as f:
        if int(f.read()) >= 128:
            raise Skip("the host already has 128 free huge pages")
    err = expect_error(["--mem", "256M", "--mem-backing", "hugetlb"], "huge page")
    assert "nr_hugepages" in err and "128" in err, err


def test_bad_backing_and_page_size():
    expect_error(["--mem-backing", "floppy"], "--mem-backing")
    expect_error(["--guest-pages", "8K"], "--guest-pages")
    expect_error(["--mem-backing", "hugetlb", "--hugepage-size", "4M"], "--hugepage-size")


def test_unknown_option():
    # minivmm's own statuses start at 64 (README, Exit statuses): never a guest's 1 or 2
    expect_error(["--frobnicate"], "unknown option '--frobnicate'", code=64)
    expect_error(["-Z"], "unknown option")


def test_missing_option_value():
    p = subprocess.run([MINIVMM, "--mem"], capture_output=True, text=True, env=env())
    assert p.returncode != 0 and "needs a value" in p.stderr, p.stderr


def test_help_and_version():
    p = subprocess.run([MINIVMM, "--help"], capture_output=True, text=True, env=env())
    assert p.returncode == 0 and "--mem-backing" in p.stdout and "--guest-pages" in p.stdout
    p = subprocess.run([MINIVMM, "--version"], capture_output=True, text=True, env=env())
    assert p.returncode == 0 and p.stdout.startswith("minivmm ")


def test_guest_triple_fault_dumps_registers():
    # int3 with no IDT: #BP -> #DF -> triple fault, a KVM shutdown exit on
    # hardware; the nested emulator here reports an internal error instead
    status, out, err = run_vm(["--mem", "64M"], image=tmpfile(elf(0x100000, code=b"\xcc")))
    check_sanitizers(err)
    assert status == 66, (status, err)
    assert "triple fault" in err or "internal error" in err, err
    assert "rip 0000000000100000" in err and "cr3" in err, err


def _host_bytes():
    with open("/proc/meminfo") as f:
        kv = dict(l.split(":", 1) for l in f)
    return (int(kv["MemTotal"].split()[0]) + int(kv["SwapTotal"].split()[0])) * 1024


def test_overcommitted_guest_starts_and_says_so():
    # more guest RAM than host RAM + swap is what overcommit experiments want
    gib = (_host_bytes() >> 30) + 6
    status, out, err = run_vm(["--mem", "%dG" % gib], append="workload=fill size=32M", timeout=120)
    check_sanitizers(err)
    assert status == 0 and "fill: ok" in out, (status, out[-2000:], err)
    assert "overcommitted by" in err and err.count("overcommitted") == 1, err
    # preallocating it cannot work: refused with what to do
    expect_error(["--mem", "%dG" % gib, "--prealloc"], "drop --prealloc", code=65)
