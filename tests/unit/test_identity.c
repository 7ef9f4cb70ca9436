/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "identity/identity.h"
#include "tap.h"

static char dir[256];

static void write_file(const char *name, const char *content, mode_t mode)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	unlink(p);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd >= 0) {
		ssize_t n = write(fd, content, strlen(content));
		(void)n;
		fchmod(fd, mode);
		close(fd);
	}
}

TEST(save_load_roundtrip_mode_0600)
{
	struct identity *a, *b = NULL;
	char sub[512], p[600];
	struct stat st;
	int world = -1;

	snprintf(sub, sizeof(sub), "%s/nested/home", dir);
	REQUIRE(identity_new(NULL, &a) == 0);
	CHECK_INT_EQ(identity_save(a, sub), 0);
	snprintf(p, sizeof(p), "%s/identity.key", sub);
	REQUIRE(stat(p, &st) == 0);
	CHECK_INT_EQ(st.st_mode & 0777, 0600);
	REQUIRE(stat(sub, &st) == 0);
	CHECK_INT_EQ(st.st_mode & 0777, 0700);
	CHECK_INT_EQ(identity_load(sub, &b, &world), 0);
	REQUIRE(b != NULL);
	CHECK_INT_EQ(world, 0);
	CHECK(memcmp(a->pk, b->pk, 32) == 0);
	CHECK(fp_equal(&a->fp, &b->fp));
	identity_free(b);

	/* never overwrites */
	struct identity *c;
	REQUIRE(identity_new(NULL, &c) == 0);
	CHECK_INT_EQ(identity_save(c, sub), -EEXIST);
	b = NULL;
	CHECK_INT_EQ(identity_load(sub, &b, NULL), 0);
	if (b)
		CHECK(fp_equal(&a->fp, &b->fp));
	identity_free(b);
	identity_free(c);
	identity_free(a);
	/* no temp file left behind */
	snprintf(p, sizeof(p), "%s/.identity.key.%ld.tmp", sub, (long)getpid());
	CHECK(access(p, F_OK) < 0);
}

TEST(load_errors)
{
	struct identity *id = NULL;
	int world = 0;

	CHECK_INT_EQ(identity_load("/nonexistent-tandem-dir", &id, NULL), -ENOENT);
	write_file("identity.key", "hello\n", 0600);
	CHECK_INT_EQ(identity_load(dir, &id, NULL), -EBADMSG);
	write_file("identity.key", "tandem-identity-v1 AAAA\n", 0600);
	CHECK_INT_EQ(identity_load(dir, &id, NULL), -EBADMSG);
	write_file("identity.key", "tandem-identity-v1 \n", 0600);
	CHECK_INT_EQ(identity_load(dir, &id, NULL), -EBADMSG);
	write_file("identity.key", "# only a comment", 0600);
	CHECK_INT_EQ(identity_load(dir, &id, NULL), -EBADMSG);
	/* valid seed followed by junk lines */
	write_file("identity.key",
		   "tandem-identity-v1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nextra\n", 0600);
	CHECK_INT_EQ(identity_load(dir, &id, NULL), -EBADMSG);
	/* the all-zero seed, readable by others: loads, flagged */
	write_file("identity.key",
		   "# c\ntandem-identity-v1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", 0644);
	CHECK_INT_EQ(identity_load(dir, &id, &world), 0);
	CHECK_INT_EQ(world, 1);
	identity_free(id);
	id = NULL;
	/* a huge file is refused, not read whole */
	char big[2048];
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	write_file("identity.key", big, 0600);
	CHECK_INT_EQ(identity_load(dir, &id, NULL), -EBADMSG);
	CHECK(id == NULL);
	/* a directory in its place */
	char p[512];
	snprintf(p, sizeof(p), "%s/identity.key", dir);
	unlink(p);
	mkdir(p, 0700);
	CHECK(identity_load(dir, &id, NULL) < 0);
	rmdir(p);
}

TEST(sign_verify)
{
	struct identity *a, *b;
	uint8_t sig[64];
	const uint8_t msg[] = "hello";

	REQUIRE(identity_new(NULL, &a) == 0);
	REQUIRE(identity_new(NULL, &b) == 0);
	identity_sign(a, msg, sizeof(msg), sig);
	CHECK_INT_EQ(identity_verify(a->pk, msg, sizeof(msg), sig), 0);
	CHECK_INT_EQ(identity_verify(b->pk, msg, sizeof(msg), sig), -EBADMSG);
	sig[3] ^= 1;
	CHECK_INT_EQ(identity_verify(a->pk, msg, sizeof(msg), sig), -EBADMSG);
	identity_free(a);
	identity_free(b);
}

int main(void)
{
	char cmd[300];
	if (sodium_init() < 0)
		return 99;
	snprintf(dir, sizeof(dir), "/tmp/tandem-test-identity-XXXXXX");
	if (!mkdtemp(dir))
		return 99;
	RUN(save_load_roundtrip_mode_0600);
	RUN(load_errors);
	RUN(sign_verify);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 99;
	return tap_done();
}
