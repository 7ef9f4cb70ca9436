/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The simulation's user: random operations on the two trees through the
 * real file system, the model of what they wrote and deleted, and the
 * invariants checked once everything settled (sim.h, docs/SIM.md).
 *
 * The model. Every content a user writes is a version, known by its file
 * hash (the index's, blocks_hash_buf). A version is dead once a user
 * overwrites or deletes a file holding it; every live version must be
 * somewhere in the final tree (under its name, a new name or a conflict
 * copy). Paths keep the op and epoch (settles so far) of their last write
 * and last deletion: a path deleted after a settle that followed its last
 * write must stay gone (no resurrected deletes), and a conflict copy is
 * allowed only for a path both sides wrote within one epoch.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "sim.h"
#include "sync/blocks.h"
#include "sync/scan.h"

#define DEPTH_MAX 2 /* directories above a file at most */
#define CONFLICT_TAG ".sync-conflict-"
#define CONFLICT_TAG_SUFFIX 38 /* CONFLICT_SUFFIX_LEN: the tag, date, time and peer */

static const char *const names[] = {"f0", "f1", "f2.txt", "f3", "g", "d0", "d1", "h.md"};
#define NNAMES (sizeof(names) / sizeof(names[0]))
/* --no-type-clash: a name is always of one kind */
static const char *const fnames[] = {"f0", "f1", "f2.txt", "f3", "g"};
static const char *const dnames[] = {"d0", "d1"};
static const char *const lnames[] = {"l0", "h.md"};

/* ---- the tree as it is on disk ---- */

struct tent {
	char path[SIM_PATH_MAX];
	char kind; /* 'f', 'd', 'l' */
	mode_t mode;
	uint64_t size;
	int64_t mtime_ns;
	uint64_t blocks;
	char target[SIM_PATH_MAX];
};

struct tree {
	struct tent *v;
	size_t n, cap;
};

static void tree_free(struct tree *t)
{
	free(t->v);
	*t = (struct tree){0};
}

static int tent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct tent *)a)->path, ((const struct tent *)b)->path);
}

static void walk(const char *root, const char *rel, struct tree *t, unsigned *ntmp)
{
	char dir[2 * SIM_PATH_MAX];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s%s%s", root, rel[0] ? "/" : "", rel);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		char full[3 * SIM_PATH_MAX];
		struct stat st;
		struct tent *x;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!rel[0] && !strcmp(de->d_name, SCAN_MARKER))
			continue;
		if (!strncmp(de->d_name, SCAN_TMP_PREFIX, strlen(SCAN_TMP_PREFIX))) {
			if (ntmp)
				(*ntmp)++;
			continue;
		}
		snprintf(full, sizeof(full), "%s/%s", dir, de->d_name);
		if (lstat(full, &st) < 0)
			continue;
		if (t->n == t->cap) {
			t->cap = t->cap ? 2 * t->cap : 32;
			t->v = realloc(t->v, t->cap * sizeof(*t->v));
			if (!t->v)
				abort();
		}
		x = &t->v[t->n++];
		memset(x, 0, sizeof(*x));
		snprintf(x->path, sizeof(x->path), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
		x->kind = S_ISDIR(st.st_mode) ? 'd' : S_ISLNK(st.st_mode) ? 'l' : 'f';
		x->mode = st.st_mode & 0777;
		x->size = (uint64_t)st.st_size;
		x->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		x->blocks = (uint64_t)st.st_blocks;
		if (x->kind == 'l') {
			ssize_t n = readlink(full, x->target, sizeof(x->target) - 1);
			x->target[n > 0 ? n : 0] = '\0';
		}
		if (x->kind == 'd') {
			char sub[SIM_PATH_MAX];
			snprintf(sub, sizeof(sub), "%s", x->path);
			walk(root, sub, t, ntmp);
		}
	}
	closedir(d);
}

static void tree_read(const struct sim_peer *p, struct tree *t, unsigned *ntmp)
{
	*t = (struct tree){0};
	walk(p->root, "", t, ntmp);
	if (t->n)
		qsort(t->v, t->n, sizeof(*t->v), tent_cmp);
}

static const struct tent *tree_get(const struct tree *t, const char *path)
{
	struct tent key;

	if (!t->n)
		return NULL;
	snprintf(key.path, sizeof(key.path), "%s", path);
	return bsearch(&key, t->v, t->n, sizeof(*t->v), tent_cmp);
}

static unsigned depth(const char *path)
{
	unsigned n = 0;

	for (; *path; path++)
		n += *path == '/';
	return n;
}

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(path, dir, n) == 0 && path[n] == '/';
}

int sim_fs_rmtree(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *de;

	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 ? -errno : 0;
	(void)chmod(path, 0700);
	d = opendir(path);
	if (d) {
		while ((de = readdir(d))) {
			char sub[3 * SIM_PATH_MAX];
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			(void)sim_fs_rmtree(sub);
		}
		closedir(d);
	}
	return rmdir(path) < 0 ? -errno : 0;
}

