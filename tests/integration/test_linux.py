"""Booting Debian's current stock kernel (fetched by tests/tools/linux-image.sh)
on real KVM, each boot bounded at about 90 s: the host-decompressed bzImage
(PVH) with RAM above the MMIO hole, the vmlinux minivmm's own code extracts
(PVH, 2 vCPUs, an initrd; once with ACPI's MADT, once with acpi=off and the
MP table), and the classic in-guest decompressor. Each checks what the
kernel's own console shows against what minivmm built, the ACPI tables
included.
Booting to init (and Linux's virtio_balloon against minivmm's balloon) is
measured to be impossible on a KVM that emulates guest ring 0, and skips
there saying so; on hardware virtualization it runs in full."""

import os
import re
import shutil
import subprocess
import tempfile
import time

from lib import BUILD, GUEST, ROOT, Skip, parse_summary, run_vm, start_vm

EARLY = "console=ttyS0 earlyprintk=serial,ttyS0,115200 noxsave"
BOOT_TIMEOUT = 90
# the SMP lines (MADT or MP table) come later in setup_arch than the e820
# map: measured 54-86 s here on 2026-12-01 (86 s at a load average of 10-12
# on the 2 cores), so these boots get more room
SMP_TIMEOUT = 120


def kernel_files():
    """(bzImage, config) of Debian's current kernel, or Skip with the reason."""
    p = subprocess.run([os.path.join(ROOT, "tests", "tools", "linux-image.sh")],
                       capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise Skip("Debian's kernel is not available: " + p.stderr.strip())
    kernel, config = p.stdout.split()
    return kernel, config


def vmlinux():
    """The bzImage's payload decompressed by minivmm's loader code."""
    kernel, _ = kernel_files()
    out = os.path.join(os.path.dirname(kernel), "vmlinux")
    if not os.path.exists(out):
        subprocess.run([os.path.join(BUILD, "tests", "linux_extract"), kernel, out + ".tmp"],
                       check=True, capture_output=True, timeout=120)
        os.rename(out + ".tmp", out)
    return out


def newc(entries):
    """A cpio archive in the kernel's newc format: (name, mode, data, rdev)."""
    out = b""
    for ino, (name, mode, data, rdev) in enumerate(entries + [("TRAILER!!!", 0, b"", (0, 0))], 1):
        nm = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(nm), 0]
        hdr = b"070701" + b"".join(b"%08X" % f for f in fields) + nm
        out += hdr + b"\0" * (-len(hdr) % 4) + data + b"\0" * (-len(data) % 4)
    return out


def initramfs(init_script, busybox=None):
    """A small initramfs: /init (a script for busybox's sh), /dev/console."""
    entries = [(".", 0o40755, b"", (0, 0)), ("dev", 0o40755, b"", (0, 0)),
               ("dev/console", 0o20600, b"", (5, 1)), ("proc", 0o40755, b"", (0, 0)),
               ("sys", 0o40755, b"", (0, 0)), ("bin", 0o40755, b"", (0, 0)),
               ("init", 0o100755, init_script.encode(), (0, 0))]
    if busybox:
        with open(busybox, "rb") as f:
            entries.append(("bin/busybox", 0o100755, f.read(), (0, 0)))
    path = tempfile.mktemp(prefix="minivmm-initrd-")
    with open(path, "wb") as f:
        f.write(newc(entries))
    return path


def minivmm_e820(stderr):
    return re.findall(r"boot: e820: \[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\] (\w+)", stderr)


def kernel_e820(console):
    return re.findall(r"BIOS-e820: \[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\] (\w+)", console)


def expected_e820(mem):
    low = min(mem, 3 << 30)
    m = [(0, 0x9fbff, "usable"), (0x9fc00, 0xfffff, "reserved"), (0x100000, low - 1, "usable")]
    if mem > low:
        m.append((1 << 32, (1 << 32) + mem - low - 1, "usable"))
    return [("0x%016x" % a, "0x%016x" % b, t) for a, b, t in m]


