#!/usr/bin/env bash
# Builds the tandem RPMs from a source tree with packaging/rpm/tandem.spec:
# makes the Source0 tarball (tandem-VERSION.tar.xz, the working tree as
# copy-source.sh sees it), checks that `rpmspec -P` parses the spec, then
# runs `rpmbuild -bb`. Works on RPM distributions and on Debian's rpm
# package (there without the build-dependency check, which Debian's empty
# rpm database cannot answer, and with macros.fallback for %meson).
#
# Usage: build-rpm.sh [--source DIR] [--work DIR] [--check] [--keep]
#   --source DIR  the tandem source tree (default: this script's tree)
#   --work DIR    scratch directory (default: a new one under $TMPDIR);
#                 the RPMs end up in DIR/rpmbuild/RPMS
#   --check       also run %check (the meson test suite, less `packaging`)
#   --keep        keep the scratch directory (default: kept on failure)
# Exit status: 0 built, 1 failed, 2 usage, 77 cannot run here (no rpmbuild).
# With TANDEM_PACKAGING_STRICT=1 (CI) "cannot run here" is a failure;
# TANDEM_PACKAGING_SKIP=REASON skips on purpose (e.g. sanitizer builds).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
work=""
check=0
keep=0

while [ $# -gt 0 ]; do
	case $1 in
	--source) src=$(cd "$2" && pwd); shift 2 ;;
	--work) work=$2; shift 2 ;;
	--check) check=1; shift ;;
	--keep) keep=1; shift ;;
	-h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
	*) echo "build-rpm.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done

if [ -n "${TANDEM_PACKAGING_SKIP:-}" ]; then
	echo "1..0 # SKIP $TANDEM_PACKAGING_SKIP"
	exit 77
fi
if [ -n "${TANDEM_IN_PACKAGE_BUILD:-}" ]; then
	echo "1..0 # SKIP running inside a package build"
	exit 77
fi
for tool in rpmbuild rpmspec rpm tar xz; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		if [ "${TANDEM_PACKAGING_STRICT:-0}" = 1 ]; then
			echo "Bail out! $tool is not installed (TANDEM_PACKAGING_STRICT=1)"
			exit 1
		fi
		echo "1..0 # SKIP $tool is not installed (Debian: scripts/install-packaging-deps.sh)"
		exit 77
	fi
done

spec=$src/packaging/rpm/tandem.spec
version=$(sed -n "s/^  *version *: *'\([^']*\)'.*/\1/p" "$src/meson.build" | head -n1)
spec_version=$(rpmspec -q --srpm --qf '%{version}' "$spec" 2>/dev/null || true)
if [ -z "$version" ] || [ "$version" != "$spec_version" ]; then
	echo "FAIL: meson.build says version '$version' but tandem.spec says '$spec_version'"
	exit 1
fi

if [ -z "$work" ]; then
	work=$(mktemp -d "${TMPDIR:-/tmp}/tandem-rpm.XXXXXX")
elif [ -e "$work/.tandem-rpm" ]; then
	rm -rf "$work"	# left by an earlier run
	mkdir -p "$work"
elif [ -e "$work" ] && [ -n "$(ls -A "$work")" ]; then
	echo "FAIL: --work $work exists and is not a build-rpm.sh scratch directory"
	exit 1
else
	mkdir -p "$work"
fi
work=$(cd "$work" && pwd)
: >"$work/.tandem-rpm"
top=$work/rpmbuild
rm -rf "$top" "$work/tandem-$version"
mkdir -p "$top/SOURCES" "$top/SPECS"
ok=0
cleanup() {
	if [ $ok -eq 1 ] && [ $keep -eq 0 ]; then
		rm -rf "$work"
	else
		echo "# scratch files kept in $work"
	fi
}
trap cleanup EXIT

"$src/packaging/copy-source.sh" "$src" "$work/tandem-$version"
tar -C "$work" -cJf "$top/SOURCES/tandem-$version.tar.xz" "tandem-$version"
rm -rf "${work:?}/tandem-$version"
cp "$spec" "$top/SPECS/"

args=(--define "_topdir $top")
if [ -z "$(rpm --eval '%{?meson:yes}')" ]; then
	# No %meson of the system's own (Debian): load the stand-ins.
	args+=(--load "$src/packaging/rpm/macros.fallback")
fi
build_args=()
if [ -f /etc/debian_version ]; then
	# Debian's rpm database is empty and it has no find-debuginfo.
	build_args+=(--nodeps --define "debug_package %{nil}")
fi
[ $check -eq 1 ] || build_args+=(--nocheck)

echo "# rpmspec -P $spec"
if ! rpmspec "${args[@]}" -P "$top/SPECS/tandem.spec" >"$work/spec.parsed" 2>"$work/spec.err"; then
	cat "$work/spec.err"
	echo "FAIL: rpmspec -P cannot parse tandem.spec"
	exit 1
fi
echo "# rpmbuild -bb (log: $work/rpmbuild.log)"
if ! rpmbuild "${args[@]}" "${build_args[@]}" -bb "$top/SPECS/tandem.spec" >"$work/rpmbuild.log" 2>&1; then
	tail -n 40 "$work/rpmbuild.log"
	echo "FAIL: rpmbuild -bb failed"
	exit 1
fi
for rpmfile in "$top"/RPMS/*/*.rpm; do
	echo "# $(basename "$rpmfile"):"
	rpm -qlp "$rpmfile" 2>/dev/null | sed 's/^/#   /'
done
ok=1
echo "ok - rpmbuild -bb built $(cd "$top/RPMS" && echo */*.rpm)"
