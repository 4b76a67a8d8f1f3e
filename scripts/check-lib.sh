#!/usr/bin/env bash
# Checks what the built library needs from the system it is loaded into, so that it
# loads in the fluent/fluent-bit images: glibc symbol versions up to GLIBC_MAX (2.36:
# Debian bookworm, the images up to 4.1; trixie's 2.41 from 4.2.1 on is newer), and no
# shared library beyond glibc's own.
#
#   scripts/check-lib.sh build/kubetrail.so
set -euo pipefail

lib=${1:?usage: check-lib.sh LIB}
max=${GLIBC_MAX:-2.36}
allowed='^(libc\.so\.6|ld-linux-x86-64\.so\.2|ld-linux-aarch64\.so\.1|libpthread\.so\.0|libdl\.so\.2|libm\.so\.6|libresolv\.so\.2)$'

needed=$(readelf -d "$lib" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')
bad=$(printf '%s\n' "$needed" | grep -Ev "$allowed" || true)
if [ -n "$bad" ]; then
	echo "check-lib: $lib needs shared libraries beyond glibc: $bad" >&2
	exit 1
fi

highest=$(objdump -T "$lib" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1)
if [ "$(printf '%s\n%s\n' "$highest" "$max" | sort -V | tail -n1)" != "$max" ]; then
	echo "check-lib: $lib needs GLIBC_$highest, newer than GLIBC_$max" >&2
	exit 1
fi
echo "check-lib: $lib needs GLIBC_$highest at most (limit $max) and only: $(echo $needed)"
