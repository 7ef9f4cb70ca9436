/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Real programs on the mount (suite "fuse"), their results checked on the
 * other side: cp -a, tar, rsync, git, sqlite3, make with cc, and an
 * editor's save by rename. Each scenario is a list of steps: a shell
 * script run with M (the mount, side a), B (the plain dir, side b) and W (a
 * work dir outside both shares) set, then convergence, then a check script
 * (usually on B). A program that is not installed skips its scenario with
 * the reason (scripts/install-deps.sh installs them all).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "st_fuse.h"
#include "st_sync.h"

#define START_MS 10000
#define CONVERGE_MS 20000
#define SCRIPT_MAX 8192

struct step {
	const char *run;   /* on the mount (or wherever it says) */
	const char *check; /* after convergence */
};

/* Shell helpers: sig DIR lists each entry (directory mtimes left out: they
 * are not synced, docs/SYNC.md) and each file's hash; same A B compares. */
static const char prelude[] =
	"set -eu\n"
	"sig() { (cd \"$1\" && find . -mindepth 1 \\( -type d -printf '%p d %m\\n' \\) -o "
	"\\( ! -type d -printf '%p %y %m %s %T@ %l\\n' \\) | sort &&\n"
	"  find . -type f -exec sha256sum {} + | sort); }\n"
	"same() { sig \"$1\" >\"$W/sig.1\"; sig \"$2\" >\"$W/sig.2\"; "
	"diff \"$W/sig.1\" \"$W/sig.2\" >&2; }\n"
	"make_src() {\n"
	"  S=$W/src; mkdir -p \"$S/dir/sub\" \"$S/empty\"\n"
	"  printf 'hello\\n' >\"$S/a.txt\"; head -c 200000 /dev/urandom >\"$S/dir/random.bin\"\n"
	"  : >\"$S/dir/sub/zero\"; printf '#!/bin/sh\\necho hi\\n' >\"$S/dir/run.sh\"\n"
	"  chmod 0755 \"$S/dir/run.sh\"; chmod 0600 \"$S/a.txt\"; ln -s ../a.txt \"$S/dir/link\"\n"
	"  touch -h -d '2001-02-03 04:05:06.123456789' \"$S/dir/link\"\n"
	"  touch -d '2002-03-04 05:06:07.5' \"$S/a.txt\"\n"
	"}\n"
	"export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid GIT_COMMITTER_NAME=t\n"
	"export GIT_COMMITTER_EMAIL=t@example.invalid GIT_CONFIG_NOSYSTEM=1 HOME=$W\n";

bool st_fuse_sh(struct st_env *env, const struct st_pair *p, const char *work,
		const char *script, const char *what)
{
	struct st_proc_out *out = malloc(sizeof(*out));
	char *text = malloc(SCRIPT_MAX);
	bool ok = false;

	if (!out || !text)
		goto done;
	if (snprintf(text, SCRIPT_MAX, "M='%s'; B='%s'; W='%s'\n%s%s", p->peer[0].dir,
		     p->peer[1].dir, work, prelude, script) >= SCRIPT_MAX)
		goto done;
	if (st_run_sh(env, out, text) < 0) {
		st_note(env, "cannot run sh: %s", strerror(errno));
		goto done;
	}
	ok = out->status == 0;
	if (!ok) {
		st_note(env, "%s exited %d:\n%s\n--- stderr:\n%s\n--- stdout:\n%s", what,
			out->status, script, out->err, out->out);
		st_fail(env, __FILE__, __LINE__, "%s failed", what);
	}
done:
	free(out);
	free(text);
	return ok;
}

/* NULL when every program in needs (blank-separated) is on PATH, else the first missing. */
static const char *missing(struct st_env *env, const char *needs, char *buf, size_t len)
{
	struct st_proc_out *out = malloc(sizeof(*out));
	char script[256];
	const char *r = NULL;

	for (const char *s = needs; out && *s;) {
		size_t n = strcspn(s, " ");
		snprintf(buf, len, "%.*s", (int)n, s);
		snprintf(script, sizeof(script), "command -v '%s' >/dev/null", buf);
		if (st_run_sh(env, out, script) < 0 || out->status != 0) {
			r = buf;
			break;
		}
		s += n;
		s += strspn(s, " ");
	}
	free(out);
	return r;
}

