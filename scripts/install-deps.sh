#!/bin/sh
# Installs what tandem needs to build and test on Debian 12 (bookworm).
# Run as root, or as a user who may sudo. Safe to run again.
# git, rsync, sqlite3, make, gcc and tar are for the FUSE tests, which run
# them on a mount (tests/fuse/programs.sh skips a tool that is missing).
# iproute2 and nftables build the netns suite's small internet
# (tests/netns, docs/NETNS.md).
set -eu

PACKAGES="
build-essential
meson
ninja-build
pkg-config
python3
libsodium-dev
libjansson-dev
libcurl4-openssl-dev
libmicrohttpd-dev
libgnutls28-dev
libsqlite3-dev
libssl-dev
libfuse3-dev
fuse3
scdoc
openssl
ca-certificates
clang
git
rsync
sqlite3
make
gcc
tar
iproute2
nftables
"

if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "install-deps.sh: run me as root (or install sudo): apt-get needs it" >&2
	exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-deps.sh: this script is for Debian/Ubuntu (apt-get); install the" >&2
	echo "equivalents of these packages by hand:$(echo $PACKAGES)" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $PACKAGES
