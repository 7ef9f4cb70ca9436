/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Sync scenarios: tree snapshots and their comparison, hashes, random files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* SHA-256 as in sync/blocks.c: SHA-NI, 2.7x BLAKE2b here; a run hashes
 * GiBs of test files, so this is much of its CPU time */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include "st_sync.h"

#define IO_BUF (1u << 20)
#define SMALL_SHOWN 64 /* bytes of a differing file shown */
#define DIFF_NOTES_MAX 8
#define MARKER ".tandem"
#define TMP_PREFIX ".tandem-tmp-"

struct st_entry {
	char *path; /* share-relative, no leading slash */
	mode_t type; /* S_IFREG, S_IFDIR, S_IFLNK, other */
	mode_t mode; /* & 0777 */
	uint64_t size;
	int64_t mtime_ns;
	int64_t ctime_ns;
	dev_t dev;
	ino_t ino;
	uint8_t hash[32]; /* regular files */
	char *target; /* symlinks */
};

struct st_tree {
	struct st_entry *e;
	size_t n, cap;
	char *root; /* where it was scanned (NULL: a snapshot made otherwise) */
};

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static int hash_fd(int fd, uint8_t hash[32], uint64_t *size)
{
	SHA256_CTX st;
	struct stat sb;
	size_t cap = fstat(fd, &sb) == 0 && sb.st_size < IO_BUF ? (size_t)sb.st_size + 4096 : IO_BUF;
	uint8_t *buf = malloc(cap);
	uint64_t total = 0;
	ssize_t k;

	if (!buf)
		return -ENOMEM;
	(void)SHA256_Init(&st);
	while ((k = read(fd, buf, cap)) > 0) {
		(void)SHA256_Update(&st, buf, (size_t)k);
		total += (uint64_t)k;
	}
	free(buf);
	if (k < 0)
		return -errno;
	(void)SHA256_Final(hash, &st);
	if (size)
		*size = total;
	return 0;
}

int st_hash_file(const char *path, uint8_t hash[32], uint64_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int r;

	if (fd < 0)
		return -errno;
	r = hash_fd(fd, hash, size);
	close(fd);
	return r;
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

int st_write_random(const char *path, uint64_t seed, uint64_t size, uint8_t hash[32])
{
	SHA256_CTX st;
	uint64_t *buf = malloc(IO_BUF);
	uint64_t s = seed * 0x2545f4914f6cdd1dULL + 1, left = size;
	int fd, r = 0;

	if (!buf)
		return -ENOMEM;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		free(buf);
		return -errno;
	}
	(void)SHA256_Init(&st);
	while (left > 0) {
		size_t chunk = left < IO_BUF ? (size_t)left : IO_BUF;
		for (size_t i = 0; i < (chunk + 7) / 8; i++)
			buf[i] = splitmix64(&s);
		(void)SHA256_Update(&st, (const uint8_t *)buf, chunk);
		for (size_t off = 0; off < chunk;) {
			ssize_t k = write(fd, (const uint8_t *)buf + off, chunk - off);
			if (k < 0) {
				r = -errno;
				goto out;
			}
			off += (size_t)k;
		}
		left -= chunk;
	}
	if (hash)
		(void)SHA256_Final(hash, &st);
out:
	if (close(fd) < 0 && r == 0)
		r = -errno;
	free(buf);
	return r;
}

long st_vmhwm_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

void st_tree_free(struct st_tree *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->e[i].path);
		free(t->e[i].target);
	}
	free(t->e);
	free(t->root);
	free(t);
}

size_t st_tree_count(const struct st_tree *t)
{
	return t ? t->n : 0;
}

size_t st_tree_count_name(const struct st_tree *t, const char *needle)
{
	size_t n = 0;

	for (size_t i = 0; t && i < t->n; i++) {
		const char *slash = strrchr(t->e[i].path, '/');
		n += strstr(slash ? slash + 1 : t->e[i].path, needle) != NULL;
	}
	return n;
}