static int prog_run(struct st_env *env, const char *needs, const struct step *steps, size_t n)
{
	struct st_pair p;
	char work[512], prog[64];
	const char *gone;
	int r = st_fuse_need(env);

	memset(&p, 0, sizeof(p));
	if (r)
		return r;
	gone = missing(env, needs, prog, sizeof(prog));
	if (gone)
		return st_skip(env, "%s is not installed (scripts/install-deps.sh installs it)",
			       gone);
	if (st_mkdir(env, "work", work) < 0 || st_pair_start(env, &p, "", START_MS) < 0) {
		ST_CHECK(env, !"the pair started and became idle");
		goto out;
	}
	for (size_t i = 0; i < n && !env->failures; i++) {
		char what[64];
		uint64_t t0 = st_now_ms();
		int64_t took;

		snprintf(what, sizeof(what), "step %zu", i + 1);
		if (!st_fuse_sh(env, &p, work, steps[i].run, what))
			break;
		took = st_wait_converged(env, &p, NULL, 0, CONVERGE_MS);
		st_note(env, "step %zu ran in %llu ms, converged after %lld ms more", i + 1,
			(unsigned long long)(st_now_ms() - t0) - (unsigned long long)(took > 0 ? took : 0),
			(long long)took);
		ST_CHECK(env, took >= 0);
		snprintf(what, sizeof(what), "the check of step %zu", i + 1);
		if (steps[i].check && !st_fuse_sh(env, &p, work, steps[i].check, what))
			break;
		/* a check may write too (git refreshes its index): settle first */
		ST_CHECK(env, st_wait_converged(env, &p, NULL, 0, CONVERGE_MS) >= 0);
	}
out:
	if (p.peer[0].home[0])
		st_pair_cleanup(env, &p);
	return ST_PASS;
}

#define RUN(env, needs, steps) prog_run(env, needs, steps, sizeof(steps) / sizeof(steps[0]))

int st_fuse_prog_cp(struct st_env *env)
{
	static const struct step steps[] = {
		{ "make_src; cp -a \"$W/src\" \"$M/cpa\"", "same \"$W/src\" \"$B/cpa\"" },
		{ "cp -a \"$M/cpa\" \"$W/back\"; same \"$W/src\" \"$W/back\"; rm -r \"$M/cpa/dir\"",
		  "[ ! -e \"$B/cpa/dir\" ]; same \"$M/cpa\" \"$B/cpa\"" },
	};
	return RUN(env, "cp", steps);
}

int st_fuse_prog_tar(struct st_env *env)
{
	static const struct step steps[] = {
		{ "make_src; tar --format=posix -C \"$W/src\" -cf \"$W/in.tar\" .\n"
		  "mkdir \"$M/tarx\"; tar -C \"$M/tarx\" -xf \"$W/in.tar\"\n"
		  "tar --format=posix -C \"$M/tarx\" -cf \"$M/out.tar\" .",
		  "same \"$W/src\" \"$B/tarx\"; mkdir \"$W/back\"; tar -C \"$W/back\" -xf "
		  "\"$B/out.tar\"; same \"$W/src\" \"$W/back\"" },
	};
	return RUN(env, "tar", steps);
}

int st_fuse_prog_rsync(struct st_env *env)
{
	static const struct step steps[] = {
		{ "make_src; rsync -a \"$W/src/\" \"$M/rs/\"", "same \"$W/src\" \"$B/rs\"" },
		{ "printf 'changed\\n' >>\"$W/src/dir/sub/zero\"; rm \"$W/src/dir/run.sh\"\n"
		  "rsync -a --delete \"$W/src/\" \"$M/rs/\"",
		  "same \"$W/src\" \"$B/rs\"" },
		{ "rsync -a --inplace \"$W/src/\" \"$M/rs2/\"", "same \"$W/src\" \"$B/rs2\"" },
	};
	return RUN(env, "rsync", steps);
}

/*
 * The checks on B use --no-optional-locks: a checker must not write what it
 * checks, and `git status` otherwise rewrites .git/index there. (Such a
 * rewrite, index.lock renamed over index, is not always picked up by the
 * plain-dir side's scanner: a known engine issue, reproduced with two
 * plain dirs.)
 */
int st_fuse_prog_git(struct st_env *env)
{
	static const struct step steps[] = {
		{ "g() { git -C \"$M/repo\" \"$@\"; }\n"
		  "git init -q -b main \"$M/repo\"; printf 'one\\n' >\"$M/repo/f\"\n"
		  "mkdir \"$M/repo/d\"; printf 'two\\n' >\"$M/repo/d/g\"\n"
		  "g add -A; g commit -q -m first; g branch topic; g checkout -q topic\n"
		  "printf 'topic\\n' >>\"$M/repo/f\"; g commit -q -am second; g checkout -q main\n"
		  "[ -z \"$(g status --porcelain)\" ]",
		  "h() { git --no-optional-locks -C \"$B/repo\" \"$@\"; }\n"
		  "h fsck --strict --no-progress; [ \"$(h rev-list --count topic)\" = 2 ]\n"
		  "[ \"$(cat \"$B/repo/f\")\" = one ]; [ \"$(h symbolic-ref --short HEAD)\" = main ]\n"
		  "[ -z \"$(h status --porcelain)\" ]" },
		{ "git -C \"$M/repo\" checkout -q topic; [ -z \"$(git -C \"$M/repo\" status "
		  "--porcelain)\" ]",
		  "[ \"$(cat \"$B/repo/f\")\" = \"$(printf 'one\\ntopic')\" ]\n"
		  "[ \"$(git -C \"$B/repo\" symbolic-ref --short HEAD)\" = topic ]\n"
		  "[ -z \"$(git --no-optional-locks -C \"$B/repo\" status --porcelain)\" ]" },
		{ "[ -z \"$(git -C \"$M/repo\" status --porcelain)\" ]\n"
		  "git clone -q \"$M/repo\" \"$M/clone\"",
		  "[ \"$(git -C \"$B/clone\" rev-parse HEAD)\" = \"$(git -C \"$B/repo\" rev-parse "
		  "HEAD)\" ]\n"
		  "[ -z \"$(git --no-optional-locks -C \"$B/clone\" status --porcelain)\" ]" },
	};
	return RUN(env, "git", steps);
}

