#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# sync-bench.sh: measures tandem against scp, rsync and socat on this machine
# (PRODUCT.md §12). Two plain-directory peers sync a large random file and a
# tree of small files; the same workloads then go through scp and rsync over a
# private loopback sshd (started here, with its own keys and config) and
# through an unencrypted socat copy, the floor. Prints a table of seconds,
# MB/s and ratios, and the §12 targets. Asserts nothing: exit 0 when every
# measurement ran, 1 when one failed, 2 on a usage error, 77 when a tool it
# needs is missing (scripts/install-bench-deps.sh installs them).
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
data with scp and rsync over a private loopback sshd and with socat (no
encryption), and prints seconds, MB/s and ratios side by side. With FUSE it
also reads the large file cold through a tandem mount and an sshfs mount, and
writes it into both.

Options:
  --build DIR      meson build dir holding tandem and relay/tandem-relay
                   (default: $REPO_DIR/build, else PATH)
  --size MiB       size of the large file (default 1024; 0 skips it)
  --files N        number of 4 KiB files (default 10000; 0 skips them)
  --tools LIST     comma-separated subset of tandem,scp,rsync,socat,sshfs
                   (default all)
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

Needs sshd, ssh, scp, rsync, socat, python3, and for FUSE sshfs and
fusermount3 (scripts/install-bench-deps.sh).
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
NFILES=10000
FILE_BYTES=4096
PER_DIR=100
KEEP=0
OUT=""
TIMEOUT=""
DO_SYNC=0
LOG_LEVEL=info
TMPBASE=${TMPDIR:-/tmp}
TOOLS="tandem,scp,rsync,socat,sshfs"
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
is_uint "$RUNS" && [ "$RUNS" -ge 1 ] || { echo "$PROG: --runs wants a count of at least 1, not '$RUNS'" >&2; exit 2; }
[ -z "$TIMEOUT" ] || is_uint "$TIMEOUT" || { echo "$PROG: --timeout wants seconds, not '$TIMEOUT'" >&2; exit 2; }
for t in ${TOOLS//,/ }; do
	case $t in
	tandem | scp | rsync | socat | sshfs) ;;
	*) echo "$PROG: --tools: unknown tool '$t' (tandem, scp, rsync, socat, sshfs)" >&2; exit 2 ;;
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
	trap - EXIT INT TERM
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

