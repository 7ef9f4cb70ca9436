#!/usr/bin/env bash
# Removes network namespaces the netns suite left behind (docs/NETNS.md).
#
#   sweep.sh --id tntPID [TMPDIR]  remove that run's namespaces (and its
#                                  temporary directory): a test's TERM trap
#                                  runs this detached, as meson kills a test
#                                  that timed out 0.5 s after its SIGTERM
#   sweep.sh --check               remove the namespaces of runs whose
#                                  process is gone; exit 1 if there were
#                                  any (.ci/run, after the tests)
#
# Only namespaces named tnt<PID>-<node> (lib.sh) are touched; what runs in
# them (a relay, daemons, probes the suite started there) is killed first.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

case ${1:-} in
--id)
	id=${2:?usage: sweep.sh --id tntPID [TMPDIR]}
	case $id in
	tnt[0-9]*) ;;
	*)
		echo "sweep.sh: not a netns suite id: $id" >&2
		exit 2
		;;
	esac
	for name in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$id-"); do
		netns_del "$name"
	done
	case ${3:-} in
	*/tandem-netns.*) rm -rf "$3" ;;
	esac
	;;
--check)
	left=""
	for name in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^tnt[0-9]+-'); do
		pid=${name#tnt}
		pid=${pid%%-*}
		kill -0 "$pid" 2>/dev/null || left="$left $name"
	done
	if [ -z "$left" ]; then
		echo "sweep.sh: no network namespace of the netns suite is left behind"
		exit 0
	fi
	echo "sweep.sh: the netns suite left these network namespaces behind (now removed):$left"
	netns_sweep_stale
	exit 1
	;;
*)
	echo "usage: sweep.sh --id tntPID [TMPDIR] | --check" >&2
	exit 2
	;;
esac
