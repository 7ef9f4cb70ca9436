/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <string.h>

#include "base/cursor.h"
#include "daemon/hello.h"

int conn_hello_parse(const uint8_t *p, size_t len, struct conn_hello *ret)
{
	struct cursor c = cursor_make(p, len);
	const uint8_t *sw;
	unsigned type, version;
	size_t n;

	type = cursor_u8(&c);
	version = cursor_u16(&c);
	sw = cursor_str8(&c, CONN_SOFTWARE_MAX, &n);
	if (type != CONN_MSG_HELLO || !cursor_done(&c))
		return -EBADMSG;
	ret->version = version;
	ret->software_len = n;
	if (n)
		memcpy(ret->software, sw, n);
	ret->software[n] = '\0';
	return 0;
}

int conn_hello_write(unsigned version, const char *software, size_t software_len, uint8_t *buf,
		     size_t cap)
{
	size_t n = software_len > CONN_SOFTWARE_MAX ? CONN_SOFTWARE_MAX : software_len;
	struct wcursor w = wcursor_make(buf, cap);

	if (version > 0xffff)
		return -EINVAL;
	if (cap < 4 + n)
		return -EMSGSIZE;
	wcursor_u8(&w, CONN_MSG_HELLO);
	wcursor_u16(&w, (uint16_t)version);
	wcursor_str8(&w, software, n);
	return w.bad ? -EMSGSIZE : (int)(4 + n);
}
