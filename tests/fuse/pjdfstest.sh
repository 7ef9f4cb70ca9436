#!/usr/bin/env bash
# pjdfstest (the POSIX file system test suite, scripts/install-pjdfstest.sh)
# on a real tandem mount: a relay on [::1], a plain-directory peer A and a
# FUSE peer B (`tandem up --mount MNT -o allow_other`), private HOMEs, then
# `prove -r /opt/pjdfstest/tests` inside the mount, as root. Prints the test
# cases passed per directory and in all, and fails when
#   - a test case fails that tests/fuse/pjdfstest-known-failures.txt does not
#     list (each listed one has its reason there), or
#   - fewer than MIN_PCT percent of all test cases pass.
# Skips (77) with the reason when pjdfstest, prove, /dev/fuse or root is missing.
# Usage: pjdfstest.sh TANDEM RELAY KNOWN_FAILURES [MIN_PCT]
# PJDFSTEST_DIR overrides /opt/pjdfstest; PJDFSTEST_MOUNT_OPTS (default
# "-o allow_other") the mount options; PJDFSTEST_ONLY a subdirectory (chmod).
set -u

TANDEM=$1
RELAY=$2
KNOWN=$3
MIN_PCT=${4:-95}
PJD=${PJDFSTEST_DIR:-/opt/pjdfstest}
MOPTS=${PJDFSTEST_MOUNT_OPTS--o allow_other}