TANDEM_UP=0
TANDEM_WHY=""
RELAY_URL=""
PAIR_SECS="-"
start_tandem() {
	local line i j ha=$WORK/HA hb=$WORK/HB fa fb t0 t1
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

	"$TANDEM" --home "$ha" init >/dev/null 2>&1 || die "tandem --home $ha init failed"
	"$TANDEM" --home "$hb" init >/dev/null 2>&1 || die "tandem --home $hb init failed"
	fa=$("$TANDEM" --home "$ha" id)
	fb=$("$TANDEM" --home "$hb" id)
	DA=$WORK/DA
	DB=$WORK/DB
	mkdir -p "$DA" "$DB"
	t0=$(now_us)
	DAEMON_HOMES+=("$ha")
	"$TANDEM" --home "$ha" --log-level "$LOG_LEVEL" up --peer "$fb" --relay "$RELAY_URL" \
		--dir "$DA" --listen '[::1]:0' >>"$WORK/up.log" 2>&1 || die "tandem up (A) failed; log: $ha/state/tandem.log"
	DAEMON_HOMES+=("$hb")
	"$TANDEM" --home "$hb" --log-level "$LOG_LEVEL" up --peer "$fa" --relay "$RELAY_URL" \
		--dir "$DB" --listen '[::1]:0' >>"$WORK/up.log" 2>&1 || die "tandem up (B) failed; log: $hb/state/tandem.log"
	for i in $(seq 600); do
		j=$("$TANDEM" --home "$ha" status --json 2>/dev/null || true)
		if [ "$(json_str "$j" state)" = connected ] &&
			[ "$(json_str "$("$TANDEM" --home "$hb" status --json 2>/dev/null || true)" state)" = connected ]; then
			t1=$(now_us)
			PAIR_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')
			TANDEM_UP=1
			note "tandem peers connected through $RELAY_URL in $PAIR_SECS s"
			return 0
		fi
		sleep 0.05
	done
	TANDEM_WHY="the peers did not connect within 30 s (A: state $(json_str "$j" state), last_error $(json_str "$j" last_error))"
	note "$TANDEM_WHY"
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
big_arrived() { # tandem renames a file into place once it is complete
	local f=$DB/big.bin s
	[ -f "$f" ] || { PROGRESS="no $f yet"; return 1; }
	s=$(stat -c %s "$f")
	PROGRESS="$f has $s of $BIG_BYTES bytes"
	[ "$s" -eq "$BIG_BYTES" ]
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

secs_since() { # START_US: seconds from then to now, into SECS
	SECS=$(awk -v a="$1" -v b="$(now_us)" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')
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
	rm -rf "$DA/$name"
	deadline=$(($(now_us) + TIMEOUT * 1000000))
	PROGRESS="$DB/$name still there"
	wait_tandem "$deadline" 0.05 gone "$DB/$name" || { WHY="cannot clear the share for the next run: $WHY"; return 1; }
}

gone() {
	[ ! -e "$1" ]
}

run_big_tandem() {
	local t0
	[ "$TANDEM_UP" = 1 ] || { WHY=$TANDEM_WHY; return 1; }
	tandem_clear big.bin || return 1
	ln "$SRC/big.bin" "$WORK/stage/big.bin"
	settle
	t0=$(now_us)
	mv "$WORK/stage/big.bin" "$DA/big.bin"
	wait_tandem $((t0 + TIMEOUT * 1000000)) 0.01 big_arrived || return 1
	secs_since "$t0"
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
	t0=$(now_us)
	mv "$WORK/stage/tree" "$DA/tree"
	wait_tandem $((t0 + TIMEOUT * 1000000)) 0.05 tree_arrived || return 1
	secs_since "$t0"
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

stop_daemon() { # HOME: tandem down (it unmounts), then make sure the process is gone
	local pid
	pid=$(daemon_pid "$1")
	timeout 20 "$TANDEM" --home "$1" down >/dev/null 2>&1 || true
	[ -z "$pid" ] || stop_pid "$pid"
}

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

if [ "$SIZE_MIB" -gt 0 ]; then
	measure "$WL_BIG" big tandem tandem "$BIG_BYTES"
	measure "$WL_BIG" big scp scp "$BIG_BYTES"
	measure "$WL_BIG" big rsync rsync "$BIG_BYTES"
	measure "$WL_BIG" big socat socat "$BIG_BYTES"
fi
if [ "$NFILES" -gt 0 ]; then
	measure "$WL_TREE" tree tandem tandem "$TREE_BYTES"
	measure "$WL_TREE" tree scp scp "$TREE_BYTES"
	measure "$WL_TREE" tree rsync rsync "$TREE_BYTES"
	measure "$WL_TREE" tree socat socat+tar "$TREE_BYTES"
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
		-v dosync="$DO_SYNC" -v pair="$PAIR_SECS" -v cpus="$(nproc)" \
		-v kernel="$(uname -r)" -v wlbig="$WL_BIG" -v wltree="$WL_TREE" \
		-v runs="$RUNS" -v load="$LOAD_START" -v wlfr="$WL_FREAD" -v wlfw="$WL_FWRITE" \
		-v fuse="$RUN_FUSE" -v fusewhy="$FUSE_WHY" -v sshfsver="$SSHFS_VERSION" '
	function ratio(a, b) { return (a == "n/a" || b == "n/a" || a == "" || b == "" || b + 0 == 0) ? "" : a / b }
	function fx(r) { return r == "" ? "n/a" : sprintf("%.2fx", r) }
	function verdict(ok, r) { return r == "" ? "n/a" : (ok ? "PASS" : "FAIL") }
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
			printf "%-20s %-10s %9s %9s %14s  %s\n", "workload", "tool", "seconds", "MB/s", "time / tandem", "note"
		for (i = 1; i <= n; i++) {
			mbs = (sec[i] == "n/a" || sec[i] + 0 == 0) ? "n/a" : sprintf("%.1f", bytes[i] / 1e6 / sec[i])
			r = ratio(sec[i], tandem[wl[i]])
			rs = fx(r)
			if (fmt == "tsv")
				printf "%s\t%s\t%s\t%s\t%s\t%s\n", wl[i], tool[i], sec[i], mbs, rs, why[i]
			else if (fmt == "md")
				printf "| %s | %s | %s | %s | %s | %s |\n", wl[i], tool[i], sec[i], mbs, rs, why[i]
			else
				printf "%-20s %-10s %9s %9s %14s  %s\n", wl[i], tool[i], sec[i], mbs, rs, why[i]
		}
		# The §12 targets, from the same run.
		s1 = ratio(t[wlbig, "scp"], tandem[wlbig])
		s2 = ratio(tandem[wlbig], t[wlbig, "socat"])
		s3 = ratio(t[wltree, "rsync"], tandem[wltree])
		foot[1] = sprintf("time / tandem: a tool'"'"'s seconds over tandem'"'"'s (above 1.00x: tandem is faster); MB = 10^6 bytes.")
		foot[2] = "§12 targets:"
		if (seen[wlbig])
			foot[2] = foot[2] sprintf(" %s: tandem vs scp %s (need >= 2.50x) %s; tandem time / socat time %s (need <= 1.50x) %s.",
				wlbig, fx(s1), verdict(s1 >= 2.5, s1), fx(s2), verdict(s2 <= 1.5, s2))
		if (seen[wltree])
			foot[2] = foot[2] sprintf(" %s: tandem vs rsync %s (need > 1.00x) %s.", wltree, fx(s3), verdict(s3 > 1, s3))
		if (fuse && seen[wlfr]) {
			# A read that was not cold measured a local read: no verdict.
			s4 = ratio(t[wlfr, "sshfs"], tandem[wlfr])
			v4 = tnote[wlfr] ~ /NOT cold/ ? "n/a (tandem'"'"'s read was not cold)" : verdict(s4 >= 3, s4)
			foot[2] = foot[2] sprintf(" %s: tandem vs sshfs %s (need >= 3.00x) %s.", wlfr, fx(s4), v4)
		}
		if (fuse && seen[wlfw]) {
			s5 = ratio(t[wlfw, "sshfs"], tandem[wlfw])
			foot[2] = foot[2] sprintf(" %s: tandem vs sshfs %s (need >= 3.00x) %s.", wlfw, fx(s5), verdict(s5 >= 3, s5))
		}
		foot[3] = sprintf("%s; socat: plain TCP, no encryption; tandem pairing (up to connected): %s s.",
			sshver == "-" ? "ssh: not run" : sprintf("ssh: %s, default cipher %s (scp uses the SFTP protocol)", sshver, cipher), pair)
		foot[3] = foot[3] (fuse ? sprintf(" FUSE: %s with default options; tandem read: cat of B'"'"'s mount of A'"'"'s file after the mount lists it; write: cp into the mount until A holds it with the right sha256 and is idle, sshfs: cp, then fsync.", sshfsver) : (fusewhy != "" ? " FUSE workloads not run: " fusewhy "." : ""))
		foot[4] = sprintf("Best of %d run(s); page cache %s; each time %s; %s CPUs shared by both ends (load average %s at start); Linux %s.",
			runs, cache, dosync ? "of scp, rsync and socat ends with an fsync of each file written (--sync)" : "stops when the tool is done (tandem fsyncs each file it receives; the others do not fsync)", cpus, load, kernel)
		for (i = 1; i <= 4; i++) {
			if (fmt == "tsv") printf "# %s\n", foot[i]
			else if (fmt == "md") printf "\n%s", foot[i] (i < 4 ? "\n" : "\n")
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
