#!/bin/sh
# check-deps: fails when an #include crosses minivmm's dependency rule
# (README "Architecture"; ../shared/ARCHITECTURE.md). Run by `make test`
# through tests/integration/test_layout.py.
#
#   scripts/check-deps.sh [ROOT]     ROOT defaults to this checkout
#
# Every quoted include is spelled from the repository root ("vmm/lib/log.h",
# "mm/mm.h"), so the including and the included file each belong to one unit
# by path, and the units are ordered:
#
#   lib < qmp < mm < kvm < virtio < devices < balloon < boot < machine < programs
#
#   lib      vmm/lib/          knows nothing of VMs
#   qmp      vmm/qmp/          the QMP protocol, knows nothing of VMs
#   mm       mm/               guest memory (kvm and mm share a level in the
#                              architecture; mm is below because the VM holds
#                              guest RAM, and mm must never see the VM or KVM)
#   kvm      vmm/kvm/          KVM wrappers, vCPUs, the port/MMIO bus
#   virtio   vmm/virtio/       transport and virtqueue walker
#   devices  vmm/devices/      UART (later i8042, PIT)
#   balloon  balloon/*.[ch]    the virtio-balloon device
#   boot     vmm/boot/         loaders, page tables, boot info
#   machine  vmm/machine*      one VM assembled from a config
#   programs vmm/main.c, vmm/ctl/, balloon/memd/ (each its own unit)
#
# A file may include its own unit and units below it. Besides:
#   - the QMP server's internals (vmm/qmp/server.h, vmm/qmp/events.h) are
#     for vmm/qmp/ and the machine only, the registry's (vmm/qmp/dispatch.h)
#     for vmm/qmp/ only; providers use vmm/qmp/qmp.h;
#   - vmm/boot/bootinfo.h is the guest ABI (constants and structs, no code,
#     no includes): units from kvm up may use it, mm may not;
#   - mm/ never includes <linux/kvm.h>: KVM is vmm/kvm's;
#   - vmm/lib/ and vmm/qmp/ never name `struct vm`: they know nothing of VMs
#     (a handler gets its own object as context, not the VM);
#   - guest-driver/ is freestanding: it includes only guest-driver/ files
#     and vmm/boot/bootinfo.h;
#   - no "../" and no include that is not a path from the repository root
#     (guest-driver/ may include its own headers by bare name).
#
# scripts/deps-exceptions.txt lists known violations ("file: header" per
# line) that are being removed; they are reported but do not fail, and an
# exception that no longer matches anything fails until it is deleted.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
root=${1:-$here}
exceptions="$root/scripts/deps-exceptions.txt"
cd "$root"

files=$(find vmm mm balloon guest-driver -type f \( -name '*.c' -o -name '*.h' -o -name '*.S' \) 2>/dev/null | sort)
[ -n "$files" ] || { echo "check-deps: no sources under $root" >&2; exit 2; }

