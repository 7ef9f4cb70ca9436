#!/bin/sh
# Real programs on the mount (cp -a, tar, rsync, git, sqlite3, make + cc,
# an editor's save-by-rename), each result checked in the backing dir.
# Usage: programs.sh TFS_MOUNT
TFS_MOUNT=$1
. "$(dirname "$0")/lib.sh"

# sig DIR: type, mode, size, mtime, link target and content hash of each entry
sig() {
	(cd "$1" && find . -mindepth 1 -printf '%p %y %m %s %T@ %l\n' | sort &&
		find . -type f -exec sha256sum {} + | sort)
}

# same A B: the two trees have the same signature, else show the difference
same() {
	sig "$1" >"$W/sig.a"
	sig "$2" >"$W/sig.b"
	diff "$W/sig.a" "$W/sig.b"
}

make_src() {
	S=$W/src
	mkdir -p "$S/dir/sub" "$S/empty"
	printf 'hello\n' >"$S/a.txt"
	head -c 200000 /dev/urandom >"$S/dir/random.bin"
	: >"$S/dir/sub/zero"
	printf '#!/bin/sh\necho hi\n' >"$S/dir/run.sh"
	chmod 0755 "$S/dir/run.sh"
	chmod 0600 "$S/a.txt"
	ln -s ../a.txt "$S/dir/link"
	touch -h -d '2001-02-03 04:05:06.123456789' "$S/dir/link"
	touch -d '2002-03-04 05:06:07.5' "$S/a.txt" "$S/dir/sub" "$S/empty"
}

t_cp() {
	set -e
	cp -a "$W/src" "$M/cpa"
	same "$W/src" "$B/cpa"
	same "$M/cpa" "$B/cpa"
	cp -a "$M/cpa" "$W/cpback"
	same "$W/src" "$W/cpback"
}

t_tar() {
	set -e
	tar --format=posix -C "$W/src" -cf "$W/in.tar" .
	mkdir "$M/tarx"
	tar -C "$M/tarx" -xf "$W/in.tar"
	same "$W/src" "$B/tarx"
	tar --format=posix -C "$M/tarx" -cf "$M/out.tar" .
	mkdir "$W/tarback"
	tar -C "$W/tarback" -xf "$B/out.tar"
	same "$W/src" "$W/tarback"
}

# samef A B: like same, without directory mtimes
samef() {
	sig "$1" | grep -v '^[^ ]* d ' >"$W/sig.a"
	sig "$2" | grep -v '^[^ ]* d ' >"$W/sig.b"
	diff "$W/sig.a" "$W/sig.b"
}

# Directory mtimes are left out for rsync: after --delete they differ on
# plain dirs too, and a fresh copy showed a directory mtime off by < 1 s
# once in a few runs (rsync's generator and receiver race on it; under
# investigation, see docs/FUSE.md).
t_rsync() {
	set -e
	rsync -a "$W/src/" "$M/rs/"
	samef "$W/src" "$B/rs"
	printf 'changed\n' >>"$W/src/dir/sub/zero"
	rm "$W/src/dir/run.sh"
	rsync -a --delete "$W/src/" "$M/rs/"
	samef "$W/src" "$B/rs"
	rsync -a --inplace "$W/src/" "$M/rs2/"
	samef "$W/src" "$B/rs2"
}

t_git() {
	set -e
	export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid
	export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid
	export GIT_CONFIG_NOSYSTEM=1 HOME=$W
	g() { git -C "$M/repo" "$@"; }
	git init -q -b main "$M/repo"
	printf 'one\n' >"$M/repo/f"
	mkdir "$M/repo/d"
	printf 'two\n' >"$M/repo/d/g"
	g add -A
	g commit -q -m first
	g branch topic
	g checkout -q topic
	printf 'topic\n' >>"$M/repo/f"
	g commit -q -am second
	g checkout -q main
	[ "$(cat "$B/repo/f")" = "one" ]
	g checkout -q topic
	[ "$(cat "$B/repo/f")" = "$(printf 'one\ntopic')" ]
	[ -z "$(g status --porcelain)" ]
	[ "$(git -C "$B/repo" rev-list --count topic)" = 2 ]
	git -C "$B/repo" fsck --strict --no-progress
	[ -z "$(git -C "$B/repo" status --porcelain)" ]
	git clone -q "$M/repo" "$M/clone"
	[ "$(git -C "$B/clone" rev-parse HEAD)" = "$(g rev-parse HEAD)" ]
}

