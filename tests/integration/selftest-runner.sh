#!/usr/bin/env bash
# The selftest runner's own options (issue 11 point 4): every run prints its
# seed first; --seed N replays each scenario's random choices whatever else
# runs; --repeat N runs N rounds and stops at the first failure with the
# command that reproduces it; --soak DURATION runs rounds until the time is
# up and ends with a summary; bad values are usage errors (exit 2).
#
# It drives two scenarios of suite "selftest" that only look at the runner:
# selftest-rand (notes its seed and first draws) and the hidden
# selftest-flaky (fails for one seed in four, on purpose).
#
# Usage: selftest-runner.sh TANDEM. Output is TAP.
set -uo pipefail

tandem=${1:?usage: selftest-runner.sh TANDEM}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tandem-runner.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
	n=$((n + 1)); failed=$((failed + 1))
	echo "not ok $n - $1"
	shift
	for f in "$@"; do
		[ -f "$f" ] && sed -e 's/^/#   /' "$f" | head -40
	done
}
check() { # check NAME CONDITION-STATUS [FILES TO SHOW ON FAILURE]
	local name=$1 st=$2
	shift 2
	if [ "$st" = 0 ]; then ok "$name"; else not_ok "$name" "$@"; fi
}
# run OUT ARGS...: the selftest's stdout in OUT.out, stderr in OUT.err; $? its exit status.
# A scenario's notes begin with the seconds it had run ("#   [1.23] text"):
# OUT.out has them without, OUT.raw as printed.
run() {
	local out=$1
	shift
	"$tandem" selftest "$@" 2>"$tmp/$out.err" | tee "$tmp/$out.raw" |
		sed 's/^#   \[[0-9]*\.[0-9][0-9]\] /#   /' >"$tmp/$out.out"
}
# the draws line selftest-rand notes (with --verbose)
draws() { grep -m1 '^#   selftest-rand: seed ' "$tmp/$1.out"; }

echo "TAP version 13"

# 1. The seed comes first: right after the TAP version line, before the plan
# and any result; without --seed it is random.
run plain --only selftest-rand
st=$?
[ "$st" = 0 ] && [ "$(sed -n 1p "$tmp/plain.out")" = "TAP version 13" ] &&
	sed -n 2p "$tmp/plain.out" | grep -Eq '^# seed: [0-9]+$'
check "the seed line comes first (after the TAP version line)" $? "$tmp/plain.out" "$tmp/plain.err"
run plain2 --only selftest-rand
[ "$(sed -n 2p "$tmp/plain.out")" != "$(sed -n 2p "$tmp/plain2.out")" ]
check "without --seed, two runs have different seeds" $? "$tmp/plain.out" "$tmp/plain2.out"

# 2. --seed N replays: the same draws twice, alone or beside another
# scenario, in this process (-j 1) or in a child (-j 2); another seed, others.
run s1 --seed 42 --verbose --only selftest-rand
st1=$?
run s2 --seed 42 --verbose --only selftest-rand
st2=$?
[ "$st1" = 0 ] && [ "$st2" = 0 ] && [ "$(sed -n 2p "$tmp/s1.out")" = "# seed: 42" ] &&
	[ -n "$(draws s1)" ] && [ "$(draws s1)" = "$(draws s2)" ]
check "--seed 42 twice: the same draws" $? "$tmp/s1.out" "$tmp/s2.out" "$tmp/s1.err"
run s3 --seed 42 --verbose -j 1 --only selftest-rand identity
[ -n "$(draws s3)" ] && [ "$(draws s1)" = "$(draws s3)" ]
check "--seed 42: the same draws in process and beside another scenario" $? "$tmp/s1.out" "$tmp/s3.out"
run s4 --seed 43 --verbose --only selftest-rand
[ -n "$(draws s4)" ] && [ "$(draws s1)" != "$(draws s4)" ]
check "--seed 43: other draws" $? "$tmp/s1.out" "$tmp/s4.out"

