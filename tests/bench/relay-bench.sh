#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# relay-bench.sh: relayed connections against direct ones (issue 12 point 6).
#
#   1. The large file (1 GiB by default) synced between two plain-directory
#      peers on [::1], once direct (tandem up --relay-data never) and once
#      through the relay (--relay-data always): seconds, MB/s, and relayed as
#      a share of direct (the goal is at least 80%). For the relayed runs,
#      the relay's CPU time for the transfer (utime + stime from
#      /proc/PID/stat) and its peak memory (VmHWM).
#   2. The relay's memory per session: --sessions pairs of raw clients are
#      spliced at once (random tokens, GET /v1/splice), first idle, then
#      each moving 1 MiB both ways; the relay's RSS before and after, per
#      session.
#
# A benchmark: it measures and never passes or fails on a number. It waits
# up to two minutes for a quiet machine (1-minute load under 1) and refuses
# otherwise (--force measures anyway; the load is printed beside the table).
set -uo pipefail

PROG=relay-bench.sh
REPO_DIR=$(cd "$(dirname "$0")/../.." && pwd)

usage() {
	cat <<EOF
Usage: $PROG [--build DIR] [--size MiB] [--runs N] [--sessions N] [--out FILE] [--force] [--keep]

  --build DIR     meson build dir holding tandem and relay/tandem-relay
                  (default: $REPO_DIR/build)
  --size MiB      the large file (default 1024; 0 skips part 1)
  --runs N        best of N for each path (default 3)
  --sessions N    spliced sessions for the memory figure (default 64; 0 skips part 2)
  --out FILE      also write the table there (Markdown)
  --force         measure although the machine is not quiet
  --keep          keep the work directory
EOF
}

die() {
	echo "$PROG: $*" >&2
	exit 1
}
note() { echo "# $*" >&2; }
need_arg() { [ $# -ge 2 ] || { echo "$PROG: $1 needs a value" >&2; exit 2; }; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

BUILD=$REPO_DIR/build
SIZE_MIB=1024
RUNS=3
SESSIONS=64
OUT=""
FORCE=0
KEEP=0
while [ $# -gt 0 ]; do
	case $1 in
	--build) need_arg "$@"; BUILD=$2; shift 2 ;;
	--size) need_arg "$@"; SIZE_MIB=$2; shift 2 ;;
	--runs) need_arg "$@"; RUNS=$2; shift 2 ;;
	--sessions) need_arg "$@"; SESSIONS=$2; shift 2 ;;
	--out) need_arg "$@"; OUT=$2; shift 2 ;;
	--force) FORCE=1; shift ;;
	--keep) KEEP=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "$PROG: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done
is_uint "$SIZE_MIB" || { echo "$PROG: --size wants MiB, not '$SIZE_MIB'" >&2; exit 2; }
is_uint "$RUNS" && [ "$RUNS" -ge 1 ] || { echo "$PROG: --runs wants at least 1, not '$RUNS'" >&2; exit 2; }
is_uint "$SESSIONS" || { echo "$PROG: --sessions wants a count, not '$SESSIONS'" >&2; exit 2; }

TANDEM=$BUILD/tandem
RELAY=$BUILD/relay/tandem-relay
for b in "$TANDEM" "$RELAY"; do
	[ -x "$b" ] || die "$b is not built (meson setup $BUILD --buildtype=release && meson compile -C $BUILD)"
done
command -v python3 >/dev/null || die "python3 is needed"

load1() { cut -d' ' -f1 /proc/loadavg; }
quiet() { awk -v l="$(load1)" 'BEGIN { exit !(l < 1.0) }'; }
if [ "$FORCE" = 0 ]; then
	for _ in $(seq 24); do
		quiet && break
		sleep 5
	done
	quiet || die "the machine is not quiet (1-minute load $(load1)); figures taken now wander 2-3x (--force measures anyway)"
