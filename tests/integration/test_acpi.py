"""ACPI: the project's guest finds the FADT and \\_S5 through the RSDP in the
BIOS area as an OS does and powers the VM off or resets it through the
registers they name; minivmm ends with status 0 and says which. The tables
themselves go through acpica-tools (Debian's acpica-tools, scripts/deps.sh):
iasl disassembles each one and compiles it back to the same bytes, and
acpiexec, ACPICA's interpreter as Linux runs it, loads them and evaluates
\\_S5."""

import os
import re
import shutil
import subprocess
import time

from lib import Skip, mkdtemp, run_vm, tool


def leave(workload, cpus=1):
    t0 = time.time()
    status, out, err = run_vm(["--mem", "64M", "--cpus", str(cpus)], append="workload=" + workload,
                              timeout=60)
    return status, out, err, time.time() - t0


def test_acpi_guest_poweroff_ends_minivmm_with_0():
    for cpus in (1, 2):   # with 2, vCPU 1 spins waiting: the stop must not wait for it
        status, out, err, took = leave("poweroff", cpus)
        assert status == 0, (status, out[-2000:], err[-2000:])
        m = re.search(r"^acpi: RSDP 0xe0000 FADT (0x[0-9a-f]+) DSDT (0x[0-9a-f]+) PM1a_CNT 0x604 "
                      r"S5 SLP_TYP 5 reset port 0xcf9 <- 0x6$", out, re.M)
        assert m, out
        assert "acpi: powering off" in out and "still running" not in out, out
        # the line says why minivmm ended, at the default log level
        assert "minivmm: acpi: guest powered off (ACPI S5): exiting with status 0" in err, err
        assert "guest: exit status" not in out, out   # not the exit port
        print("poweroff, %d vCPU(s): %.2f s" % (cpus, took))


def test_acpi_guest_reset_ends_minivmm_with_0():
    status, out, err, took = leave("reset", 2)
    assert status == 0, (status, out[-2000:], err[-2000:])
    assert "acpi: resetting" in out and "still running" not in out, out
    assert ("minivmm: acpi: guest reset the machine (ACPI reset register 0xcf9 <- 0x06): "
            "exiting with status 0") in err, err
    print("reset: %.2f s" % took)


def test_acpi_guest_workload_refused_with_a_line():
    status, out, err = run_vm(["--mem", "64M"], append="workload=hibernate", timeout=60)
    assert status == 2 and "poweroff or reset" in out, (status, out)


def acpica(name):
    path = shutil.which(name)
    if not path:
        raise Skip("%s is missing: apt-get install acpica-tools (scripts/deps.sh installs it)" % name)
    return path


def dump_tables(cpus):
    d = mkdtemp()
    listing = tool("acpi_tables", cpus, d)
    return d, dict((l.split()[0], l.split()[1:]) for l in listing.splitlines())


def test_acpi_tables_iasl_disassembles_and_recompiles_them():
    iasl = acpica("iasl")
    d, found = dump_tables(4)
    # reached from the RSDP by following pointers, every table once
    assert sorted(found) == ["APIC", "DSDT", "FACP", "FACS", "RSDT", "XSDT", "rsdp"], found
    for sig in ("APIC", "DSDT", "FACP", "FACS", "RSDT", "XSDT"):
        dat = os.path.join(d, sig + ".dat")
        p = subprocess.run([iasl, "-d", dat], cwd=d, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, (sig, p.stdout, p.stderr)
        assert not re.search(r"error|warning", p.stdout + p.stderr, re.I), (sig, p.stdout + p.stderr)
        dsl = os.path.join(d, sig + ".dsl")
        p = subprocess.run([iasl, "-p", os.path.join(d, "re-" + sig), dsl], cwd=d,
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and " 0 Errors, 0 Warnings, 0 Remarks" in p.stdout, (sig, p.stdout)
        with open(dat, "rb") as f:
            ours = f.read()
        with open(os.path.join(d, "re-" + sig + ".aml"), "rb") as f:
            theirs = f.read()
        # iasl writes its own checksum and compiler id/revision (bytes 9, 28-35)
        if sig != "FACS":
            ours = ours[:9] + ours[10:28] + ours[36:]
            theirs = theirs[:9] + theirs[10:28] + theirs[36:]
        assert ours == theirs, sig
    with open(os.path.join(d, "DSDT.dsl")) as f:
        dsdt = f.read()
    body = re.sub(r"\s+", " ", dsdt[dsdt.index("DefinitionBlock"):])
    assert 'Name (_S5, Package (0x04) // _S5_: S5 System State { 0x05, 0x05, Zero, Zero })' in body, body
    with open(os.path.join(d, "FACP.dsl")) as f:
        fadt = f.read()
    for line in (r"PM1A Control Block Address : 00000604", r"SCI Interrupt : 0009",
                 r"Reset Register Supported \(V2\) : 1", r"Hardware Reduced \(V5\) : 0",
                 r"Address : 0000000000000CF9", r"Value to cause reset : 06"):
        assert re.search(line, fadt), line
    with open(os.path.join(d, "APIC.dsl")) as f:
        madt = f.read()
    assert re.findall(r"Local Apic ID : (\w+)", madt) == ["00", "01", "02", "03"], madt
    assert "I/O Apic ID : 04" in madt and "Address : FEC00000" in madt, madt


def test_acpi_tables_acpiexec_loads_them_and_evaluates_s5():
    acpiexec = acpica("acpiexec")
    d, _ = dump_tables(2)
    files = [os.path.join(d, s + ".dat") for s in ("DSDT", "FACP", "FACS", "APIC")]
    p = subprocess.run([acpiexec, "-b", "Evaluate \\_S5"] + files, capture_output=True, text=True,
                       timeout=60)
    out = p.stdout + p.stderr
    # acpiexec's own start-up tests poke GPEs, which this FADT rightly has none of
    out = "\n".join(l for l in out.splitlines() if "aetests" not in l)
    assert "Evaluation of \\_S5 returned object" in out, out
    assert re.search(r"Contains 4 Elements:\s+\[Integer\] = 0+5\s+\[Integer\] = 0+5\s+"
                     r"\[Integer\] = 0+\s+\[Integer\] = 0+\s", out), out
    assert not re.search(r"ACPI (Error|Warning|BIOS)", out), out
