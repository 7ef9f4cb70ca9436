#!/bin/sh
# Builds pjdfstest (https://github.com/pjd/pjdfstest, the POSIX file system
# test suite) from source and installs it to /opt/pjdfstest: the pjdfstest
# binary and tests/ next to it, as its tests expect. Debian 12, run as root.
# tests/fuse/pjdfstest.sh runs it on a tandem mount (skips 77 without it).
#
# Source, the first that exists:
#   $PJDFSTEST_SRC                        a directory (a git checkout) or a git URL
#   /work/.mirror/pjd+pjdfstest/repo      a local snapshot
#   https://github.com/pjd/pjdfstest      upstream
# The pinned commit is built, whatever the source's HEAD is. Exits non-zero
# with the reason when no source is reachable or the build fails.
# Safe to run again: an install of the pinned commit is kept.
set -eu

PIN=85a8aea9e685999ef0540392fd80535f873d7ff7
PREFIX=${PJDFSTEST_PREFIX:-/opt/pjdfstest}
MIRROR=/work/.mirror/pjd+pjdfstest/repo
UPSTREAM=https://github.com/pjd/pjdfstest

die() {
	echo "install-pjdfstest: $*" >&2
	exit 1
}

if [ -x "$PREFIX/pjdfstest" ] && [ -d "$PREFIX/tests" ] &&
	[ "$(cat "$PREFIX/COMMIT" 2>/dev/null)" = "$PIN" ]; then
	echo "install-pjdfstest: $PREFIX already has $PIN"
	exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
else
	command -v sudo >/dev/null 2>&1 || die "run as root (sudo is not installed)"
	SUDO=sudo
fi

need=""
command -v git >/dev/null 2>&1 || need="$need git"
command -v autoreconf >/dev/null 2>&1 || need="$need autoconf"
command -v aclocal >/dev/null 2>&1 || need="$need automake"
command -v gcc >/dev/null 2>&1 || need="$need gcc"
command -v make >/dev/null 2>&1 || need="$need make"
command -v prove >/dev/null 2>&1 || need="$need perl"
if [ -n "$need" ]; then
	echo "install-pjdfstest: installing$need"
	$SUDO apt-get update -q || die "apt-get update failed"
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $need ||
		die "cannot install$need"
fi

work=$(mktemp -d /tmp/pjdfstest-build.XXXXXX)
trap 'rm -rf "$work"' EXIT

src=""
if [ -n "${PJDFSTEST_SRC:-}" ]; then
	src=$PJDFSTEST_SRC
elif [ -d "$MIRROR" ]; then
	src=$MIRROR
else
	src=$UPSTREAM
fi
echo "install-pjdfstest: source $src"
if ! git clone -q "$src" "$work/src" 2>"$work/clone.err"; then
	cat "$work/clone.err" >&2
	die "cannot get the pjdfstest source from '$src' (set PJDFSTEST_SRC to a checkout or a git URL)"
fi
cd "$work/src"
git -c advice.detachedHead=false checkout -q "$PIN" ||
	die "'$src' does not have the pinned commit $PIN"

echo "install-pjdfstest: building $PIN"
{ autoreconf -ifs && ./configure && make pjdfstest; } >"$work/build.log" 2>&1 || {
	tail -n 30 "$work/build.log" >&2
	die "build failed (log above)"
}

$SUDO rm -rf "$PREFIX"
$SUDO mkdir -p "$PREFIX"
$SUDO cp pjdfstest "$PREFIX/"
$SUDO cp -R tests "$PREFIX/"
echo "$PIN" | $SUDO tee "$PREFIX/COMMIT" >/dev/null
echo "install-pjdfstest: installed to $PREFIX"