fi
LOAD_START=$(load1)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tandem-relay-bench.XXXXXX")
PIDS=()
HOMES=()
cleanup() {
	for h in "${HOMES[@]}"; do
		"$TANDEM" --home "$h" down >/dev/null 2>&1 || true
	done
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null
	if [ "$KEEP" = 1 ]; then note "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

now_us() { echo $(($(date +%s%N) / 1000)); }
json_str() { [[ $1 =~ \"$2\"[[:space:]]*:[[:space:]]*\"?([^\",}]*) ]] && echo "${BASH_REMATCH[1]}"; return 0; }
cpu_ticks() { # PID: utime + stime in clock ticks
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
status_kib() { # PID FIELD: VmRSS or VmHWM in KiB
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}
TICK=$(getconf CLK_TCK)

start_relay() { # extra relay args...: sets RELAY_PID, RELAY_URL
	local line
	"$RELAY" --listen '[::1]:0' --rate 0 "$@" >"$WORK/relay.out" 2>>"$WORK/relay.log" &
	RELAY_PID=$!
	PIDS+=("$RELAY_PID")
	RELAY_URL=""
	for _ in $(seq 200); do
		line=$(grep -m1 '^listening on ' "$WORK/relay.out" 2>/dev/null || true)
		if [ -n "$line" ]; then
			RELAY_URL=${line#listening on }
			return 0
		fi
		kill -0 "$RELAY_PID" 2>/dev/null || die "tandem-relay did not start: $(tail -n 3 "$WORK/relay.log")"
		sleep 0.025
	done
	die "tandem-relay printed no address"
}

# ------------------------------------------------ part 1: the large file

declare -A BEST_S BEST_CPU BEST_HWM PATHSEEN
big_arrived() { [ -f "$DB/big" ] && [ "$(stat -c %s "$DB/big" 2>/dev/null)" = "$BYTES" ]; }

run_mode() { # MODE (never|always)
	local mode=$1 ha=$WORK/$1/HA hb=$WORK/$1/HB fa fb j i t0 t1 c0 c1 s cpu hwm path=""
	start_relay
	DA=$WORK/$mode/DA
	DB=$WORK/$mode/DB
	mkdir -p "$DA" "$DB"
	"$TANDEM" --home "$ha" init >/dev/null 2>&1 || die "tandem init failed"
	"$TANDEM" --home "$hb" init >/dev/null 2>&1 || die "tandem init failed"
	fa=$("$TANDEM" --home "$ha" id)
	fb=$("$TANDEM" --home "$hb" id)
	HOMES+=("$ha" "$hb")
	"$TANDEM" --home "$ha" up --peer "$fb" --relay "$RELAY_URL" --dir "$DA" --listen '[::1]:0' \
		--relay-data "$mode" >>"$WORK/up.log" 2>&1 || die "tandem up --relay-data $mode failed: $(tail -n 3 "$WORK/up.log")"
	"$TANDEM" --home "$hb" up --peer "$fa" --relay "$RELAY_URL" --dir "$DB" --listen '[::1]:0' \
		--relay-data "$mode" >>"$WORK/up.log" 2>&1 || die "tandem up --relay-data $mode failed: $(tail -n 3 "$WORK/up.log")"
	for i in $(seq 1200); do
		j=$("$TANDEM" --home "$hb" status --json 2>/dev/null || true)
		if [ "$(json_str "$j" state)" = connected ]; then
			path=$(json_str "$j" path)
			break
		fi
		sleep 0.05
	done
	[ -n "$path" ] || die "the peers did not connect within 60 s (--relay-data $mode)"
	PATHSEEN[$mode]=$path
	for r in $(seq "$RUNS"); do
		cp "$WORK/big.src" "$DA/.big.tmp"
		sync
		c0=$(cpu_ticks "$RELAY_PID")
		t0=$(now_us)
		mv "$DA/.big.tmp" "$DA/big"
		i=0
		until big_arrived; do
			sleep 0.01
			i=$((i + 1))
			[ $i -lt $((100 * (120 + SIZE_MIB / 5))) ] || die "the file did not arrive (--relay-data $mode)"
		done
		t1=$(now_us)
		c1=$(cpu_ticks "$RELAY_PID")
		cmp -s "$WORK/big.src" "$DB/big" || die "the synced file differs (--relay-data $mode)"
		s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')
		cpu=$(awk -v a="$c0" -v b="$c1" -v t="$TICK" 'BEGIN { printf "%.2f", (b - a) / t }')
		hwm=$(status_kib "$RELAY_PID" VmHWM)
		note "run $r, $mode (path ${PATHSEEN[$mode]}): $s s, relay CPU $cpu s, relay peak RSS $hwm KiB"
		if [ -z "${BEST_S[$mode]:-}" ] || awk -v a="$s" -v b="${BEST_S[$mode]}" 'BEGIN { exit !(a < b) }'; then
			BEST_S[$mode]=$s
			BEST_CPU[$mode]=$cpu
			BEST_HWM[$mode]=$hwm
		fi
		rm -f "$DA/big"
		i=0
		while [ -e "$DB/big" ]; do
			sleep 0.05
			i=$((i + 1))
			[ $i -lt 2400 ] || die "the deletion did not sync (--relay-data $mode)"
		done
		sleep 1
	done
	"$TANDEM" --home "$ha" down >/dev/null 2>&1 || true
	"$TANDEM" --home "$hb" down >/dev/null 2>&1 || true
	kill "$RELAY_PID" 2>/dev/null
	wait "$RELAY_PID" 2>/dev/null
}

if [ "$SIZE_MIB" -gt 0 ]; then
	BYTES=$((SIZE_MIB * 1048576))
	head -c "$BYTES" /dev/urandom >"$WORK/big.src" || die "cannot write $WORK/big.src"
	run_mode never
	run_mode always
fi

# ------------------------------------------------ part 2: memory per session

SESS_LINE=""
if [ "$SESSIONS" -gt 0 ]; then
	start_relay --max-splice-sessions $((2 * SESSIONS + 8)) --max-splice-sessions-per-client 0 \
		--max-connections $((4 * SESSIONS + 64)) --max-connections-per-ip 0
	SESS_LINE=$(python3 - "$RELAY_URL" "$RELAY_PID" "$SESSIONS" <<'EOF'
import base64, os, socket, sys, threading, time
url, pid, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
host, port = url.rsplit("//", 1)[1].rsplit(":", 1)
host = host.strip("[]")
port = int(port)

def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

def dial(tok, side):
    s = socket.create_connection((host, port), timeout=30)
    s.sendall((f"GET /v1/splice HTTP/1.1\r\nHost: relay\r\nConnection: Upgrade\r\n"
               f"Upgrade: tandem-splice/1\r\nAuthorization: Bearer {tok}\r\n"
               f"X-Tandem-Splice-Side: {side}\r\n\r\n").encode())
    return s

def head(s):
    b = b""
    while not b.endswith(b"\r\n\r\n"):
        c = s.recv(1)
        if not c:
            raise SystemExit("relay closed a splice connection")
        b += c
    if not b.startswith(b"HTTP/1.1 101"):
        raise SystemExit("relay refused: " + b.split(b"\r\n")[0].decode())

time.sleep(0.5)
r0 = rss()
pairs = []
for i in range(n):
    tok = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    a = dial(tok, 1)
    b = dial(tok, 2)
    head(a); head(b)
    pairs.append((a, b))
time.sleep(0.5)
r1 = rss()
MiB = 1 << 20
blob = os.urandom(MiB)
def pump(a, b):
    def w(s): s.sendall(blob)
    t = threading.Thread(target=w, args=(a,)); t.start()
    u = threading.Thread(target=w, args=(b,)); u.start()
    for s in (a, b):
        got = 0
        while got < MiB:
            c = s.recv(MiB - got)
            if not c:
                raise SystemExit("a spliced session closed")
            got += len(c)
    t.join(); u.join()
for a, b in pairs:
    pump(a, b)
time.sleep(0.5)
r2 = rss()
for a, b in pairs:
    a.close(); b.close()
print(f"{n}\t{r0}\t{r1}\t{r2}\t{(r1 - r0) / n:.1f}\t{(r2 - r0) / n:.1f}")
EOF
	) || die "the session part failed: $SESS_LINE"
	kill "$RELAY_PID" 2>/dev/null
	wait "$RELAY_PID" 2>/dev/null
fi

# ------------------------------------------------ the table

{
	echo "## relay-bench: relayed against direct ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, 1-minute load $LOAD_START at the start)"
	echo
	if [ "$SIZE_MIB" -gt 0 ]; then
		echo "| ${SIZE_MIB} MiB file, best of $RUNS | path | seconds | MB/s | of direct | relay CPU s | relay peak RSS KiB |"
		echo "|---|---|---|---|---|---|---|"
		for mode in never always; do
			s=${BEST_S[$mode]}
			mbs=$(awk -v b="$BYTES" -v s="$s" 'BEGIN { printf "%.0f", b / s / 1e6 }')
			share=$(awk -v d="${BEST_S[never]}" -v s="$s" 'BEGIN { printf "%.0f%%", 100 * d / s }')
			echo "| --relay-data $mode | ${PATHSEEN[$mode]} | $s | $mbs | $share | ${BEST_CPU[$mode]} | ${BEST_HWM[$mode]} |"
		done
		echo
	fi
	if [ -n "$SESS_LINE" ]; then
		IFS=$'\t' read -r n r0 r1 r2 idle busy <<<"$SESS_LINE"
		echo "| spliced sessions | relay RSS before | idle | after 1 MiB each way | KiB per idle session | KiB per session after traffic |"
		echo "|---|---|---|---|---|---|"
		echo "| $n | $r0 KiB | $r1 KiB | $r2 KiB | $idle | $busy |"
	fi
} | tee ${OUT:+"$OUT"}
