#!/usr/bin/env bash
# The packaging smoke test (PRODUCT.md §11): build the Debian packages from
# this source tree, check them with lintian, install them into a scratch
# root (dpkg --root) or onto this machine, run the INSTALLED `tandem
# selftest`, `tandem-relay --help` and a live relay, verify the installed
# systemd units, then purge the packages and check that nothing is left.
#
# Usage: deb-smoke.sh [--source DIR] [--work DIR] [--check] [--system]
#                     [--no-lintian] [--keep]
#   --source DIR   the tandem source tree (default: this script's tree)
#   --work DIR     scratch directory (default: a new one under $TMPDIR)
#   --check        run the build-time test suite too (default: nocheck,
#                  as the suite has already run in the same CI job)
#   --system       install onto this machine with dpkg instead of into a
#                  scratch root (refused if tandem is installed already)
#   --no-lintian   do not run lintian
#   --keep         keep the scratch directory (default: kept on failure)
#
# Output is TAP-like; the last line is "deb-smoke: N passed, N failed, N
# skipped". Exit status: 0 all passed, 1 a step failed, 2 usage, 77 cannot
# run here (not root, dpkg-buildpackage or build dependencies missing).
# With TANDEM_PACKAGING_STRICT=1 (CI) "cannot run here" is a failure.
# TANDEM_PACKAGING_SKIP=REASON skips on purpose (e.g. sanitizer builds).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
work=""
check=0
system=0
lintian=1
keep=0

while [ $# -gt 0 ]; do
	case $1 in
	--source) src=$(cd "$2" && pwd) || exit 2; shift 2 ;;
	--work) work=$2; shift 2 ;;
	--check) check=1; shift ;;
	--system) system=1; shift ;;
	--no-lintian) lintian=0; shift ;;
	--keep) keep=1; shift ;;
	-h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
	*) echo "deb-smoke.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done

cannot_run() {
	if [ "${TANDEM_PACKAGING_STRICT:-0}" = 1 ]; then
		echo "Bail out! $* (TANDEM_PACKAGING_STRICT=1: this must run here)"
		exit 1
	fi
	echo "1..0 # SKIP $*"
	exit 77
}

if [ -n "${TANDEM_PACKAGING_SKIP:-}" ]; then
	echo "1..0 # SKIP $TANDEM_PACKAGING_SKIP"
	exit 77
fi
if [ -n "${TANDEM_IN_PACKAGE_BUILD:-}" ]; then
	echo "1..0 # SKIP running inside a package build (it would build itself)"
	exit 77
fi
if [ "$(id -u)" -ne 0 ]; then
	cannot_run "needs root: dpkg --root runs the maintainer scripts in a chroot"
fi
for tool in dpkg-buildpackage dpkg-checkbuilddeps dpkg-parsechangelog dh dpkg dpkg-deb \
	dpkg-query tar; do
	command -v "$tool" >/dev/null 2>&1 ||
		cannot_run "$tool is not installed (run scripts/install-packaging-deps.sh)"
done
if [ ! -d "$src/packaging/debian" ]; then
	echo "Bail out! $src has no packaging/debian"
	exit 1
fi
if [ -e "$src/debian" ]; then
	echo "# note: $src/debian exists; it is left out, packaging/debian is used"
fi

version=$(dpkg-parsechangelog -l "$src/packaging/debian/changelog" -S Version)
upstream=${version%-*}
arch=$(dpkg --print-architecture)

# Build dependencies, before anything slow (the nocheck profile drops the
# test-only ones unless --check).
profile_args=(-Pnocheck)
[ $check -eq 1 ] && profile_args=()
if ! unmet=$(cd "$src/packaging" && dpkg-checkbuilddeps "${profile_args[@]}" debian/control 2>&1); then
	cannot_run "unmet build dependencies: ${unmet#*: }; run scripts/install-packaging-deps.sh"
fi

if [ -z "$work" ]; then
	work=$(mktemp -d "${TMPDIR:-/tmp}/tandem-deb-smoke.XXXXXX")
elif [ -e "$work/.tandem-deb-smoke" ]; then
	rm -rf "$work"	# left by an earlier run
	mkdir -p "$work"
elif [ -e "$work" ] && [ -n "$(ls -A "$work")" ]; then
	echo "Bail out! --work $work exists and is not a deb-smoke scratch directory"
	exit 1
else
	mkdir -p "$work"
fi
work=$(cd "$work" && pwd)
: >"$work/.tandem-deb-smoke"
tree=$work/tandem-$upstream
root=$work/root
log=$work/step.log
installed=0

