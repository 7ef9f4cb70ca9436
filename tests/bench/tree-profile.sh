#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# tree-profile.sh: where the time of the small-file sync goes (issue 14,
# point 1). Starts a relay and two plain-directory peers on loopback (as
# sync-bench.sh does), moves N files of 4 KiB (100 to a directory, as
# sync-bench.sh makes them) into A's directory, waits until B's directory
# holds every file with the right content and B is idle, and reports:
#   - the wall time from the move to "done";
#   - the CPU time (user, system) each daemon spent meanwhile (/proc/PID/stat);
#   - counts that load does not change, from the daemons' debug logs: directory
#     walks, scans, index transactions of hash results and of downloads,
#     INDEX_UPDATE messages and bursts sent, files fetched;
#   - with --strace, the syscalls of each daemon (strace -c -f), and with
#     --callgrind A|B, that daemon's instruction count (valgrind; use a small N).
# Asserts nothing but that the tree arrived intact. See tests/bench/README.md.

set -euo pipefail

PROG=tree-profile.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/../.." && pwd)

BUILD=$REPO_DIR/build-rel
NFILES=2000
PER_DIR=100
STRACE=0
CALLGRIND=""
KEEP=0
TIMEOUT=120

usage() {
	cat <<EOF
Usage: $PROG [--build DIR] [--files N] [--strace] [--callgrind A|B] [--keep]

  --build DIR      meson build dir (default $REPO_DIR/build-rel, a release build)
  --files N        number of 4 KiB files, 100 to a directory (default 2000)
  --strace         count each daemon's syscalls during the sync (strace -c -f)
  --callgrind A|B  run that daemon under valgrind --tool=callgrind (slow:
                   use a few hundred files); prints its instruction count
  --timeout S      give up after S seconds (default 120)
  --keep           keep the work directory (logs, callgrind output)
EOF
}

while [ $# -gt 0 ]; do
	case $1 in
	--build) BUILD=$2; shift 2 ;;
	--files) NFILES=$2; shift 2 ;;
	--strace) STRACE=1; shift ;;
	--callgrind) CALLGRIND=$2; shift 2 ;;
	--timeout) TIMEOUT=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "$PROG: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
	esac
done
[[ $NFILES =~ ^[0-9]+$ ]] && [ "$NFILES" -gt 0 ] || { echo "$PROG: --files wants a count" >&2; exit 2; }
case $CALLGRIND in "" | A | B) ;; *) echo "$PROG: --callgrind wants A or B" >&2; exit 2 ;; esac