int st_fuse_prog_sqlite(struct st_env *env)
{
	static const struct step steps[] = {
		{ "sqlite3 \"$M/db.sqlite\" 'create table t(k integer primary key, v text);'\n"
		  "i=0; while [ $i -lt 50 ]; do\n"
		  "  sqlite3 \"$M/db.sqlite\" \"insert into t(v) values ('row $i');\"; i=$((i + 1))\n"
		  "done\n"
		  "sqlite3 \"$M/db.sqlite\" \"begin; update t set v = v || '!' where k % 2 = 0; "
		  "commit;\"\n"
		  "[ \"$(sqlite3 \"$M/db.sqlite\" 'select count(*) from t;')\" = 50 ]",
		  "[ \"$(sqlite3 \"$B/db.sqlite\" \"select count(*) from t where v like '%!';\")\" "
		  "= 25 ]\n"
		  "[ \"$(sqlite3 \"$B/db.sqlite\" 'pragma integrity_check;')\" = ok ]" },
		{ "sqlite3 \"$M/wal.sqlite\" 'pragma journal_mode=wal; create table w(x); insert "
		  "into w values (1),(2);' >/dev/null",
		  "[ \"$(sqlite3 \"$B/wal.sqlite\" 'select sum(x) from w;')\" = 3 ]" },
	};
	return RUN(env, "sqlite3", steps);
}

int st_fuse_prog_make(struct st_env *env)
{
	static const struct step steps[] = {
		{ "P=$M/proj; mkdir \"$P\"\n"
		  "printf '#include <stdio.h>\\nint answer(void);\\nint main(void) { "
		  "printf(\"%%d\\\\n\", answer()); return 0; }\\n' >\"$P/main.c\"\n"
		  "printf 'int answer(void) { return 42; }\\n' >\"$P/answer.c\"\n"
		  "printf 'prog: main.o answer.o\\n\\t$(CC) -o $@ main.o answer.o\\n' "
		  ">\"$P/Makefile\"\n"
		  "make -s -C \"$P\"; [ \"$(\"$P/prog\")\" = 42 ]",
		  "[ \"$(\"$B/proj/prog\")\" = 42 ]; make -s -q -C \"$B/proj\" prog" },
		{ "printf 'int answer(void) { return 43; }\\n' >\"$M/proj/answer.c\"\n"
		  "make -s -C \"$M/proj\"; [ \"$(\"$M/proj/prog\")\" = 43 ]",
		  "[ \"$(\"$B/proj/prog\")\" = 43 ]; make -s -q -C \"$B/proj\" prog" },
	};
	return RUN(env, "make cc", steps);
}

int st_fuse_prog_editor(struct st_env *env)
{
	static const struct step steps[] = {
		{ "printf 'version 1\\n' >\"$M/doc.txt\"",
		  "[ \"$(cat \"$B/doc.txt\")\" = 'version 1' ]" },
		/* save the way vim and most editors do: temp file, fsync, rename over */
		{ "printf 'version 2\\n' >\"$M/.doc.txt.swp\"; sync \"$M/.doc.txt.swp\"\n"
		  "mv \"$M/.doc.txt.swp\" \"$M/doc.txt\"; [ \"$(cat \"$M/doc.txt\")\" = 'version 2' ]",
		  "[ \"$(cat \"$B/doc.txt\")\" = 'version 2' ]; [ ! -e \"$B/.doc.txt.swp\" ]" },
		/* a backup copy, then a write in place (emacs style) */
		{ "cp -p \"$M/doc.txt\" \"$M/doc.txt~\"; printf 'version 3\\n' >\"$M/doc.txt\"",
		  "[ \"$(cat \"$B/doc.txt~\")\" = 'version 2' ]; [ \"$(cat \"$B/doc.txt\")\" = "
		  "'version 3' ]" },
		/* the other way: saved by rename on the dir side, read on the mount */
		{ "printf 'version 4\\n' >\"$B/.doc.new\"; mv \"$B/.doc.new\" \"$B/doc.txt\"",
		  "[ \"$(cat \"$M/doc.txt\")\" = 'version 4' ]; [ ! -e \"$M/.doc.new\" ]" },
	};
	return RUN(env, "cat mv sync", steps);
}