static int entry_cmp(const void *x, const void *y)
{
	return strcmp(((const struct st_entry *)x)->path, ((const struct st_entry *)y)->path);
}

static const struct st_entry *tree_find(const struct st_tree *t, const char *path)
{
	struct st_entry key = { .path = (char *)path };

	if (!t || !t->n)
		return NULL;
	return bsearch(&key, t->e, t->n, sizeof(key), entry_cmp);
}

static struct st_entry *tree_add(struct st_tree *t)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;
		struct st_entry *e = realloc(t->e, cap * sizeof(*e));
		if (!e)
			return NULL;
		t->e = e;
		t->cap = cap;
	}
	memset(&t->e[t->n], 0, sizeof(t->e[0]));
	return &t->e[t->n++];
}

/*
 * The hashes of big files seen by earlier scans, so that a scan without
 * prev (each st_wait_converged starts afresh) does not read hundreds of MiB
 * again: keyed like prev's reuse, by device, inode, size, mtime and ctime
 * (any write or rename changes the ctime); only for files of CACHE_MIN
 * bytes or more, which are not made and deleted by the dozen. Scenario
 * thread only.
 */
#define CACHE_SLOTS 16
#define CACHE_MIN (1u << 20)
static struct st_entry cache[CACHE_SLOTS];
static unsigned cache_next;

static bool same_file(const struct st_entry *a, const struct st_entry *b)
{
	return a->type == b->type && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

static bool cache_get(struct st_entry *e)
{
	for (size_t i = 0; e->size >= CACHE_MIN && i < CACHE_SLOTS; i++) {
		if (cache[i].size && same_file(&cache[i], e)) {
			memcpy(e->hash, cache[i].hash, 32);
			return true;
		}
	}
	return false;
}

static void cache_put(const struct st_entry *e)
{
	struct st_entry *c;

	if (e->size < CACHE_MIN)
		return;
	c = &cache[cache_next++ % CACHE_SLOTS];
	memset(c, 0, sizeof(*c));
	c->type = e->type;
	c->dev = e->dev;
	c->ino = e->ino;
	c->size = e->size;
	c->mtime_ns = e->mtime_ns;
	c->ctime_ns = e->ctime_ns;
	memcpy(c->hash, e->hash, 32);
}

static bool excluded(const char *rel, const char *name)
{
	if (!strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)))
		return true;
	return rel[0] == '\0' && !strcmp(name, MARKER);
}

/* Why the last st_tree_scan() of this thread failed, for the notes. */
static __thread char tree_why[ST_PATH_MAX + 64];

static int tree_fail(int r, const char *what, const char *path)
{
	snprintf(tree_why, sizeof(tree_why), "%s %s: %s", what, path, strerror(-r));
	return r;
}

