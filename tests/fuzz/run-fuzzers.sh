#!/bin/sh
# Builds the libFuzzer harnesses with clang (ASan + UBSan) and runs each for
# SECONDS seconds (default 60), starting from its committed corpus. New
# inputs go to a scratch corpus, not into the tree; crashes are written to
# the build dir and make the script fail.
#   tests/fuzz/run-fuzzers.sh [SECONDS] [HARNESS...]
set -eu
cd "$(dirname "$0")/../.."
secs=${1:-60}
[ $# -gt 0 ] && shift
build=${FUZZ_BUILD_DIR:-build-fuzz}

if ! command -v clang >/dev/null 2>&1; then
	echo "run-fuzzers.sh: clang is needed (apt-get install clang)" >&2
	exit 1
fi
if [ ! -d "$build" ]; then
	CC=clang meson setup "$build" -Dfuzzing=true -Db_sanitize=address,undefined \
		-Db_lundef=false >/dev/null
fi
ninja -C "$build" >/dev/null

harnesses=${*:-$(ls tests/fuzz/corpus)}
status=0
for h in $harnesses; do
	bin="$build/tests/fuzz/fuzz-$h"
	if [ ! -x "$bin" ]; then
		echo "run-fuzzers.sh: no harness named $h" >&2
		exit 2
	fi
	scratch=$(mktemp -d)
	cp tests/fuzz/corpus/"$h"/* "$scratch"/
	echo "== fuzzing $h for ${secs}s"
	if ! "$bin" -max_total_time="$secs" -max_len=8192 -print_final_stats=1 \
		-artifact_prefix="$build/crash-$h-" "$scratch" >"$build/fuzz-$h.log" 2>&1; then
		echo "!! $h: crash or leak, see $build/fuzz-$h.log and $build/crash-$h-*"
		tail -30 "$build/fuzz-$h.log"
		status=1
	else
		grep -E '^stat::number_of_executed_units' "$build/fuzz-$h.log" || true
	fi
	rm -rf "$scratch"
done
exit $status
