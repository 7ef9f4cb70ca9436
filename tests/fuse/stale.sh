#!/bin/sh
# A crashed FUSE daemon leaves a dead mount (ENOTCONN); tfs_clear_stale()
# in the next start clears it and the new mount serves.
# Usage: stale.sh TFS_MOUNT
TFS_MOUNT=$1
. "$(dirname "$0")/lib.sh"

printf 'kept\n' >"$B/file"
start_mount
check "first mount serves" sh -c "[ \"\$(cat '$M/file')\" = kept ]"
kill -KILL "$MOUNT_PID"
wait "$MOUNT_PID" 2>/dev/null
MOUNT_PID=
# statfs always reaches the (dead) server; stat may answer from the cache
check "the killed mount is dead (ENOTCONN)" sh -c "! stat -f '$M' 2>&1 >/dev/null && stat -f '$M' 2>&1 | grep -q 'not connected'"
check "and still in the mount table" grep -q " $M fuse" /proc/self/mounts
start_mount
check "the stale mount was cleared, not stacked on" sh -c "[ \$(grep -c ' $M fuse' /proc/self/mounts) = 1 ]"
check "a new mount over the stale one serves" sh -c "[ \"\$(cat '$M/file')\" = kept ]"
check "writes go to the backing dir" sh -c "printf new >'$M/new' && [ \"\$(cat '$B/new')\" = new ]"
check "a live mount is not cleared (EBUSY)" sh -c "! '$TFS_MOUNT' '$B' '$M' 2>'$W/busy.log'; grep -q 'already a live FUSE mount' '$W/busy.log'"
n=$((n + 1))
if stop_mount; then echo "ok $n - clean unmount"; else echo "not ok $n - clean unmount"; failed=$((failed + 1)); fi
check "no mount left" sh -c "! grep ' $M fuse' /proc/self/mounts"
finish
