"""The translation inspector (query-translation, query-translation-summary,
minivmm-ctl translate/translation) on real guests.

The own guest says how it mapped its heap (`showmap`: one line per 2 MiB
chunk, printed by guest-driver/task.c when it builds the entries) and keeps
the touch workload's memory mapped (`hold=SECONDS`), so each walk the
inspector reports is compared with what the guest set up: the heap at
512 GiB through the task's own PML4, and the identity map of guest RAM
that minivmm built (vmm/boot/boot.c) and the task's tables share, at 4 KiB
and 2 MiB guest pages. Also: a GVA that is not mapped, a GPA in the MMIO
hole and above it, the host page under each backing (anon, THP, hugetlb;
the pool is restored by lib.hugepages), the 2D reference counts for each
pair of page sizes, the summary, and bad input."""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import lib  # noqa: E402
from lib import Skip  # noqa: E402

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
HEAP = 512 * GiB
TOUCH = "workload=touch size=8M accesses=1000 hold=300 showmap"


def start(guest_pages, backing="thp", mem="256M", cpus=1, append=TOUCH):
    vm = lib.Vm(["--mem", mem, "--cpus", str(cpus), "--guest-pages", guest_pages,
                 "--mem-backing", backing], append=append)
    return vm


def heap_map(vm):
    """The guest's own account of its heap: [(va, pa, page, block)]."""
    vm.wait_for(r"^touch: holding", timeout=60)
    out = vm.stdout()
    chunks = [(int(va, 16), int(pa, 16), page, bool(block)) for va, pa, page, block in
              re.findall(r"^map: va=(0x[0-9a-f]+) pa=(0x[0-9a-f]+) page=(\w+)(?: pt=0x[0-9a-f]+)?( block)?",
                         out, re.M)]
    assert chunks, out
    return chunks


def check_chain(r):
    """Each level's entry points at the next level's table."""
    walk = r["guest-walk"]
    assert walk[0]["table"] == r["paging"]["cr3"] & ~0xfff, r
    for upper, lower in zip(walk, walk[1:]):
        assert int(upper["entry"], 16) & 0x000ffffffffff000 == lower["table"], (upper, lower)
        assert lower["entry-gpa"] == lower["table"] + 8 * lower["index"], lower


def check_host_stage(r):
    slot = r["memslot"]
    assert r["hva"] - slot["hva"] == r["gpa"] - slot["gpa"], r


def translate(q, gva, cpu=0):
    return q.cmd("query-translation", gva=gva, cpu=cpu)


def walk_heap(guest_pages):
    size = 4 * KiB if guest_pages == "4K" else 2 * MiB
    levels = ["PML4", "PDPT", "PD", "PT"] if guest_pages == "4K" else ["PML4", "PDPT", "PD"]
    with start(guest_pages) as vm:
        chunks = heap_map(vm)
        q = vm.qmp()
        for va, pa, page, block in chunks:
            assert page == guest_pages, (page, guest_pages)
            # offsets the guest's mapping pins down: anywhere in a 2 MiB page
            # or a contiguous block, the first page otherwise
            offs = [0, 0x1008, 2 * MiB - 8] if (page == "2M" or block) else [0, 0x123]
            for off in offs:
                r = translate(q, va + off)
                assert "stopped" not in r, r
                assert r["gpa"] == pa + off, (hex(va + off), hex(r["gpa"]), hex(pa + off))
                assert r["guest-page-size"] == size, r
                assert [lv["level"] for lv in r["guest-walk"]] == levels, r
                assert r["guest-walk"][0]["index"] == 1      # PML4[1]: the task's heap
                leaf = r["guest-walk"][-1]["flags"]
                assert {"P", "RW", "US"} <= set(leaf), leaf
                assert ("PS" in leaf) == (guest_pages == "2M"), leaf
                assert r["access"] == {"writable": True, "user": True, "executable": True}, r
                check_chain(r)
                check_host_stage(r)
        # the identity map of guest RAM: VMM-built leaves, supervisor only
        for gva in (0x100000, 64 * MiB + 0x2345):
            r = translate(q, gva)
            assert r["gpa"] == gva, r
            assert r["guest-page-size"] == size, r
            assert r["access"]["user"] is False, r
            assert r["guest-walk"][0]["index"] == 0
            check_chain(r)
        q.close()


def test_translate_heap_and_identity_4k_guest_pages():
    walk_heap("4K")


def test_translate_heap_and_identity_2m_guest_pages():
    walk_heap("2M")


