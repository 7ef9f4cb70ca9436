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
encryption), and prints seconds, MB/s and ratios side by side.

Options:
  --build DIR      meson build dir holding tandem and relay/tandem-relay
                   (default: $REPO_DIR/build, else PATH)
  --size MiB       size of the large file (default 1024; 0 skips it)
  --files N        number of 4 KiB files (default 10000; 0 skips them)
  --tools LIST     comma-separated subset of tandem,scp,rsync,socat (default all)
  --runs N         run each measurement N times and report the best (default 1;
                   the machine may be busy with other work)
  --out FILE       also write the table there: Markdown if FILE ends in .md,
                   tab-separated values otherwise
  --timeout S      give up on a tandem sync after S seconds (default: 120 plus
                   one second per 10 MiB)
  --sync           end each baseline's time with an fsync of every file it
                   wrote, as tandem fsyncs what it receives (default: each
                   tool's clock stops when the tool says it is done)
  --log-level L    tandem daemons' log level (default info; debug for profiling)
  --tmpdir DIR     where to create the work directory (default \${TMPDIR:-/tmp});
                   every copy lands on that one file system
  --keep           keep the work directory (data, keys, logs) after exit
  -h, --help       show this help

Needs sshd, ssh, scp, rsync, socat, python3 (scripts/install-bench-deps.sh).
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
TOOLS="tandem,scp,rsync,socat"
RUNS=1

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
	tandem | scp | rsync | socat) ;;
	*) echo "$PROG: --tools: unknown tool '$t' (tandem, scp, rsync, socat)" >&2; exit 2 ;;
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
	stop_pid "$RELAY_PID"
	stop_pid "$SSHD_PID"
	[ -z "$MADE_PRIVSEP" ] || rmdir "$MADE_PRIVSEP" 2>/dev/null
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if [ "$KEEP" = 1 ]; then
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

record_na() { # WORKLOAD TOOL REASON
	RESULTS+=("$1	$2	n/a	0	$3")
	note "$1 / $2: n/a: $3"
	FAILED=1
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
	note "sshd on 127.0.0.1:$SSH_PORT (pid $SSHD_PID), cipher $SSH_CIPHER"
}

if want_tool scp || want_tool rsync; then
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
b_idle() {
	local j
	j=$("$TANDEM" --home "$WORK/HB" status --json 2>/dev/null) || return 1
	[ "$(json_str "$j" sync_state)" = idle ]
}

b_status_summary() {
	local j s
	j=$("$TANDEM" --home "$WORK/HB" status --json 2>/dev/null) || { echo "B's daemon does not answer"; return; }
	s=$(json_str "$j" sync_state)
	if [ -z "$s" ]; then
		echo "B is $(json_str "$j" state) but its status has no sync_state (no sync engine in this build?)"
	else
		echo "B is $(json_str "$j" state), sync_state $s, files_in_sync $(json_str "$j" files_in_sync), files_pending $(json_str "$j" files_pending)"
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

# Runs one measurement RUNS times and records the best (least) time; every
# run's time goes to the log. A failed run ends the series with its reason.
measure() { # WORKLOAD WL_KEY TOOL LABEL BYTES
	local wl=$1 key=$2 tool=$3 label=$4 bytes=$5 i best="" all=""
	want_tool "$tool" || return 0
	for i in $(seq "$RUNS"); do
		SECS=""
		WHY=""
		if ! "run_${key}_$tool"; then
			record_na "$wl" "$label" "$WHY"
			return 0
		fi
		all="$all $SECS"
		note "$wl / $label run $i: $SECS s"
		if [ -z "$best" ] || awk -v a="$SECS" -v b="$best" 'BEGIN { exit !(a < b) }'; then
			best=$SECS
		fi
	done
	RESULTS+=("$wl	$label	$best	$bytes	")
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


# ---------------------------------------------------------------- report

# Prints the table; FORMAT is text, md or tsv.
render() {
	local format=$1
	printf '%s\n' "${RESULTS[@]}" | awk -F'\t' -v fmt="$format" \
		-v cipher="$SSH_CIPHER" -v sshver="$SSH_VERSION" -v cache="$CACHE_NOTE" \
		-v dosync="$DO_SYNC" -v pair="$PAIR_SECS" -v cpus="$(nproc)" \
		-v kernel="$(uname -r)" -v wlbig="$WL_BIG" -v wltree="$WL_TREE" \
		-v runs="$RUNS" -v load="$LOAD_START" '
	function ratio(a, b) { return (a == "n/a" || b == "n/a" || a == "" || b == "" || b + 0 == 0) ? "" : a / b }
	function fx(r) { return r == "" ? "n/a" : sprintf("%.2fx", r) }
	function verdict(ok, r) { return r == "" ? "n/a" : (ok ? "PASS" : "FAIL") }
	{
		n++; wl[n] = $1; tool[n] = $2; sec[n] = $3; bytes[n] = $4; why[n] = $5
		if ($2 == "tandem") tandem[$1] = $3
		base = $2; sub(/\+tar$/, "", base); t[$1, base] = $3
	}
	END {
		if (fmt == "tsv")
			print "workload\ttool\tseconds\tMB/s\tvs_tandem\tnote"
		else if (fmt == "md") {
			print "| workload | tool | seconds | MB/s | time / tandem | note |"
			print "|---|---|--:|--:|--:|---|"
		} else
			printf "%-16s %-10s %9s %9s %14s  %s\n", "workload", "tool", "seconds", "MB/s", "time / tandem", "note"
		for (i = 1; i <= n; i++) {
			mbs = (sec[i] == "n/a" || sec[i] + 0 == 0) ? "n/a" : sprintf("%.1f", bytes[i] / 1e6 / sec[i])
			r = ratio(sec[i], tandem[wl[i]])
			rs = fx(r)
			if (fmt == "tsv")
				printf "%s\t%s\t%s\t%s\t%s\t%s\n", wl[i], tool[i], sec[i], mbs, rs, why[i]
			else if (fmt == "md")
				printf "| %s | %s | %s | %s | %s | %s |\n", wl[i], tool[i], sec[i], mbs, rs, why[i]
			else
				printf "%-16s %-10s %9s %9s %14s  %s\n", wl[i], tool[i], sec[i], mbs, rs, why[i]
		}
		# The §12 targets, from the same run.
		s1 = ratio(t[wlbig, "scp"], tandem[wlbig])
		s2 = ratio(tandem[wlbig], t[wlbig, "socat"])
		s3 = ratio(t[wltree, "rsync"], tandem[wltree])
		foot[1] = sprintf("time / tandem: a tool'"'"'s seconds over tandem'"'"'s (above 1.00x: tandem is faster); MB = 10^6 bytes.")
		foot[2] = sprintf("§12 targets: %s: tandem vs scp %s (need >= 2.50x) %s; tandem time / socat time %s (need <= 1.50x) %s; %s: tandem vs rsync %s (need > 1.00x) %s.",
			wlbig, fx(s1), verdict(s1 >= 2.5, s1), fx(s2), verdict(s2 <= 1.5, s2),
			wltree, fx(s3), verdict(s3 > 1, s3))
		foot[3] = sprintf("%s; socat: plain TCP, no encryption; tandem pairing (up to connected): %s s.",
			sshver == "-" ? "ssh: not run" : sprintf("ssh: %s, default cipher %s (scp uses the SFTP protocol)", sshver, cipher), pair)
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
