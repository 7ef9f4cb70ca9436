#!/bin/sh
# Installs what the packaging checks need on Debian 12 (bookworm), on top of
# scripts/install-deps.sh: dpkg-buildpackage with debhelper, lintian, rpm
# (rpmbuild, rpmspec) and systemd-analyze. Used by .ci/run and by
# tests/packaging (the `packaging` meson suite). Run as root, or as a user
# who may sudo. Safe to run again.
set -eu

PACKAGES="
dpkg-dev
debhelper
fakeroot
lintian
man-db
rpm
systemd
xz-utils
"

if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "install-packaging-deps.sh: run me as root (or install sudo): apt-get needs it" >&2
	exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-packaging-deps.sh: this script is for Debian/Ubuntu (apt-get); install the" >&2
	echo "equivalents of these packages by hand:$(echo $PACKAGES)" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $PACKAGES