t_sqlite() {
	set -e
	sqlite3 "$M/db.sqlite" 'create table t(k integer primary key, v text);'
	i=0
	while [ $i -lt 50 ]; do
		sqlite3 "$M/db.sqlite" "insert into t(v) values ('row $i');"
		i=$((i + 1))
	done
	sqlite3 "$M/db.sqlite" "begin; update t set v = v || '!' where k % 2 = 0; commit;"
	[ "$(sqlite3 "$M/db.sqlite" 'select count(*) from t;')" = 50 ]
	[ "$(sqlite3 "$B/db.sqlite" "select count(*) from t where v like '%!';")" = 25 ]
	[ "$(sqlite3 "$B/db.sqlite" 'pragma integrity_check;')" = ok ]
	sqlite3 "$M/wal.sqlite" 'pragma journal_mode=wal; create table w(x); insert into w values (1),(2);' >/dev/null
	[ "$(sqlite3 "$M/wal.sqlite" 'select sum(x) from w;')" = 3 ]
}

t_make() {
	set -e
	P=$M/proj
	mkdir "$P"
	cat >"$P/main.c" <<'C'
#include <stdio.h>
int answer(void);
int main(void) { printf("%d\n", answer()); return 0; }
C
	printf 'int answer(void) { return 42; }\n' >"$P/answer.c"
	printf 'prog: main.o answer.o\n\t$(CC) -o $@ main.o answer.o\n' >"$P/Makefile"
	make -s -C "$P"
	[ "$("$P/prog")" = 42 ]
	[ "$("$B/proj/prog")" = 42 ]
	touch -d '-10 seconds' "$P"/*.o "$P/prog"
	printf 'int answer(void) { return 43; }\n' >"$P/answer.c"
	make -s -C "$P"
	[ "$("$B/proj/prog")" = 43 ]
	make -s -C "$P" -q prog
}

t_editor() {
	set -e
	printf 'version 1\n' >"$M/doc.txt"
	old=$(stat -c %i "$B/doc.txt")
	# save the way vim and most editors do: temp file, fsync, rename over
	printf 'version 2\n' >"$M/.doc.txt.swp"
	sync "$M/.doc.txt.swp" 2>/dev/null || true
	mv "$M/.doc.txt.swp" "$M/doc.txt"
	[ "$(cat "$B/doc.txt")" = "version 2" ]
	[ "$(cat "$M/doc.txt")" = "version 2" ]
	[ "$(stat -c %i "$B/doc.txt")" != "$old" ]
	[ ! -e "$B/.doc.txt.swp" ]
	# and a backup-then-write save (emacs style)
	cp -p "$M/doc.txt" "$M/doc.txt~"
	printf 'version 3\n' >"$M/doc.txt"
	[ "$(cat "$B/doc.txt~")" = "version 2" ]
	[ "$(cat "$B/doc.txt")" = "version 3" ]
}

make_src
start_mount

has() { command -v "$1" >/dev/null 2>&1; }
run() { # run NAME TOOL FUNC
	if has "$2"; then check "$1" "$3"; else skipped "$1" "$2 is not installed (scripts/install-deps.sh)"; fi
}
run "cp -a" cp t_cp
run "tar c/x" tar t_tar
run "rsync" rsync t_rsync
run "git init/add/commit/branch/checkout/status/clone" git t_git
run "sqlite3 create+query, rollback journal and WAL" sqlite3 t_sqlite
if has make && has cc; then check "make with cc" t_make; else skipped "make" "make or cc missing"; fi
check "editor save by rename" t_editor
n=$((n + 1))
if stop_mount; then echo "ok $n - clean unmount"; else echo "not ok $n - clean unmount"; failed=$((failed + 1)); fi
check "no mount left" sh -c "! grep -q ' $M fuse' /proc/self/mounts"
finish
