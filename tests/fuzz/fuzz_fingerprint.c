/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Fuzzes the fingerprint parser: any text from a user. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fingerprint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fingerprint fp;
	struct err err;
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (fp_parse(s, &fp, &err) == 0) {
		/* Whatever parses must format back to something that parses to the same. */
		char txt[FP_TEXT_LEN + 1];
		struct fingerprint again;
		fp_format(&fp, txt);
		if (fp_parse(txt, &again, &err) != 0 || !fp_equal(&fp, &again))
			abort();
	} else if (strlen(err.msg) == 0) {
		abort(); /* every rejection says why */
	}
	free(s);
	return 0;
}