n=0 failed=0 skipped=0
pass() { n=$((n + 1)); echo "ok $n - $*"; }
fail() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
skip() { n=$((n + 1)); skipped=$((skipped + 1)); echo "ok $n - $1 # SKIP $2"; }
show() { sed 's/^/#   /' "$1" | tail -n "${2:-40}"; }
# step DESCRIPTION COMMAND...: runs it with its output in $log.
step() {
	local desc=$1
	shift
	if "$@" >"$log" 2>&1; then
		pass "$desc"
		return 0
	fi
	fail "$desc"
	show "$log"
	return 1
}

dpkg_cmd() {
	if [ $system -eq 1 ]; then
		dpkg --log="$work/dpkg.log" "$@"
	else
		dpkg --root="$root" --log="$work/dpkg.log" "$@"
	fi
}

finish() {
	if [ $installed -eq 1 ]; then
		# A step failed half-way: do not leave the packages behind.
		dpkg_cmd --purge tandem tandem-relay >/dev/null 2>&1 || true
	fi
	echo "1..$n"
	echo "deb-smoke: $((n - failed - skipped)) passed, $failed failed, $skipped skipped"
	if [ $failed -eq 0 ] && [ $keep -eq 0 ]; then
		rm -rf "$work"
	else
		echo "# scratch files kept in $work"
	fi
	[ $failed -eq 0 ] && exit 0
	exit 1
}
bail() {
	echo "# stopping here: the steps after this one need it"
	finish
}

echo "# tandem $version from $src, scratch dir $work"

# 1. dpkg-buildpackage in a copy of the tree with packaging/debian as debian/.
build() {
	"$src/packaging/copy-source.sh" "$src" "$tree" &&
		cp -a "$src/packaging/debian" "$tree/debian" &&
		(
			cd "$tree" &&
				if [ $check -eq 1 ]; then
					DEB_BUILD_OPTIONS="parallel=$(nproc)" \
						dpkg-buildpackage -us -uc -b
				else
					DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
						dpkg-buildpackage -us -uc -b -Pnocheck
				fi
		)
}
start=$SECONDS
if ! build >"$work/build.log" 2>&1; then
	fail "dpkg-buildpackage -us -uc -b (log: $work/build.log)"
	show "$work/build.log"
	bail
fi
debs=("$work/tandem_${version}_$arch.deb" "$work/tandem-relay_${version}_$arch.deb")
for d in "${debs[@]}"; do
	if [ ! -f "$d" ]; then
		fail "dpkg-buildpackage made $(basename "$d")"
		bail
	fi
done
pass "dpkg-buildpackage -us -uc -b built tandem and tandem-relay $version ($((SECONDS - start)) s)"

# 2. lintian: no errors (warnings are listed).
if [ $lintian -eq 0 ]; then
	skip "lintian" "--no-lintian"
elif ! command -v lintian >/dev/null 2>&1; then
	skip "lintian" "lintian is not installed"
else
	lintian --fail-on error "$work/tandem_${version}_$arch.changes" >"$log" 2>&1
	lrc=$?
	tags=$(grep -c '^[EWI]: ' "$log")
	errors=$(grep -c '^E: ' "$log")
	if [ $lrc -eq 0 ] && [ "$errors" -eq 0 ]; then
		pass "lintian: no errors ($tags warning/info tags)"
	else
		fail "lintian: $errors errors"
	fi
	grep '^[EWIN]: ' "$log" | grep -v '^N: *$' | sed 's/^/#   /'
fi