def test_translate_unmapped_gva_says_where_it_stopped():
    with start("2M") as vm:
        chunks = heap_map(vm)
        q = vm.qmp()
        r = translate(q, 1 << 40)                          # PML4[2]: nothing there
        assert r["stopped"] == {"stage": "guest", "level": "PML4", "reason": "not present"}, r
        assert "gpa" not in r and len(r["guest-walk"]) == 1
        beyond = chunks[-1][0] + 64 * MiB                  # the heap's PD, past its end
        r = translate(q, beyond)
        assert r["stopped"] == {"stage": "guest", "level": "PD", "reason": "not present"}, r
        assert r["guest-walk"][-1]["flags"] == ["-"]
        assert r["guest-walk"][-1]["entry"] == "0x0"
        # an upper-half address is canonical and walks (PML4[256] is empty)
        r = q.cmd("query-translation", gva="0xffff800000000000")
        assert r["stopped"]["level"] == "PML4" and r["guest-walk"][0]["index"] == 256, r
        q.close()


def test_translate_gpa_in_the_mmio_hole():
    # 3.25 GiB: RAM up to 3 GiB, the hole, the rest from 4 GiB (memslot 1)
    with start("2M", mem="3328M", append="workload=idle") as vm:
        vm.wait_for(r"^cpu 0: up")
        q = vm.qmp()
        for gpa in (0xC0000000, 0xD0000000, 0xFEE00000):
            r = q.cmd("query-translation", gpa=gpa)
            assert r["stopped"]["stage"] == "memslot", r
            assert "MMIO hole" in r["stopped"]["reason"], r
            assert "hva" not in r
        r = q.cmd("query-translation", gpa=0x100000000 + 0x5000)
        assert r["memslot"]["slot"] == 1 and r["memslot"]["gpa"] == 0x100000000, r
        check_host_stage(r)
        r = q.cmd("query-translation", gpa=0x100000000 + 256 * MiB)
        assert r["stopped"]["stage"] == "memslot" and "beyond" in r["stopped"]["reason"], r
        r = q.cmd("query-translation", gpa=0xBFFFF000)
        assert r["memslot"]["slot"] == 0, r
        q.close()


def host_page(backing, want_size, want_kind):
    with start("2M", backing=backing) as vm:
        chunks = heap_map(vm)
        q = vm.qmp()
        r = translate(q, chunks[1][0] + 0x3000)            # touched by the workload
        host = r["host"]
        assert host["present"] is True, r
        if "pfn" not in host:
            raise Skip("no PFNs in /proc/self/pagemap (needs CAP_SYS_ADMIN): %s" % host.get("note"))
        if backing == "thp" and "thp" not in host["flags"]:
            raise Skip("the host gave this THP region 4 KiB pages (memory fragmented?): %s" % host)
        assert host["kind"] == want_kind, host
        assert host["page-size"] == want_size, host
        assert r["walk-cost"]["host-page-size"] == want_size, r
        assert r["walk-cost"]["host-page-size-from"] == "kpageflags", r
        assert r["backing"] == backing
        q.close()


def test_translate_host_page_anon():
    host_page("anon", 4 * KiB, "4k")


def test_translate_host_page_thp():
    host_page("thp", 2 * MiB, "thp")


def test_translate_host_page_hugetlb():
    with lib.hugepages(140):
        host_page("hugetlb", 2 * MiB, "hugetlb")


def test_translate_reference_counts():
    """A TLB miss under EPT/NPT: g guest levels each through an h-level
    second stage, plus the GPA's own: g * (h + 1) + h."""
    cases = [("4K", "anon", 24, 4, 4 * KiB), ("2M", "anon", 19, 4, 4 * KiB),
             ("4K", "thp", 19, 4, 4 * KiB), ("2M", "thp", 15, 3, 2 * MiB)]
    for guest_pages, backing, refs, shadow, tlb_size in cases:
        with start(guest_pages, backing=backing) as vm:
            chunks = heap_map(vm)
            q = vm.qmp()
            r = translate(q, chunks[1][0] + 0x40)
            cost = r["walk-cost"]
            if backing == "thp" and cost["host-page-size"] != 2 * MiB:
                raise Skip("the host gave this THP region 4 KiB pages: %s" % r["host"])
            assert cost["2d-refs"] == refs, (guest_pages, backing, cost)
            assert cost["shadow-refs"] == shadow, (guest_pages, backing, cost)
            assert cost["tlb-entry-size"] == tlb_size, cost
            assert cost["tlb-entries-for-guest-ram"] == 256 * MiB // tlb_size, cost
            q.close()


