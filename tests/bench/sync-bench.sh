#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# sync-bench.sh: measures tandem against scp, rsync, socat and Syncthing on
# this machine (PRODUCT.md §12). Two plain-directory peers sync a large random
# file and a tree of small files; the same workloads then go through scp and
# rsync over a private loopback sshd (started here, with its own keys and
# config), through an unencrypted socat copy, the floor, and through two
# Syncthing instances on loopback. It also measures tandem's pairing time and
# its daemons' memory (idle, and the peak while syncing a 4 GiB file). Prints
# a table of seconds, MB/s and ratios, and the §12 targets. Asserts nothing:
# exit 0 when every measurement ran, 1 when one failed, 2 on a usage error, 77
# when a tool it needs is missing (scripts/install-bench-deps.sh installs
# them).
#
# With FUSE (--fuse, the default when /dev/fuse and fusermount3 are there) it
# also reads a peer's large file through a tandem mount (tandem up --mount)
# and through an sshfs mount over the same sshd, and writes the large file
# into both mounts.
#
# Everything runs on loopback (127.0.0.1 for ssh and socat, [::1] for tandem)
# under one temporary directory; every daemon it starts is stopped on exit,
# Ctrl-C included. See tests/bench/README.md.

set -euo pipefail

PROG=sync-bench.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/../.." && pwd)

usage() {
	cat <<EOF
Usage: $PROG [--build DIR] [--size MiB] [--files N] [--keep] [OPTIONS]

Syncs a random file of --size MiB and --files files of 4 KiB (100 to a
directory) between two tandem plain-directory peers, then copies the same
data with scp and rsync over a private loopback sshd, with socat (no
encryption) and between two Syncthing instances on loopback, and prints
seconds, MB/s and ratios side by side. With FUSE it also reads the large file
cold through a tandem mount and an sshfs mount, and writes it into both.
Then tandem's pairing time (best of --runs), each daemon's idle RSS and its
peak RSS while syncing a --mem-size MiB file, against the §12 targets.

Options:
  --build DIR      meson build dir holding tandem and relay/tandem-relay
                   (default: $REPO_DIR/build, else PATH)
  --size MiB       size of the large file (default 1024; 0 skips it)
  --files N        number of 4 KiB files (default 10000; 0 skips them)
  --tools LIST     comma-separated subset of tandem,scp,rsync,socat,sshfs,
                   syncthing (default all; syncthing only when the syncthing
                   binary is installed, else a note says so)
  --mem-size MiB   size of the file whose sync gives the daemons' peak RSS
                   (default 4096; 0 skips it; needs about 3x that free in
                   --tmpdir, else it is skipped with a note)
  --runs N         run each measurement N times and report the best (default 1;
                   the machine may be busy with other work)
  --out FILE       also write the table there: Markdown if FILE ends in .md,
                   tab-separated values otherwise
  --timeout S      give up on a tandem sync after S seconds (default: 120 plus
                   one second per 10 MiB)
  --sync           end each baseline's time with an fsync of every file it
                   wrote, as tandem fsyncs what it receives (default: each
                   tool's clock stops when the tool says it is done)
  --fuse           run the FUSE workloads (cold read and write of the large file
                   through a tandem mount and an sshfs mount); exit 77 (skip)
                   when FUSE or sshfs is missing. Default: run them when
                   /dev/fuse, fusermount3 and sshfs are there, else say why
  --no-fuse        skip the FUSE workloads
  --log-level L    tandem daemons' log level (default info; debug for profiling)
  --tmpdir DIR     where to create the work directory (default \${TMPDIR:-/tmp});
                   every copy lands on that one file system
  --keep           keep the work directory (data, keys, logs) after exit
  -h, --help       show this help

Needs sshd, ssh, scp, rsync, socat, python3, curl and syncthing (1.19), and
for FUSE sshfs and fusermount3 (scripts/install-bench-deps.sh).
Dropping the page cache before each tool needs root; without it the run goes
on and the footer says so.
EOF
}

die() {
	echo "$PROG: $*" >&2
	exit 1
}

note() {
	echo "# $*" >&2
}

# ---------------------------------------------------------------- options

BUILD=""
SIZE_MIB=1024
MEM_MIB=4096
NFILES=10000
FILE_BYTES=4096
PER_DIR=100
KEEP=0
OUT=""
TIMEOUT=""
DO_SYNC=0
LOG_LEVEL=info
TMPBASE=${TMPDIR:-/tmp}
TOOLS=""
ALL_TOOLS="tandem,scp,rsync,socat,sshfs,syncthing"
RUNS=1
FUSE_MODE=auto

need_arg() {
	[ $# -ge 2 ] || { echo "$PROG: $1 needs a value (see --help)" >&2; exit 2; }
}

is_uint() {
	[[ $1 =~ ^[0-9]+$ ]]
}

while [ $# -gt 0 ]; do
	case $1 in
	--build) need_arg "$@"; BUILD=$2; shift 2 ;;
	--size) need_arg "$@"; SIZE_MIB=$2; shift 2 ;;
	--files) need_arg "$@"; NFILES=$2; shift 2 ;;
	--mem-size) need_arg "$@"; MEM_MIB=$2; shift 2 ;;
	--tools) need_arg "$@"; TOOLS=$2; shift 2 ;;
	--runs) need_arg "$@"; RUNS=$2; shift 2 ;;
	--out) need_arg "$@"; OUT=$2; shift 2 ;;
	--timeout) need_arg "$@"; TIMEOUT=$2; shift 2 ;;
	--log-level) need_arg "$@"; LOG_LEVEL=$2; shift 2 ;;
	--tmpdir) need_arg "$@"; TMPBASE=$2; shift 2 ;;
	--sync) DO_SYNC=1; shift ;;
	--fuse) FUSE_MODE=on; shift ;;
	--no-fuse) FUSE_MODE=off; shift ;;
	--keep) KEEP=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "$PROG: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done

is_uint "$SIZE_MIB" || { echo "$PROG: --size wants MiB as a whole number, not '$SIZE_MIB'" >&2; exit 2; }
is_uint "$NFILES" || { echo "$PROG: --files wants a whole number, not '$NFILES'" >&2; exit 2; }
is_uint "$MEM_MIB" || { echo "$PROG: --mem-size wants MiB as a whole number, not '$MEM_MIB'" >&2; exit 2; }
# Syncthing is in the default list when it is installed; asked for by name
# (--tools) it must be there (exit 77 below).
ST_NOTE=""
if [ -z "$TOOLS" ]; then
	TOOLS=$ALL_TOOLS
	if ! command -v syncthing >/dev/null; then
		TOOLS=${TOOLS%,syncthing}
		ST_NOTE="no syncthing binary (apt-get install syncthing: scripts/install-bench-deps.sh)"
		echo "# Syncthing rows skipped: $ST_NOTE" >&2
	fi
fi
is_uint "$RUNS" && [ "$RUNS" -ge 1 ] || { echo "$PROG: --runs wants a count of at least 1, not '$RUNS'" >&2; exit 2; }
[ -z "$TIMEOUT" ] || is_uint "$TIMEOUT" || { echo "$PROG: --timeout wants seconds, not '$TIMEOUT'" >&2; exit 2; }
for t in ${TOOLS//,/ }; do
	case $t in
	tandem | scp | rsync | socat | sshfs | syncthing) ;;
	*) echo "$PROG: --tools: unknown tool '$t' (tandem, scp, rsync, socat, sshfs, syncthing)" >&2; exit 2 ;;
	esac
done
[ -n "$TIMEOUT" ] || TIMEOUT=$((120 + SIZE_MIB / 10))

want_tool() {
	[[ ",$TOOLS," == *",$1,"* ]]
}

# ---------------------------------------------------------------- programs

find_bin() { # NAME SUBPATH...: first executable among BUILD/SUBPATH, then PATH
	local name=$1 p
	shift
	for p in "$@"; do
		if [ -x "$BUILD/$p" ] && [ -f "$BUILD/$p" ]; then
			echo "$BUILD/$p"
			return 0
		fi
	done
	command -v "$name" 2>/dev/null || return 1
}

skip() {
	echo "$PROG: SKIP: $*" >&2
	exit 77
}

if [ -z "$BUILD" ]; then
	BUILD=$REPO_DIR/build
elif [ ! -d "$BUILD" ]; then
	die "--build $BUILD: no such directory (run meson setup/ninja first)"
fi
BUILD=$(cd "$BUILD" 2>/dev/null && pwd || echo "$BUILD")

if want_tool tandem; then
	TANDEM=$(find_bin tandem tandem src/tandem) ||
		skip "no tandem binary in $BUILD or PATH: build it (ninja -C BUILD) or pass --build DIR"
	RELAY=$(find_bin tandem-relay relay/tandem-relay tandem-relay) ||
		skip "no tandem-relay binary in $BUILD or PATH: build it or pass --build DIR"
fi
SSHD=$(command -v sshd || { [ -x /usr/sbin/sshd ] && echo /usr/sbin/sshd; } || true)
if want_tool scp || want_tool rsync; then
	[ -n "$SSHD" ] || skip "no sshd (install openssh-server: scripts/install-bench-deps.sh)"
	for p in ssh ssh-keygen scp rsync; do
		command -v $p >/dev/null || skip "no $p (scripts/install-bench-deps.sh installs it)"
	done
fi
if want_tool socat; then
	command -v socat >/dev/null || skip "no socat (scripts/install-bench-deps.sh installs it)"
fi
if want_tool syncthing; then
	ST_BIN=$(command -v syncthing) || skip "no syncthing (apt-get install syncthing: scripts/install-bench-deps.sh)"
	command -v curl >/dev/null || skip "no curl, which talks to Syncthing's REST API (scripts/install-bench-deps.sh)"
fi

