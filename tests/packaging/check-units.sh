#!/usr/bin/env bash
# Checks tandem's systemd units: `systemd-analyze verify` passes on both
# (the paths in ExecStart= pointed at the given binaries), the relay unit
# keeps its sandbox, and the user unit stays free of everything that would
# stop the setuid fusermount3 (PRODUCT.md §11).
#
# Usage: check-units.sh --system-unit FILE --user-unit FILE --tandem EXE
#                       --relay EXE [--manpath DIR]
# Without --manpath the Documentation= man pages are not looked up.
# Exit status: 0 good, 1 a check failed, 2 usage, 77 no systemd-analyze
# (1 with TANDEM_PACKAGING_STRICT=1).
set -uo pipefail

sys_unit="" user_unit="" tandem="" relay="" manpath=""
while [ $# -gt 0 ]; do
	case $1 in
	--system-unit) sys_unit=$2; shift 2 ;;
	--user-unit) user_unit=$2; shift 2 ;;
	--tandem) tandem=$2; shift 2 ;;
	--relay) relay=$2; shift 2 ;;
	--manpath) manpath=$2; shift 2 ;;
	*) echo "check-units.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
if [ -z "$sys_unit" ] || [ -z "$user_unit" ] || [ -z "$tandem" ] || [ -z "$relay" ]; then
	echo "usage: check-units.sh --system-unit FILE --user-unit FILE --tandem EXE --relay EXE [--manpath DIR]" >&2
	exit 2
fi
# ExecStart= needs absolute paths (meson passes build-relative ones).
tandem=$(realpath "$tandem") && relay=$(realpath "$relay") || exit 2
if ! command -v systemd-analyze >/dev/null 2>&1; then
	if [ "${TANDEM_PACKAGING_STRICT:-0}" = 1 ]; then
		echo "Bail out! systemd-analyze is not installed (TANDEM_PACKAGING_STRICT=1)"
		exit 1
	fi
	echo "1..0 # SKIP systemd-analyze is not installed (Debian: package systemd)"
	exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tandem-units.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/system" "$tmp/user" "$tmp/runtime"
chmod 700 "$tmp/runtime"
failed=0
bad() { echo "not ok - $*"; failed=1; }
good() { echo "ok - $*"; }

# Same units, ExecStart= pointing at the binaries under test.
sed -E "s#^(ExecStart=)[^ ]*/tandem-relay( |\$)#\\1$relay\\2#" "$sys_unit" \
	>"$tmp/system/tandem-relay.service"
sed -E "s#^(ExecStart=)[^ ]*/tandem( |\$)#\\1$tandem\\2#" "$user_unit" \
	>"$tmp/user/tandem@.service"
cp "$tmp/user/tandem@.service" "$tmp/user/tandem@check.service"

man_args=()
if [ -n "$manpath" ] && command -v man >/dev/null 2>&1; then
	export MANPATH=$manpath
else
	man_args=(--man=no)
fi

if out=$(systemd-analyze "${man_args[@]}" verify "$tmp/system/tandem-relay.service" 2>&1); then
	good "systemd-analyze verify tandem-relay.service"
else
	bad "systemd-analyze verify tandem-relay.service"
	echo "$out" | sed 's/^/#   /'
fi
if out=$(XDG_RUNTIME_DIR=$tmp/runtime systemd-analyze --user "${man_args[@]}" verify \
	"$tmp/user/tandem@.service" "$tmp/user/tandem@check.service" 2>&1); then
	good "systemd-analyze --user verify tandem@.service (and instance tandem@check)"
else
	bad "systemd-analyze --user verify tandem@.service"
	echo "$out" | sed 's/^/#   /'
fi

# directive=value lines of a unit, without comments.
settings() { grep -E '^[A-Za-z]+=' "$1"; }

for want in DynamicUser=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
	PrivateDevices=yes NoNewPrivileges=yes CapabilityBoundingSet= \
	SystemCallFilter=@system-service 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX'; do
	settings "$sys_unit" | grep -qxF "$want" || bad "tandem-relay.service lacks '$want'"
done
# Exposure as systemd-analyze scores it: 0 (locked down) to 10, threshold
# in tenths; 1.2 today.
if out=$(systemd-analyze "${man_args[@]}" security --offline=true --threshold=20 \
	"$tmp/system/tandem-relay.service" 2>&1); then
	good "tandem-relay.service sandbox: $(echo "$out" | grep -o 'exposure level.*' | tail -n 1)"
else
	bad "tandem-relay.service sandbox exposure above 2.0"
	echo "$out" | grep -E '✗|exposure' | sed 's/^/#   /'
fi

for want in Type=notify Restart=on-failure; do
	settings "$user_unit" | grep -qxF "$want" || bad "tandem@.service lacks '$want'"
done
settings "$user_unit" | grep -q '^ExecStart=.* up --foreground' ||
	bad "tandem@.service must run 'tandem ... up --foreground' (Type=notify)"
# Each of these sets no_new_privs, drops capabilities or hides /dev/fuse
# or the mount: the setuid fusermount3 would then fail.
forbidden='^(NoNewPrivileges|SystemCall[A-Za-z]*|Restrict[A-Za-z]*|Protect[A-Za-z]*|Private[A-Za-z]*|MemoryDenyWriteExecute|LockPersonality|MountFlags|DynamicUser|CapabilityBoundingSet|AmbientCapabilities|ReadOnlyPaths|ReadWritePaths|InaccessiblePaths|TemporaryFileSystem|BindPaths|BindReadOnlyPaths|RootDirectory|RootImage|DevicePolicy|DeviceAllow)='
if hits=$(settings "$user_unit" | grep -E "$forbidden"); then
	bad "tandem@.service must not use (blocks the setuid fusermount3): $(echo $hits)"
else
	good "tandem@.service: Type=notify, Restart=on-failure, nothing that blocks fusermount3"
fi

[ $failed -eq 0 ]
