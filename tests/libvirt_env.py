"""A real libvirt + QEMU host for tests, on machines without hardware
virtualization (../shared/LIBVIRT-TCG.md has the measured recipe): QEMU's
software emulation runs Debian's own kernel with a busybox initramfs, whose
virtio_balloon driver answers libvirt exactly as on a production host.

    with libvirt_env.Libvirtd() as lv:          # starts libvirtd, restores /etc afterwards
        dom = lv.create("g1", mem_mib=512, fill_mib=300, ...)
        ...                                      # domains are destroyed on exit

Everything it changes machine-wide (qemu.conf, the libvirt-qemu user,
/run/libvirt, the daemon) is undone when the context ends, also on failure.
The kernel package is downloaded with `apt-get download` into
build/linux-cache/ once and reused.
"""
import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time

import lib

CACHE = os.path.join(lib.BUILD, "linux-cache")
SOCK = "/run/libvirt/libvirt-sock"
QEMU_CONF = "/etc/libvirt/qemu.conf"
# Load order matters: every virtio piece is a module in Debian's kernel.
MODULES = ["virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
           "virtio_mmio", "virtio_balloon"]
DOMAIN_XML = os.path.join(lib.ROOT, "configs", "linux-tcg-domain.xml")


class Unavailable(lib.Skip):
    pass


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def kernel():
    """(vmlinuz path, modules dir) of Debian's current kernel, downloaded once."""
    os.makedirs(CACHE, exist_ok=True)
    found = sorted(glob.glob(os.path.join(CACHE, "root", "boot", "vmlinuz-*")))
    if not found:
        dep = _run(["apt-cache", "depends", "linux-image-amd64"]).stdout
        pkgs = [l.split(":", 1)[1].strip() for l in dep.splitlines() if "Depends:" in l and "linux-image-" in l]
        if not pkgs:
            _run(["apt-get", "update", "-qq"])
            dep = _run(["apt-cache", "depends", "linux-image-amd64"]).stdout
            pkgs = [l.split(":", 1)[1].strip() for l in dep.splitlines()
                    if "Depends:" in l and "linux-image-" in l]
        if not pkgs:
            raise Unavailable("cannot find Debian's linux-image package (apt-cache depends linux-image-amd64)")
        p = _run(["apt-get", "download", pkgs[0]], cwd=CACHE, timeout=300)
        debs = glob.glob(os.path.join(CACHE, pkgs[0] + "_*.deb"))
        if p.returncode or not debs:
            raise Unavailable("apt-get download %s failed: %s" % (pkgs[0], p.stderr[-500:]))
        p = _run(["dpkg", "-x", debs[0], os.path.join(CACHE, "root")])
        if p.returncode:
            raise Unavailable("dpkg -x failed: %s" % p.stderr[-500:])
        os.unlink(debs[0])   # 70 MiB: keep only what the tests use
        found = sorted(glob.glob(os.path.join(CACHE, "root", "boot", "vmlinuz-*")))
    vmlinuz = found[-1]
    release = os.path.basename(vmlinuz)[len("vmlinuz-"):]
    return vmlinuz, os.path.join(CACHE, "root", "lib", "modules", release)


INIT = r"""#!/bin/sh
# minivmm's TCG test guest: load the virtio modules, then by the schedule on
# the command line fill memory in a tmpfs, free it, fill it again; print
# MemTotal/MemFree/MemAvailable every 2 s so the host can follow.
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in %(modules)s; do insmod /lib/modules/$m.ko 2>/dev/null; done
arg() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" /proc/cmdline; }
FILL=$(arg fill); FREE_AT=$(arg free_at); REFILL_AT=$(arg refill_at); REFILL=$(arg refill)
mkdir /m; mount -t tmpfs -o size=100%% tmpfs /m
echo "guest: init up"
t=0
[ -n "$FILL" ] && dd if=/dev/urandom of=/m/a bs=1M count=$FILL 2>/dev/null && echo "guest: filled $FILL MiB"
while :; do
    if [ -n "$FREE_AT" ] && [ $t -eq "$FREE_AT" ]; then rm -f /m/a; echo "guest: freed"; fi
    if [ -n "$REFILL_AT" ] && [ $t -eq "$REFILL_AT" ]; then
        dd if=/dev/urandom of=/m/b bs=1M count=${REFILL:-200} 2>/dev/null; echo "guest: refilled ${REFILL:-200} MiB"
    fi
    set -- $(grep -E '^(MemTotal|MemFree|MemAvailable):' /proc/meminfo | awk '{print $2}')
    echo "guest: t=$t total=$1 free=$2 available=$3"
    sleep 2; t=$((t+2))
done
"""