/* Adds the entries under the directory dfd (share path rel) to t. */
static int scan_dir(int dfd, const char *rel, const struct st_tree *prev, struct st_tree *t,
		    int depth)
{
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (depth > 64)
		return -ELOOP;
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -errno;
	}
	while (r == 0 && (de = readdir(d))) {
		const char *name = de->d_name;
		struct stat st;
		struct st_entry *e;
		char sub[ST_PATH_MAX];

		if (!strcmp(name, ".") || !strcmp(name, "..") || excluded(rel, name))
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", name) >=
		    sizeof(sub)) {
			r = -ENAMETOOLONG;
			break;
		}
		if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = tree_fail(-errno, "lstat", sub);
			break;
		}
		e = tree_add(t);
		if (!e || !(e->path = strdup(sub))) {
			r = -ENOMEM;
			break;
		}
		e->type = st.st_mode & S_IFMT;
		e->mode = st.st_mode & 0777;
		e->size = (uint64_t)st.st_size;
		e->mtime_ns = ts_ns(&st.st_mtim);
		e->ctime_ns = ts_ns(&st.st_ctim);
		e->dev = st.st_dev;
		e->ino = st.st_ino;
		if (S_ISLNK(st.st_mode)) {
			char target[ST_PATH_MAX];
			ssize_t k = readlinkat(dirfd(d), name, target, sizeof(target) - 1);
			if (k < 0) {
				r = tree_fail(-errno, "readlink", sub);
				break;
			}
			target[k] = '\0';
			if (!(e->target = strdup(target)))
				r = -ENOMEM;
		} else if (S_ISREG(st.st_mode)) {
			const struct st_entry *old = tree_find(prev, sub);
			if (old && same_file(old, e)) {
				memcpy(e->hash, old->hash, 32);
				continue;
			}
			if (cache_get(e))
				continue;
			int fd = openat(dirfd(d), name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			struct stat st2;
			uint64_t size;
			if (fd < 0) {
				r = tree_fail(-errno, "open", sub);
				break;
			}
			r = hash_fd(fd, e->hash, &size);
			if (r < 0)
				tree_fail(r, "read", sub);
			/* changed while we read it: try again later */
			if (r == 0 && (fstat(fd, &st2) < 0 || size != e->size ||
				       ts_ns(&st2.st_ctim) != e->ctime_ns)) {
				snprintf(tree_why, sizeof(tree_why),
					 "%s changed while it was read (size %llu then %llu, ctime "
					 "%lld then %lld)",
					 sub, (unsigned long long)e->size, (unsigned long long)size,
					 (long long)e->ctime_ns, (long long)ts_ns(&st2.st_ctim));
				r = -EAGAIN;
			}
			if (r == 0)
				cache_put(e);
			close(fd);
		} else if (S_ISDIR(st.st_mode)) {
			int sfd = openat(dirfd(d), name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sfd < 0) {
				r = tree_fail(-errno, "opendir", sub);
				break;
			}
			r = scan_dir(sfd, sub, prev, t, depth + 1);
		}
	}
	closedir(d);
	return r;
}

struct st_tree *st_tree_scan(const char *root, const struct st_tree *prev)
{
	struct st_tree *t = calloc(1, sizeof(*t));
	int dfd;

	if (!t)
		return NULL;
	t->root = strdup(root);
	dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!t->root || dfd < 0 || scan_dir(dfd, "", prev, t, 0) < 0) {
		st_tree_free(t);
		return NULL;
	}
	if (t->n)
		qsort(t->e, t->n, sizeof(t->e[0]), entry_cmp);
	return t;
}

struct st_tree *st_pair_tree(const struct st_pair *p, int side, const struct st_tree *prev)
{
	char root[ST_PATH_MAX];

	if (!st_pair_path(p, side, "", root))
		return NULL;
	return st_tree_scan(root, prev);
}

struct st_tree *st_pair_snapshot(struct st_env *env, const struct st_pair *p, int side)
{
	uint64_t end = st_now_ms() + 5000;
	struct st_tree *t;

	while (!(t = st_pair_tree(p, side, NULL)) && st_now_ms() < end)
		st_sleep_ms(env, 20);
	if (!t)
		st_note(env, "no snapshot of %s for 5 s (%s)", st_side_name(side), tree_why);
	return t;
}

static bool under(const char *path, const char *prefix)
{
	size_t n;

	if (!prefix || !prefix[0])
		return true;
	n = strlen(prefix);
	return !strncmp(path, prefix, n) && (path[n] == '\0' || path[n] == '/');
}

static const char *type_name(mode_t type)
{
	switch (type) {
	case S_IFREG: return "file";
	case S_IFDIR: return "directory";
	case S_IFLNK: return "symlink";
	default: return "special file";
	}
}

static void fmt_ns(int64_t ns, char out[32])
{
	snprintf(out, 32, "%lld.%09lld", (long long)(ns / 1000000000), (long long)(ns % 1000000000));
}