void sim_fs_dir_mtimes(struct sim *s, const struct sim_peer *p)
{
	struct timespec ts[2] = {
		{0, UTIME_OMIT},
		{.tv_sec = s->wall_ns / 1000000000, .tv_nsec = s->wall_ns % 1000000000}};
	struct tree t;

	tree_read(p, &t, NULL);
	for (size_t i = 0; i < t.n; i++) {
		char full[2 * SIM_PATH_MAX];
		if (t.v[i].kind != 'd')
			continue;
		snprintf(full, sizeof(full), "%s/%s", p->root, t.v[i].path);
		(void)utimensat(AT_FDCWD, full, ts, 0);
	}
	tree_free(&t);
}

/* ---- the model ---- */

static struct sim_prec *prec_get(struct sim *s, const char *path)
{
	for (size_t i = 0; i < s->nprec; i++)
		if (!strcmp(s->prec[i].path, path))
			return &s->prec[i];
	if (s->nprec == s->prec_cap) {
		s->prec_cap = s->prec_cap ? 2 * s->prec_cap : 64;
		s->prec = realloc(s->prec, s->prec_cap * sizeof(*s->prec));
		if (!s->prec)
			abort();
	}
	struct sim_prec *r = &s->prec[s->nprec++];
	memset(r, 0, sizeof(*r));
	r->path = strdup(path);
	if (!r->path)
		abort();
	return r;
}

static const struct sim_prec *prec_find(const struct sim *s, const char *path)
{
	for (size_t i = 0; i < s->nprec; i++)
		if (!strcmp(s->prec[i].path, path))
			return &s->prec[i];
	return NULL;
}

/* Remembers path as touched by the current operation (first and last). */
static void touched(struct sim *s, const char *path)
{
	int i = s->touched[0][0] ? 1 : 0;

	if (strcmp(s->touched[0], path))
		snprintf(s->touched[i], sizeof(s->touched[i]), "%s", path);
}

/*
 * A user on side wrote path; its parents live again. Concurrency is by
 * subtree: a path both sides wrote at or beneath within one epoch may
 * conflict (a file made where the other side wrote into a directory).
 */
static void mark_write(struct sim *s, int side, const char *path)
{
	char p[SIM_PATH_MAX];

	touched(s, path);
	snprintf(p, sizeof(p), "%s", path);
	for (;;) {
		struct sim_prec *r = prec_get(s, p);
		r->w_op = s->opno;
		r->w_epoch = s->epoch;
		if (r->wep[!side] == s->epoch + 1)
			r->conc = true;
		r->wep[side] = s->epoch + 1;
		char *slash = strrchr(p, '/');
		if (!slash)
			break;
		*slash = '\0';
	}
}

/* The engine made path (a conflict copy, from its log line): a write of
 * no user's, for the resurrection check. */
void sim_fs_engine_wrote(struct sim *s, const char *path)
{
	struct sim_prec *r = prec_get(s, path);

	r->w_op = s->opno;
	r->w_epoch = s->epoch;
}

static void mark_delete(struct sim *s, const char *path)
{
	struct sim_prec *r = prec_get(s, path);

	touched(s, path);
	r->d_op = s->opno;
	r->d_epoch = s->epoch;
}

static struct sim_ver *ver_find(struct sim *s, const uint8_t h[32])
{
	for (size_t i = 0; i < s->nver; i++)
		if (!memcmp(s->ver[i].h, h, 32))
			return &s->ver[i];
	return NULL;
}

static void ver_add(struct sim *s, const struct sim_peer *p, const uint8_t *data, size_t len)
{
	struct sim_ver *v;
	uint8_t h[32];

	if (blocks_hash_buf(data, len, NULL, NULL, h) < 0)
		abort();
	v = ver_find(s, h);
	if (!v) {
		if (s->nver == s->ver_cap) {
			s->ver_cap = s->ver_cap ? 2 * s->ver_cap : 64;
			s->ver = realloc(s->ver, s->ver_cap * sizeof(*s->ver));
			if (!s->ver)
				abort();
		}
		v = &s->ver[s->nver++];
	}
	memcpy(v->h, h, 32);
	v->dead = false;
	v->op = s->opno;
	v->side = p->name;
	v->size = len;
}

void sim_fs_model_free(struct sim *s)
{
	for (size_t i = 0; i < s->nprec; i++)
		free(s->prec[i].path);
	free(s->prec);
	free(s->ver);
	s->prec = NULL;
	s->ver = NULL;
	s->nprec = s->nver = 0;
}

/* The hash the lazy peer's index holds for the inode st (its
 * placeholder's content), else for path. The inode first: a placeholder
 * renamed since the last scan over a file the index knows at path is
 * still the content recorded under its old name (long-run seed 2000504). */
