#!/bin/sh
# Installs what tests/bench/sync-bench.sh needs on Debian 12 (bookworm):
# a private sshd and the ssh client for the scp and rsync baselines, rsync,
# socat for the unencrypted floor, sshfs (with fuse3) for the FUSE baseline,
# syncthing (Debian's 1.19) and curl for its REST API for the Syncthing rows,
# and the small tools the script calls.
# Run as root, or as a user who may sudo. Safe to run again.
set -eu

PACKAGES="
openssh-server
openssh-client
rsync
socat
sshfs
fuse3
syncthing
curl
python3
coreutils
findutils
tar
procps
iproute2
"

if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "install-bench-deps.sh: run me as root (or install sudo): apt-get needs it" >&2
	exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-bench-deps.sh: this script is for Debian/Ubuntu (apt-get); install the" >&2
	echo "equivalents of these packages by hand:$(echo $PACKAGES)" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $PACKAGES