def test_translation_summary_agrees_with_the_guest_pages():
    for guest_pages in ("4K", "2M"):
        with start(guest_pages) as vm:
            heap_map(vm)
            q = vm.qmp()
            s = q.cmd("query-translation-summary")
            g = s["guest"]
            assert g["mode"] == "4-level" and not g["truncated"], s
            ram = g["mapped-ram-bytes"]
            if guest_pages == "4K":
                # the identity map of all RAM plus the heap's 5 chunks, all 4 KiB
                assert ram["4k"] >= 256 * MiB + 8 * MiB and ram["2m"] == 0, s
                assert s["huge-fraction"]["guest"] == 0
            else:
                # 4 KiB only where the user code lies (one 2 MiB region)
                assert ram["2m"] >= 256 * MiB and ram["4k"] == 2 * MiB, s
                assert s["huge-fraction"]["guest"] > 0.9
            # the rest of the low 4 GiB (the hole) is identity-mapped, not RAM
            assert g["mapped-bytes"]["2m"] - ram["2m"] == 4 * GiB - 256 * MiB, s
            assert s["host"]["backing"] == "thp" and s["host"]["resident-bytes"] > 0, s
            assert set(s["kvm"]) == {"pages_4k", "pages_2m", "pages_1g"}, s
            assert isinstance(s["stages-agree"], bool) and s["verdict"], s
            q.close()


def test_translate_bad_input_gets_clear_errors():
    with start("2M", cpus=2, append="workload=idle") as vm:
        vm.wait_for(r"^cpu 1: up")
        q = vm.qmp()
        bad = [({"gva": 0x1000, "cpu": 2}, "DeviceNotFound", "no vCPU 2: the VM has 2"),
               ({"gva": 1 << 47}, None, "out of range"),
               ({"gva": "0x800000000000"}, None, "bits 63..47"),
               ({"gpa": 1 << 52}, None, "out of range"),
               ({"gpa": -5}, None, "negative"),
               ({"gva": "banana"}, None, "not an address"),
               ({"gva": 1.5}, None, "expected: integer or string"),
               ({"gva": 1, "gpa": 1}, None, "not both"),
               ({}, None, "missing"),
               ({"gpa": 0x1000, "cpu": 0}, None, "'cpu' goes with 'gva'"),
               ({"gva": 1, "size": 4}, None, "unexpected")]
        for args, cls, text in bad:
            r = q.cmd_raw("query-translation", **args)
            assert "error" in r, (args, r)
            assert text in r["error"]["desc"], (args, r)
            if cls:
                assert r["error"]["class"] == cls, (args, r)
        # vCPU 1 halts in the kernel on the VMM's identity tables; an
        # unaligned address is a byte address: its page, its offset
        r = translate(q, 0x4000123, cpu=1)
        assert r["gpa"] == 0x4000123 and r["cpu"] == 1, r
        r = q.cmd_raw("query-translation-summary", cpu=1)
        assert "unexpected" in r["error"]["desc"], r
        # the VM still runs after the pauses the reads took
        assert q.cmd("query-status")["status"] == "running"
        q.close()


def test_ctl_translate_and_translation():
    with start("2M") as vm:
        chunks = heap_map(vm)
        va, pa = chunks[1][0], chunks[1][1]

        def ctl(*args):
            return subprocess.run([lib.CTL] + list(args), capture_output=True, text=True, timeout=30)

        p = ctl(vm.qmp_path, "translate", hex(va + 0x10))
        assert p.returncode == 0, p.stderr
        assert "PML4[  1]" in p.stdout and "PD  [" in p.stdout, p.stdout
        assert "gpa 0x%x in a 2 MiB guest page" % (pa + 0x10) in p.stdout, p.stdout
        assert "TLB miss:" in p.stdout and "memslot 0" in p.stdout, p.stdout
        p = ctl(vm.qmp_path, "translate", "--gpa", "0xd0000000")
        assert p.returncode == 0 and "stopped at the memslot stage" in p.stdout, p.stdout + p.stderr
        p = ctl("--cpu", "0", vm.qmp_path, "translate", str(1 << 40))
        assert p.returncode == 0 and "stopped at the guest stage, level PML4: not present" in p.stdout, p.stdout
        p = ctl(vm.qmp_path, "translate", "--cpu", "7", "0x1000")
        assert p.returncode == 1 and "no vCPU 7" in p.stderr, p.stderr
        p = ctl(vm.qmp_path, "translate", "0xzz")
        assert p.returncode == 1 and "not an address" in p.stderr, p.stderr
        p = ctl(vm.qmp_path, "translate", "--cpu", "0", "--gpa", "0x1000")
        assert p.returncode == 1 and "give one" in p.stderr, p.stderr
        p = ctl(vm.qmp_path, "translation")
        assert p.returncode == 0 and "stages-agree" in p.stdout and "mapped-ram-bytes" in p.stdout, p.stdout