# 3. Install. The scratch root gets a /bin/sh for the maintainer scripts
# and, in its dpkg database, the host's entries of the runtime dependencies
# (whose libraries the installed programs then use from the host).
make_root() {
	local p name status stanza_pkg
	mkdir -p "$root"/usr/bin "$root"/usr/lib "$root"/usr/lib64 "$root"/etc "$root"/tmp \
		"$root"/dev "$root"/var/lib/dpkg/info "$root"/var/lib/dpkg/updates \
		"$root"/var/lib/dpkg/triggers || return 1
	ln -s usr/bin "$root/bin" && ln -s usr/lib "$root/lib" && ln -s usr/lib64 "$root/lib64" ||
		return 1
	touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
	cp -L /bin/sh "$root/usr/bin/sh" || return 1
	for p in $(ldd /bin/sh | grep -o '/[^ ]*'); do
		cp --parents -L "$p" "$root/" || return 1
	done
	mknod -m 666 "$root/dev/null" c 1 3 2>/dev/null || : >"$root/dev/null"
	# Like base-files on a real system, a package owns the skeleton, so that
	# purging ours does not remove /lib (a symlink here, as with usrmerge).
	cat >>"$root/var/lib/dpkg/status" <<-EOT
		Package: scratch-root-skeleton
		Status: install ok installed
		Priority: required
		Maintainer: tandem deb-smoke <nobody@localhost>
		Architecture: all
		Version: 1
		Description: directories of the deb-smoke scratch root

	EOT
	(cd "$root" && find . -path ./var -prune -o -print | sed 's/^\.//; s/^$/\/./') \
		>"$root/var/lib/dpkg/info/scratch-root-skeleton.list"
	for d in "${debs[@]}"; do
		dpkg-deb -f "$d" Pre-Depends
		dpkg-deb -f "$d" Depends
	done | tr ',' '\n' | sed 's/([^)]*)//g; s/:any//g; s/ //g' | sort -u | while read -r group; do
		[ -n "$group" ] || continue
		found=""
		for name in ${group//|/ }; do
			case $name in tandem | tandem-relay) found=self; break ;; esac
			status=$(dpkg-query -W -f='${db:Status-Status}' "$name" 2>/dev/null)
			if [ "$status" = installed ]; then
				found=$name
				break
			fi
		done
		if [ -z "$found" ]; then
			echo "runtime dependency '$group' is not installed on this machine (apt-get install it)"
			return 1
		fi
		[ "$found" = self ] && continue
		grep -qx "Package: $found" "$root/var/lib/dpkg/status" && continue
		{ dpkg-query -s "$found"; echo; } >>"$root/var/lib/dpkg/status"
		stanza_pkg=$(dpkg-query -W -f='${binary:Package}' "$found")
		: >"$root/var/lib/dpkg/info/$stanza_pkg.list"
	done
}
snapshot() {
	(cd "$root" && find . -path ./var/lib/dpkg -prune -o -print | LC_ALL=C sort)
}

if [ $system -eq 1 ]; then
	prefix=""
	for p in tandem tandem-relay; do
		if dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qv '^not-installed$'; then
			fail "install on this machine: $p is installed already; remove it first"
			bail
		fi
	done
	for f in /usr/bin/tandem /usr/bin/tandem-relay; do
		if [ -e "$f" ]; then
			fail "install on this machine: $f exists (not from a package); remove it first"
			bail
		fi
	done
	if step "dpkg -i on this machine" dpkg_cmd -i "${debs[@]}"; then
		installed=1
	else
		bail
	fi
else
	prefix=$root
	if ! make_root >"$log" 2>&1; then
		fail "make a scratch root"
		show "$log"
		bail
	fi
	snapshot >"$work/before.lst"
	if step "dpkg --root=$root -i tandem tandem-relay" dpkg_cmd -i "${debs[@]}"; then
		installed=1
	else
		bail
	fi
fi

tandem=$prefix/usr/bin/tandem
relay=$prefix/usr/bin/tandem-relay
all_there=1
for f in "$tandem" "$relay" "$prefix/usr/share/man/man1/tandem.1.gz" \
	"$prefix/usr/share/man/man8/tandem-relay.8.gz" \
	"$prefix/lib/systemd/system/tandem-relay.service" \
	"$prefix/usr/lib/systemd/user/tandem@.service"; do
	if [ ! -e "$f" ]; then
		echo "#   missing: $f"
		all_there=0
	fi
done
if [ $all_there -eq 1 ]; then
	pass "installed: binaries, man pages, system and user units"
else
	fail "installed: binaries, man pages, system and user units"
fi

# 4. The installed programs.
ver_out=$("$tandem" --version 2>&1)
if [ "$ver_out" = "tandem $upstream" ] && "$tandem" --help >/dev/null 2>&1; then
	pass "installed tandem --version ('$ver_out') and --help"
else
	fail "installed tandem --version says '$ver_out' (want 'tandem $upstream'), or --help fails"
fi

# A short TMPDIR: the selftest's daemons put Unix sockets (108 bytes at
# most) under it. Four scenarios at once, not the default four per CPU:
# meson builds the RPM beside this test, on the same CPUs.
sttmp=$(mktemp -d /tmp/tandem-st.XXXXXX)
env -u NOTIFY_SOCKET TMPDIR="$sttmp" timeout 600 "$tandem" selftest --jobs 4 >"$log" 2>&1
rc=$?
rm -rf "$sttmp"
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
if [ $rc -eq 0 ]; then
	pass "installed tandem selftest: ${summary:-no summary line}"
	grep -E '^(not ok|ok .*# SKIP)' "$log" | sed 's/^/#   /'