# shellcheck disable=SC2086
awk -v exfile="$exceptions" '
function unit(p) {
	if (p ~ /^vmm\/lib\//) return "lib"
	if (p ~ /^vmm\/qmp\//) return "qmp"
	if (p ~ /^mm\//) return "mm"
	if (p ~ /^vmm\/kvm\//) return "kvm"
	if (p ~ /^vmm\/virtio\//) return "virtio"
	if (p ~ /^vmm\/devices\//) return "devices"
	if (p ~ /^balloon\/memd\//) return "memd"
	if (p ~ /^balloon\/[^\/]*$/) return "balloon"
	if (p ~ /^vmm\/boot\//) return "boot"
	if (p ~ /^vmm\/machine[^\/]*$/) return "machine"
	if (p == "vmm/main.c") return "main"
	if (p ~ /^vmm\/ctl\//) return "ctl"
	if (p ~ /^guest-driver\//) return "guest"
	return ""
}
function rank(u) {
	return u == "lib" ? 0 : u == "qmp" ? 1 : u == "mm" ? 2 : u == "kvm" ? 3 : \
	       u == "virtio" ? 4 : u == "devices" ? 5 : u == "balloon" ? 6 : u == "boot" ? 7 : \
	       u == "machine" ? 8 : (u == "main" || u == "ctl" || u == "memd") ? 9 : -1
}
function exists(p,   line, r) {
	r = (getline line < p)
	if (r >= 0) { close(p); return 1 }
	return 0
}
function violation(file, lno, inc, why,   key) {
	key = file ": " inc
	if (key in exc) {
		used[key] = 1
		printf("check-deps: %s:%d: includes %s: %s (known, in scripts/deps-exceptions.txt)\n",
		       file, lno, inc, why)
		return
	}
	printf("check-deps: %s:%d: includes %s: %s\n", file, lno, inc, why)
	bad++
}
BEGIN {
	order = "lib < qmp < mm < kvm < virtio < devices < balloon < boot < machine < programs"
	while ((getline line < exfile) > 0) {
		sub(/#.*/, "", line)
		gsub(/^[ \t]+|[ \t]+$/, "", line)
		if (line == "") continue
		exc[line] = 1
		nexc++
	}
}
FNR == 1 { src = FILENAME; su = unit(src) }
(su == "lib" || su == "qmp") && /struct vm([^_a-zA-Z0-9]|$)/ {
	printf("check-deps: %s:%d: names struct vm: vmm/lib/ and vmm/qmp/ know nothing of VMs; take a context pointer instead\n", src, FNR)
	bad++
}
/^[ \t]*#[ \t]*include[ \t]*[<"]/ {
	line = $0
	sys = (line ~ /include[ \t]*</)
	sub(/^[ \t]*#[ \t]*include[ \t]*[<"]/, "", line)
	sub(/[>"].*$/, "", line)
	inc = line
	if (sys) {
		if (su == "mm" && inc == "linux/kvm.h")
			violation(src, FNR, "<" inc ">", "mm/ never talks to KVM; that is vmm/kvm/ (rule: mm includes only mm, vmm/lib, vmm/qmp)")
		next
	}
	if (inc ~ /(^|\/)\.\.\//) {
		violation(src, FNR, inc, "no \"../\": spell includes from the repository root (-I.)")
		next
	}
	if (su == "guest") {
		dir = src; sub(/[^\/]*$/, "", dir)
		if (inc == "vmm/boot/bootinfo.h" || inc ~ /^guest-driver\// || (inc !~ /\// && exists(dir inc)))
			next
		violation(src, FNR, inc, "guest-driver/ is freestanding: only its own headers and vmm/boot/bootinfo.h")
		next
	}
	if (!exists(inc)) {
		violation(src, FNR, inc, "not a path from the repository root: spell includes as \"vmm/lib/log.h\", \"mm/mm.h\"")
		next
	}
	iu = unit(inc)
	if (iu == "" || su == "" || iu == su)
		next
	if (inc == "vmm/qmp/dispatch.h") {
		violation(src, FNR, inc, "the registry internals are for vmm/qmp/ only; command providers include vmm/qmp/qmp.h")
		next
	}
	if ((inc == "vmm/qmp/server.h" || inc == "vmm/qmp/events.h") && su != "machine") {
		violation(src, FNR, inc, "the QMP server internals are for vmm/qmp/ and the machine; command providers include vmm/qmp/qmp.h")
		next
	}
	if (inc == "vmm/boot/bootinfo.h" && rank(su) >= rank("kvm"))
		next
	if (rank(iu) < 0 || rank(iu) >= rank(su)) {
		why = su " may not include " iu "; a file includes its own unit and the units below it: " order
		if (su == "mm")
			why = "mm/ includes only mm/, vmm/lib/ and vmm/qmp/ (never the VM, KVM, boot, devices, virtio, machine or balloon)"
		violation(src, FNR, inc, why)
	}
}
END {
	for (k in exc)
		if (!(k in used)) {
			printf("check-deps: scripts/deps-exceptions.txt: \"%s\" no longer occurs: delete the line\n", k)
			bad++
		}
	if (bad) {
		printf("check-deps: %d include(s) break the dependency rule\n", bad)
		exit 1
	}
	printf("check-deps: ok (%d known exception(s) left)\n", nexc + 0)
}' $files
