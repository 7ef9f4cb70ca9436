/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "base/encoding.h"
#include "base/fsutil.h"
#include "identity/identity.h"

#define IDENTITY_MAGIC "tandem-identity-v1 "
#define IDENTITY_FILE_MAX 256

int identity_new(const uint8_t *seed, struct identity **ret)
{
	struct identity *id;

	id = calloc(1, sizeof(*id));
	if (!id)
		return -ENOMEM;
	id->seed = sodium_malloc(IDENTITY_SEED_LEN);
	id->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
	if (!id->seed || !id->sk) {
		identity_free(id);
		return -ENOMEM;
	}
	if (seed)
		memcpy(id->seed, seed, IDENTITY_SEED_LEN);
	else
		randombytes_buf(id->seed, IDENTITY_SEED_LEN);
	crypto_sign_seed_keypair(id->pk, id->sk, id->seed);
	fp_from_pubkey(id->pk, &id->fp);
	*ret = id;
	return 0;
}

void identity_free(struct identity *id)
{
	if (!id)
		return;
	sodium_free(id->seed); /* wipes */
	sodium_free(id->sk);
	free(id);
}

int identity_save(const struct identity *id, const char *dir)
{
	char path[4096], tmp[4096];
	char line[IDENTITY_FILE_MAX];
	char b64[B64URL_LEN(IDENTITY_SEED_LEN) + 1];
	int fd = -1, r;
	size_t len;

	r = fs_mkdir_p(dir, 0700);
	if (r < 0)
		return r;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, IDENTITY_FILE) >= sizeof(path) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.%ld.tmp", dir, IDENTITY_FILE,
			     (long)getpid()) >= sizeof(tmp))
		return -ENAMETOOLONG;
	if (access(path, F_OK) == 0)
		return -EEXIST;

	b64url_encode(id->seed, IDENTITY_SEED_LEN, b64, sizeof(b64));
	len = (size_t)snprintf(line, sizeof(line),
			       "# tandem identity: secret, do not share or copy\n%s%s\n",
			       IDENTITY_MAGIC, b64);
	sodium_memzero(b64, sizeof(b64));

	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = fs_write_all(fd, line, len);
	if (r >= 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r >= 0)
		r = -errno;
	fd = -1;
	if (r < 0)
		goto out_unlink;
	/* link() fails with EEXIST instead of replacing: never overwrite. */
	if (link(tmp, path) < 0) {
		r = -errno;
		goto out_unlink;
	}
	r = fs_fsync_dir(dir);
out_unlink:
	unlink(tmp);
out:
	sodium_memzero(line, sizeof(line));
	return r;
}

int identity_load(const char *dir, struct identity **ret, int *ret_world_readable)
{
	char path[4096];
	char buf[IDENTITY_FILE_MAX + 1];
	uint8_t seed[IDENTITY_SEED_LEN];
	struct stat st;
	ssize_t n;
	int fd, r;
	char *line, *end;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, IDENTITY_FILE) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EBADMSG;
		goto out;
	}
	n = read(fd, buf, sizeof(buf));
	if (n < 0) {
		r = -errno;
		goto out;
	}
	if (n > IDENTITY_FILE_MAX) {
		r = -EBADMSG;
		goto out;
	}
	buf[n] = '\0';
	/* Skip comment lines; the key line is the first other line. */
	line = buf;
	while (*line == '#') {
		line = strchr(line, '\n');
		if (!line) {
			r = -EBADMSG;
			goto out;
		}
		line++;
	}
	if (strncmp(line, IDENTITY_MAGIC, strlen(IDENTITY_MAGIC)) != 0) {
		r = -EBADMSG;
		goto out;
	}
	line += strlen(IDENTITY_MAGIC);
	end = line + strcspn(line, "\n");
	if (end[0] == '\n' && end[1] != '\0') {
		r = -EBADMSG;
		goto out;
	}
	r = b64url_decode(line, (size_t)(end - line), seed, sizeof(seed));
	if (r != IDENTITY_SEED_LEN) {
		r = -EBADMSG;
		goto out;
	}
	r = identity_new(seed, ret);
	if (r >= 0 && ret_world_readable)
		*ret_world_readable = (st.st_mode & 077) != 0;
out:
	sodium_memzero(buf, sizeof(buf));
	sodium_memzero(seed, sizeof(seed));
	close(fd);
	return r;
}

void identity_sign(const struct identity *id, const uint8_t *msg, size_t len,
		   uint8_t sig[static IDENTITY_SIG_LEN])
{
	crypto_sign_detached(sig, NULL, msg, len, id->sk);
}

int identity_verify(const uint8_t pk[static IDENTITY_PK_LEN], const uint8_t *msg, size_t len,
		    const uint8_t sig[static IDENTITY_SIG_LEN])
{
	return crypto_sign_verify_detached(sig, msg, len, pk) == 0 ? 0 : -EBADMSG;
}