skip() { echo "1..0 # SKIP $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "pjdfstest runs as root (it changes owners and makes device nodes)"
[ -x "$PJD/pjdfstest" ] && [ -d "$PJD/tests" ] ||
	skip "pjdfstest is not installed in $PJD (scripts/install-pjdfstest.sh installs it)"
command -v prove >/dev/null 2>&1 || skip "no prove (perl) to run pjdfstest"
[ -c /dev/fuse ] || skip "no /dev/fuse here"

W=$(mktemp -d /tmp/tandem-pjdfstest-XXXXXX)
MNT=$W/mnt
RELAY_PID=
HOMES=()

die() { echo "Bail out! $*"; exit 1; }

cleanup() {
	local h pid j
	for h in "${HOMES[@]}"; do
		j=$("$TANDEM" --home "$h" status --json 2>/dev/null) || j=""
		pid=$(json_str "$j" pid)
		timeout 20 "$TANDEM" --home "$h" down >/dev/null 2>&1
		[ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
	done
	[ -z "$RELAY_PID" ] || { kill -TERM "$RELAY_PID" 2>/dev/null; wait "$RELAY_PID" 2>/dev/null; }
	if grep -q " $MNT fuse" /proc/self/mounts; then
		umount -l "$MNT" 2>/dev/null || fusermount3 -u -z "$MNT" 2>/dev/null
	fi
	[ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

json_str() { # JSON KEY
	[[ $1 =~ \"$2\"[[:space:]]*:[[:space:]]*\"?([^\",}]*) ]] && echo "${BASH_REMATCH[1]}"
	return 0
}

mkdir -p "$W/DA" "$MNT"
chmod 755 "$W" # the tests switch to other users: they must reach the mount
"$RELAY" --listen '[::1]:0' >"$W/relay.out" 2>"$W/relay.log" &
RELAY_PID=$!
URL=""
for _ in $(seq 200); do
	line=$(grep -m1 '^listening on ' "$W/relay.out" 2>/dev/null || true)
	if [ -n "$line" ]; then URL=${line#listening on }; break; fi
	kill -0 "$RELAY_PID" 2>/dev/null || die "tandem-relay did not start: $(tail -n 3 "$W/relay.log")"
	sleep 0.05
done
[ -n "$URL" ] || die "tandem-relay printed no address"

for s in HA HB; do
	"$TANDEM" --home "$W/$s" init >/dev/null 2>&1 || die "tandem --home $W/$s init failed"
	HOMES+=("$W/$s")
done
fa=$("$TANDEM" --home "$W/HA" id)
fb=$("$TANDEM" --home "$W/HB" id)
"$TANDEM" --home "$W/HA" up --peer "$fb" --relay "$URL" --dir "$W/DA" --listen '[::1]:0' \
	>>"$W/up.log" 2>&1 || die "tandem up --dir failed: $(tail -n 3 "$W/up.log")"
# shellcheck disable=SC2086
"$TANDEM" --home "$W/HB" up --peer "$fa" --relay "$URL" --mount "$MNT" $MOPTS --listen '[::1]:0' \
	>>"$W/up.log" 2>&1 || die "tandem up --mount $MOPTS failed: $(tail -n 3 "$W/up.log")"
ok=0
for _ in $(seq 600); do
	ja=$("$TANDEM" --home "$W/HA" status --json 2>/dev/null || true)
	jb=$("$TANDEM" --home "$W/HB" status --json 2>/dev/null || true)
	if [ "$(json_str "$ja" state)" = connected ] && [ "$(json_str "$jb" state)" = connected ]; then
		ok=1
		break
	fi
	sleep 0.05
done
[ $ok = 1 ] || die "the peers did not connect within 30 s (B: $(json_str "$jb" state), $(json_str "$jb" last_error))"

mkdir "$MNT/pjd" || die "cannot make a directory on the mount"
chmod 777 "$MNT/pjd"
tests=$PJD/tests
[ -z "${PJDFSTEST_ONLY:-}" ] || tests=$PJD/tests/$PJDFSTEST_ONLY
echo "# running prove -r $tests in $MNT/pjd (mount options: ${MOPTS:-none})"
(cd "$MNT/pjd" && prove -r -v --merge "$tests") >"$W/prove.out" 2>&1
grep -q " $MNT fuse" /proc/self/mounts || die "the mount went away during pjdfstest: $(tail -n 5 "$W/HB/state/tandem.log")"

# Per test case: "DIR/NN.t:N ok|fail". A script that dies early fails the
# cases it planned and never ran.
awk -v root="$PJD/tests/" '
function flush(   i) {
	if (file == "") return
	for (i = 1; i <= plan; i++)
		if (!(i in seen)) print file ":" i " fail"
	delete seen
}
/^\/.*\.t \.+/ {
	flush()
	file = $1; sub(root, "", file); plan = 0
	rest = $0; sub(/^[^ ]+ \.+ ?/, "", rest)
	if (rest ~ /^1\.\.[0-9]+/) { plan = substr(rest, 4) + 0 }
	next
}
file != "" && /^1\.\.[0-9]+/ { plan = substr($0, 4) + 0; next }
file != "" && /^(not )?ok [0-9]+/ {
	n = ($1 == "not") ? $3 : $2
	if (n in seen) next
	seen[n] = 1
	todo = ($0 ~ /# *(TODO|SKIP)/)
	print file ":" n " " (($1 == "ok" || todo) ? "ok" : "fail")
}
END { flush() }
' "$W/prove.out" >"$W/cases"

total=$(wc -l <"$W/cases")
[ "$total" -gt 0 ] || die "prove ran no test case: $(tail -n 5 "$W/prove.out")"
echo "# test cases passed, by directory:"
awk '{ split($1, a, "/"); d = a[1]; n[d]++; if ($2 == "ok") p[d]++ }
END { for (d in n) printf "#   %-16s %5d / %5d\n", d, p[d], n[d] }' "$W/cases" | sort
pass=$(grep -c ' ok$' "$W/cases")
pct=$(awk -v p="$pass" -v t="$total" 'BEGIN { printf "%.1f", 100 * p / t }')
echo "# total: $pass / $total test cases pass ($pct%, threshold $MIN_PCT%)"

# Known failures: "DIR/NN.t:N reason" lines (# comments); a range N-M too.
awk '!/^#/ && NF { split($1, a, ":"); f = a[1]; r = a[2];
	if (r ~ /-/) { split(r, b, "-"); for (i = b[1]; i <= b[2]; i++) print f ":" i }
	else print $1 }' "$KNOWN" | sort -u >"$W/known"
grep ' fail$' "$W/cases" | cut -d' ' -f1 | sort -u >"$W/failed"
new=$(comm -23 "$W/failed" "$W/known")
fixed=$(comm -13 "$W/failed" "$W/known")
status=0
echo "1..2"
if [ -n "$new" ]; then
	echo "not ok 1 - failures not in $(basename "$KNOWN"):"
	echo "$new" | sed 's/^/#   /' | head -n 200
	status=1
else
	echo "ok 1 - every failure is a known one"
fi
[ -z "$fixed" ] || echo "# known failures that pass now (drop them from the list): $(echo $fixed)"
if awk -v p="$pct" -v m="$MIN_PCT" 'BEGIN { exit !(p >= m) }'; then
	echo "ok 2 - pass rate $pct% >= $MIN_PCT%"
else
	echo "not ok 2 - pass rate $pct% < $MIN_PCT%"
	status=1
fi
[ $status = 0 ] || { echo "# prove's output: $W/prove.out"; KEEP=1; }
exit $status