# a chaos scenario's faults follow the seed too (the latency it picks)
fault() { grep -m1 '^#   latency [0-9]* ms + jitter up to [0-9]* ms both ways$' "$tmp/$1.out"; }
run c1 --seed 77 --verbose --only chaos-latency
st1=$?
run c2 --seed 77 --verbose --only chaos-latency
st2=$?
[ "$st1" = 0 ] && [ "$st2" = 0 ] && [ -n "$(fault c1)" ] && [ "$(fault c1)" = "$(fault c2)" ]
check "--seed 77 twice: chaos-latency picks the same fault" $? "$tmp/c1.out" "$tmp/c2.out"

# 3. --repeat 3: three rounds, each with its seed, all passing.
run rep --repeat 3 --seed 5 --only selftest-rand
st=$?
[ "$st" = 0 ] && [ "$(grep -c '^ok [0-9]* - selftest-rand$' "$tmp/rep.out")" = 3 ] &&
	[ "$(grep -Ec '^# round [0-9]+/3: seed [0-9]+$' "$tmp/rep.out")" = 3 ] &&
	[ "$(sed -n 2p "$tmp/rep.out")" = "# seed: 5" ] &&
	grep -q '^1\.\.4$' "$tmp/rep.out" && tail -n1 "$tmp/rep.out" | grep -q '^4 passed, 0 failed'
check "--repeat 3 runs the scenario 3 times" $? "$tmp/rep.out" "$tmp/rep.err"
# round 1 is the run's own seed: --seed 5 alone is --seed 5 --repeat's first round
grep -q '^# round 1/3: seed 5$' "$tmp/rep.out"
check "--repeat: round 1 runs with the run's seed" $? "$tmp/rep.out"

# 4. --repeat stops at the first failure and says how to reproduce it; the
# command it prints fails again, the same way.
run flaky --repeat 100 --seed 7 --only selftest-flaky
st=$?
repro=$(grep -m1 '^# reproduce: tandem selftest --only selftest-flaky --seed [0-9]*$' "$tmp/flaky.out")
rounds=$(grep -c '^# round ' "$tmp/flaky.out")
[ "$st" = 1 ] && [ -n "$repro" ] && [ "$(grep -c '^not ok [0-9]* - selftest-flaky' "$tmp/flaky.out")" = 1 ] &&
	[ "$rounds" -lt 100 ] &&
	grep -q "^not ok [0-9]* - selftest-flaky" <(grep -A3 "^# round $rounds/100" "$tmp/flaky.out")
check "--repeat stops at the first failure and prints the command that reproduces it" $? \
	"$tmp/flaky.out" "$tmp/flaky.err"