static int index_hash(const struct sim_peer *p, const char *path, const struct stat *st,
		      uint8_t h[32])
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	int r = -ENOENT;

	if (sqlite3_open_v2(p->index, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		goto out;
	for (int by_ino = 1; by_ino >= 0 && r < 0; by_ino--) {
		const char *sql =
			by_ino ? "SELECT hash FROM entries WHERE ino = ?1 AND dev = ?2 "
				 "AND deleted = 0"
			       : "SELECT hash FROM entries WHERE path = ?1 AND deleted = 0";
		if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
			break;
		if (by_ino) {
			sqlite3_bind_int64(q, 1, (sqlite3_int64)st->st_ino);
			sqlite3_bind_int64(q, 2, (sqlite3_int64)st->st_dev);
		} else {
			sqlite3_bind_blob(q, 1, path, (int)strlen(path), SQLITE_STATIC);
		}
		if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_bytes(q, 0) == 32) {
			memcpy(h, sqlite3_column_blob(q, 0), 32);
			r = 0;
		}
		sqlite3_finalize(q);
		q = NULL;
	}
out:
	sqlite3_close(db);
	return r;
}

static int file_hash(const char *full, uint8_t h[32])
{
	int fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), r;

	if (fd < 0)
		return -errno;
	r = blocks_hash_fd(fd, NULL, NULL, h, NULL);
	close(fd);
	return r;
}

/* The version the user of p has at path, which an operation is about to
 * overwrite or delete: it is dead now. Returns it when it was alive (else
 * NULL), for an operation that turns out to change nothing. */
static struct sim_ver *kill_version(struct sim *s, const struct sim_peer *p, const char *path)
{
	char full[2 * SIM_PATH_MAX];
	struct stat st;
	uint8_t h[32];
	struct sim_ver *v;

	snprintf(full, sizeof(full), "%s/%s", p->root, path);
	if (lstat(full, &st) < 0 || !S_ISREG(st.st_mode))
		return NULL;
	if (p->lazy && (uint64_t)st.st_blocks * 512 < (uint64_t)st.st_size) {
		/* a placeholder: its holes are not its content */
		if (index_hash(p, path, &st, h) < 0)
			return NULL;
	} else if (file_hash(full, h) < 0) {
		return NULL;
	}
	v = ver_find(s, h);
	if (!v || v->dead)
		return NULL;
	v->dead = true;
	sim_trace(s, "  version of op %" PRIu64 " %c is overwritten", v->op, v->side);
	return v;
}

/* ---- operations ---- */

static struct timespec next_mtime(struct sim *s)
{
	s->wall_ns += 1000000 + (int64_t)sim_rng_below(&s->rng, 1000000000);
	return (struct timespec){.tv_sec = s->wall_ns / 1000000000,
				 .tv_nsec = s->wall_ns % 1000000000};
}

static void set_mtime(struct sim *s, const char *full, bool link)
{
	struct timespec ts[2] = {{0, UTIME_OMIT}, next_mtime(s)};

	(void)utimensat(AT_FDCWD, full, ts, link ? AT_SYMLINK_NOFOLLOW : 0);
}

/*
 * Directory mtimes come from the kernel's clock whenever an entry changes
 * inside; they are not synced, but the scanner records a new directory's
 * (and the peer sees it in INDEX_UPDATE). So after each operation the
 * directories it touched get a virtual one, as the files do.
 */
static void touch_dirs(struct sim *s, const struct sim_peer *p, const char *path)
{
	char full[2 * SIM_PATH_MAX], *slash;
	struct stat st;

	snprintf(full, sizeof(full), "%s/%s", p->root, path);
	if (lstat(full, &st) == 0 && S_ISDIR(st.st_mode))
		set_mtime(s, full, false);
	slash = strrchr(full, '/');
	if (slash && slash - full > (ptrdiff_t)strlen(p->root)) {
		*slash = '\0';
		set_mtime(s, full, false);
	}
}

static size_t pick_size(struct sim *s)
{
	uint64_t k = sim_rng_below(&s->rng, 1000);

	if (k < 600)
		return (size_t)sim_rng_below(&s->rng, 200);
	if (k < 900)
		return 200 + (size_t)sim_rng_below(&s->rng, 8000);
	if (k < 995)
		return 8192 + (size_t)sim_rng_below(&s->rng, 60000);
	return BLOCKS_SIZE + (size_t)sim_rng_below(&s->rng, 1200000); /* more than one block */
}

/* n bytes that no other op wrote: the op number first. */
static uint8_t *gen(struct sim *s, const struct sim_peer *p, size_t n)
{
	uint8_t *b = malloc(n + 32);
	char head[32];
	int hl;

	if (!b)
		abort();
	hl = snprintf(head, sizeof(head), "op%" PRIu64 "%c\n", s->opno, p->name);
	for (size_t i = 0; i < n; i += 8) {
		uint64_t x = sim_rng_next(&s->rng);
		memcpy(b + i, &x, 8);
	}
	memcpy(b, head, (size_t)hl < n ? (size_t)hl : n);
	return b;
}

static int write_file(struct sim *s, struct sim_peer *p, const char *path, size_t n)
{
	char full[2 * SIM_PATH_MAX];
	uint8_t *b = gen(s, p, n);
	int fd, r = 0;

	snprintf(full, sizeof(full), "%s/%s", p->root, path);
	kill_version(s, p, path);
	fd = open(full, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || (n && write(fd, b, n) != (ssize_t)n))
		r = -errno;
	if (fd >= 0)
		close(fd);
	if (r == 0) {
		set_mtime(s, full, false);
		ver_add(s, p, b, n);
		mark_write(s, p->id, path);
	}
	free(b);
	return r;
}