def boot_until(args, image, append, pattern, timeout=BOOT_TIMEOUT):
    """Starts a Linux VM, waits for pattern on its console, stops it;
    returns (console, stderr, seconds until the pattern)."""
    t0 = time.time()
    vm = start_vm(["-v"] + args, append=append, qmp=False, image=image)
    try:
        vm.wait_for(pattern, timeout=timeout)
        took = time.time() - t0
    finally:
        vm.kill()
    return vm.stdout(), vm.stderr(), took


def check_protocol(console, stderr, append, mem):
    """Linux's own lines: its banner, exactly our command line, our e820 map."""
    assert re.search(r"^\[\s*0\.000000\] Linux version \d", console, re.M), console[:2000]
    devs = re.findall(r"virtio_mmio\.device=\S+", stderr + console)
    m = re.search(r"^\[\s*0\.000000\] Command line: (.*)$", console, re.M)
    assert m, console[:3000]
    # minivmm appends its devices in Linux's form after the user's line
    assert m.group(1) == append + " virtio_mmio.device=4K@0xd0000000:5", (m.group(1), devs)
    assert kernel_e820(console) == minivmm_e820(stderr) == expected_e820(mem), (
        kernel_e820(console), minivmm_e820(stderr))


def test_linux_bzimage_host_decompressed_pvh():
    kernel, _ = kernel_files()
    mem = 4 << 30          # 1 GiB above the MMIO hole
    console, err, took = boot_until(["--mem", "4G"], kernel, EARLY,
                                    r"BIOS-e820: \[mem 0x0000000100000000")
    assert "decompressed on the host" in err and "PVH entry" in err, err
    check_protocol(console, err, EARLY, mem)
    print("bzImage: e820 above the hole after %.1f s" % took)


def test_linux_bzimage_host_decompressed_zero_page():
    kernel, _ = kernel_files()
    # the 64-bit entry kernels without a PVH note take: boot_params from the
    # image's setup header, identity page tables
    console, err, took = boot_until(["--mem", "512M", "--bzimage-decompress", "host-zeropage"],
                                    kernel, EARLY, r"ACPI: Reserving APIC table memory")
    assert "64-bit entry (zero page)" in err, err
    check_protocol(console, err, EARLY, 512 << 20)
    # the RSDP from boot_params.acpi_rsdp_addr (or the BIOS-area scan)
    check_acpi_tables(console)
    print("bzImage, zero page: ACPI tables listed after %.1f s" % took)


def check_acpi_tables(console):
    """Linux's table list: every table minivmm wrote, where it wrote them."""
    assert re.search(r"ACPI: RSDP 0x00000000000E0000 000024 \(v02 MINVMM\)", console), console[-4000:]
    for sig, length in (("XSDT", "000034"), ("FACP", "000114"), ("DSDT", "000032"),
                        ("APIC", None)):
        assert re.search(r"ACPI: %s 0x00000000000E0[0-9A-F]{3} %s \(v0\d MINVMM MINIVMM  00000001 "
                         r"MVMM 00000001\)" % (sig, length or "[0-9A-F]{6}"), console), sig
    assert re.search(r"ACPI: FACS 0x00000000000E0040 000040", console)
    assert "ACPI BIOS Error" not in console and "ACPI Error" not in console, console[-4000:]


def test_linux_vmlinux_pvh_smp_initrd():
    image = vmlinux()
    rd = initramfs("#!/bin/sh\necho never run here\n")
    size = os.path.getsize(rd)
    try:
        console, err, took = boot_until(["--mem", "256M", "--cpus", "2", "--initrd", rd], image,
                                        EARLY, r"smpboot: Allowing 2 CPUs", timeout=SMP_TIMEOUT)
    finally:
        os.unlink(rd)
    assert "Linux vmlinux" in err and "PVH entry" in err, err
    check_protocol(console, err, EARLY, 256 << 20)
    # the initrd where minivmm put it, as Linux reserved it
    at = int(re.search(r"initrd %d bytes at (0x[0-9a-f]+)" % size, err).group(1), 16)
    m = re.search(r"RAMDISK: \[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\]", console)
    assert m, console[-3000:]
    assert int(m.group(1), 16) == at and int(m.group(2), 16) == ((at + size + 4095) & ~4095) - 1
    # the ACPI tables (the RSDP from hvm_start_info), every vCPU and the
    # IOAPIC from the MADT, the SCI's override as minivmm wrote it
    check_acpi_tables(console)
    assert "ACPI: Using ACPI (MADT) for SMP configuration information" in console, console[-3000:]
    assert re.search(r"IOAPIC\[0\]: apic_id 2, version \d+, address 0xfec00000, GSI 0-23", console)
    assert "ACPI: INT_SRC_OVR (bus 0 bus_irq 9 global_irq 9 high level)" in console, console[-3000:]
    assert "Processors: 2" not in console     # the MP table is not what Linux used
    print("vmlinux: 'smpboot: Allowing 2 CPUs' (MADT) after %.1f s" % took)