# FUSE workloads: on with --fuse, off with --no-fuse; by default they run
# when this machine can mount (and say why not when it cannot). They need
# the large file. RUN_FUSE=1 when they run; FUSE_WHY says why they do not.
RUN_FUSE=0
FUSE_WHY=""
SSHFS_WHY=""
if [ "$FUSE_MODE" != off ] && [ "$SIZE_MIB" -gt 0 ] && { want_tool tandem || want_tool sshfs; }; then
	if [ ! -c /dev/fuse ]; then
		FUSE_WHY="no /dev/fuse (modprobe fuse; in a container, pass the device through)"
	elif [ ! -r /dev/fuse ] || [ ! -w /dev/fuse ]; then
		FUSE_WHY="/dev/fuse is not readable and writable by $(id -un)"
	elif ! command -v fusermount3 >/dev/null; then
		FUSE_WHY="no fusermount3 (install fuse3: scripts/install-bench-deps.sh)"
	fi
	if want_tool sshfs && [ -z "$FUSE_WHY" ]; then
		command -v sshfs >/dev/null || SSHFS_WHY="no sshfs (scripts/install-bench-deps.sh installs it)"
		[ -n "$SSHD" ] || SSHFS_WHY="no sshd (install openssh-server: scripts/install-bench-deps.sh)"
		command -v ssh >/dev/null && command -v ssh-keygen >/dev/null ||
			SSHFS_WHY="no ssh or ssh-keygen (scripts/install-bench-deps.sh installs them)"
	fi
	if [ "$FUSE_MODE" = on ]; then
		[ -z "$FUSE_WHY" ] || skip "--fuse: $FUSE_WHY"
		[ -z "$SSHFS_WHY" ] || skip "--fuse: $SSHFS_WHY"
	fi
	if [ -n "$FUSE_WHY" ]; then
		note "FUSE workloads skipped: $FUSE_WHY (--no-fuse says nothing)"
	else
		RUN_FUSE=1
	fi
elif [ "$FUSE_MODE" = on ] && [ "$SIZE_MIB" -eq 0 ]; then
	echo "$PROG: --fuse needs the large file (--size above 0)" >&2
	exit 2
fi

PYTHON=$(command -v /usr/bin/python3 || command -v python3 || true)
[ -n "$PYTHON" ] || skip "no python3 (scripts/install-bench-deps.sh installs it)"
for p in sha256sum find tar awk; do
	command -v $p >/dev/null || skip "no $p"
done

# ---------------------------------------------------------------- cleanup

WORK=""
RELAY_PID=""
SSHD_PID=""
DAEMON_HOMES=()
CHILD_PIDS=()
MADE_PRIVSEP=""
MOUNTS=() # every mount point this script may have mounted (sshfs, tandem)

