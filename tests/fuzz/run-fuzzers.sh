#!/bin/sh
# Builds the libFuzzer harnesses with clang (-fsanitize=fuzzer,address,
# undefined) and runs each for SECONDS seconds (default 600), starting from
# its committed corpus, at most JOBS at once (default 1), under nice. New
# inputs go to a scratch corpus, not into the tree; crashes are written to
# the log dir and make the script fail. At the end it prints one line per
# harness with libFuzzer's final stats: total execs and execs per second.
#
#   tests/fuzz/run-fuzzers.sh [-j JOBS] [SECONDS] [HARNESS...]
#
# HARNESS is a name from tests/fuzz/corpus/ (all of them by default).
# Environment: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_LOG_DIR (default
# $FUZZ_BUILD_DIR/fuzz-logs), FUZZ_NICE (default 19), FUZZ_ARGS (more
# libFuzzer flags, e.g. "-max_len=65536").
set -eu

# One harness: run by xargs below, logs to $logs/fuzz-NAME.log.
if [ "${1:-}" = "--one" ]; then
	secs=$2 h=$3 build=$4 logs=$5
	scratch=$(mktemp -d)
	trap 'rm -rf "$scratch"' EXIT
	cp tests/fuzz/corpus/"$h"/* "$scratch"/
	echo "== fuzzing $h for ${secs}s ($(find "$scratch" -type f | wc -l) seed inputs)"
	# shellcheck disable=SC2086
	if nice -n "${FUZZ_NICE:-19}" "$build/tests/fuzz/fuzz-$h" -max_total_time="$secs" \
		-max_len=8192 -timeout=30 -rss_limit_mb=1024 -print_final_stats=1 \
		-artifact_prefix="$logs/crash-$h-" ${FUZZ_ARGS:-} "$scratch" \
		>"$logs/fuzz-$h.log" 2>&1; then
		echo "== $h done"
	else
		echo "!! $h: crash, leak or timeout; see $logs/fuzz-$h.log and $logs/crash-$h-*"
		grep -E 'ERROR|SUMMARY|Test unit written' "$logs/fuzz-$h.log" | head -5 || true
		exit 1
	fi
	exit 0
fi

cd "$(dirname "$0")/../.."
jobs=1
if [ "${1:-}" = "-j" ]; then
	jobs=$2
	shift 2
fi
secs=${1:-600}
[ $# -gt 0 ] && shift
build=${FUZZ_BUILD_DIR:-build-fuzz}
logs=${FUZZ_LOG_DIR:-$build/fuzz-logs}

if ! command -v clang >/dev/null 2>&1; then
	echo "run-fuzzers.sh: clang is needed (apt-get install clang)" >&2
	exit 1
fi
if [ ! -d "$build" ]; then
	CC=clang meson setup "$build" -Dfuzzing=true -Db_sanitize=address,undefined \
		-Db_lundef=false >/dev/null
fi
harnesses=${*:-$(ls tests/fuzz/corpus)}
targets=
for h in $harnesses; do
	if [ ! -d "tests/fuzz/corpus/$h" ]; then
		echo "run-fuzzers.sh: no harness named $h (see tests/fuzz/corpus/)" >&2
		exit 2
	fi
	targets="$targets tests/fuzz/fuzz-$h"
done
# shellcheck disable=SC2086
nice -n "${FUZZ_NICE:-19}" ninja -C "$build" $targets >/dev/null
mkdir -p "$logs"

status=0
# shellcheck disable=SC2086
printf '%s\n' $harnesses | xargs -P "$jobs" -I{} sh "$0" --one "$secs" {} "$build" "$logs" ||
	status=1

echo "== final stats (libFuzzer -print_final_stats)"
printf '%-16s %14s %10s %8s %8s\n' harness execs exec/s new rss_mb
for h in $harnesses; do
	log="$logs/fuzz-$h.log"
	stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
	if [ -f "$log" ] && [ -n "$(stat number_of_executed_units)" ]; then
		printf '%-16s %14s %10s %8s %8s\n' "$h" "$(stat number_of_executed_units)" \
			"$(stat average_exec_per_sec)" "$(stat new_units_added)" "$(stat peak_rss_mb)"
	else
		printf '%-16s %14s\n' "$h" "(no stats: crashed?)"
	fi
done
exit $status