TANDEM=$BUILD/tandem
RELAY=$BUILD/relay/tandem-relay
[ -x "$TANDEM" ] && [ -x "$RELAY" ] || { echo "$PROG: no tandem or relay in $BUILD (meson setup $BUILD --buildtype=release && meson compile -C $BUILD)" >&2; exit 77; }
[ "$STRACE" = 0 ] || command -v strace >/dev/null || { echo "$PROG: SKIP: no strace" >&2; exit 77; }
[ -z "$CALLGRIND" ] || command -v valgrind >/dev/null || { echo "$PROG: SKIP: no valgrind" >&2; exit 77; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tree-profile.XXXXXX")
RELAY_PID=""
STRACE_PIDS=()
HOMES=()
cleanup() {
	local h p
	for p in "${STRACE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for h in "${HOMES[@]}"; do "$TANDEM" --home "$h" down >/dev/null 2>&1 || true; done
	[ -z "$RELAY_PID" ] || kill "$RELAY_PID" 2>/dev/null || true
	if [ "$KEEP" = 1 ]; then echo "# kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }
json_val() { [[ $1 =~ \"$2\"[[:space:]]*:[[:space:]]*\"?([^\",}]*) ]] && echo "${BASH_REMATCH[1]}"; return 0; }
status() { "$TANDEM" --home "$1" status --json 2>/dev/null || true; }
dpid() { json_val "$(status "$1")" pid; }
cpu_ticks() { # PID: utime stime in clock ticks
	awk '{ print $14, $15 }' "/proc/$1/stat" 2>/dev/null || echo "0 0"
}

# The files, outside the share on the same file system, moved in at once.
SRC=$WORK/stage/tree
left=$NFILES
d=0
while [ "$left" -gt 0 ]; do
	n=$((left < PER_DIR ? left : PER_DIR))
	dir=$(printf '%s/d%03d' "$SRC" "$d")
	mkdir -p "$dir"
	head -c $((n * 4096)) /dev/urandom | split -b 4096 -a 3 -d - "$dir/f"
	left=$((left - n))
	d=$((d + 1))
done
SRC_HASH=$(cd "$SRC" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum)

"$RELAY" --listen '[::1]:0' >"$WORK/relay.out" 2>"$WORK/relay.log" &
RELAY_PID=$!
for _ in $(seq 200); do
	RELAY_URL=$(sed -n 's/^listening on //p' "$WORK/relay.out")
	[ -n "$RELAY_URL" ] && break
	sleep 0.025
done
[ -n "$RELAY_URL" ] || { echo "$PROG: the relay did not start" >&2; exit 1; }

HA=$WORK/HA HB=$WORK/HB DA=$WORK/DA DB=$WORK/DB
mkdir -p "$DA" "$DB"
"$TANDEM" --home "$HA" init >/dev/null
"$TANDEM" --home "$HB" init >/dev/null
FA=$("$TANDEM" --home "$HA" id)
FB=$("$TANDEM" --home "$HB" id)
HOMES=("$HA" "$HB")
up() { # HOME PEER DIR
	if [ "$CALLGRIND" = "$4" ]; then
		TANDEM_FOREGROUND_WRAP=1 valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.$4" \
			"$TANDEM" --home "$1" --log-level debug up --foreground --peer "$2" --relay "$RELAY_URL" \
			--dir "$3" --listen '[::1]:0' >"$WORK/up.$4.log" 2>&1 &
	else
		"$TANDEM" --home "$1" --log-level debug up --peer "$2" --relay "$RELAY_URL" \
			--dir "$3" --listen '[::1]:0' >>"$WORK/up.log" 2>&1
	fi
}
up "$HA" "$FB" "$DA" A
up "$HB" "$FA" "$DB" B
for i in $(seq 1200); do
	[ "$(json_val "$(status "$HA")" state)" = connected ] &&
		[ "$(json_val "$(status "$HB")" state)" = connected ] &&
		[ "$(json_val "$(status "$HB")" sync_state)" = idle ] && break
	[ "$i" -lt 1200 ] || { echo "$PROG: the peers did not connect" >&2; exit 1; }
	sleep 0.05
done
PA=$(dpid "$HA")
PB=$(dpid "$HB")
LA=$HA/state/tandem.log
LB=$HB/state/tandem.log
la0=$(wc -l <"$LA")
lb0=$(wc -l <"$LB")

if [ "$STRACE" = 1 ]; then
	strace -c -f -p "$PA" -o "$WORK/strace.A" 2>/dev/null &
	STRACE_PIDS+=($!)
	strace -c -f -p "$PB" -o "$WORK/strace.B" 2>/dev/null &
	STRACE_PIDS+=($!)
	sleep 0.5 # attached
fi

read -r au0 as0 < <(cpu_ticks "$PA")
read -r bu0 bs0 < <(cpu_ticks "$PB")
t0=$(now_us)
mv "$SRC" "$DA/tree"
deadline=$((t0 + TIMEOUT * 1000000))
while :; do
	j=$(status "$HB")
	n=$(json_val "$j" files_in_sync)
	if [ -n "$n" ] && [ "$n" -ge "$NFILES" ] && [ "$(json_val "$j" sync_state)" = idle ] &&
		[ "$(find "$DB/tree" -type f 2>/dev/null | wc -l)" -eq "$NFILES" ]; then
		break
	fi
	[ "$(now_us)" -lt "$deadline" ] || { echo "$PROG: not done after $TIMEOUT s (B: $j)" >&2; exit 1; }
	sleep 0.02
done
t1=$(now_us)
read -r au1 as1 < <(cpu_ticks "$PA")
read -r bu1 bs1 < <(cpu_ticks "$PB")
for p in "${STRACE_PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
STRACE_PIDS=()

got=$(cd "$DB/tree" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum)
[ "$got" = "$SRC_HASH" ] || { echo "$PROG: B's tree differs from the source" >&2; exit 1; }

HZ=$(getconf CLK_TCK)
secs() { awk -v a="$1" -v b="$2" -v hz="$HZ" 'BEGIN { printf "%.2f", (b - a) / hz }'; }
count() { # LOG FROM_LINE PATTERN
	tail -n +"$(($2 + 1))" "$1" | grep -c -E "$3" || true
}
sumf() { # LOG FROM_LINE PATTERN WORD: sum of the numbers after WORD on matching lines
	tail -n +"$(($2 + 1))" "$1" | grep -E "$3" | grep -oE "$4[0-9]+" | grep -oE '[0-9]+$' |
		awk '{ s += $1 } END { print s + 0 }'
}

echo "files          $NFILES x 4 KiB"
echo "load           $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wall           $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e6 }') s"
echo "cpu A          user $(secs "$au0" "$au1") s, sys $(secs "$as0" "$as1") s"
echo "cpu B          user $(secs "$bu0" "$bu1") s, sys $(secs "$bs0" "$bs1") s"
for s in A B; do
	if [ $s = A ]; then l=$LA; l0=$la0; else l=$LB; l0=$lb0; fi
	echo "-- $s (debug log)"
	echo "  scans               $(count "$l" "$l0" 'scan: walked ')"
	echo "  directories walked  $(sumf "$l" "$l0" 'scan: walked ' 'walked ')"
	echo "  named paths checked $(sumf "$l" "$l0" 'scan: walked ' 'checked ')"
	echo "  hash transactions   $(count "$l" "$l0" 'scan: recorded [0-9]+ hashed')"
	echo "  INDEX_UPDATE sent   $(count "$l" "$l0" 'sync: sent [0-9]+ entries')"
	echo "  entries sent        $(sumf "$l" "$l0" 'sync: sent [0-9]+ entries' 'sent ')"
	echo "  batches applied     $(count "$l" "$l0" 'sync: applying a batch')"
	echo "  files fetched       $(count "$l" "$l0" 'sync: fetching ')"
	echo "  commit transactions $(count "$l" "$l0" 'sync: committed [0-9]+ downloads')"
	echo "  syncfs              $(count "$l" "$l0" 'sync: committed [0-9]+ downloads .*syncfs')"
done
if [ "$STRACE" = 1 ]; then
	for s in A B; do
		echo "-- $s syscalls (strace -c -f, top 12)"
		sed -n '1,2d; /^-----/d; p' "$WORK/strace.$s" | sort -k4 -n -r | head -12 | awk '{ printf "  %-18s %8s\n", $NF, $4 }'
		echo "  total $(awk '$NF == "total" { print $4 }' "$WORK/strace.$s")"
	done
fi
if [ -n "$CALLGRIND" ]; then
	"$TANDEM" --home "$([ "$CALLGRIND" = A ] && echo "$HA" || echo "$HB")" down >/dev/null 2>&1 || true
	sleep 2
	echo "-- callgrind $CALLGRIND: $(callgrind_annotate "$WORK/callgrind.$CALLGRIND" 2>/dev/null | grep -m1 'PROGRAM TOTALS')"
fi
