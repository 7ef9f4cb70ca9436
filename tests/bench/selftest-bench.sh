#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# How long the default `tandem selftest` run takes (PRODUCT.md §9 and §12:
# under 20 s on 2 cores). A measurement, never a pass or fail: it prints a
# table of the runs (wall, user and system CPU of the whole run, the load
# when each started), the best of them, and where the time of the best
# one went (the scenarios with the longest wall and CPU times, from the
# `# time:` line the runner prints after each result).
#
#   tests/bench/selftest-bench.sh [--build DIR] [--runs N] [--out FILE]
#                                 [--force] [-- SELFTEST-ARGS...]
#
#   --build DIR  the build to measure (default: build); a release or the
#                default debugoptimized build, not a sanitizer build
#   --runs N     runs, best of them (default 3, at least 3 for a figure)
#   --out FILE   also write the report there (markdown)
#   --pause S    seconds between the runs (default 60): ext4 scans the
#                inodes freed in the last minute or so when it allocates
#                one, and a run frees some 20,000; back to back, the
#                third run took 30% more system time than the first
#   --force      measure even when the machine is not quiet (the report
#                says so); without it, a 1-minute load of 1 or more, or a
#                build or test beside it, makes it wait up to 2 minutes
#                and then refuse: figures at load 3-14 wandered 2-3x
#
# Exit: 0 measured (whatever the figures), 1 a run failed, 2 usage, 77
# the machine did not become quiet.
set -eu

build=build
runs=3
pause=60
out=
force=0
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--pause) pause=$2; shift 2 ;;
	--force) force=1; shift ;;
	--) shift; break ;;
	-h|--help) sed -n '3,/^set -eu$/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "selftest-bench: unknown option '$1' (see --help)" >&2; exit 2 ;;
	esac
done
case $runs in ''|*[!0-9]*) echo "selftest-bench: --runs takes a number" >&2; exit 2 ;; esac
case $pause in ''|*[!0-9]*) echo "selftest-bench: --pause takes a number of seconds" >&2; exit 2 ;; esac
tandem=$build/tandem
if [ ! -x "$tandem" ]; then
	echo "selftest-bench: no $tandem; build first (meson setup $build && meson compile -C $build)" >&2
	exit 2
fi

load1() { cut -d' ' -f1 /proc/loadavg; }
quiet() { awk -v l="$(load1)" 'BEGIN { exit !(l < 1.0) }'; }

if [ "$force" = 0 ]; then
	waited=0
	until quiet; do
		if [ "$waited" -ge 120 ]; then
			echo "selftest-bench: the machine is not quiet (load $(load1) after 2 minutes):" \
				"stop what runs beside it, or --force" >&2
			exit 77
		fi
		sleep 10
		waited=$((waited + 10))
	done
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/selftest-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT
report=$work/report.md
ncpu=$(nproc)
{
	echo "# tandem selftest, default run"
	echo
	echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -r), $ncpu CPUs, build $build" \
		"($($tandem --version)), TMPDIR ${TMPDIR:-/tmp}, best of $runs, $pause s apart"
	echo
	echo "| run | wall s | user s | sys s | load at start | result |"
	echo "|---|---|---|---|---|---|"
} > "$report"

best=
best_run=
failed=0
i=1
while [ "$i" -le "$runs" ]; do
	# the runs apart: the daemons of one run gone, its freed inodes old
	[ "$i" -gt 1 ] && sleep "$pause"
	load=$(load1)
	/usr/bin/env time -f '%e %U %S' -o "$work/time.$i" \
		"$tandem" selftest "$@" > "$work/tap.$i" 2>&1 || true
	read -r wall user sys <<-EOF || { wall=0; user=0; sys=0; }
	$(tail -n 1 "$work/time.$i")
	EOF
	result=$(tail -n 1 "$work/tap.$i")
	case $result in *" 0 failed"*) ;; *) failed=1 ;; esac
	echo "| $i | $wall | $user | $sys | $load | $result |" >> "$report"
	if [ -z "$best" ] || awk -v a="$wall" -v b="$best" 'BEGIN { exit !(a < b) }'; then
		best=$wall
		best_run=$i
	fi
	i=$((i + 1))
done

{
	echo
	echo "Best: **$best s** (run $best_run)."
	echo
	echo "Where the time of run $best_run went, the 12 longest scenarios (wall and the CPU of"
	echo "its process and daemons, ms):"
	echo
	echo "| scenario | wall | user | sys |"
	echo "|---|---|---|---|"
	awk '/^(not )?ok [0-9]+ - / { name = $0; sub(/^(not )?ok [0-9]+ - /, "", name); sub(/ .*/, "", name) }
	     /^# time: / { gsub(/,/, ""); print name, $3, $6, $9 }' "$work/tap.$best_run" |
		sort -k2,2nr | head -n 12 |
		awk '{ printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }'
	echo
	awk '/^# time: / { gsub(/,/, ""); w += $3; u += $6; s += $9; n++ }
	     END { printf "%d scenarios: %.1f s of wall time in all (several at once), %.1f s user, %.1f s system.\n", n, w / 1000, u / 1000, s / 1000 }' \
		"$work/tap.$best_run"
} >> "$report"

cat "$report"
[ -n "$out" ] && cp "$report" "$out"
if [ "$failed" = 1 ]; then
	echo "selftest-bench: a run failed; its TAP output:" >&2
	for f in "$work"/tap.*; do grep -E '^not ok' "$f" >&2 || true; done
	exit 1
fi
exit 0
