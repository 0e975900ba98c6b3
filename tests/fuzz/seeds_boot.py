#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_boot (corpus/fuzz_boot/): a tiny own-guest
ELF, a tiny vmlinux with Xen PVH and Linux notes, and bzImages around it
compressed with gzip, bzip2, xz, lzma and (when the zstd program is there)
zstd, each behind fuzz_boot's two control bytes. Header layout as in
tests/unit/test_linux_synth.c and vmm/boot/linux_abi.h."""
import bz2
import gzip
import lzma
import os
import shutil
import struct
import subprocess

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_boot")
KBASE = 0x1000000


def elf(notes, base=KBASE, code=bytes(range(256))):
    ehsz, phsz = 64, 56
    nph = 2 if notes else 1
    notes_off = ehsz + nph * phsz
    code_off = notes_off + len(notes)
    eh = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    eh += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, base, ehsz, 0, 0, ehsz, phsz, nph, 64, 0, 0)
    ph = struct.pack("<IIQQQQQQ", 1, 5, code_off, 0xffffffff81000000, base, len(code),
                     len(code) + 4096, 0x1000)
    if notes:
        ph += struct.pack("<IIQQQQQQ", 4, 4, notes_off, 0, 0, len(notes), len(notes), 4)
    return eh + ph + notes + code


def note(name, typ, desc):
    n = name + b"\0"
    pad = lambda b: b + bytes(-len(b) % 4)
    return struct.pack("<III", len(n), len(desc), typ) + pad(n) + pad(desc)


VMLINUX = elf(note(b"Xen", 18, struct.pack("<Q", KBASE + 0x10)) + note(b"Linux", 0x100, b"\0" * 4))
OWN = elf(b"", base=0x100000)


def bzimage(payload, version=0x020F):
    img = bytearray(1024 + 0x100)
    img[0x1F1] = 1
    struct.pack_into("<H", img, 0x1FE, 0xAA55)
    img[0x200], img[0x201] = 0xEB, 0x268 - 0x202
    struct.pack_into("<I", img, 0x202, 0x53726448)
    struct.pack_into("<H", img, 0x206, version)
    img[0x211] = 1                                   # LOADED_HIGH
    struct.pack_into("<I", img, 0x214, 0x100000)
    struct.pack_into("<I", img, 0x22C, 0x7FFFFFFF)
    struct.pack_into("<I", img, 0x230, 0x200000)
    img[0x234] = 1
    struct.pack_into("<H", img, 0x236, 1)            # XLF_KERNEL_64
    struct.pack_into("<I", img, 0x238, 2047)
    struct.pack_into("<I", img, 0x248, 0x100)
    struct.pack_into("<I", img, 0x24C, len(payload))
    struct.pack_into("<Q", img, 0x258, KBASE)
    struct.pack_into("<I", img, 0x260, 0x400000)
    return bytes(img) + payload


def with_len(stream):                                # the kernel build appends the length
    return stream + struct.pack("<I", len(VMLINUX))


payloads = {
    "gzip": gzip.compress(VMLINUX, mtime=0),
    "bzip2": with_len(bz2.compress(VMLINUX)),
    "xz": with_len(lzma.compress(VMLINUX, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32)),
    "lzma": with_len(lzma.compress(VMLINUX, format=lzma.FORMAT_ALONE)),
}
if shutil.which("zstd"):
    payloads["zstd"] = with_len(subprocess.run(["zstd", "-q", "-c", "-19"], input=VMLINUX,
                                               capture_output=True, check=True).stdout)

seeds = {"own-elf": b"\x00\x10" + OWN, "vmlinux-pvh": b"\x08\x20" + VMLINUX,
         "vmlinux-64": b"\x01\x20" + VMLINUX, "bzimage-guest": b"\x0a\x20" + bzimage(payloads["gzip"])}
for name, p in payloads.items():
    seeds["bzimage-" + name] = b"\x08\x30" + bzimage(p)
for name in ("gzip", "xz"):                          # control bit 2: the payload alone
    seeds["payload-" + name] = b"\x04\x00" + payloads[name]
os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