/* Re-reads path after an in-place change and records its new version. */
static void reversion(struct sim *s, struct sim_peer *p, const char *path)
{
	char full[2 * SIM_PATH_MAX];
	size_t len = 0;
	uint8_t *b;
	FILE *f;

	snprintf(full, sizeof(full), "%s/%s", p->root, path);
	f = fopen(full, "rb");
	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	b = malloc(len + 1);
	if (b && fread(b, 1, len, f) == len)
		ver_add(s, p, b, len);
	free(b);
	fclose(f);
	mark_write(s, p->id, path);
}

/* A random existing entry of kind (0: any) in t, or NULL. */
static const struct tent *pick(struct sim *s, const struct tree *t, char kind)
{
	size_t n = 0, k;

	for (size_t i = 0; i < t->n; i++)
		n += !kind || t->v[i].kind == kind;
	if (!n)
		return NULL;
	k = (size_t)sim_rng_below(&s->rng, n);
	for (size_t i = 0; i < t->n; i++)
		if ((!kind || t->v[i].kind == kind) && k-- == 0)
			return &t->v[i];
	return NULL;
}

/* A path whose parent is the root or an existing directory, not too deep;
 * kind: what it is for ('f', 'd', 'l'), or 0 (a rename of x). */
static void new_path(struct sim *s, const struct tree *t, char *out, char kind)
{
	size_t nd = 0, k;
	const char *parent = "";

	for (size_t i = 0; i < t->n; i++)
		nd += t->v[i].kind == 'd' && depth(t->v[i].path) < DEPTH_MAX;
	k = (size_t)sim_rng_below(&s->rng, nd + 2);
	for (size_t i = 0; i < t->n && k < nd; i++)
		if (t->v[i].kind == 'd' && depth(t->v[i].path) < DEPTH_MAX && k-- == 0)
			parent = t->v[i].path;
	const char *name = names[sim_rng_below(&s->rng, NNAMES)];
	if (s->no_type_clash && kind == 'd')
		name = dnames[sim_rng_below(&s->rng, 2)];
	else if (s->no_type_clash && kind == 'l')
		name = lnames[sim_rng_below(&s->rng, 2)];
	else if (s->no_type_clash)
		name = fnames[sim_rng_below(&s->rng, 5)];
	/* paths here are short (DEPTH_MAX levels of short names) */
	if (snprintf(out, SIM_PATH_MAX, "%s%s%s", parent, parent[0] ? "/" : "", name) >=
	    SIM_PATH_MAX)
		out[0] = '\0';
}

enum op {
	OP_CREATE,
	OP_EDIT,
	OP_SAMESIZE,
	OP_APPEND,
	OP_TRUNCATE,
	OP_RENAME,
	OP_RENAME_DIR,
	OP_DELETE,
	OP_RMDIR,
	OP_CHMOD,
	OP_MTIME,
	OP_SYMLINK,
	OP_MKDIR,
	OP_ENSURE,
	OP_COUNT
};

static const unsigned op_weight[OP_COUNT] = {
	[OP_CREATE] = 18,  [OP_EDIT] = 10,  [OP_SAMESIZE] = 6,	 [OP_APPEND] = 6,
	[OP_TRUNCATE] = 4, [OP_RENAME] = 8, [OP_RENAME_DIR] = 4, [OP_DELETE] = 8,
	[OP_RMDIR] = 3,	   [OP_CHMOD] = 5,  [OP_MTIME] = 5,	 [OP_SYMLINK] = 4,
	[OP_MKDIR] = 7,	   [OP_ENSURE] = 6,
};

static enum op pick_op(struct sim *s, bool lazy)
{
	unsigned total = 0, k;

	for (int i = 0; i < OP_COUNT; i++)
		total += (i == OP_ENSURE && !lazy) ? 0 : op_weight[i];
	k = (unsigned)sim_rng_below(&s->rng, total);
	for (int i = 0; i < OP_COUNT; i++) {
		unsigned w = (i == OP_ENSURE && !lazy) ? 0 : op_weight[i];
		if (k < w)
			return (enum op)i;
		k -= w;
	}
	return OP_CREATE;
}

/* Deletes x (a whole tree) as a user of p: its versions die, its paths are deleted. */
static void delete_entry(struct sim *s, struct sim_peer *p, const struct tree *t,
			 const struct tent *x)
{
	char full[2 * SIM_PATH_MAX];

	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->v[i].path, x->path) && !under(t->v[i].path, x->path))
			continue;
		if (t->v[i].kind == 'f')
			kill_version(s, p, t->v[i].path);
		mark_delete(s, t->v[i].path);
	}
	snprintf(full, sizeof(full), "%s/%s", p->root, x->path);
	(void)sim_fs_rmtree(full);
}

/* Whether the file at full has holes: on the lazy peer, a placeholder's. */
static bool sparse(const char *full)
{
	struct stat st;

	return lstat(full, &st) == 0 && S_ISREG(st.st_mode) &&
	       (uint64_t)st.st_blocks * 512 < (uint64_t)st.st_size;
}