is_mounted() { # DIR: true while DIR is a mount point (even a dead one)
	local m=${1// /\\040}
	M=$m awk '$2 == ENVIRON["M"] { found = 1 } END { exit !found }' /proc/mounts
}

unmount() { # DIR: unmount, lazily if it is busy; true once it is gone
	is_mounted "$1" || return 0
	fusermount3 -u "$1" 2>/dev/null || fusermount3 -u -z "$1" 2>/dev/null || umount -l "$1" 2>/dev/null
	! is_mounted "$1"
}

kill_tree() { # PID: the process and its descendants, by pid only
	local pid=$1 c
	for c in $(pgrep -P "$pid" 2>/dev/null || true); do
		kill_tree "$c"
	done
	kill "$pid" 2>/dev/null || true
}

stop_pid() { # PID: TERM, wait up to 5 s, then KILL
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || return 0
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? h pid
	# Nothing interrupts the cleanup: a second Ctrl-C or TERM would leave
	# daemons (Syncthing's monitor and its child) and mounts behind.
	trap - EXIT
	trap '' INT TERM
	set +e
	for pid in "${CHILD_PIDS[@]}"; do
		kill_tree "$pid"
	done
	for h in "${DAEMON_HOMES[@]}"; do
		pid=$(daemon_pid "$h")
		timeout 20 "$TANDEM" --home "$h" down >/dev/null 2>&1
		[ -z "$pid" ] || stop_pid "$pid"
	done
	# tandem down unmounts its own mount; whatever is still mounted
	# (sshfs, or a daemon that died) goes now, before anything under WORK
	# is removed: rm -rf through a live mount would delete through it.
	local stuck=""
	for h in "${MOUNTS[@]}"; do
		unmount "$h" || stuck="$stuck $h"
	done
	stop_pid "$RELAY_PID"
	stop_pid "$SSHD_PID"
	[ -z "$MADE_PRIVSEP" ] || rmdir "$MADE_PRIVSEP" 2>/dev/null
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if [ -n "$stuck" ]; then
			note "still mounted:$stuck; left $WORK in place (unmount, then remove it)"
		elif [ "$KEEP" = 1 ]; then
			note "kept $WORK (data, keys and logs)"
		else
			rm -rf "$WORK"
		fi
	fi
	exit $rc
}
trap cleanup EXIT
trap 'echo "$PROG: interrupted" >&2; exit 130' INT
trap 'echo "$PROG: terminated" >&2; exit 143' TERM

# ---------------------------------------------------------------- helpers

# Polling must not steal the CPU the peers need: on a VM a fork+exec per
# poll costs more than the poll. nap sleeps without a process (read -t on a
# pipe nobody writes to), and the checks below use builtins until the data
# is there.
NAP_FD=""
nap() { # SECONDS
	if [ -z "$NAP_FD" ]; then
		exec {NAP_FD}<> <(:)
	fi
	read -r -t "$1" -u "$NAP_FD" _ || true
}

now_us() {
	local t=$EPOCHREALTIME
	echo "${t/./}"
}

secs_since() { # START_US: seconds from then to now, into SECS
	SECS=$(awk -v a="$1" -v b="$(now_us)" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')
}

free_port() { # a TCP port free on 127.0.0.1 right now
	"$PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

listening() { # PORT: true once something listens on 127.0.0.1:PORT
	local hex
	hex=$(printf '%04X' "$1")
	awk -v want="0100007F:$hex" '$2 == want && $4 == "0A" { found = 1 } END { exit !found }' /proc/net/tcp
}

wait_listening() { # PORT WHAT
	local i
	for i in $(seq 200); do
		listening "$1" && return 0
		sleep 0.025
	done
	die "$2 is not listening on 127.0.0.1:$1 after 5 s"
}

CACHE_NOTE="dropped before each tool"
settle() { # before each measurement: flush dirty data, drop the page cache
	sync
	if ! { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
		CACHE_NOTE="NOT dropped (needs root: source data may be cached)"
	fi
}

# With --sync, every baseline's time ends with an fsync of each file it
# wrote (not a global sync, which would also flush whatever else the machine
# is writing). tandem's clock already includes its own fsyncs.
finish_sync() { # PATH: the file or tree just written
	[ "$DO_SYNC" = 1 ] || return 0
	if [ -d "$1" ]; then
		find "$1" -type f -print0 | xargs -0 -r sync --
	else
		sync -- "$1"
	fi
}

tree_hash() { # DIR: one hash over every file's relative path and content
	(cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) |
		sha256sum | cut -d' ' -f1
}

file_hash() {
	sha256sum "$1" | cut -d' ' -f1
}

# Results: one line per measurement, "workload<TAB>tool<TAB>seconds<TAB>bytes<TAB>note";
# WORK/runs.tsv keeps every run's time.
RESULTS=()
FAILED=0

record_na() { # WORKLOAD TOOL REASON [SOFT]: SOFT=1 when nothing failed (not supported)
	RESULTS+=("$1	$2	n/a	0	$3")
	note "$1 / $2: n/a: $3"
	[ "${4:-0}" = 1 ] || FAILED=1
}

# ---------------------------------------------------------------- setup

LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
mkdir -p "$TMPBASE"
WORK=$(mktemp -d "$TMPBASE/tandem-bench.XXXXXX")
SRC=$WORK/src
mkdir -p "$SRC" "$WORK/stage"
note "work directory $WORK"

BIG_BYTES=$((SIZE_MIB * 1024 * 1024))
TREE_BYTES=$((NFILES * FILE_BYTES))
WL_BIG="$SIZE_MIB MiB file"
WL_TREE="$NFILES x 4 KiB"
WL_FREAD="FUSE read $SIZE_MIB MiB"
WL_FWRITE="FUSE write $SIZE_MIB MiB"

if [ "$SIZE_MIB" -gt 0 ]; then
	note "writing $SIZE_MIB MiB of random data to $SRC/big.bin"
	head -c "$BIG_BYTES" /dev/urandom >"$SRC/big.bin"
	BIG_HASH=$(file_hash "$SRC/big.bin")
fi
if [ "$NFILES" -gt 0 ]; then
	note "writing $NFILES random files of $FILE_BYTES bytes under $SRC/tree"
	left=$NFILES
	d=0
	while [ "$left" -gt 0 ]; do
		n=$((left < PER_DIR ? left : PER_DIR))
		dir=$(printf '%s/tree/d%03d' "$SRC" "$d")
		mkdir -p "$dir"
		head -c $((n * FILE_BYTES)) /dev/urandom |
			(cd "$dir" && split -b "$FILE_BYTES" -a 3 -d - f)
		left=$((left - n))
		d=$((d + 1))
	done
	TREE_HASH=$(tree_hash "$SRC/tree")
	have=$(find "$SRC/tree" -type f | wc -l)
	[ "$have" -eq "$NFILES" ] || die "made $have files instead of $NFILES"
fi

USER_NAME=$(id -un)

# A private sshd on 127.0.0.1: own host key, own authorized key, own config.
SSH_OPTS=()
SSH_CIPHER="-"
SSH_VERSION="-"
SSHFS_VERSION="sshfs"
start_sshd() {
	local d=$WORK/ssh sftp
	mkdir -p "$d" "$d/home"
	chmod 700 "$d"
	# Sessions get an empty HOME, so the shell that sshd starts for scp's
	# sftp-server and for 'rsync --server' reads no ~/.bashrc: a slow rc file
	# (pyenv, conda) would add a constant that is not ssh's cost.
	ssh-keygen -q -t ed25519 -N '' -C tandem-bench-host -f "$d/host_ed25519"
	ssh-keygen -q -t ed25519 -N '' -C tandem-bench-client -f "$d/client_ed25519"
	cp "$d/client_ed25519.pub" "$d/authorized_keys"
	sftp=internal-sftp
	[ ! -x /usr/lib/openssh/sftp-server ] || sftp=/usr/lib/openssh/sftp-server
	SSH_PORT=$(free_port)
	cat >"$d/sshd_config" <<EOF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $d/host_ed25519
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
PrintLastLog no
UseDNS no
Subsystem sftp $sftp
SetEnv HOME=$d/home
LogLevel INFO
EOF
	# As root, sshd wants its privilege separation directory.
	if [ "$(id -u)" -eq 0 ] && [ ! -d /run/sshd ]; then
		mkdir -m 755 /run/sshd
		MADE_PRIVSEP=/run/sshd
	fi
	"$SSHD" -D -e -f "$d/sshd_config" 2>"$d/sshd.log" &
	SSHD_PID=$!
	for _ in $(seq 200); do
		listening "$SSH_PORT" && break
		kill -0 "$SSHD_PID" 2>/dev/null || die "sshd did not start: $(tail -n 5 "$d/sshd.log")"
		sleep 0.025
	done
	listening "$SSH_PORT" || die "sshd is not listening on 127.0.0.1:$SSH_PORT: $(tail -n 5 "$d/sshd.log")"
	SSH_OPTS=(-F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
		-o LogLevel=ERROR -o BatchMode=yes -i "$d/client_ed25519")
	# One login to prove it works and to learn the negotiated cipher.
	local v
	v=$(ssh -v "${SSH_OPTS[@]}" -p "$SSH_PORT" "$USER_NAME@127.0.0.1" true 2>&1) ||
		die "cannot log in to the private sshd: $(echo "$v" | tail -n 3); sshd log: $(tail -n 3 "$d/sshd.log")"
	SSH_CIPHER=$(echo "$v" | sed -n 's/.*kex: client->server cipher: \([^ ]*\).*/\1/p' | head -n 1)
	[ -n "$SSH_CIPHER" ] ||
		SSH_CIPHER=$(ssh -G "${SSH_OPTS[@]}" 127.0.0.1 | awk '$1 == "ciphers" { split($2, c, ","); print c[1] }')
	SSH_VERSION=$(ssh -V 2>&1 | cut -d' ' -f1 | tr -d ,)
	if command -v sshfs >/dev/null; then
		SSHFS_VERSION="sshfs $(sshfs --version 2>&1 | sed -n 's/^SSHFS version //p' | head -n 1)"
	fi
	note "sshd on 127.0.0.1:$SSH_PORT (pid $SSHD_PID), cipher $SSH_CIPHER"
}

if want_tool scp || want_tool rsync ||
	{ [ "$RUN_FUSE" = 1 ] && want_tool sshfs && [ -z "$SSHFS_WHY" ]; }; then
	start_sshd
fi

# The relay on [::1] and two plain-directory peers paired through it.
daemon_pid() { # HOME: the daemon's pid from its status, or nothing
	local j
	j=$("$TANDEM" --home "$1" status --json 2>/dev/null) || return 0
	[[ $j =~ \"pid\"[[:space:]]*:[[:space:]]*([0-9]+) ]] && echo "${BASH_REMATCH[1]}"
	return 0
}

json_str() { # JSON KEY: the string or number value of a top-level key, or nothing
	[[ $1 =~ \"$2\"[[:space:]]*:[[:space:]]*\"?([^\",}]*) ]] && echo "${BASH_REMATCH[1]}"
	return 0
}

stop_daemon() { # HOME: tandem down (it unmounts), then make sure the process is gone
	local pid
	pid=$(daemon_pid "$1")
	timeout 20 "$TANDEM" --home "$1" down >/dev/null 2>&1 || true
	[ -z "$pid" ] || stop_pid "$pid"
}

# Memory of a process from /proc/PID/status: VmRSS (now) and VmHWM (the
# peak). Writing 5 to /proc/PID/clear_refs restarts the peak (Linux 4.0+,
# the process's owner or root), so a peak belongs to one measurement.
proc_kib() { # PID FIELD: the field in KiB, or nothing when the process is gone
	local st
	[ -n "$1" ] || return 0
	st=$(cat "/proc/$1/status" 2>/dev/null) || return 0
	[[ $st =~ $2:[[:space:]]*([0-9]+) ]] && echo "${BASH_REMATCH[1]}"
	return 0
}

HWM_NOTE="restarted before each measurement (clear_refs)"
reset_hwm() { # PID...
	local p
	for p in "$@"; do
		[ -n "$p" ] && [ -d "/proc/$p" ] || continue
		{ echo 5 >"/proc/$p/clear_refs"; } 2>/dev/null ||
			HWM_NOTE="NOT restarted (clear_refs refused): peaks since each process started"
	done
}

mib1() { # KiB: MiB with one decimal, or "n/a"
	[ -n "$1" ] || { echo n/a; return; }
	awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'
}

kmax() { # KiB KiB: the larger, ignoring empty ones
	if [ -z "$1" ]; then echo "$2"; elif [ -z "$2" ] || [ "$1" -ge "$2" ]; then echo "$1"; else echo "$2"; fi
}

# Pairing (PRODUCT.md §12: both daemons started to connected, under 200 ms on
# loopback): the clock runs from just before A's `tandem up` until both
# statuses say "connected", polled every 10 ms (A first; B only once A is).
# Sets PAIR_T (seconds) or WHY.
pair_up() { # HA HB DA DB LOG
	local ha=$1 hb=$2 da=$3 db=$4 log=$5 fa fb t0 ja jb deadline
	"$TANDEM" --home "$ha" init >/dev/null 2>&1 || { WHY="tandem --home $ha init failed"; return 1; }
	"$TANDEM" --home "$hb" init >/dev/null 2>&1 || { WHY="tandem --home $hb init failed"; return 1; }
	fa=$("$TANDEM" --home "$ha" id)
	fb=$("$TANDEM" --home "$hb" id)
	mkdir -p "$da" "$db"
	t0=$(now_us)
	deadline=$((t0 + 30000000))
	DAEMON_HOMES+=("$ha")
	"$TANDEM" --home "$ha" --log-level "$LOG_LEVEL" up --peer "$fb" --relay "$RELAY_URL" \
		--dir "$da" --listen '[::1]:0' >>"$log" 2>&1 || { WHY="tandem up (A) failed; log: $ha/state/tandem.log"; return 1; }
	DAEMON_HOMES+=("$hb")
	"$TANDEM" --home "$hb" --log-level "$LOG_LEVEL" up --peer "$fa" --relay "$RELAY_URL" \
		--dir "$db" --listen '[::1]:0' >>"$log" 2>&1 || { WHY="tandem up (B) failed; log: $hb/state/tandem.log"; return 1; }
	while :; do
		ja=$("$TANDEM" --home "$ha" status --json 2>/dev/null || true)
		if [ "$(json_str "$ja" state)" = connected ]; then
			jb=$("$TANDEM" --home "$hb" status --json 2>/dev/null || true)
			if [ "$(json_str "$jb" state)" = connected ]; then
				secs_since "$t0"
				PAIR_T=$SECS
				return 0
			fi
		fi
		if [ "$(now_us)" -gt "$deadline" ]; then
			WHY="the peers did not connect within 30 s (A: state $(json_str "$ja" state), last_error $(json_str "$ja" last_error))"
			return 1
		fi
		nap 0.01
	done
}

TANDEM_UP=0
TANDEM_WHY=""
RELAY_URL=""
PAIR_SECS="-"  # the best pairing time
PAIR_ALL=""    # every one
TPID_A=""
TPID_B=""
IDLE_A=""      # VmRSS (KiB) of each daemon, connected and idle, before the workloads
IDLE_B=""
start_tandem() {
	local line i
	"$RELAY" --listen '[::1]:0' >"$WORK/relay.out" 2>"$WORK/relay.log" &
	RELAY_PID=$!
	RELAY_URL=""
	for i in $(seq 200); do
		line=$(grep -m1 '^listening on ' "$WORK/relay.out" 2>/dev/null || true)
		if [ -n "$line" ]; then
			RELAY_URL=${line#listening on }
			break
		fi
		kill -0 "$RELAY_PID" 2>/dev/null || die "tandem-relay did not start: $(tail -n 3 "$WORK/relay.log")"
		sleep 0.025
	done
	[ -n "$RELAY_URL" ] || die "tandem-relay printed no address after 5 s: $(tail -n 3 "$WORK/relay.log")"

	DA=$WORK/DA
	DB=$WORK/DB
	if ! pair_up "$WORK/HA" "$WORK/HB" "$DA" "$DB" "$WORK/up.log"; then
		case $WHY in
		*"did not connect"*) TANDEM_WHY=$WHY; note "$TANDEM_WHY"; return 0 ;;
		*) die "$WHY" ;;
		esac
	fi
	TANDEM_UP=1
	PAIR_SECS=$PAIR_T
	PAIR_ALL=$PAIR_T
	TPID_A=$(daemon_pid "$WORK/HA")
	TPID_B=$(daemon_pid "$WORK/HB")
	note "tandem peers connected through $RELAY_URL in $PAIR_T s"
}

# Pairing runs 2..--runs: each a fresh pair (new identities, empty folders)
# through the same relay, stopped again right after; the best time counts.
measure_pairing() {
	local i d
	for i in $(seq 2 "$RUNS"); do
		d=$WORK/pair$i
		if ! pair_up "$d/HA" "$d/HB" "$d/DA" "$d/DB" "$d/up.log"; then
			note "pairing run $i: $WHY"
			stop_daemon "$d/HB"
			stop_daemon "$d/HA"
			continue
		fi
		PAIR_ALL="$PAIR_ALL $PAIR_T"
		awk -v a="$PAIR_T" -v b="$PAIR_SECS" 'BEGIN { exit !(a < b) }' && PAIR_SECS=$PAIR_T
		stop_daemon "$d/HB"
		stop_daemon "$d/HA"
		[ "$KEEP" = 1 ] || rm -rf "$d"
	done
	note "tandem pairing: $PAIR_ALL s (best $PAIR_SECS s)"
}

# Idle RSS of both daemons: once both are idle, and a second later (the
# figure of a pair that has nothing to do).
idle_rss() { # sets RSS_A RSS_B
	local i
	for i in $(seq 300); do
		IDLE_HOME=$WORK/HA b_idle && IDLE_HOME=$WORK/HB b_idle && break
		nap 0.1
	done
	# idle: a few heartbeats (2 s) after the last sync, when a connection
	# with nothing to send has given its transfer buffers back
	nap 5
	RSS_A=$(proc_kib "$TPID_A" VmRSS)
	RSS_B=$(proc_kib "$TPID_B" VmRSS)
}

if want_tool tandem; then
	start_tandem
fi

# B is done when it says so: status "sync_state":"idle" (nothing pending).
# IDLE_HOME names another receiver (the FUSE write waits for its A).
b_idle() {
	local j
	j=$("$TANDEM" --home "${IDLE_HOME:-$WORK/HB}" status --json 2>/dev/null) || return 1
	[ "$(json_str "$j" sync_state)" = idle ]
}

b_status_summary() {
	local j s
	j=$("$TANDEM" --home "${IDLE_HOME:-$WORK/HB}" status --json 2>/dev/null) || { echo "the receiver's daemon does not answer"; return; }
	s=$(json_str "$j" sync_state)
	if [ -z "$s" ]; then
		echo "the receiver is $(json_str "$j" state) but its status has no sync_state (no sync engine in this build?)"
	else
		echo "the receiver is $(json_str "$j" state), sync_state $s, files_in_sync $(json_str "$j" files_in_sync), files_pending $(json_str "$j" files_pending)"
	fi
}

# Waits until CHECK (a command) succeeds and B is idle; sets DONE_US or WHY.
wait_tandem() { # DEADLINE_US POLL_S CHECK...
	local deadline=$1 poll=$2
	shift 2
	WHY=""
	while :; do
		if "$@" && b_idle; then
			DONE_US=$(now_us)
			return 0
		fi
		if [ "${EPOCHREALTIME/./}" -gt "$deadline" ]; then
			if "$@"; then
				WHY="the data arrived but B never went idle within $TIMEOUT s: $(b_status_summary)"
			else
				WHY="the data did not arrive within $TIMEOUT s ($PROGRESS): $(b_status_summary)"
			fi
			return 1
		fi
		nap "$poll"
	done
}

PROGRESS=""
has_size() { # FILE BYTES: FILE is there with BYTES bytes (PROGRESS says what is)
	local s
	[ -f "$1" ] || { PROGRESS="no $1 yet"; return 1; }
	s=$(stat -c %s "$1")
	PROGRESS="$1 has $s of $2 bytes"
	[ "$s" -eq "$2" ]
}

big_arrived() { # tandem renames a file into place once it is complete
	has_size "$DB/big.bin" "$BIG_BYTES"
}

tree_arrived() { # B's count first (one small process), then find to be sure
	local n j
	[ -d "$DB/tree" ] || { PROGRESS="no $DB/tree yet"; return 1; }
	j=$("$TANDEM" --home "$WORK/HB" status --json 2>/dev/null) || true
	n=$(json_str "$j" files_in_sync)
	PROGRESS="B counts ${n:-?} files in sync"
	[ -n "$n" ] && [ "$n" -ge "$NFILES" ] || return 1
	n=$(find "$DB/tree" -type f | wc -l)
	PROGRESS="$n of $NFILES files in $DB/tree"
	[ "$n" -eq "$NFILES" ]
}

# ---------------------------------------------------------------- measurements
#
# One function per workload and tool: it prepares outside the timed region,
# calls settle, times the transfer, verifies the copy afterwards and leaves
# the seconds in SECS (success) or the reason in WHY (failure).

scp_to() { # SRC DEST_PATH [scp options]
	local src=$1 dst=$2
	shift 2
	scp -q "$@" "${SSH_OPTS[@]}" -P "$SSH_PORT" "$src" "$USER_NAME@127.0.0.1:$dst"
}

rsync_to() { # SRC DEST_DIR/
	rsync -a -e "ssh ${SSH_OPTS[*]} -p $SSH_PORT" "$1" "$USER_NAME@127.0.0.1:$2"
}

verify_file() { # FILE
	local h
	h=$(file_hash "$1")
	[ "$h" = "$BIG_HASH" ] || { WHY="copied, but $1 has sha256 $h, not $BIG_HASH"; return 1; }
}

verify_tree() { # DIR
	local h
	h=$(tree_hash "$1")
	[ "$h" = "$TREE_HASH" ] || { WHY="copied, but $1 differs from the source tree"; return 1; }
}

# The socat receiver runs before the clock starts, as sshd and the tandem
# daemons do; the clock stops when it has written everything.
start_receiver() { # PORT COMMAND...: a one-shot receiver, sets RECV_PID
	local port=$1
	shift
	("$@") &
	RECV_PID=$!
	CHILD_PIDS+=("$RECV_PID")
	wait_listening "$port" "the socat receiver"
}

# tandem: a run removes what the previous one synced (and waits until B has
# removed it too), so each run sends the whole content again.
tandem_clear() { # NAME: remove DA/NAME and wait until DB/NAME is gone and B idle
	local name=$1 deadline
	[ -e "$DA/$name" ] || [ -e "$DB/$name" ] || return 0
	rm -rf "${DA:?}/$name"
	deadline=$(($(now_us) + TIMEOUT * 1000000))
	PROGRESS="$DB/$name still there"
	wait_tandem "$deadline" 0.05 gone "$DB/$name" || { WHY="cannot clear the share for the next run: $WHY"; return 1; }
}

gone() {
	[ ! -e "$1" ]
}

tandem_peaks() { # after a run: both daemons' peak RSS into the note
	RUN_NOTE="peak RSS A $(mib1 "$(proc_kib "$TPID_A" VmHWM)") MiB, B $(mib1 "$(proc_kib "$TPID_B" VmHWM)") MiB"
}

run_big_tandem() {
	local t0
	[ "$TANDEM_UP" = 1 ] || { WHY=$TANDEM_WHY; return 1; }
	tandem_clear big.bin || return 1
	ln "$SRC/big.bin" "$WORK/stage/big.bin"
	settle
	reset_hwm "$TPID_A" "$TPID_B"
	t0=$(now_us)
	mv "$WORK/stage/big.bin" "$DA/big.bin"
	wait_tandem $((t0 + TIMEOUT * 1000000)) 0.01 big_arrived || return 1
	secs_since "$t0"
	tandem_peaks
	verify_file "$DB/big.bin"
}

run_big_scp() {
	local t0 d=$WORK/dst-scp rc=0
	rm -rf "$d" && mkdir -p "$d"
	settle
	t0=$(now_us)
	scp_to "$SRC/big.bin" "$d/big.bin" || { WHY="scp failed (sshd log: $WORK/ssh/sshd.log)"; rc=1; }
	if [ $rc = 0 ]; then
		finish_sync "$d/big.bin"
		secs_since "$t0"
		verify_file "$d/big.bin" || rc=1
	fi
	rm -rf "$d"
	return $rc
}

run_big_rsync() {
	local t0 d=$WORK/dst-rsync rc=0
	rm -rf "$d" && mkdir -p "$d"
	settle
	t0=$(now_us)
	rsync_to "$SRC/big.bin" "$d/" || { WHY="rsync failed (sshd log: $WORK/ssh/sshd.log)"; rc=1; }
	if [ $rc = 0 ]; then
		finish_sync "$d/big.bin"
		secs_since "$t0"
		verify_file "$d/big.bin" || rc=1
	fi
	rm -rf "$d"
	return $rc
}

run_big_socat() {
	local t0 d=$WORK/dst-socat rc=0 port
	rm -rf "$d" && mkdir -p "$d"
	port=$(free_port)
	start_receiver "$port" socat -u "TCP-LISTEN:$port,reuseaddr,bind=127.0.0.1" "CREATE:$d/big.bin"
	settle
	t0=$(now_us)
	if socat -u "FILE:$SRC/big.bin" "TCP:127.0.0.1:$port" && wait "$RECV_PID"; then
		finish_sync "$d/big.bin"
		secs_since "$t0"
		verify_file "$d/big.bin" || rc=1
	else
		WHY="socat failed"
		rc=1
	fi
	rm -rf "$d"
	return $rc
}

run_tree_tandem() {
	local t0
	[ "$TANDEM_UP" = 1 ] || { WHY=$TANDEM_WHY; return 1; }
	tandem_clear tree || return 1
	cp -al "$SRC/tree" "$WORK/stage/tree"
	settle
	reset_hwm "$TPID_A" "$TPID_B"
	t0=$(now_us)
	mv "$WORK/stage/tree" "$DA/tree"
	wait_tandem $((t0 + TIMEOUT * 1000000)) 0.05 tree_arrived || return 1
	secs_since "$t0"
	tandem_peaks
	verify_tree "$DB/tree"
}

run_tree_scp() {
	local t0 d=$WORK/dst-scp rc=0
	rm -rf "$d" && mkdir -p "$d"
	settle
	t0=$(now_us)
	scp_to "$SRC/tree" "$d/" -r || { WHY="scp -r failed (sshd log: $WORK/ssh/sshd.log)"; rc=1; }
	if [ $rc = 0 ]; then
		finish_sync "$d/tree"
		secs_since "$t0"
		verify_tree "$d/tree" || rc=1
	fi
	rm -rf "$d"
	return $rc
}

run_tree_rsync() {
	local t0 d=$WORK/dst-rsync rc=0
	rm -rf "$d" && mkdir -p "$d"
	settle
	t0=$(now_us)
	rsync_to "$SRC/tree" "$d/" || { WHY="rsync failed (sshd log: $WORK/ssh/sshd.log)"; rc=1; }
	if [ $rc = 0 ]; then
		finish_sync "$d/tree"
		secs_since "$t0"
		verify_tree "$d/tree" || rc=1
	fi
	rm -rf "$d"
	return $rc
}

run_tree_socat() {
	local t0 d=$WORK/dst-socat rc=0 port
	rm -rf "$d" && mkdir -p "$d"
	port=$(free_port)
	start_receiver "$port" sh -c 'socat -u "TCP-LISTEN:$1,reuseaddr,bind=127.0.0.1" STDOUT | tar x -C "$2"' \
		sh "$port" "$d"
	settle
	t0=$(now_us)
	if tar c -C "$SRC" tree | socat -u STDIN "TCP:127.0.0.1:$port" && wait "$RECV_PID"; then
		finish_sync "$d/tree"
		secs_since "$t0"
		verify_tree "$d/tree" || rc=1
	else
		WHY="tar | socat failed"
		rc=1
	fi
	rm -rf "$d"
	return $rc
}

# ---------------------------------------------------------------- memory
#
# The daemons' peak RSS while syncing a --mem-size MiB file (4 GiB by
# default; §12: under 64 MiB). One run, whatever --runs says: a peak is not
# a best of. The file is written just before and removed after (from A, and
# tandem removes B's copy), so it costs its disk space only meanwhile.
WL_MEM="$MEM_MIB MiB file (memory)"
MEM_BYTES=$((MEM_MIB * 1024 * 1024))
MEM_WHY=""
PEAK_A=""
PEAK_B=""
mem_arrived() {
	has_size "$DB/mem.bin" "$MEM_BYTES"
}

run_mem_tandem() {
	local t0 avail need h
	[ "$TANDEM_UP" = 1 ] || { WHY=$TANDEM_WHY; return 1; }
	# The source, B's copy and B's partial file: about 3x the size.
	avail=$(df -P -B1 "$WORK" | awk 'NR == 2 { print $4 }')
	need=$((3 * MEM_BYTES + 268435456))
	if [ -n "$avail" ] && [ "$avail" -lt "$need" ]; then
		MEM_WHY="needs $(mib "$need") MiB free in $WORK, has $(mib "$avail") MiB (--mem-size smaller, or --tmpdir elsewhere)"
		WHY=$MEM_WHY
		NA_SOFT=1
		return 1
	fi
	note "writing $MEM_MIB MiB of random data to $WORK/stage/mem.bin"
	head -c "$MEM_BYTES" /dev/urandom >"$WORK/stage/mem.bin"
	h=$(file_hash "$WORK/stage/mem.bin")
	settle
	reset_hwm "$TPID_A" "$TPID_B"
	t0=$(now_us)
	mv "$WORK/stage/mem.bin" "$DA/mem.bin"
	wait_tandem $((t0 + (120 + MEM_MIB / 10) * 1000000)) 0.02 mem_arrived || return 1
	secs_since "$t0"
	PEAK_A=$(proc_kib "$TPID_A" VmHWM)
	PEAK_B=$(proc_kib "$TPID_B" VmHWM)
	RUN_NOTE="peak RSS A $(mib1 "$PEAK_A") MiB, B $(mib1 "$PEAK_B") MiB"
	[ "$(file_hash "$DB/mem.bin")" = "$h" ] || { WHY="synced, but $DB/mem.bin differs from the source"; return 1; }
	tandem_clear mem.bin || return 1
}

# ---------------------------------------------------------------- Syncthing
#
# Two Syncthing instances (Debian's 1.19) on 127.0.0.1, A and B, each with
# its own home (config, keys, database) and free ports for the GUI/REST API
# and the sync protocol. What must keep everything on loopback is written
# into the generated config before either starts (a running instance would
# already announce itself on the LAN): global and local discovery, relays,
# NAT traversal (UPnP/NAT-PMP, STUN), usage and crash reporting and auto
# upgrade off, the listen address tcp://127.0.0.1:PORT, and the API key.
# Everything else goes through the REST API: each adds the other as a device
# with its explicit address, then per run a fresh folder (new ID, new empty
# directories) shared by both, send-receive, watcher on with a 1 s delay.
# The options are read back through REST and checked.
ST_WHY=""
ST_UP=0
ST_KEY=""
ST_GUI=()
ST_PORT=()
ST_PID=()  # what we started: Syncthing's monitor process
ST_WPID=() # the syncthing process it runs (the one that syncs), measured
ST_ID=()
ST_VERSION="-"
ST_IDLE_A=""
ST_IDLE_B=""
ST_PEAK_A=""
ST_PEAK_B=""
ST_MON_A=""
ST_MON_B=""
ST_RUN=0
ST_FOLDER=""
ST_DA=""
ST_DB=""

st_api() { # 0|1 METHOD PATH [curl args]: the response body on stdout
	local i=$1 m=$2 path=$3
	shift 3
	curl -sS -f --max-time 10 -X "$m" -H "X-API-Key: $ST_KEY" "$@" \
		"http://127.0.0.1:${ST_GUI[$i]}$path"
}

st_configure() { # CONFIG_XML LISTEN_PORT GUI_PORT API_KEY
	"$PYTHON" - "$@" <<'EOF'
import sys
import xml.etree.ElementTree as ET

path, port, gui, key = sys.argv[1:5]
tree = ET.parse(path)
root = tree.getroot()
opts = root.find("options")
for e in opts.findall("listenAddress") + opts.findall("globalAnnounceServer"):
    opts.remove(e)
ET.SubElement(opts, "listenAddress").text = "tcp://127.0.0.1:" + port
for k, v in {
    "globalAnnounceEnabled": "false",
    "localAnnounceEnabled": "false",
    "relaysEnabled": "false",
    "natEnabled": "false",
    "stunKeepaliveStartS": "0",
    "announceLANAddresses": "false",
    "urAccepted": "-1",
    "crashReportingEnabled": "false",
    "autoUpgradeIntervalH": "0",
    "startBrowser": "false",
    "setLowPriority": "false",
}.items():
    e = opts.find(k)
    if e is None:
        e = ET.SubElement(opts, k)
    e.text = v
gui_el = root.find("gui")
gui_el.find("address").text = "127.0.0.1:" + gui
gui_el.find("apikey").text = key
tree.write(path)
EOF
}

# The options read back through REST: anything that could leave loopback is
# off. Prints what is wrong, nothing when all is well.
st_check_options() { # 0|1
	st_api "$1" GET /rest/config/options | "$PYTHON" -c '
import json, sys
o = json.load(sys.stdin)
bad = []
for k in ("globalAnnounceEnabled", "localAnnounceEnabled", "relaysEnabled", "natEnabled",
          "crashReportingEnabled", "announceLANAddresses"):
    if o.get(k) is not False:
        bad.append("%s=%s" % (k, o.get(k)))
if o.get("urAccepted") != -1:
    bad.append("urAccepted=%s" % o.get("urAccepted"))
if o.get("autoUpgradeIntervalH") != 0:
    bad.append("autoUpgradeIntervalH=%s" % o.get("autoUpgradeIntervalH"))
for a in o.get("listenAddresses", []):
    if not a.startswith("tcp://127.0.0.1:"):
        bad.append("listen " + a)
print(" ".join(bad))'
}

start_syncthing() {
	local i h ports deadline bad j other
	ST_KEY="tandem-bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
	ST_VERSION=$("$ST_BIN" --version 2>/dev/null | awk '{ print $2; exit }')
	ports=$("$PYTHON" -c 'import socket
ss = [socket.socket() for _ in range(4)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
	read -r -a ports <<<"$ports"
	ST_GUI=("${ports[0]}" "${ports[1]}")
	ST_PORT=("${ports[2]}" "${ports[3]}")
	for i in 0 1; do
		h=$WORK/st$i
		"$ST_BIN" generate --home="$h" --no-default-folder >"$WORK/st$i.generate.log" 2>&1 ||
			{ ST_WHY="syncthing generate failed: $(tail -n 2 "$WORK/st$i.generate.log" | tr '\n' ' ')"; return 1; }
		st_configure "$h/config.xml" "${ST_PORT[i]}" "${ST_GUI[i]}" "$ST_KEY" ||
			{ ST_WHY="cannot edit $h/config.xml"; return 1; }
		ST_ID[i]=$("$ST_BIN" --home="$h" --device-id 2>/dev/null) ||
			{ ST_WHY="syncthing --device-id failed"; return 1; }
		STNORESTART=1 STNOUPGRADE=1 STNODEFAULTFOLDER=1 "$ST_BIN" serve --home="$h" \
			--no-browser --no-restart --no-upgrade --gui-address="127.0.0.1:${ST_GUI[i]}" \
			>"$WORK/st$i.log" 2>&1 &
		ST_PID[i]=$!
		CHILD_PIDS+=("${ST_PID[i]}")
	done
	deadline=$(($(now_us) + 60000000))
	for i in 0 1; do
		until st_api "$i" GET /rest/system/ping >/dev/null 2>&1; do
			kill -0 "${ST_PID[i]}" 2>/dev/null ||
				{ ST_WHY="syncthing $i exited: $(tail -n 3 "$WORK/st$i.log" | tr '\n' ' ')"; return 1; }
			[ "$(now_us)" -lt "$deadline" ] ||
				{ ST_WHY="syncthing $i's REST API does not answer on 127.0.0.1:${ST_GUI[i]}"; return 1; }
			nap 0.1
		done
		bad=$(st_check_options "$i")
		[ -z "$bad" ] || { ST_WHY="syncthing $i's options are not loopback-only: $bad"; return 1; }
	done
	for i in 0 1; do
		other=$((1 - i))
		j=$(printf '{"deviceID":"%s","name":"%s","addresses":["tcp://127.0.0.1:%s"]}' \
			"${ST_ID[other]}" "st$other" "${ST_PORT[other]}")
		st_api "$i" POST /rest/config/devices -H 'Content-Type: application/json' -d "$j" >/dev/null ||
			{ ST_WHY="syncthing $i: POST /rest/config/devices failed"; return 1; }
	done
	until st_connected; do
		[ "$(now_us)" -lt "$deadline" ] ||
			{ ST_WHY="the two syncthing instances did not connect within 60 s (logs: $WORK/st0.log, st1.log)"; return 1; }
		nap 0.1
	done
	ST_UP=1
	st_workers
	note "syncthing $ST_VERSION: A on 127.0.0.1:${ST_PORT[0]} (pid ${ST_WPID[0]}), B on 127.0.0.1:${ST_PORT[1]} (pid ${ST_WPID[1]}), connected"
}

# syncthing serve (1.19) runs as a monitor process that starts the real
# syncthing as its child and only passes its log on, --no-restart or not
# (Debian's systemd unit runs it so too). The child is the one that syncs,
# so its memory is what the rows give; the monitor's RSS is in the footer.
# Looked up again before each run, in case the monitor started a new one.
st_workers() {
	local i c
	for i in 0 1; do
		c=$(pgrep -P "${ST_PID[i]}" 2>/dev/null | head -n 1 || true)
		ST_WPID[i]=${c:-${ST_PID[i]}}
	done
}

st_connected() { # A sees B connected
	local j
	j=$(st_api 0 GET /rest/system/connections 2>/dev/null) || return 1
	[[ $j =~ \"${ST_ID[1]}\"[[:space:]]*:[[:space:]]*\{[^}]*\"connected\"[[:space:]]*:[[:space:]]*true ]]
}

st_status() { # 0|1: the folder's /rest/db/status
	st_api "$1" GET "/rest/db/status?folder=$ST_FOLDER" 2>/dev/null
}

# A fresh folder for a run: a new ID and new empty directories on both
# sides, so each run is a full transfer (no index, no blocks to reuse).
# The previous run's folder is removed from both configs first.
st_folder_up() {
	local i j deadline
	st_folder_down
	ST_RUN=$((ST_RUN + 1))
	ST_FOLDER=bench$ST_RUN
	ST_DA=$WORK/stA$ST_RUN
	ST_DB=$WORK/stB$ST_RUN
	mkdir -p "$ST_DA" "$ST_DB"
	for i in 0 1; do
		j=$(printf '{"id":"%s","label":"%s","path":"%s","type":"sendreceive","rescanIntervalS":3600,"disableFsync":false,"fsWatcherEnabled":true,"fsWatcherDelayS":1,"devices":[{"deviceID":"%s"},{"deviceID":"%s"}]}' \
			"$ST_FOLDER" "$ST_FOLDER" "$([ "$i" = 0 ] && echo "$ST_DA" || echo "$ST_DB")" "${ST_ID[0]}" "${ST_ID[1]}")
		st_api "$i" POST /rest/config/folders -H 'Content-Type: application/json' -d "$j" >/dev/null ||
			{ WHY="syncthing $i: POST /rest/config/folders failed"; return 1; }
	done
	# Both have scanned the empty folder, and are connected again.
	deadline=$(($(now_us) + 60000000))
	until [ "$(json_str "$(st_status 0)" state)" = idle ] &&
		[ "$(json_str "$(st_status 1)" state)" = idle ] && st_connected; do
		[ "$(now_us)" -lt "$deadline" ] ||
			{ WHY="syncthing: folder $ST_FOLDER not idle on both sides within 60 s (A: $(st_status 0))"; return 1; }
		nap 0.1
	done
	# And each has the other's cluster config with the folder in it, so
	# A's index reaches B at once: 1.19's REST API does not say so, its log
	# does ('Device X folder "ID" (ID) has a new index ID', on both sides).
	# A later version may word it otherwise: then go on after 10 s.
	deadline=$(($(now_us) + 10000000))
	until grep -qF "($ST_FOLDER) has a new index ID" "$WORK/st0.log" &&
		grep -qF "($ST_FOLDER) has a new index ID" "$WORK/st1.log"; do
		if [ "$(now_us)" -gt "$deadline" ]; then
			note "syncthing: no 'new index ID' log line for $ST_FOLDER on both sides after 10 s; going on"
			break
		fi
		nap 0.1
	done
}

st_folder_down() {
	local i
	[ -n "$ST_FOLDER" ] || return 0
	for i in 0 1; do
		st_api "$i" DELETE "/rest/config/folders/$ST_FOLDER" >/dev/null 2>&1 || true
	done
	[ "$KEEP" = 1 ] || rm -rf "$ST_DA" "$ST_DB"
	ST_FOLDER=""
}

# B is done when its folder status says idle with nothing needed and it
# holds as many files as were sent (A's scan may not have reached B yet
# when B is idle with nothing needed). CHECK (the same file check as
# tandem's) first, then the REST status.
ST_NFILES=0
st_b_done() {
	local j
	j=$(st_status 1) || { PROGRESS="B's REST API does not answer"; return 1; }
	PROGRESS="B: state $(json_str "$j" state), needFiles $(json_str "$j" needFiles), localFiles $(json_str "$j" localFiles) of $ST_NFILES"
	[ "$(json_str "$j" state)" = idle ] && [ "$(json_str "$j" needFiles)" = 0 ] &&
		[ "$(json_str "$j" localFiles)" = "$ST_NFILES" ]
}

st_big_arrived() {
	has_size "$ST_DB/big.bin" "$BIG_BYTES"
}

st_tree_arrived() {
	local n
	[ -d "$ST_DB/tree" ] || { PROGRESS="no $ST_DB/tree yet"; return 1; }
	n=$(find "$ST_DB/tree" -type f | wc -l)
	PROGRESS="$n of $NFILES files in $ST_DB/tree"
	[ "$n" -eq "$NFILES" ]
}

st_wait() { # DEADLINE_US POLL_S CHECK: CHECK and st_b_done, or WHY
	local deadline=$1 poll=$2 check=$3
	while :; do
		"$check" && st_b_done && return 0
		if [ "$(now_us)" -gt "$deadline" ]; then
			WHY="syncthing B was not idle with every file within $TIMEOUT s ($PROGRESS)"
			return 1
		fi
		nap "$poll"
	done
}

st_peaks() { # after a run: both instances' peaks into the note and the maxima
	local a b
	a=$(proc_kib "${ST_WPID[0]}" VmHWM)
	b=$(proc_kib "${ST_WPID[1]}" VmHWM)
	ST_PEAK_A=$(kmax "$ST_PEAK_A" "$a")
	ST_PEAK_B=$(kmax "$ST_PEAK_B" "$b")
	RUN_NOTE="peak RSS A $(mib1 "$a") MiB, B $(mib1 "$b") MiB"
}

run_big_syncthing() {
	local t0
	[ "$ST_UP" = 1 ] || { WHY=$ST_WHY; return 1; }
	st_folder_up || return 1
	ST_NFILES=1
	ln "$SRC/big.bin" "$WORK/stage/big.bin"
	settle
	st_workers
	reset_hwm "${ST_WPID[0]}" "${ST_WPID[1]}"
	t0=$(now_us)
	mv "$WORK/stage/big.bin" "$ST_DA/big.bin"
	st_wait $((t0 + TIMEOUT * 1000000)) 0.02 st_big_arrived || return 1
	secs_since "$t0"
	st_peaks
	verify_file "$ST_DB/big.bin"
}

run_tree_syncthing() {
	local t0
	[ "$ST_UP" = 1 ] || { WHY=$ST_WHY; return 1; }
	st_folder_up || return 1
	ST_NFILES=$NFILES
	cp -al "$SRC/tree" "$WORK/stage/tree"
	settle
	st_workers
	reset_hwm "${ST_WPID[0]}" "${ST_WPID[1]}"
	t0=$(now_us)
	mv "$WORK/stage/tree" "$ST_DA/tree"
	st_wait $((t0 + TIMEOUT * 1000000)) 0.05 st_tree_arrived || return 1
	secs_since "$t0"
	st_peaks
	verify_tree "$ST_DB/tree"
}

stop_syncthing() {
	local i
	st_folder_down
	for i in 0 1; do
		[ -z "${ST_WPID[i]:-}" ] || stop_pid "${ST_WPID[i]}"
		[ -z "${ST_PID[i]:-}" ] || stop_pid "${ST_PID[i]}"
	done
	ST_UP=0
}

if want_tool syncthing && { [ "$SIZE_MIB" -gt 0 ] || [ "$NFILES" -gt 0 ]; }; then
	if start_syncthing; then
		nap 1
		ST_IDLE_A=$(proc_kib "${ST_WPID[0]}" VmRSS)
		ST_IDLE_B=$(proc_kib "${ST_WPID[1]}" VmRSS)
		ST_MON_A=$(proc_kib "${ST_PID[0]}" VmRSS)
		ST_MON_B=$(proc_kib "${ST_PID[1]}" VmRSS)
	else
		note "syncthing rows: n/a: $ST_WHY"
	fi
fi

# ---------------------------------------------------------------- FUSE
#
# Two workloads on the large file, each through a tandem mount and through
# sshfs over the same loopback sshd:
#   read:  a peer's file, cold (cache dropped, nothing of it local on the
#          mounting side), read through the mount with cat;
#   write: cp into the mount; the clock stops when the other side holds the
#          file (for tandem: the plain-directory peer has it at full size,
#          verified and renamed into place, and is idle; for sshfs: cp has
#          returned and an fsync of the file on the mount has returned).
# The sha256 check of every copy is outside the clock, as for the others.

# tandem's FUSE peer is `tandem up --mount DIR`. A build without it does not
# mention --mount in `tandem up --help`, or says it is not implemented.
MOUNT_WHY=""
if [ "$RUN_FUSE" = 1 ] && want_tool tandem; then
	up_help=$("$TANDEM" up --help 2>&1 || true)
	if [[ $up_help != *--mount* ]] || [[ ${up_help,,} == *"not implemented"* ]]; then
		MOUNT_WHY="no FUSE peer in this build"
		note "tandem FUSE rows: n/a ($MOUNT_WHY: 'tandem up --help' has no working --mount)"
	fi
fi

# A fresh pair for the FUSE workloads, new identities and state each time
# (so the mounting side's store starts empty): A is a plain-directory peer
# on FDIR, B a FUSE peer mounted on FMNT, both through the relay of the
# plain-directory pair. FILE, if given, is hard-linked into A's folder
# before A starts. Sets FP (its directory), FHA, FHB, FDIR, FMNT, or WHY.
FUSE_PAIRS=0
FP=""
fuse_pair_up() { # [FILE]
	local i ja jb fa fb
	[ -n "$RELAY_URL" ] || { WHY="no relay (the plain-directory pair did not start)"; return 1; }
	FUSE_PAIRS=$((FUSE_PAIRS + 1))
	FP=$WORK/fuse$FUSE_PAIRS
	FHA=$FP/HA
	FHB=$FP/HB
	FDIR=$FP/DA
	FMNT=$FP/mnt
	mkdir -p "$FDIR" "$FMNT"
	[ $# -eq 0 ] || ln "$1" "$FDIR/"
	"$TANDEM" --home "$FHA" init >/dev/null 2>&1 || { WHY="tandem --home $FHA init failed"; return 1; }
	"$TANDEM" --home "$FHB" init >/dev/null 2>&1 || { WHY="tandem --home $FHB init failed"; return 1; }
	fa=$("$TANDEM" --home "$FHA" id)
	fb=$("$TANDEM" --home "$FHB" id)
	DAEMON_HOMES+=("$FHA")
	"$TANDEM" --home "$FHA" --log-level "$LOG_LEVEL" up --peer "$fb" --relay "$RELAY_URL" \
		--dir "$FDIR" --listen '[::1]:0' >>"$FP/up.log" 2>&1 ||
		{ WHY="tandem up --dir failed: $(tail -n 2 "$FP/up.log" | tr '\n' ' ')"; return 1; }
	DAEMON_HOMES+=("$FHB")
	MOUNTS+=("$FMNT")
	"$TANDEM" --home "$FHB" --log-level "$LOG_LEVEL" up --peer "$fa" --relay "$RELAY_URL" \
		--mount "$FMNT" --listen '[::1]:0' >>"$FP/up.log" 2>&1 ||
		{ WHY="tandem up --mount failed: $(tail -n 2 "$FP/up.log" | tr '\n' ' ')"; return 1; }
	for i in $(seq 600); do
		ja=$("$TANDEM" --home "$FHA" status --json 2>/dev/null || true)
		jb=$("$TANDEM" --home "$FHB" status --json 2>/dev/null || true)
		if [ "$(json_str "$ja" state)" = connected ] && [ "$(json_str "$jb" state)" = connected ]; then
			return 0
		fi
		nap 0.05
	done
	WHY="the FUSE pair did not connect within 30 s (B: state $(json_str "$jb" state), last_error $(json_str "$jb" last_error))"
	return 1
}

fuse_pair_down() {
	[ -n "$FP" ] || return 0
	stop_daemon "$FHB"
	stop_daemon "$FHA"
	if ! unmount "$FMNT"; then
		note "$FMNT is still mounted"
		FP=""
		return 1
	fi
	[ "$KEEP" = 1 ] || rm -rf "$FP"
	FP=""
}

listed_full() { # FILE: shown at full size (the mount lists it)
	local s
	[ -f "$1" ] || { PROGRESS="$1 not listed yet"; return 1; }
	s=$(stat -c %s "$1")
	PROGRESS="$1 is listed with $s of $BIG_BYTES bytes"
	[ "$s" -eq "$BIG_BYTES" ]
}

mib() { # BYTES: in MiB, rounded
	echo $((($1 + 524288) / 1048576))
}

run_fread_tandem() {
	local t0 t1 f deadline held rc=0
	[ -z "$MOUNT_WHY" ] || { WHY=$MOUNT_WHY; NA_SOFT=1; return 1; }
	if ! fuse_pair_up "$SRC/big.bin"; then
		fuse_pair_down
		return 1
	fi
	# Outside the clock: the mount lists A's file (right after the index
	# exchange once reads fetch on demand; after a full sync before that).
	f=$FMNT/big.bin
	t1=$(now_us)
	deadline=$((t1 + TIMEOUT * 1000000))
	until listed_full "$f"; do
		if [ "$(now_us)" -gt "$deadline" ]; then
			WHY="the mount did not list big.bin at full size within $TIMEOUT s ($PROGRESS): $(IDLE_HOME=$FHB b_status_summary)"
			fuse_pair_down
			return 1
		fi
		nap 0.02
	done
	secs_since "$t1"
	RUN_NOTE="listed $SECS s after connect"
	settle
	# What B already holds when the read starts: a cold read holds nothing.
	held=$(du -sB1 "$FHB/state" 2>/dev/null | cut -f1)
	if [ -n "$held" ] && [ "$held" -ge $((BIG_BYTES * 9 / 10)) ]; then
		RUN_NOTE="$RUN_NOTE; NOT cold: B's store held $(mib "$held") MiB before the read (no on-demand fetch in this build)"
	elif [ -n "$held" ] && [ "$held" -ge $((16 * 1048576)) ]; then
		RUN_NOTE="$RUN_NOTE; B's store held $(mib "$held") MiB before the read"
	fi
	t0=$(now_us)
	if cat "$f" >/dev/null; then
		secs_since "$t0"
		verify_file "$f" || rc=1
	else
		WHY="cat through the mount failed: $(IDLE_HOME=$FHB b_status_summary)"
		rc=1
	fi
	fuse_pair_down
	return $rc
}

# The write pair lives across the runs; each run removes the previous copy
# through the mount first and waits until A has removed it too.
FW_UP=0
run_fwrite_tandem() {
	local t0 deadline misses
	[ -z "$MOUNT_WHY" ] || { WHY=$MOUNT_WHY; NA_SOFT=1; return 1; }
	if [ "$FW_UP" = 0 ]; then
		fuse_pair_up || return 1
		FW_UP=1
	fi
	if [ -e "$FMNT/big.bin" ] || [ -e "$FDIR/big.bin" ]; then
		rm -f "$FMNT/big.bin"
		deadline=$(($(now_us) + TIMEOUT * 1000000))
		PROGRESS="$FDIR/big.bin still there"
		IDLE_HOME=$FHA wait_tandem "$deadline" 0.05 gone "$FDIR/big.bin" ||
			{ WHY="cannot clear the share for the next run: $WHY"; return 1; }
	fi
	settle
	t0=$(now_us)
	cp "$SRC/big.bin" "$FMNT/big.bin" || { WHY="cp into the mount failed"; return 1; }
	# The clock stops when A holds the whole file with the source's sha256:
	# at the first poll that finds A's file at full size and A idle, if the
	# file found then (the same inode: tandem renames a verified file into
	# place and never writes into it there) hashes right. The hash runs
	# outside the clock; a file that hashes wrong (an older version, a
	# partial write the mount sent early) does not stop it, the wait goes on.
	deadline=$((t0 + TIMEOUT * 1000000))
	misses=0
	while :; do
		IDLE_HOME=$FHA wait_tandem "$deadline" 0.01 a_arrived || return 1
		if [ "$(file_hash "$FDIR/big.bin")" = "$BIG_HASH" ] &&
			[ "$(stat -c %i "$FDIR/big.bin" 2>/dev/null)" = "$A_INO" ]; then
			break
		fi
		misses=$((misses + 1))
		if [ "$(now_us)" -gt "$deadline" ]; then
			WHY="A holds big.bin at full size and is idle, but its sha256 is not the source's ($misses checks in $TIMEOUT s)"
			return 1
		fi
		nap 0.05
	done
	SECS=$(awk -v a="$t0" -v b="$DONE_US" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')
	[ "$misses" = 0 ] || RUN_NOTE="A first held $misses full-size version(s) with the wrong sha256"
}

A_INO=""
a_arrived() { # the FUSE pair's plain-directory side holds the whole file
	local f=$FDIR/big.bin s
	[ -f "$f" ] || { PROGRESS="no $f yet"; return 1; }
	read -r s A_INO < <(stat -c '%s %i' "$f")
	PROGRESS="$f has $s of $BIG_BYTES bytes"
	[ "$s" -eq "$BIG_BYTES" ]
}

# sshfs over the private sshd, default options (the footer names the
# version); a fresh mount for every run, so nothing is cached in it.
sshfs_mount() { # REMOTE_DIR MOUNTPOINT
	mkdir -p "$2"
	MOUNTS+=("$2")
	sshfs -p "$SSH_PORT" -o "ssh_command=ssh ${SSH_OPTS[*]}" \
		"$USER_NAME@127.0.0.1:$1" "$2" 2>>"$WORK/ssh/sshfs.log"
}

run_fread_sshfs() {
	local t0 m=$WORK/mnt-sshfs rc=0
	[ -z "$SSHFS_WHY" ] || { WHY=$SSHFS_WHY; return 1; }
	sshfs_mount "$SRC" "$m" ||
		{ WHY="sshfs could not mount $SRC: $(tail -n 2 "$WORK/ssh/sshfs.log" | tr '\n' ' ')"; return 1; }
	settle
	t0=$(now_us)
	if cat "$m/big.bin" >/dev/null; then
		secs_since "$t0"
		verify_file "$m/big.bin" || rc=1
	else
		WHY="cat through sshfs failed"
		rc=1
	fi
	unmount "$m" || { WHY="cannot unmount $m"; rc=1; }
	return $rc
}

run_fwrite_sshfs() {
	local t0 d=$WORK/dst-sshfs m=$WORK/mnt-sshfs rc=0
	[ -z "$SSHFS_WHY" ] || { WHY=$SSHFS_WHY; return 1; }
	rm -rf "$d" && mkdir -p "$d"
	sshfs_mount "$d" "$m" ||
		{ WHY="sshfs could not mount $d: $(tail -n 2 "$WORK/ssh/sshfs.log" | tr '\n' ' ')"; return 1; }
	settle
	t0=$(now_us)
	# cp returns once sshfs has every write acknowledged (release waits);
	# sync FILE sends fsync@openssh.com, so the server has it on disk.
	if cp "$SRC/big.bin" "$m/big.bin" && sync -- "$m/big.bin"; then
		secs_since "$t0"
	else
		WHY="cp into sshfs, or its fsync, failed"
		rc=1
	fi
	unmount "$m" || { WHY="cannot unmount $m"; rc=1; }
	[ $rc != 0 ] || verify_file "$d/big.bin" || rc=1
	rm -rf "$d"
	return $rc
}

# Runs one measurement RUNS times and records the best (least) time; every
# run's time goes to the log. A failed run ends the series with its reason.
# A run may leave a remark for the table in RUN_NOTE (the best run's is
# kept), and mark a failure as "not supported here" with NA_SOFT=1.
measure() { # WORKLOAD WL_KEY TOOL LABEL BYTES
	local wl=$1 key=$2 tool=$3 label=$4 bytes=$5 i best="" all="" best_note=""
	want_tool "$tool" || return 0
	for i in $(seq "$RUNS"); do
		SECS=""
		WHY=""
		RUN_NOTE=""
		NA_SOFT=0
		if ! "run_${key}_$tool"; then
			record_na "$wl" "$label" "$WHY" "$NA_SOFT"
			return 0
		fi
		all="$all $SECS"
		note "$wl / $label run $i: $SECS s${RUN_NOTE:+ ($RUN_NOTE)}"
		if [ -z "$best" ] || awk -v a="$SECS" -v b="$best" 'BEGIN { exit !(a < b) }'; then
			best=$SECS
			best_note=$RUN_NOTE
		fi
	done
	RESULTS+=("$wl	$label	$best	$bytes	$best_note")
	echo "$wl	$label	$all" >>"$WORK/runs.tsv"
}

# The tandem pair's pairing (best of --runs) and its idle memory come first,
# before any workload ran.
IDLE2_A=""
IDLE2_B=""
if [ "$TANDEM_UP" = 1 ]; then
	measure_pairing
	idle_rss
	IDLE_A=$RSS_A
	IDLE_B=$RSS_B
	note "tandem idle RSS (connected): A $(mib1 "$IDLE_A") MiB, B $(mib1 "$IDLE_B") MiB"
fi

if [ "$SIZE_MIB" -gt 0 ]; then
	measure "$WL_BIG" big tandem tandem "$BIG_BYTES"
	measure "$WL_BIG" big scp scp "$BIG_BYTES"
	measure "$WL_BIG" big rsync rsync "$BIG_BYTES"
	measure "$WL_BIG" big socat socat "$BIG_BYTES"
	measure "$WL_BIG" big syncthing syncthing "$BIG_BYTES"
fi
if [ "$NFILES" -gt 0 ]; then
	measure "$WL_TREE" tree tandem tandem "$TREE_BYTES"
	measure "$WL_TREE" tree scp scp "$TREE_BYTES"
	measure "$WL_TREE" tree rsync rsync "$TREE_BYTES"
	measure "$WL_TREE" tree socat socat+tar "$TREE_BYTES"
	measure "$WL_TREE" tree syncthing syncthing "$TREE_BYTES"
fi
[ "$ST_UP" = 0 ] || stop_syncthing

# The peak while syncing --mem-size MiB: one run (see run_mem_tandem).
if want_tool tandem && [ "$MEM_MIB" -gt 0 ]; then
	SECS=""
	WHY=""
	RUN_NOTE=""
	NA_SOFT=0
	if run_mem_tandem; then
		RESULTS+=("$WL_MEM	tandem	$SECS	$MEM_BYTES	$RUN_NOTE")
		echo "$WL_MEM	tandem	 $SECS" >>"$WORK/runs.tsv"
		note "$WL_MEM / tandem: $SECS s ($RUN_NOTE)"
	else
		record_na "$WL_MEM" tandem "$WHY" "$NA_SOFT"
		rm -f "$WORK/stage/mem.bin"
		[ ! -e "$DA/mem.bin" ] || tandem_clear mem.bin || true
	fi
fi
if [ "$TANDEM_UP" = 1 ] && { [ "$SIZE_MIB" -gt 0 ] || [ "$NFILES" -gt 0 ] || [ "$MEM_MIB" -gt 0 ]; }; then
	idle_rss
	IDLE2_A=$RSS_A
	IDLE2_B=$RSS_B
	note "tandem idle RSS after the workloads: A $(mib1 "$IDLE2_A") MiB, B $(mib1 "$IDLE2_B") MiB"
fi

if [ "$RUN_FUSE" = 1 ]; then
	measure "$WL_FREAD" fread tandem tandem "$BIG_BYTES"
	measure "$WL_FREAD" fread sshfs sshfs "$BIG_BYTES"
	measure "$WL_FWRITE" fwrite tandem tandem "$BIG_BYTES"
	fuse_pair_down
	measure "$WL_FWRITE" fwrite sshfs sshfs "$BIG_BYTES"
fi

# ---------------------------------------------------------------- report

# Prints the table; FORMAT is text, md or tsv.
render() {
	local format=$1
	printf '%s\n' "${RESULTS[@]}" | awk -F'\t' -v fmt="$format" \
		-v cipher="$SSH_CIPHER" -v sshver="$SSH_VERSION" -v cache="$CACHE_NOTE" \
		-v dosync="$DO_SYNC" -v pair="$PAIR_SECS" -v pairall="$PAIR_ALL" -v cpus="$(nproc)" \
		-v kernel="$(uname -r)" -v wlbig="$WL_BIG" -v wltree="$WL_TREE" -v wlmem="$WL_MEM" \
		-v runs="$RUNS" -v load="$LOAD_START" -v wlfr="$WL_FREAD" -v wlfw="$WL_FWRITE" \
		-v fuse="$RUN_FUSE" -v fusewhy="$FUSE_WHY" -v sshfsver="$SSHFS_VERSION" \
		-v tandem_on="$(want_tool tandem && echo 1 || echo 0)" \
		-v idle_a="$IDLE_A" -v idle_b="$IDLE_B" -v idle2_a="$IDLE2_A" -v idle2_b="$IDLE2_B" \
		-v peak_a="$PEAK_A" -v peak_b="$PEAK_B" -v memwhy="$MEM_WHY" -v memmib="$MEM_MIB" \
		-v hwm="$HWM_NOTE" -v stver="$ST_VERSION" -v stnote="${ST_NOTE:-$ST_WHY}" \
		-v st_on="$({ want_tool syncthing || [ -n "$ST_NOTE" ]; } && echo 1 || echo 0)" \
		-v st_idle_a="$ST_IDLE_A" -v st_idle_b="$ST_IDLE_B" \
		-v st_peak_a="$ST_PEAK_A" -v st_peak_b="$ST_PEAK_B" -v st_mon_a="$ST_MON_A" -v st_mon_b="$ST_MON_B" '
	function ratio(a, b) { return (a == "n/a" || b == "n/a" || a == "" || b == "" || b + 0 == 0) ? "" : a / b }
	function fx(r) { return r == "" ? "n/a" : sprintf("%.2fx", r) }
	function verdict(ok, r) { return r == "" ? "n/a" : (ok ? "PASS" : "FAIL") }
	function mb(k) { return k == "" ? "n/a" : sprintf("%.1f", k / 1024) }
	function kmax(a, b) { return a == "" ? b : (b == "" ? a : (a + 0 >= b + 0 ? a : b)) }
	{
		n++; wl[n] = $1; tool[n] = $2; sec[n] = $3; bytes[n] = $4; why[n] = $5
		if ($2 == "tandem") { tandem[$1] = $3; tnote[$1] = $5 }
		seen[$1] = 1
		base = $2; sub(/\+tar$/, "", base); t[$1, base] = $3
	}
	END {
		if (fmt == "tsv")
			print "workload\ttool\tseconds\tMB/s\tvs_tandem\tnote"
		else if (fmt == "md") {
			print "| workload | tool | seconds | MB/s | time / tandem | note |"
			print "|---|---|--:|--:|--:|---|"
		} else
			printf "%-26s %-10s %9s %9s %14s  %s\n", "workload", "tool", "seconds", "MB/s", "time / tandem", "note"
		for (i = 1; i <= n; i++) {
			mbs = (sec[i] == "n/a" || sec[i] + 0 == 0) ? "n/a" : sprintf("%.1f", bytes[i] / 1e6 / sec[i])
			r = ratio(sec[i], tandem[wl[i]])
			rs = fx(r)
			if (fmt == "tsv")
				printf "%s\t%s\t%s\t%s\t%s\t%s\n", wl[i], tool[i], sec[i], mbs, rs, why[i]
			else if (fmt == "md")
				printf "| %s | %s | %s | %s | %s | %s |\n", wl[i], tool[i], sec[i], mbs, rs, why[i]
			else
				printf "%-26s %-10s %9s %9s %14s  %s\n", wl[i], tool[i], sec[i], mbs, rs, why[i]
		}
		nf = 0
		foot[++nf] = "time / tandem: a tool'"'"'s seconds over tandem'"'"'s (above 1.00x: tandem is faster); MB = 10^6 bytes; RSS in MiB (VmRSS, peaks VmHWM, " hwm ")."
		# Memory and pairing of the tandem pair, Syncthing'"'"'s beside it.
		if (tandem_on) {
			foot[++nf] = sprintf("tandem pairing (both daemons started to connected): best %s s (runs: %s). tandem RSS: idle after connect A %s, B %s; idle after the workloads A %s, B %s%s.",
				pair, pairall == "" ? "-" : pairall, mb(idle_a), mb(idle_b), mb(idle2_a), mb(idle2_b),
				memmib == 0 ? "; no peak measured (--mem-size 0)" : sprintf("; peak syncing %s MiB A %s, B %s%s", memmib, mb(peak_a), mb(peak_b), memwhy != "" ? " (" memwhy ")" : ""))
		}
		if (st_on)
			foot[++nf] = stnote != "" ? "Syncthing: not run: " stnote "." : sprintf("Syncthing %s RSS (the syncing process): idle after connect A %s, B %s; peak during its runs A %s, B %s; plus its monitor process, idle A %s, B %s.",
				stver, mb(st_idle_a), mb(st_idle_b), mb(st_peak_a), mb(st_peak_b), mb(st_mon_a), mb(st_mon_b))
		# The §12 / issue 14 targets, from the same run: information, never an exit status.
		s1 = ratio(t[wlbig, "scp"], tandem[wlbig])
		s3 = ratio(t[wltree, "rsync"], tandem[wltree])
		s6 = ratio(t[wltree, "syncthing"], tandem[wltree])
		s7 = ratio(tandem[wltree], t[wltree, "socat"])
		foot[++nf] = "§12 targets (information: the bench never fails on a number):"
		if (seen[wltree]) {
			foot[++nf] = sprintf("- %s: rsync / tandem %s (need > 1.00x) %s", wltree, fx(s3), verdict(s3 > 1, s3))
			foot[++nf] = sprintf("- %s: Syncthing / tandem %s (need > 1.00x) %s", wltree, fx(s6), verdict(s6 > 1, s6))
			foot[++nf] = sprintf("- %s: tandem / tar|socat %s (goal <= 1.50x) %s", wltree, fx(s7), verdict(s7 <= 1.5, s7))
		}
		if (seen[wlbig]) {
			foot[++nf] = sprintf("- %s: scp / tandem %s (need >= 2.00x) %s", wlbig, fx(s1), verdict(s1 >= 2, s1))
			s8 = ratio(t[wlbig, "syncthing"], tandem[wlbig])
			if (s8 != "")
				foot[++nf] = sprintf("- %s: Syncthing / tandem %s (information)", wlbig, fx(s8))
		}
		if (fuse && seen[wlfr]) {
			# A read that was not cold measured a local read: no verdict.
			s4 = ratio(t[wlfr, "sshfs"], tandem[wlfr])
			v4 = tnote[wlfr] ~ /NOT cold/ ? "n/a (tandem'"'"'s read was not cold)" : verdict(s4 >= 2, s4)
			foot[++nf] = sprintf("- %s: sshfs / tandem %s (need >= 2.00x) %s", wlfr, fx(s4), v4)
		}
		if (fuse && seen[wlfw]) {
			s5 = ratio(t[wlfw, "sshfs"], tandem[wlfw])
			foot[++nf] = sprintf("- %s (until the peer holds it verified): sshfs / tandem %s (need >= 2.00x) %s", wlfw, fx(s5), verdict(s5 >= 2, s5))
		}
		if (tandem_on) {
			im = kmax(kmax(idle_a, idle_b), kmax(idle2_a, idle2_b))
			foot[++nf] = sprintf("- idle RSS per daemon: after connect A %s, B %s; after the workloads A %s, B %s; largest %s MiB (need < 10 MiB) %s",
				mb(idle_a), mb(idle_b), mb(idle2_a), mb(idle2_b), mb(im), verdict(im < 10240, im))
			pm = kmax(peak_a, peak_b)
			if (memmib > 0)
				foot[++nf] = sprintf("- peak RSS per daemon syncing %s MiB: A %s, B %s (need < 64 MiB) %s%s", memmib, mb(peak_a), mb(peak_b),
					verdict(pm < 65536, pm), memmib < 4096 ? " (the target is for 4096 MiB)" : "")
			pp = pair == "-" ? "" : pair
			foot[++nf] = sprintf("- pairing: %s s (need < 0.200 s) %s", pair, verdict(pp < 0.2, pp))
		}
		foot[++nf] = sprintf("- 1-minute load at start: %s (need < 1 for numbers that count) %s", load, load < 1 ? "quiet" : "BUSY")
		foot[++nf] = sprintf("%s; socat: plain TCP, no encryption%s.",
			sshver == "-" ? "ssh: not run" : sprintf("ssh: %s, default cipher %s (scp uses the SFTP protocol)", sshver, cipher),
			st_on && stnote == "" ? "; Syncthing " stver ": two instances on 127.0.0.1, discovery, relays and NAT off, watcher delay 1 s, a fresh folder per run, clock until B is idle with every file" : "")
		if (fuse)
			foot[++nf] = sprintf("FUSE: %s with default options; tandem read: cat of B'"'"'s mount of A'"'"'s file after the mount lists it; write: cp into the mount until A holds the file with the right sha256 and is idle; sshfs: cp, then fsync.", sshfsver)
		else if (fusewhy != "")
			foot[++nf] = "FUSE workloads not run: " fusewhy "."
		foot[++nf] = sprintf("Best of %d run(s); page cache %s; each time %s; %s CPUs shared by both ends (load average %s at start); Linux %s.",
			runs, cache, dosync ? "of scp, rsync and socat ends with an fsync of each file written (--sync)" : "stops when the tool is done (tandem fsyncs each file it receives; the others do not fsync)", cpus, load, kernel)
		for (i = 1; i <= nf; i++) {
			if (fmt == "tsv") printf "# %s\n", foot[i]
			else if (fmt == "md") printf "%s%s\n", (i == 1 || foot[i] !~ /^- / && foot[i - 1] ~ /^- / ? "\n" : (foot[i] ~ /^- / ? "" : "\n")), foot[i]
			else print foot[i]
		}
	}'
}

echo
render text
if [ -n "$OUT" ]; then
	case $OUT in
	*.md) render md >"$OUT" ;;
	*) render tsv >"$OUT" ;;
	esac
	note "table written to $OUT"
fi

exit $FAILED