else
	fail "installed tandem selftest (exit $rc): ${summary:-no summary line}"
	# each failed scenario's result line and its notes (its daemons' logs
	# left out: the notes say what failed), then the end of the output
	awk '/^not ok / { on = 1; n = 0 } /^ok / { on = 0 }
	     on && !/^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] / && n++ < 40' "$log" | sed 's/^/#   /'
	show "$log" 20
fi

relay_out=$("$relay" --version 2>&1)
if [ "$relay_out" = "tandem-relay $upstream" ] && "$relay" --help >"$log" 2>&1 &&
	grep -q -- '--listen' "$log"; then
	pass "installed tandem-relay --help and --version ('$relay_out')"
else
	fail "installed tandem-relay --help / --version ('$relay_out')"
	show "$log"
fi

# A live relay on a free port: /healthz answers, SIGTERM stops it with 0.
http_get() {
	if command -v curl >/dev/null 2>&1; then
		curl -fsS --max-time 5 "$1"
	else
		python3 -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"
	fi
}
if ! grep -qs '^00000000000000000000000000000001 ' /proc/net/if_inet6; then
	skip "installed tandem-relay serves /healthz" "no IPv6 loopback address here"
elif ! command -v curl >/dev/null 2>&1 && ! command -v python3 >/dev/null 2>&1; then
	skip "installed tandem-relay serves /healthz" "neither curl nor python3 to ask it"
else
	"$relay" --listen '[::1]:0' >"$work/relay.out" 2>"$work/relay.err" &
	rpid=$!
	url=""
	for _ in $(seq 50); do
		url=$(sed -n 's/^listening on \(http[^ ]*\)$/\1/p' "$work/relay.out" | head -n 1)
		[ -n "$url" ] && break
		kill -0 $rpid 2>/dev/null || break
		sleep 0.1
	done
	body=""
	[ -n "$url" ] && body=$(http_get "$url/healthz" 2>"$log")
	kill -TERM $rpid 2>/dev/null
	wait $rpid
	rrc=$?
	if [ -n "$url" ] && [ -n "$body" ] && [ $rrc -eq 0 ]; then
		pass "installed tandem-relay serves /healthz at $url and stops on SIGTERM"
	else
		fail "installed tandem-relay: url '$url', /healthz '$body', exit $rrc after SIGTERM"
		show "$log"
		show "$work/relay.err"
	fi
fi

# 5. The installed systemd units.
if command -v systemd-analyze >/dev/null 2>&1; then
	manpath=$prefix/usr/share/man
	step "systemd-analyze verify the installed tandem-relay.service and tandem@.service" \
		"$here/check-units.sh" --system-unit "$prefix/lib/systemd/system/tandem-relay.service" \
		--user-unit "$prefix/usr/lib/systemd/user/tandem@.service" \
		--tandem "$tandem" --relay "$relay" --manpath "$manpath" &&
		sed 's/^/#   /' "$log"
else
	skip "systemd-analyze verify the installed units" "systemd-analyze is not installed"
fi

# 6. Purge: dpkg forgets the packages and no file of theirs is left.
if step "dpkg --purge tandem tandem-relay" dpkg_cmd --purge tandem tandem-relay; then
	installed=0
	if [ $system -eq 1 ]; then
		left=""
		for f in /usr/bin/tandem /usr/bin/tandem-relay /usr/share/man/man1/tandem.1.gz \
			/usr/share/man/man8/tandem-relay.8.gz /lib/systemd/system/tandem-relay.service \
			/usr/lib/systemd/user/tandem@.service \
			/etc/systemd/system/multi-user.target.wants/tandem-relay.service \
			/var/lib/systemd/deb-systemd-helper-enabled/tandem-relay.service.dsh-also; do
			[ -e "$f" ] || [ -L "$f" ] && left="$left $f"
		done
	else
		snapshot >"$work/after.lst"
		left=$(diff "$work/before.lst" "$work/after.lst" | sed -n 's/^[<>] //p' | tr '\n' ' ')
	fi
	status=$(dpkg_cmd -l tandem tandem-relay 2>/dev/null | grep -E '^[a-z]{2} ' | grep -v '^un' || true)
	if [ -z "${left// /}" ] && [ -z "$status" ]; then
		pass "purged cleanly: no file left, dpkg knows neither package"
	else
		fail "purge left something behind"
		[ -n "${left// /}" ] && echo "#   files: $left"
		[ -n "$status" ] && echo "#   dpkg: $status"
	fi
fi

finish
