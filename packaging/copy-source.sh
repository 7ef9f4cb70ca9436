#!/bin/sh
# Usage: copy-source.sh SRCDIR DESTDIR
# Copies a tandem source tree as it is on disk (committed or not) into
# DESTDIR (created; must not exist), leaving out .git, meson build
# directories (any directory holding a build.ninja) and a stray ./debian.
# Used by the package builds (tests/packaging/deb-smoke.sh,
# packaging/rpm/build-rpm.sh) so that they see the working tree.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 SRCDIR DESTDIR" >&2
	exit 2
fi
src=$1
dest=$2
if [ ! -f "$src/meson.build" ] || [ ! -d "$src/packaging" ]; then
	echo "copy-source.sh: '$src' is not a tandem source tree (no meson.build or packaging/)" >&2
	exit 1
fi
if [ -e "$dest" ]; then
	echo "copy-source.sh: '$dest' exists already; give a new directory" >&2
	exit 1
fi
mkdir -p "$dest"
tar -C "$src" -c --exclude=./.git --exclude=./debian --exclude-tag-all=build.ninja \
	--exclude=__pycache__ . | tar -C "$dest" -x
