# Shared by the FUSE shell tests: sourced with TFS_MOUNT set to the tfs-mount
# binary. Gives a private work dir ($W with back/ and mnt/), starts and stops
# the mount, and on exit kills what it started and leaves no mount behind.
set -u

skip() { echo "1..0 # SKIP $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "the FUSE tests mount for real and need root"
why=$("$TFS_MOUNT" --check) || skip "$why"

W=$(mktemp -d /tmp/tfs-sh-XXXXXX)
B=$W/back
M=$W/mnt
mkdir -p "$B" "$M"
MOUNT_PID=
n=0
failed=0

cleanup() {
	if [ -n "$MOUNT_PID" ]; then
		kill -TERM "$MOUNT_PID" 2>/dev/null
		wait "$MOUNT_PID" 2>/dev/null
	fi
	if grep -q " $M fuse" /proc/self/mounts; then
		umount -l "$M" 2>/dev/null || fusermount3 -u -z "$M" 2>/dev/null
	fi
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# start_mount: mounts $B at $M in the background, waits until it serves.
start_mount() {
	: >"$W/ready"
	"$TFS_MOUNT" "$B" "$M" "$W/inval" >"$W/ready" 2>"$W/mount.log" &
	MOUNT_PID=$!
	i=0
	while [ "$(cat "$W/ready")" != "ready" ]; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$MOUNT_PID" 2>/dev/null; then
			echo "Bail out! tfs-mount did not start: $(cat "$W/mount.log")"
			exit 1
		fi
		sleep 0.1
	done
}

stop_mount() {
	kill -TERM "$MOUNT_PID"
	wait "$MOUNT_PID"
	rc=$?
	MOUNT_PID=
	return $rc
}

# check NAME COMMAND...: runs the command, prints a TAP line.
check() {
	name=$1
	shift
	n=$((n + 1))
	if out=$("$@" 2>&1); then
		echo "ok $n - $name"
	else
		echo "not ok $n - $name"
		printf '%s\n' "$out" | sed 's/^/#   /' | tail -20
		failed=$((failed + 1))
	fi
}

skipped() {
	n=$((n + 1))
	echo "ok $n - $1 # SKIP $2"
}

finish() {
	echo "1..$n"
	[ "$failed" -eq 0 ]
}