def test_linux_acpi_off_uses_mp_table():
    # acpi=off (or a kernel without ACPI): the MP table beside the ACPI tables
    # still gives Linux every vCPU and the IOAPIC
    append = EARLY + " acpi=off"
    console, err, took = boot_until(["--mem", "256M", "--cpus", "2"], vmlinux(), append,
                                    r"^\[[ \d.]+\] Processors: 2", timeout=SMP_TIMEOUT)
    check_protocol(console, err, append, 256 << 20)
    assert "ACPI: RSDP" not in console, console[-3000:]
    assert "Processor #0 (Bootup-CPU)" in console and "Processor #1" in console, console[-3000:]
    assert re.search(r"IOAPIC\[0\]: apic_id 2, version \d+, address 0xfec00000, GSI 0-23", console)
    print("vmlinux, acpi=off: 'Processors: 2' (MP table) after %.1f s" % took)


def test_linux_bzimage_guest_decompressor():
    kernel, _ = kernel_files()
    # Debian builds without CONFIG_X86_VERBOSE_BOOTUP, so "Decompressing
    # Linux..." is never printed; the decompressor's first line is its
    # KASLR notice (measured: within seconds, then minutes of emulated xz)
    console, err, took = boot_until(["--mem", "512M", "--bzimage-decompress", "guest"], kernel,
                                    "earlyprintk=serial,ttyS0,115200 nokaslr",
                                    r"KASLR disabled: 'nokaslr' on cmdline\.", timeout=60)
    assert "decompressed by the kernel" in err and "64-bit entry" in err, err
    print("classic: decompressor's first line after %.1f s" % took)


def ring0_is_emulated():
    """Measures whether this KVM emulates guest ring 0: the own demo guest's
    instruction-emulation count against the exits that need emulation."""
    status, out, err = run_vm(["--mem", "64M", "--stats"], timeout=120, image=GUEST)
    assert status == 0, err
    st = parse_summary(err)
    m = re.search(r"userspace: io=(\d+) mmio=(\d+)", err)
    exits = int(m.group(1)) + int(m.group(2)) if m else 0
    emulated = st.get("insn_emulation", 0)
    # with VT-x/AMD-V only MMIO (and string I/O) is emulated: about one
    # instruction per exit; here every ring-0 instruction is
    return emulated > 10 * exits + 1000, emulated, exits


def skip_unless_linux_reaches_init():
    """The busybox-static binary for an initramfs, or Skip saying why a
    Linux guest cannot reach its /init on this machine."""
    emulated, n, exits = ring0_is_emulated()
    if emulated:
        raise Skip("this KVM emulates guest ring 0 (measured: the demo guest needed %d emulated "
                   "instructions for %d device exits); Linux cannot reach init here "
                   "(README, Booting Linux)" % (n, exits))
    busybox = shutil.which("busybox")
    if not busybox:
        raise Skip("busybox-static is not installed (apt-get install busybox-static)")
    with open(busybox, "rb") as f:
        if b"ld-linux" in f.read():
            raise Skip("%s is dynamically linked: apt-get install busybox-static" % busybox)
    return busybox