/* Why x and y (same path) differ, or NULL. */
static const char *entry_diff(const struct st_entry *x, const struct st_entry *y, char *buf,
			      size_t len)
{
	char tx[32], ty[32];

	if (x->type != y->type) {
		snprintf(buf, len, "a %s vs a %s", type_name(x->type), type_name(y->type));
	} else if (x->mode != y->mode) {
		snprintf(buf, len, "mode %04o vs %04o", (unsigned)x->mode, (unsigned)y->mode);
	} else if (x->type == S_IFREG && (x->size != y->size || memcmp(x->hash, y->hash, 32))) {
		snprintf(buf, len, "content differs (%llu vs %llu bytes)",
			 (unsigned long long)x->size, (unsigned long long)y->size);
	} else if (x->type == S_IFLNK && strcmp(x->target, y->target)) {
		snprintf(buf, len, "target '%s' vs '%s'", x->target, y->target);
	} else if (x->type != S_IFDIR && x->mtime_ns != y->mtime_ns) {
		fmt_ns(x->mtime_ns, tx);
		fmt_ns(y->mtime_ns, ty);
		snprintf(buf, len, "mtime %s vs %s", tx, ty);
	} else {
		return NULL;
	}
	return buf;
}

/* Notes what a small file of t holds now, escaped (what differs shows). */
static void note_small(struct st_env *env, const struct st_tree *t, const struct st_entry *e,
		       const char *name)
{
	char path[ST_PATH_MAX], text[4 * SMALL_SHOWN + 1];
	uint8_t buf[SMALL_SHOWN];
	size_t o = 0;
	ssize_t n = -1;
	int fd, err = 0;

	if (!t->root || e->type != S_IFREG || e->size > SMALL_SHOWN)
		return;
	snprintf(path, sizeof(path), "%s/%s", t->root, e->path);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf));
		err = errno;
		close(fd);
	} else {
		err = errno;
	}
	for (ssize_t k = 0; k < n; k++)
		o += (size_t)snprintf(text + o, sizeof(text) - o,
				      buf[k] >= 0x20 && buf[k] < 0x7f && buf[k] != '\\' ? "%c"
										 : "\\x%02x",
				      buf[k]);
	text[o] = '\0';
	if (n < 0)
		st_note(env, "    %s holds now: (cannot read it: %s)", name, strerror(err));
	else
		st_note(env, "    %s holds now: \"%s\"", name, text);
}

bool st_tree_equal(struct st_env *env, const struct st_tree *x, const struct st_tree *y,
		   const char *prefix, const char *xname, const char *yname)
{
	size_t i = 0, j = 0, ndiff = 0;
	char why[ST_PATH_MAX * 2 + 64];

	if (!x || !y) {
		if (env)
			st_note(env, "no snapshot of %s (%s)", !x ? xname : yname, tree_why);
		return false;
	}
	while (i < x->n || j < y->n) {
		const struct st_entry *ex = i < x->n ? &x->e[i] : NULL;
		const struct st_entry *ey = j < y->n ? &y->e[j] : NULL;
		int c;

		if (ex && !under(ex->path, prefix)) {
			i++;
			continue;
		}
		if (ey && !under(ey->path, prefix)) {
			j++;
			continue;
		}
		c = !ex ? 1 : !ey ? -1 : strcmp(ex->path, ey->path);
		if (c != 0) {
			const struct st_entry *e = c < 0 ? ex : ey;
			if (env && ndiff < DIFF_NOTES_MAX)
				st_note(env, "  %s '%s' only in %s", type_name(e->type), e->path,
					c < 0 ? xname : yname);
			ndiff++;
			if (c < 0)
				i++;
			else
				j++;
			continue;
		}
		if (entry_diff(ex, ey, why, sizeof(why))) {
			if (env && ndiff < DIFF_NOTES_MAX) {
				st_note(env, "  '%s': %s (%s vs %s)", ex->path, why, xname, yname);
				if (!strncmp(why, "content", 7)) {
					note_small(env, x, ex, xname);
					note_small(env, y, ey, yname);
				}
			}
			ndiff++;
		}
		i++;
		j++;
	}
	if (env && ndiff > DIFF_NOTES_MAX)
		st_note(env, "  ... %zu differences in all", ndiff);
	return ndiff == 0;
}
