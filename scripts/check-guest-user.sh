#!/bin/sh
# Ring-3 code of the guest (guest-driver/user_*.c) is mapped into user address
# spaces on its own: it must not call into the kernel (a stray memset/memcpy the
# compiler emits would fault at CPL 3). Fails if a user object needs a symbol
# that no user object defines.
set -e
objs="$*"
defined=$(nm --defined-only $objs | awk 'NF == 3 { print $3 }' | sort -u)
missing=$(nm -u $objs | awk 'NF == 2 { print $2 }' | sort -u | while read -r sym; do
	echo "$defined" | grep -qx "$sym" || echo "$sym"
done)
if [ -n "$missing" ]; then
	echo "guest user code calls outside ring 3: $missing" >&2
	exit 1
fi
