/* SPDX-License-Identifier: GPL-2.0-or-later */
/* `tandem up --mount DIR -o OPTIONS` (src/daemon/mountopt.c): which FUSE
 * options pass, which are refused and why, repeated -o. */
#include <errno.h>
#include <string.h>

#include "daemon/mountopt.h"
#include "tap.h"

TEST(accepted)
{
	char buf[MOUNTOPT_MAX] = "";
	struct err err = {.msg = ""};

	CHECK_INT_EQ(mountopt_add(buf, "allow_other", &err), 0);
	CHECK_STR_EQ(buf, "allow_other");
	CHECK_INT_EQ(mountopt_add(buf, "ro,noatime,noexec", &err), 0);
	CHECK_STR_EQ(buf, "allow_other,ro,noatime,noexec");
	/* a repeat is kept once; default_permissions is always on */
	CHECK_INT_EQ(mountopt_add(buf, "ro,default_permissions,allow_other", &err), 0);
	CHECK_STR_EQ(buf, "allow_other,ro,noatime,noexec");
	CHECK_STR_EQ(err.msg, "");
}

TEST(refused)
{
	char buf[MOUNTOPT_MAX] = "allow_other";
	struct err err = {.msg = ""};

	CHECK_INT_EQ(mountopt_add(buf, "ro,suid", &err), -EINVAL);
	CHECK(strstr(err.msg, "'suid'") != NULL && strstr(err.msg, "setuid") != NULL);
	CHECK_STR_EQ(buf, "allow_other"); /* untouched on failure, ro too */
	CHECK_INT_EQ(mountopt_add(buf, "dev", &err), -EINVAL);
	CHECK(strstr(err.msg, "device") != NULL);
	CHECK_INT_EQ(mountopt_add(buf, "fsname=x", &err), -EINVAL);
	CHECK(strstr(err.msg, "fsname=tandem") != NULL);
	CHECK_INT_EQ(mountopt_add(buf, "auto_unmount", &err), -EINVAL);
	CHECK(strstr(err.msg, "tandem down") != NULL);
	CHECK_INT_EQ(mountopt_add(buf, "writeback_cache", &err), -EINVAL);
	CHECK(strstr(err.msg, "unknown mount option 'writeback_cache'") != NULL);
	CHECK(strstr(err.msg, "allow_other") != NULL); /* says what is known */
	CHECK_INT_EQ(mountopt_add(buf, "allow_other=1", &err), -EINVAL);
	CHECK_INT_EQ(mountopt_add(buf, "ro,,rw", &err), -EINVAL);
	CHECK(strstr(err.msg, "empty") != NULL);
	CHECK_INT_EQ(mountopt_add(buf, "", &err), -EINVAL);
	CHECK_INT_EQ(mountopt_add(buf, "ro rw", &err), -EINVAL);
	CHECK_INT_EQ(mountopt_add(buf, "ro,rw", &err), -EINVAL);
	CHECK(strstr(err.msg, "'ro'") != NULL && strstr(err.msg, "'rw'") != NULL);
	CHECK_INT_EQ(mountopt_add(buf, "allow_root", &err), -EINVAL);
	CHECK(strstr(err.msg, "allow_other") != NULL);
	CHECK_STR_EQ(buf, "allow_other");
}

TEST(too_long)
{
	char buf[MOUNTOPT_MAX] = "";
	char big[MOUNTOPT_MAX * 2];
	struct err err = {.msg = ""};
	size_t n = 0;

	/* distinct names are few: a long list is mostly unknown names */
	while (n + 12 < sizeof(big)) {
		memcpy(big + n, "noatime,", 8);
		n += 8;
	}
	memcpy(big + n, "ro", 3);
	CHECK_INT_EQ(mountopt_add(buf, big, &err), 0);
	CHECK_STR_EQ(buf, "noatime,ro");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_INT_EQ(mountopt_add(buf, big, &err), -EINVAL);
	CHECK(strlen(err.msg) < sizeof(err.msg));
	CHECK_STR_EQ(buf, "noatime,ro");
}

TEST(has)
{
	char buf[MOUNTOPT_MAX] = "";

	REQUIRE(mountopt_add(buf, "allow_other,ro", NULL) == 0);
	CHECK(mountopt_has(buf, "ro"));
	CHECK(mountopt_has(buf, "allow_other"));
	CHECK(!mountopt_has(buf, "rw"));
	CHECK(!mountopt_has(buf, "allow"));
}

int main(void)
{
	RUN(accepted);
	RUN(refused);
	RUN(too_long);
	RUN(has);
	return tap_done();
}
