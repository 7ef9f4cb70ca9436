/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Corpus replay driver: runs LLVMFuzzerTestOneInput on every file of the
 * directories (or files) given, so `meson test --suite fuzz` exercises each
 * decoder with its corpus on any compiler. Build with -Dfuzzing=true and
 * clang for the real libFuzzer binaries.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long len;

	if (!f) {
		fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		return -1;
	}
	buf = malloc(len ? (size_t)len : 1);
	if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	int n = 0, bad = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "cannot stat %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			bad += run_file(argv[i]) < 0;
			n++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		struct dirent *de;
		if (!d)
			return 1;
		while ((de = readdir(d))) {
			char path[4096];
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
			bad += run_file(path) < 0;
			n++;
		}
		closedir(d);
	}
	/* Also a few synthetic inputs: empty, all zero, all 0xff. */
	static uint8_t z[4096], f[4096];
	memset(f, 0xff, sizeof(f));
	LLVMFuzzerTestOneInput(z, 0);
	LLVMFuzzerTestOneInput(z, sizeof(z));
	LLVMFuzzerTestOneInput(f, sizeof(f));
	printf("replayed %d corpus inputs, %d unreadable\n", n, bad);
	if (n == 0) {
		fprintf(stderr, "no corpus inputs found\n");
		return 1;
	}
	return bad ? 1 : 0;
}