seed=${repro##* }
run again --only selftest-flaky --seed "${seed:-0}"
st=$?
[ "$st" = 1 ] && grep -q '^not ok 1 - selftest-flaky' "$tmp/again.out" &&
	[ "$(sed -n 2p "$tmp/again.out")" = "# seed: $seed" ]
check "the reproduce command fails again" $? "$tmp/again.out"
# the round before the failing one passes with its seed, alone too
prev=$(grep '^# round ' "$tmp/flaky.out" | tail -n2 | head -n1 | sed 's/.*seed //')
if [ "$rounds" -gt 1 ]; then
	run prev --only selftest-flaky --seed "$prev"
	check "a passing round's seed passes again alone" $? "$tmp/prev.out"
else
	ok "a passing round's seed passes again alone # SKIP the first round failed"
fi

# 5. --soak: rounds until the time is up, then the summary line; the final
# counts line stays last.
run soak --soak 3s --seed 9 --only selftest-rand
st=$?
[ "$st" = 0 ] && [ "$(sed -n 2p "$tmp/soak.out")" = "# seed: 9" ] &&
	[ "$(grep -c '^# soak:' "$tmp/soak.out")" = 1 ] &&
	grep -Eq '^# soak: [1-9][0-9]* rounds, [0-9]+ bytes, [0-9]+ faults, 0 failures in [0-9]+ s$' "$tmp/soak.out" &&
	tail -n1 "$tmp/soak.out" | grep -Eq '^[0-9]+ passed, 0 failed, [0-9]+ skipped$'
check "--soak 3s ends with the summary line" $? "$tmp/soak.out" "$tmp/soak.err"
r=$(sed -n 's/^# soak: \([0-9]*\) rounds.*/\1/p' "$tmp/soak.out")
[ "${r:-0}" -ge 2 ] && [ "$(grep -c '^ok [0-9]* - selftest-rand$' "$tmp/soak.out")" = "$r" ]
check "--soak: one result line a round, more than one round in 3 s" $? "$tmp/soak.out"
# each round's pairing (selftest-rand takes either) reaches the scenario
run soakv --soak 1s --seed 9 --verbose --only selftest-rand
a=$(sed -n 's/^# round [0-9]*: seed [0-9]*, selftest-rand, pairing \(.*\)$/\1/p' "$tmp/soakv.out")
b=$(sed -n 's/^#   selftest-rand: pairing \(.*\)$/\1/p' "$tmp/soakv.out")
[ -n "$a" ] && [ "$a" = "$b" ]
check "--soak: each round's pairing reaches its scenario" $? "$tmp/soakv.out"
# the faults a scenario counts add up in the summary (daemon-restart kills one daemon)
run soakc --soak 1s --seed 9 --only daemon-restart
st=$?
r=$(sed -n 's/^# soak: \([0-9]*\) rounds.*/\1/p' "$tmp/soakc.out")
[ "$st" = 0 ] && [ -n "$r" ] && grep -Eq "^# soak: $r rounds, [0-9]+ bytes, $r faults, 0 failures" "$tmp/soakc.out"
check "--soak sums the scenarios' fault counters" $? "$tmp/soakc.out" "$tmp/soakc.err"
# a soak goes on after a failure, counts it, and prints its seed; its first
# round runs with the run's seed, here one that fails (in this process: -j 1)
run soakf --soak 2s -j 1 --seed "${seed:-0}" --only selftest-flaky
st=$?
line=$(grep '^# soak: ' "$tmp/soakf.out")
fails=$(echo "$line" | sed -n 's/.* faults, \([0-9]*\) failures.*/\1/p')
[ "$st" = 1 ] && [ "${fails:-0}" -ge 1 ] &&
	[ "$(grep -c '^# reproduce: tandem selftest --only selftest-flaky --seed [0-9]*$' "$tmp/soakf.out")" = "$fails" ] &&
	[ "$(grep -c '^not ok [0-9]* - selftest-flaky' "$tmp/soakf.out")" = "$fails" ]
check "--soak counts failures, each with its reproduce command" $? "$tmp/soakf.out"

# 6. Bad values: exit 2, a message naming the option, nothing run.
bad() { # bad NAME WORD ARGS...
	local name=$1 word=$2
	shift 2
	run bad "$@"
	local st=$?
	[ "$st" = 2 ] && grep -q -- "$word" "$tmp/bad.err" && ! grep -q 'unknown option' "$tmp/bad.err" &&
		! grep -q '^ok' "$tmp/bad.out"
	check "$name exits 2 saying why" $? "$tmp/bad.out" "$tmp/bad.err"
}
bad "--soak 5x" "--soak" --soak 5x --only selftest-rand
bad "--soak 5" "--soak" --soak 5 --only selftest-rand
bad "--soak 0s" "--soak" --soak 0s --only selftest-rand
bad "--soak s" "--soak" --soak s --only selftest-rand
bad "--seed abc" "--seed" --seed abc --only selftest-rand
bad "--seed -1" "--seed" --seed -1 --only selftest-rand
bad "--seed 2^64" "--seed" --seed 18446744073709551616 --only selftest-rand
bad "--repeat 0" "--repeat" --repeat 0 --only selftest-rand
bad "--repeat x" "--repeat" --repeat x --only selftest-rand
bad "--repeat with --soak" "--soak" --repeat 2 --soak 5s --only selftest-rand
bad "--pairing bogus" "--pairing" --pairing bogus --only selftest-rand

# --pairing reaches the scenario; without it, the scenario's own choice
run pd --pairing dir-dir --verbose --only selftest-rand
st=$?
[ "$st" = 0 ] && grep -q '^#   selftest-rand: pairing dir-dir$' "$tmp/pd.out" &&
	grep -q '^#   selftest-rand: pairing default$' "$tmp/s1.out"
check "--pairing dir-dir reaches the scenario" $? "$tmp/pd.out" "$tmp/s1.out"

# --pairing reaches a real pair (st_pair_make); its note says what it made
run pdd --pairing dir-dir --verbose --only sync-first-contact
st=$?
[ "$st" = 0 ] && grep -q '^#   pair: a dir, b dir$' "$tmp/pdd.out"
check "--pairing dir-dir: a pair of two plain directories" $? "$tmp/pdd.out" "$tmp/pdd.err"
if "$tandem" selftest --only fuse-cli | grep -q '^ok 1 - fuse-cli$'; then
	run pmd --pairing mount-dir --verbose --only sync-first-contact
	st=$?
	[ "$st" = 0 ] && grep -q '^#   pair: a mount, b dir$' "$tmp/pmd.out"
	check "--pairing mount-dir: side a a mount" $? "$tmp/pmd.out" "$tmp/pmd.err"
else
	ok "--pairing mount-dir: side a a mount # SKIP FUSE cannot be used here"
fi

# 7. Where the time goes: each note says when in its scenario it was made,
# each result in a child process (-j 2) is followed by its wall and CPU time.
run tm --verbose -j 2 --only selftest-rand identity
st=$?
[ "$st" = 0 ] && grep -Eq '^#   \[[0-9]+\.[0-9]{2}\] selftest-rand: seed ' "$tmp/tm.raw" &&
	[ "$(grep -Ec '^# time: [0-9]+ ms, cpu [0-9]+ ms user, [0-9]+ ms system$' "$tmp/tm.raw")" = \
		"$(grep -Ec '^ok [0-9]+ - ' "$tmp/tm.raw" | awk '{ print $1 - 1 }')" ] # not teardown
check "notes carry their time in the scenario; each result its wall and CPU time" $? "$tmp/tm.raw" "$tmp/tm.err"
# --verbose in a child whose scenario runs a relay of its own (its log comes
# before the result line)
run vr --verbose -j 2 --only daemon-relay-late selftest-rand
st=$?
[ "$st" = 0 ] && grep -q '^ok 1 - daemon-relay-late$' "$tmp/vr.out" &&
	grep -q '^#   \[relay\] info: serving' "$tmp/vr.out"
check "--verbose -j 2: a scenario with a relay of its own passes, its relay's log shown" $? \
	"$tmp/vr.out" "$tmp/vr.err"

# 8. --list shows selftest-rand, never the hidden selftest-flaky; the
# default run does not run it either.
"$tandem" selftest --list >"$tmp/list.out" 2>&1
grep -q ' selftest-rand ' "$tmp/list.out" && ! grep -q 'selftest-flaky' "$tmp/list.out"
check "--list hides selftest-flaky" $? "$tmp/list.out"
run suite --suite selftest
st=$?
[ "$st" = 0 ] && grep -q '^ok [0-9]* - selftest-rand$' "$tmp/suite.out" &&
	! grep -q 'selftest-flaky' "$tmp/suite.out"
check "--suite selftest runs selftest-rand, not selftest-flaky" $? "$tmp/suite.out" "$tmp/suite.err"

echo "1..$n"
[ "$failed" = 0 ]
