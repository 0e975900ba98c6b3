#!/bin/sh
# Installs the Debian packages the build, tests and benchmarks need, only the
# missing ones. Needs root (apt-get); prints what it would install otherwise.
set -e
PKGS="gcc make libc6-dev linux-libc-dev pkg-config libzstd-dev libxxhash-dev \
libjansson-dev libcmocka-dev libseccomp-dev libxml2-dev libvirt-dev python3 zstd \
zlib1g-dev liblzma-dev libbz2-dev liblz4-dev liblzo2-dev \
qemu-system-x86 qemu-utils libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients busybox-static python3-matplotlib \
acpica-tools clang-14 libclang-rt-14-dev"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing Debian packages:$missing" >&2
	echo "deps: run as root, or: sudo apt-get install$missing" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