def test_linux_boots_to_init():
    busybox = skip_unless_linux_reaches_init()
    kernel = os.environ.get("MINIVMM_LINUX_KERNEL") or kernel_files()[0]
    bb = "/bin/busybox "
    init = ("#!/bin/busybox sh\n" + bb + "mount -t proc proc /proc\n" + bb + "mount -t sysfs sys /sys\n"
            + bb + "echo minivmm-init: up $(" + bb + "nproc) cpus\n"
            + bb + "echo minivmm-init: virtio0 driver $(" + bb + "readlink /sys/bus/virtio/devices/virtio0/driver)\n"
            + bb + "sleep 2\n" + bb + "reboot -f\n")
    rd = initramfs(init, busybox)
    try:
        status, out, err = run_vm(["--mem", "512M", "--cpus", "2", "--initrd", rd],
                                  append="console=ttyS0 panic=-1", timeout=120, image=kernel)
    finally:
        os.unlink(rd)
    assert "minivmm-init: up 2 cpus" in out, out[-3000:] + err[-2000:]
    # Linux reboots through the FADT's reset register first (reboot_type
    # BOOT_ACPI), which ends the VM with status 0 and says so
    assert status == 0, (status, err[-2000:])
    assert "guest reset the machine (ACPI reset register 0xcf9 <- 0x06)" in err, err[-2000:]
    if os.environ.get("MINIVMM_LINUX_KERNEL"):
        # a kernel built from configs/linux-microvm.config binds minivmm's balloon
        assert re.search(r"virtio0 driver \S*virtio_balloon", out), out[-3000:]


def test_linux_microvm_config_options_exist():
    _, config = kernel_files()
    with open(config) as f:
        debian = f.read()
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    with open(os.path.join(ROOT, "configs", "linux-microvm.config")) as f:
        names = re.findall(r"^(CONFIG_\w+)=", f.read(), re.M)
    assert "CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES" in names and "CONFIG_VIRTIO_BALLOON" in names
    for name in names:
        known = re.search(r"^(%s=|# %s is not set)" % (name, name), debian, re.M)
        assert known or name in readme, "%s is neither in Debian's config nor in README" % name
    # README says Debian's kernel lacks the command-line virtio-mmio devices
    assert "# CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES is not set" in debian, \
        "Debian's kernel now has CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES: update README"


def test_linux_options_refused_with_a_line():
    cases = [
        (["--cpu-features", "-avx,-warpdrive"], "unknown feature 'warpdrive'", None),
        (["--cpu-features", "avx"], "-NAME", None),
        (["--bzimage-decompress", "cloud"], "use host, host-zeropage or guest", None),
        (["--initrd", "/nonexistent/initrd"], "is for Linux kernels", GUEST),
    ]
    for args, msg, image in cases:
        status, out, err = run_vm(["--mem", "64M"] + args, timeout=60, image=image)
        assert status in (64, 65) and msg in err, (args, status, err)
    kernel, _ = kernel_files()
    status, out, err = run_vm(["--mem", "256M", "--initrd", "/nonexistent/initrd"], timeout=60,
                              image=kernel)
    assert status == 65 and "cannot open initrd /nonexistent/initrd" in err, (status, err)
    status, out, err = run_vm(["--mem", "32M"], timeout=60, image=kernel)
    assert status == 65 and "is too small for this image" in err, (status, err)


def test_linux_powers_off_to_exit():
    busybox = skip_unless_linux_reaches_init()
    kernel = os.environ.get("MINIVMM_LINUX_KERNEL") or kernel_files()[0]
    bb = "/bin/busybox "
    rd = initramfs("#!/bin/busybox sh\n" + bb + "echo minivmm-init: powering off\n" + bb + "poweroff -f\n",
                   busybox)
    try:
        status, out, err = run_vm(["--mem", "256M", "--initrd", rd], append="console=ttyS0 panic=-1",
                                  timeout=120, image=kernel)
    finally:
        os.unlink(rd)
    # Linux's power-off: \_S5 from the DSDT, then SLP_TYP|SLP_EN on PM1a_CNT
    assert "minivmm-init: powering off" in out, out[-3000:] + err[-2000:]
    assert status == 0 and "guest powered off (ACPI S5)" in err, (status, err[-2000:])
