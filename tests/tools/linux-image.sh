#!/bin/sh
# linux-image.sh: Debian's current stock kernel for the Linux tests. Fetches
# the package linux-image-amd64 depends on with `apt-get download` into
# build/linux-cache (or $MINIVMM_LINUX_CACHE), extracts it with `dpkg -x`
# once, and prints two lines: the bzImage's path and its kernel config's.
# Nothing is installed. On failure it prints the reason on stderr and exits
# 1, so a test can skip saying why.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cache=${MINIVMM_LINUX_CACHE:-$root/build/linux-cache}
fail() { echo "linux-image: $*" >&2; exit 1; }

mkdir -p "$cache" || fail "cannot create $cache"
cd "$cache"
# tests may run concurrently: one fetch at a time
exec 9>"$cache/.lock"
flock 9

pkg_of() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }'; }
pkg=$(pkg_of)
if [ -z "$pkg" ]; then
	apt-get update -qq >/dev/null 2>&1 || fail "apt-get update failed (no package archive reachable?)"
	pkg=$(pkg_of)
	[ -n "$pkg" ] || fail "Debian's package lists name no linux-image-amd64 dependency"
fi
dir="$cache/$pkg"
if [ ! -d "$dir/boot" ]; then
	deb=$(ls "$cache"/"$pkg"_*.deb 2>/dev/null | head -n 1 || true)
	if [ -z "$deb" ]; then
		# root downloads into a directory _apt cannot write: say so to apt, not to the user
		apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null 2>&1 ||
			fail "apt-get download $pkg failed (no package archive reachable?)"
		deb=$(ls "$cache"/"$pkg"_*.deb | head -n 1)
	fi
	rm -rf "$dir.tmp"
	dpkg -x "$deb" "$dir.tmp" || fail "dpkg -x $deb failed"
	mv "$dir.tmp" "$dir"
	# older kernels' caches are stale once Debian moves on
	for old in "$cache"/linux-image-*; do
		case "$old" in "$dir"|"$cache/$pkg"_*) ;; *) rm -rf "$old" ;; esac
	done
fi
kernel=$(ls "$dir"/boot/vmlinuz-* 2>/dev/null | head -n 1)
config=$(ls "$dir"/boot/config-* 2>/dev/null | head -n 1)
[ -n "$kernel" ] && [ -n "$config" ] || fail "$pkg has no boot/vmlinuz-* and boot/config-*"
echo "$kernel"
echo "$config"
