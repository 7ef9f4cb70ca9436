#!/bin/sh
# tfs_check_available() says what is missing and how to fix it when the
# FUSE device is absent (simulated with TANDEM_TEST_FUSE_DEV).
# Usage: check.sh TFS_MOUNT
set -u
T=$1
n=0
failed=0
expect() { # expect NAME PATTERN: the message contains PATTERN
	n=$((n + 1))
	if printf '%s' "$msg" | grep -qF -- "$2"; then echo "ok $n - $1"; else
		echo "not ok $n - $1"; echo "#   message: $msg"; failed=$((failed + 1)); fi
}
msg=$(TANDEM_TEST_FUSE_DEV=/nonexistent/fuse "$T" --check)
rc=$?
n=$((n + 1))
if [ $rc -eq 1 ]; then echo "ok $n - fails without the device"; else echo "not ok $n - fails without the device (rc $rc)"; failed=$((failed + 1)); fi
expect "names the device" "/nonexistent/fuse does not exist"
expect "says how to load the module" "modprobe fuse"
expect "says how to install fuse3" "apt-get install fuse3"
expect "says what a container needs" "--device /dev/fuse"
expect "suggests --dir" "--dir DIR"
: >"${TMPDIR:-/tmp}/tfs-check-$$"
msg=$(TANDEM_TEST_FUSE_DEV="${TMPDIR:-/tmp}/tfs-check-$$" "$T" --check)
rm -f "${TMPDIR:-/tmp}/tfs-check-$$"
expect "a regular file is no driver either" "--dir DIR"
echo "1..$n"
[ $failed -eq 0 ]