def initramfs():
    """build/linux-cache/initramfs.cpio.gz with busybox, the virtio modules and INIT."""
    out = os.path.join(CACHE, "initramfs.cpio.gz")
    if os.path.exists(out):
        return out
    busybox = shutil.which("busybox")
    if not busybox:
        raise Unavailable("busybox-static is not installed")
    _, moddir = kernel()
    work = tempfile.mkdtemp(prefix="minivmm-initramfs-")
    try:
        for d in ("bin", "sbin", "proc", "sys", "dev", "lib/modules"):
            os.makedirs(os.path.join(work, d))
        shutil.copy(busybox, os.path.join(work, "bin", "busybox"))
        for applet in ("sh", "mount", "insmod", "sed", "grep", "awk", "dd", "rm", "mkdir", "sleep", "echo"):
            os.symlink("busybox", os.path.join(work, "bin", applet))
        for m in MODULES:
            src = glob.glob(os.path.join(moddir, "kernel", "drivers", "virtio", m + ".ko*"))
            if not src:
                raise Unavailable("module %s not in %s" % (m, moddir))
            dst = os.path.join(work, "lib", "modules", m + ".ko")
            if src[0].endswith(".xz"):
                with open(dst, "wb") as f:
                    subprocess.run(["xz", "-dc", src[0]], stdout=f, check=True)
            elif src[0].endswith(".zst"):
                subprocess.run(["zstd", "-dq", src[0], "-o", dst], check=True)
            else:
                shutil.copy(src[0], dst)
        with open(os.path.join(work, "init"), "w") as f:
            f.write(INIT % {"modules": " ".join(MODULES)})
        os.chmod(os.path.join(work, "init"), 0o755)
        os.mknod(os.path.join(work, "dev", "console"), 0o600 | 0o020000, os.makedev(5, 1))
        files = _run(["find", "."], cwd=work).stdout
        cpio = subprocess.run([busybox, "cpio", "-o", "-H", "newc"], cwd=work, input=files.encode(),
                              capture_output=True, check=True).stdout
        with open(out + ".tmp", "wb") as f:
            subprocess.run(["gzip", "-9"], input=cpio, stdout=f, check=True)
        os.rename(out + ".tmp", out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


QEMU_CONF_TEXT = """# written by minivmm's tests (tests/libvirt_env.py); the original is restored
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
cgroup_controllers = [ ]
stdio_handler = "file"
remember_owner = 0
"""


class Libvirtd:
    """libvirtd with the QEMU driver, started and stopped here (no systemd)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="minivmm-libvirt-")
        self.pidfile = os.path.join(self.dir, "libvirtd.pid")
        self.log = os.path.join(self.dir, "libvirtd.log")
        self.saved_conf = None
        self.made_user = False
        self.domains = []

    def __enter__(self):
        if not shutil.which("libvirtd") or not shutil.which("qemu-system-x86_64"):
            raise Unavailable("libvirtd or qemu-system-x86_64 is not installed (scripts/deps.sh installs them)")
        if os.path.exists(SOCK):
            raise Unavailable("a libvirtd already runs on this host (%s): not touching it" % SOCK)
        try:
            self._prepare()
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _prepare(self):
        if _run(["getent", "passwd", "libvirt-qemu"]).returncode != 0:
            # libvirtd resolves its built-in QEMU user before reading qemu.conf
            _run(["groupadd", "-r", "libvirt-qemu"])
            _run(["useradd", "-r", "-g", "libvirt-qemu", "-d", "/var/lib/libvirt", "-s", "/usr/sbin/nologin",
                  "libvirt-qemu"])
            self.made_user = True
        if os.path.exists(QEMU_CONF):
            with open(QEMU_CONF) as f:
                self.saved_conf = f.read()
        os.makedirs(os.path.dirname(QEMU_CONF), exist_ok=True)
        with open(QEMU_CONF, "w") as f:
            f.write(QEMU_CONF_TEXT)
        os.makedirs("/run/libvirt", exist_ok=True)

    def _start(self):
        env = dict(os.environ, LIBVIRT_LOG_OUTPUTS="2:file:" + self.log)
        p = _run(["libvirtd", "--daemon", "--pid-file", self.pidfile], env=env, timeout=30)
        if p.returncode:
            raise AssertionError("libvirtd did not start: %s" % p.stderr)
        deadline = time.time() + 30
        while not os.path.exists(SOCK):
            if time.time() > deadline:
                raise AssertionError("libvirtd's socket did not appear; log:\n%s" % self.log_text())
            time.sleep(0.1)
        for _ in range(100):
            if _run(["virsh", "-c", "qemu:///system", "version"]).returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError("libvirtd does not answer; log:\n%s" % self.log_text())

    def restart(self):
        """Stops libvirtd (SIGTERM) and starts it again; running domains keep
        running and are taken up again by the new daemon."""
        with open(self.pidfile) as f:
            pid = int(f.read().strip())
        os.kill(pid, signal.SIGTERM)
        for _ in range(150):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("libvirtd did not stop on SIGTERM")
        for _ in range(50):
            if not os.path.exists(SOCK):
                break
            time.sleep(0.1)
        self._start()

    def log_text(self):
        with contextlib.suppress(OSError), open(self.log) as f:
            return f.read()[-3000:]
        return ""

    def virsh(self, *args, check=True, timeout=60):
        p = _run(["virsh", "-c", "qemu:///system"] + list(args), timeout=timeout)
        if check and p.returncode:
            raise AssertionError("virsh %s: %s" % (" ".join(args), p.stderr.strip()))
        return p.stdout

    def create(self, name, mem_mib=512, cmdline="", extra_xml="", free_page_reporting=True):
        """Starts a transient TCG domain; returns the path of its console log.
        free_page_reporting=False leaves memory the guest freed resident in
        QEMU, so only the balloon gives it back to the host."""
        vmlinuz, _ = kernel()
        console = os.path.join(self.dir, name + ".console")
        with open(DOMAIN_XML) as f:
            xml = f.read()
        for k, v in {"@NAME@": name, "@MEM_KIB@": str(mem_mib * 1024), "@KERNEL@": vmlinuz,
                     "@INITRD@": initramfs(), "@CMDLINE@": cmdline, "@CONSOLE@": console}.items():
            xml = xml.replace(k, v)
        if not free_page_reporting:
            xml = xml.replace("freePageReporting='on'", "freePageReporting='off'")
        path = os.path.join(self.dir, name + ".xml")
        with open(path, "w") as f:
            f.write(xml)
        self.virsh("create", path)
        self.domains.append(name)
        return console

    def __exit__(self, *exc):
        for d in self.domains:
            _run(["virsh", "-c", "qemu:///system", "destroy", d], timeout=30)
        self.domains = []
        with contextlib.suppress(OSError, ValueError):
            with open(self.pidfile) as f:
                pid = int(f.read().strip())
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
        # qemu processes of destroyed domains are gone; the socket goes with the daemon
        for _ in range(50):
            if not os.path.exists(SOCK):
                break
            time.sleep(0.1)
        if self.saved_conf is not None:
            with open(QEMU_CONF, "w") as f:
                f.write(self.saved_conf)
        else:
            with contextlib.suppress(OSError):
                os.unlink(QEMU_CONF)
        if self.made_user:
            _run(["userdel", "libvirt-qemu"])
            _run(["groupdel", "libvirt-qemu"])
        shutil.rmtree(self.dir, ignore_errors=True)


def qemu_rss(name):
    """Resident memory of the domain's QEMU process, bytes (0 when not found)."""
    for pidfile in glob.glob("/run/libvirt/qemu/%s.pid" % name):
        with contextlib.suppress(OSError, ValueError):
            with open(pidfile) as f:
                pid = int(f.read().strip())
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
    return 0