/* The inode at full, 0 when there is none. */
static uint64_t ino_at(const char *full)
{
	struct stat st;

	return lstat(full, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/*
 * FUSE semantics on the lazy peer: a write that keeps bytes ensures the file
 * first. FUSE ensures the inode it then opens; the sim writes at the path,
 * and the deliveries that fill the file may also replace it there (the
 * peer's next version, a new placeholder): then the new file is ensured in
 * turn, as a user who opens it after that.
 */
static bool ensure_for_write(struct sim *s, struct sim_peer *p, const char *path)
{
	char full[2 * SIM_PATH_MAX];
	uint64_t ino;
	int tries = 0;

	if (!p->lazy)
		return true;
	snprintf(full, sizeof(full), "%s/%s", p->root, path);
	do {
		if (tries++ == 8)
			return false; /* replaced again and again: the op is skipped */
		ino = ino_at(full);
		if (sim_ensure(s, p, path) < 0)
			return false;
	} while (ino_at(full) != ino);
	if (sparse(full)) {
		/* the user would write into holes, as FUSE never lets one */
		sim_failf(s, "%s on %c is a placeholder after it was ensured", path, p->name);
		return false;
	}
	return true;
}

static bool do_op(struct sim *s, struct sim_peer *p, enum op op, const struct tree *t)
{
	char full[2 * SIM_PATH_MAX], path[SIM_PATH_MAX], dst[SIM_PATH_MAX];
	const struct tent *x = NULL, *y;
	struct stat st;
	int fd;

	switch (op) {
	case OP_CREATE:
		new_path(s, t, path, 'f');
		y = tree_get(t, path);
		if (y && y->kind != 'f')
			return false;
		sim_trace(s, "%c op %" PRIu64 ": write %s", p->name, s->opno, path);
		return write_file(s, p, path, pick_size(s)) == 0;
	case OP_EDIT:
		if (!(x = pick(s, t, 'f')))
			return false;
		sim_trace(s, "%c op %" PRIu64 ": rewrite %s", p->name, s->opno, x->path);
		return write_file(s, p, x->path, pick_size(s)) == 0;
	case OP_SAMESIZE:
	case OP_APPEND:
	case OP_TRUNCATE: {
		bool keep_mtime = op == OP_SAMESIZE && sim_rng_chance(&s->rng, 200), same = false;
		struct sim_ver *killed;
		if (!(x = pick(s, t, 'f')) || (op != OP_APPEND && x->size == 0))
			return false;
		snprintf(path, sizeof(path), "%s", x->path);
		if (!ensure_for_write(s, p, path))
			return false;
		snprintf(full, sizeof(full), "%s/%s", p->root, path);
		if (lstat(full, &st) < 0 || !S_ISREG(st.st_mode))
			return false;
		killed = kill_version(s, p, path);
		fd = open(full, O_RDWR | O_NOFOLLOW | O_CLOEXEC); /* read: see same */
		if (fd < 0)
			return false;
		if (op == OP_TRUNCATE) {
			off_t n = (off_t)sim_rng_below(&s->rng, (uint64_t)st.st_size);
			sim_trace(s, "%c op %" PRIu64 ": truncate %s to %lld", p->name, s->opno,
				  path, (long long)n);
			(void)!ftruncate(fd, n);
		} else {
			size_t n =
				op == OP_APPEND
					? 1 + (size_t)sim_rng_below(&s->rng, 5000)
					: (size_t)sim_rng_below(&s->rng, (uint64_t)st.st_size) + 1;
			off_t off = op == OP_APPEND
					    ? st.st_size
					    : (off_t)sim_rng_below(&s->rng,
								   (uint64_t)st.st_size - n + 1);
			uint8_t *b = gen(s, p, n), *old = malloc(n);
			sim_trace(s, "%c op %" PRIu64 ": %s %s %zu at %lld%s", p->name, s->opno,
				  op == OP_APPEND ? "append" : "same-size edit", path, n,
				  (long long)off, keep_mtime ? ", mtime kept" : "");
			/* A short edit (its op number head cut) may write the bytes
			 * already there: no new version, the old one as it was. */
			same = op == OP_SAMESIZE && old && pread(fd, old, n, off) == (ssize_t)n &&
			       !memcmp(old, b, n);
			(void)!pwrite(fd, b, n, off);
			free(old);
			free(b);
		}
		close(fd);
		if (keep_mtime) {
			struct timespec ts[2] = {{0, UTIME_OMIT}, st.st_mtim};
			(void)utimensat(AT_FDCWD, full, ts, 0);
		} else {
			set_mtime(s, full, false);
		}
		if (same) {
			sim_trace(s, "  (the same bytes: no new version)");
			if (killed)
				killed->dead = false;
			mark_write(s, p->id, path);
			return true;
		}
		reversion(s, p, path);
		return true;
	}
	case OP_RENAME:
	case OP_RENAME_DIR:
		if (!(x = pick(s, t, op == OP_RENAME_DIR ? 'd' : 0)))
			return false;
		new_path(s, t, dst, x->kind);
		y = tree_get(t, dst);
		if (!strcmp(dst, x->path) || under(dst, x->path) || (y && y->kind == 'd') ||
		    (y && x->kind == 'd'))
			return false;
		sim_trace(s, "%c op %" PRIu64 ": rename %s to %s", p->name, s->opno, x->path, dst);
		{
			char from[2 * SIM_PATH_MAX];
			snprintf(from, sizeof(from), "%s/%s", p->root, x->path);
			snprintf(full, sizeof(full), "%s/%s", p->root, dst);
			if (y)
				kill_version(s, p, dst);
			if (rename(from, full) < 0)
				return false;
		}
		for (size_t i = 0; i < t->n; i++) {
			if (strcmp(t->v[i].path, x->path) && !under(t->v[i].path, x->path))
				continue;
			mark_delete(s, t->v[i].path);
			snprintf(path, sizeof(path), "%s%s", dst, t->v[i].path + strlen(x->path));
			mark_write(s, p->id, path);
		}
		snprintf(s->touched[1], sizeof(s->touched[1]), "%s", dst);
		return true;
	case OP_DELETE:
		if (!(x = pick(s, t, 0)))
			return false;
		sim_trace(s, "%c op %" PRIu64 ": delete %s", p->name, s->opno, x->path);
		delete_entry(s, p, t, x);
		return true;
	case OP_RMDIR:
		if (!(x = pick(s, t, 'd')))
			return false;
		snprintf(full, sizeof(full), "%s/%s", p->root, x->path);
		if (rmdir(full) < 0)
			return false;
		sim_trace(s, "%c op %" PRIu64 ": rmdir %s", p->name, s->opno, x->path);
		mark_delete(s, x->path);
		return true;
	case OP_CHMOD: {
		static const mode_t fm[] = {0644, 0600, 0640, 0755, 0444, 0664};
		static const mode_t dm[] = {0755, 0700, 0750, 0775};
		if (!(x = pick(s, t, 0)) || x->kind == 'l')
			return false;
		mode_t m = x->kind == 'd' ? dm[sim_rng_below(&s->rng, 4)]
					  : fm[sim_rng_below(&s->rng, 6)];
		snprintf(full, sizeof(full), "%s/%s", p->root, x->path);
		sim_trace(s, "%c op %" PRIu64 ": chmod %s %o", p->name, s->opno, x->path, m);
		if (chmod(full, m) < 0)
			return false;
		mark_write(s, p->id, x->path);
		return true;
	}
	case OP_MTIME: {
		if (!(x = pick(s, t, 0)) || x->kind == 'd')
			return false;
		int64_t ns = s->wall_ns -
			     (int64_t)sim_rng_below(&s->rng, (uint64_t)30 * 86400 * 1000000000);
		struct timespec ts[2] = {{0, UTIME_OMIT},
					 {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000}};
		snprintf(full, sizeof(full), "%s/%s", p->root, x->path);
		sim_trace(s, "%c op %" PRIu64 ": touch %s %" PRId64, p->name, s->opno, x->path, ns);
		if (utimensat(AT_FDCWD, full, ts, AT_SYMLINK_NOFOLLOW) < 0)
			return false;
		mark_write(s, p->id, x->path);
		return true;
	}
	case OP_SYMLINK: {
		static const char *const targets[] = {"f0", "d0/f1", "nowhere", "g"};
		new_path(s, t, path, 'l');
		if (tree_get(t, path))
			return false;
		const char *tg = depth(path) && sim_rng_chance(&s->rng, 300)
					 ? "../f2.txt"
					 : targets[sim_rng_below(&s->rng, 4)];
		snprintf(full, sizeof(full), "%s/%s", p->root, path);
		sim_trace(s, "%c op %" PRIu64 ": symlink %s -> %s", p->name, s->opno, path, tg);
		if (symlink(tg, full) < 0)
			return false;
		set_mtime(s, full, true);
		mark_write(s, p->id, path);
		return true;
	}
	case OP_MKDIR:
		new_path(s, t, path, 'd');
		if (tree_get(t, path))
			return false;
		snprintf(full, sizeof(full), "%s/%s", p->root, path);
		sim_trace(s, "%c op %" PRIu64 ": mkdir %s", p->name, s->opno, path);
		if (mkdir(full, 0755) < 0)
			return false;
		mark_write(s, p->id, path);
		return true;
	case OP_ENSURE:
		if (!(x = pick(s, t, 'f')))
			return false;
		snprintf(path, sizeof(path), "%s", x->path);
		(void)sim_ensure(s, p, path);
		return true;
	case OP_COUNT:
		break;
	}
	return false;
}

void sim_fs_op(struct sim *s, struct sim_peer *p)
{
	struct tree t;
	enum op op = pick_op(s, p->lazy);

	s->opno++;
	s->st.ops++;
	tree_read(p, &t, NULL);
	s->touched[0][0] = s->touched[1][0] = '\0';
	if (do_op(s, p, op, &t)) {
		for (int i = 0; i < 2; i++)
			if (s->touched[i][0])
				touch_dirs(s, p, s->touched[i]);
	} else {
		s->st.ops_skipped++;
		sim_trace(s, "%c op %" PRIu64 " (%d) skipped", p->name, s->opno, (int)op);
	}
	tree_free(&t);
	if (getenv("SIM_DBG_FDINFO")) {
		char fn[64], line[256];
		snprintf(fn, sizeof(fn), "/proc/self/fdinfo/%d", engine_inotify_fd(p->e));
		FILE *f = fopen(fn, "r");
		while (f && fgets(line, sizeof(line), f))
			if (strstr(line, "inotify"))
				printf("   %c watch %s", p->name, line);
		if (f)
			fclose(f);
		tree_read(p, &t, NULL);
		for (size_t i = 0; i < t.n; i++) {
			struct stat st;
			char full[2 * SIM_PATH_MAX];
			snprintf(full, sizeof(full), "%s/%s", p->root, t.v[i].path);
			if (t.v[i].kind == 'd' && lstat(full, &st) == 0)
				printf("   %c dir %s ino %lx\n", p->name, t.v[i].path,
				       (unsigned long)st.st_ino);
		}
		tree_free(&t);
	}
}

/* Both users write one file at the same time (creating its directories). */
void sim_fs_concurrent(struct sim *s)
{
	struct tree t[2];
	char path[SIM_PATH_MAX];

	s->opno++;
	s->st.ops++;
	tree_read(&s->p[0], &t[0], NULL);
	tree_read(&s->p[1], &t[1], NULL);
	const struct tent *x = pick(s, &t[sim_rng_below(&s->rng, 2)], 'f');
	if (x)
		snprintf(path, sizeof(path), "%s", x->path);
	else
		new_path(s, &t[0], path, 'f');
	sim_trace(s, "op %" PRIu64 ": both write %s", s->opno, path);
	for (int i = 0; i < 2; i++) {
		struct sim_peer *p = &s->p[i];
		char dir[SIM_PATH_MAX], full[2 * SIM_PATH_MAX];
		const struct tent *y = tree_get(&t[i], path);
		char *slash;

		if (y && y->kind != 'f')
			continue;
		snprintf(dir, sizeof(dir), "%s", path);
		slash = strrchr(dir, '/');
		if (slash) {
			*slash = '\0';
			const struct tent *d = tree_get(&t[i], dir);
			if (d && d->kind != 'd')
				continue;
			if (!d) {
				/* its parents, as mkdir -p */
				for (char *q = dir; (q = strchr(q, '/')); q++) {
					*q = '\0';
					snprintf(full, sizeof(full), "%s/%s", p->root, dir);
					(void)mkdir(full, 0755);
					*q = '/';
				}
				snprintf(full, sizeof(full), "%s/%s", p->root, dir);
				if (mkdir(full, 0755) < 0 && errno != EEXIST)
					continue;
				mark_write(s, i, dir);
			}
		}
		if (write_file(s, p, path, pick_size(s)) == 0)
			touch_dirs(s, p, path);
	}
	tree_free(&t[0]);
	tree_free(&t[1]);
}

/* ---- the invariants ---- */

/* The path a conflict copy was made of, or false when path is none. */
static bool conflict_original(const char *path, char *out)
{
	const char *base = strrchr(path, '/'), *tag;

	base = base ? base + 1 : path;
	tag = strstr(base, CONFLICT_TAG);
	while (tag && strstr(tag + 1, CONFLICT_TAG)) /* a copy of a copy: the last one */
		tag = strstr(tag + 1, CONFLICT_TAG);
	if (!tag || strlen(tag) < CONFLICT_TAG_SUFFIX)
		return false;
	const char *rest = tag + CONFLICT_TAG_SUFFIX;
	if (rest[0] == '-' && rest[1] >= '0' && rest[1] <= '9') { /* conflict_name_nth */
		rest += 2;
		if (*rest >= '0' && *rest <= '9')
			rest++;
	}
	snprintf(out, SIM_PATH_MAX, "%.*s%s", (int)(tag - path), path, rest);
	return true;
}

/* Whether a path of the same name as path (in another directory) was
 * written on both sides in one epoch: a copy made there, moved with its
 * directory by a user's rename. */
static bool conc_elsewhere(const struct sim *s, const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	for (size_t i = 0; i < s->nprec; i++) {
		const char *b = strrchr(s->prec[i].path, '/');
		b = b ? b + 1 : s->prec[i].path;
		if (s->prec[i].conc && !strcmp(b, base))
			return true;
	}
	return false;
}

static void compare(struct sim *s, const struct tree *a, const struct tree *b)
{
	size_t i = 0, j = 0;

	while (!s->failed && (i < a->n || j < b->n)) {
		int c = i == a->n ? 1 : j == b->n ? -1 : strcmp(a->v[i].path, b->v[j].path);
		if (c < 0) {
			sim_failf(s, "trees differ: %s only on A", a->v[i].path);
			return;
		}
		if (c > 0) {
			sim_failf(s, "trees differ: %s only on B", b->v[j].path);
			return;
		}
		const struct tent *x = &a->v[i++], *y = &b->v[j++];
		if (x->kind != y->kind) {
			sim_failf(s, "trees differ: %s is %c on A, %c on B", x->path, x->kind,
				  y->kind);
			return;
		}
		if (x->kind != 'l' && x->mode != y->mode) {
			sim_failf(s, "trees differ: %s has mode %o on A, %o on B", x->path, x->mode,
				  y->mode);
			return;
		}
		if (x->kind == 'l' && strcmp(x->target, y->target)) {
			sim_failf(s, "trees differ: %s -> %s on A, -> %s on B", x->path, x->target,
				  y->target);
			return;
		}
		if (x->kind != 'd' && x->mtime_ns != y->mtime_ns) {
			sim_failf(s,
				  "trees differ: %s has mtime %" PRId64 " on A, %" PRId64 " on B",
				  x->path, x->mtime_ns, y->mtime_ns);
			return;
		}
		if (x->kind == 'f') {
			char fa[2 * SIM_PATH_MAX], fb[2 * SIM_PATH_MAX];
			uint8_t ha[32], hb[32];
			snprintf(fa, sizeof(fa), "%s/%s", s->p[0].root, x->path);
			snprintf(fb, sizeof(fb), "%s/%s", s->p[1].root, y->path);
			if (x->size != y->size || file_hash(fa, ha) < 0 || file_hash(fb, hb) < 0 ||
			    memcmp(ha, hb, 32)) {
				sim_failf(s,
					  "trees differ: the content of %s (%" PRIu64
					  " bytes on A, %" PRIu64 " on B)",
					  x->path, x->size, y->size);
				return;
			}
			sim_trace(s, "  %s %o %" PRIu64 " %02x%02x%02x%02x", x->path, x->mode,
				  x->size, ha[0], ha[1], ha[2], ha[3]);
		} else {
			sim_trace(s, "  %s %c %o %s", x->path, x->kind, x->mode, x->target);
		}
	}
}

void sim_fs_check(struct sim *s)
{
	struct tree a, b;
	unsigned ntmp = 0;

	if (s->p[1].lazy) {
		/* content on the lazy peer is checked by ensuring it, as a reader would */
		tree_read(&s->p[1], &b, NULL);
		for (size_t i = 0; i < b.n && !s->failed; i++)
			if (b.v[i].kind == 'f' && sim_ensure(s, &s->p[1], b.v[i].path) < 0)
				sim_failf(s, "cannot ensure %s on B after settling", b.v[i].path);
		tree_free(&b);
		if (!s->failed)
			sim_settle(s);
		if (s->failed)
			return;
	}
	tree_read(&s->p[0], &a, &ntmp);
	tree_read(&s->p[1], &b, &ntmp);
	sim_trace(s, "final tree: %zu entries", a.n);
	compare(s, &a, &b);
	/* every last write is somewhere */
	for (size_t i = 0; i < s->nver && !s->failed; i++) {
		const struct sim_ver *v = &s->ver[i];
		bool found = false;
		if (v->dead || v->size == 0)
			continue;
		for (size_t k = 0; k < a.n && !found; k++) {
			char full[2 * SIM_PATH_MAX];
			uint8_t h[32];
			if (a.v[k].kind != 'f' || a.v[k].size != v->size)
				continue;
			snprintf(full, sizeof(full), "%s/%s", s->p[0].root, a.v[k].path);
			found = file_hash(full, h) == 0 && !memcmp(h, v->h, 32);
		}
		if (!found)
			sim_failf(s,
				  "lost write: the %" PRIu64 " bytes %c wrote in op %" PRIu64
				  " are nowhere",
				  v->size, v->side, v->op);
	}
	/* no resurrected deletes */
	for (size_t i = 0; i < s->nprec && !s->failed; i++) {
		const struct sim_prec *r = &s->prec[i];
		if (r->d_op > r->w_op && r->d_epoch > r->w_epoch && tree_get(&a, r->path))
			sim_failf(s,
				  "resurrected: %s was deleted in op %" PRIu64
				  " after a settle that followed its last write (op %" PRIu64
				  "), and it is back",
				  r->path, r->d_op, r->w_op);
	}
	/* conflict copies only for concurrent edits */
	for (size_t i = 0; i < a.n && !s->failed; i++) {
		char orig[SIM_PATH_MAX];
		const struct sim_prec *r;
		if (!conflict_original(a.v[i].path, orig))
			continue;
		s->st.conflicts++;
		/* a copy a user moved here (with its directory) was made elsewhere */
		r = prec_find(s, a.v[i].path);
		if (r && (r->wep[0] || r->wep[1]))
			continue;
		r = prec_find(s, orig);
		if ((!r || !r->conc) && conc_elsewhere(s, orig))
			continue; /* its directory was renamed since */
		if (!r || !r->conc)
			sim_failf(s,
				  "conflict copy %s, though %s was not written on both sides "
				  "between two settles",
				  a.v[i].path, orig);
	}
	if (ntmp)
		sim_trace(s, "temp files left: %u", ntmp);
	tree_free(&a);
	tree_free(&b);
}
