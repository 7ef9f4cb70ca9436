/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <string.h>

#include "daemon/hello.h"

int conn_hello_parse(const uint8_t *p, size_t len, struct conn_hello *ret)
{
	if (len < 4 || p[0] != CONN_MSG_HELLO || p[3] > CONN_SOFTWARE_MAX ||
	    len != 4 + (size_t)p[3])
		return -EBADMSG;
	ret->version = (unsigned)p[1] << 8 | p[2];
	ret->software_len = p[3];
	memcpy(ret->software, p + 4, p[3]);
	ret->software[p[3]] = '\0';
	return 0;
}

int conn_hello_write(unsigned version, const char *software, size_t software_len, uint8_t *buf,
		     size_t cap)
{
	size_t n = software_len > CONN_SOFTWARE_MAX ? CONN_SOFTWARE_MAX : software_len;

	if (version > 0xffff)
		return -EINVAL;
	if (cap < 4 + n)
		return -EMSGSIZE;
	buf[0] = CONN_MSG_HELLO;
	buf[1] = (uint8_t)(version >> 8);
	buf[2] = (uint8_t)version;
	buf[3] = (uint8_t)n;
	memcpy(buf + 4, software, n);
	return (int)(4 + n);
}
