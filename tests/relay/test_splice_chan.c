/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Two peers meet through a real tandem-relay (GET /v1/splice) with
 * relay_splice_dial and run the real secure channel over it: the
 * handshake of src/chan with pinned fingerprints, then frames both ways
 * at once, checked byte for byte. The relay sees only ciphertext: a
 * plaintext marker sent through the channel is in neither its log nor its
 * memory. Also: the dialer's errors against the same relay. And the same
 * through https:// (a TLS front, tls_proxy.py, before the plain relay, as
 * a TLS proxy that passes Upgrade): 32 MiB each way through the dialer's
 * TLS pump, its thread gone once the sockets are closed, and a front that
 * misbehaves or has a certificate not trusted here.
 *
 * Usage: test-splice-chan PATH-TO-tandem-relay [PYTHON3 tls_proxy.py]
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>

#include <sodium.h>

#include "base/clock.h"
#include "chan/frame.h"
#include "chan/handshake.h"
#include "identity/derive.h"
#include "identity/identity.h"
#include "relay_client/relay_splice.h"
#include "tap.h"

#define FRAMES 64
#define FRAME_DATA_LEN (64 * 1024)
#define DIAL_MS 10000

static const char *relay_path;
static pid_t relay_pid = -1;
static char relay_url[128];
static char log_path[] = "/tmp/tandem-splice-chan-XXXXXX";
static char marker[64];
static const char *python_path, *proxy_script;
static pid_t proxy_pid = -1;
static char proxy_url[128];
static char tls_dir[] = "/tmp/tandem-splice-tls-XXXXXX";
static char cert_path[160], key_path[160];

/* Starts tandem-relay on [::1] with extra arguments; reads its URL. */
static int relay_start(const char *const *extra)
{
	int out[2], logfd;
	char line[256];
	size_t n = 0;
	const char *argv[16] = {relay_path, "--listen", "[::1]:0", "--log-level", "debug"};
	size_t argc = 5;

	for (; extra && *extra && argc < 15; extra++)
		argv[argc++] = *extra;
	argv[argc] = NULL;
	logfd = mkstemp(log_path);
	if (logfd < 0 || pipe2(out, O_CLOEXEC) < 0)
		return -errno;
	relay_pid = fork();
	if (relay_pid < 0)
		return -errno;
	if (relay_pid == 0) {
		dup2(out[1], 1);
		dup2(logfd, 2);
		execv(relay_path, (char *const *)argv);
		_exit(127);
	}
	close(out[1]);
	close(logfd);
	while (n < sizeof(line) - 1) {
		ssize_t k = read(out[0], line + n, 1);
		if (k <= 0)
			break;
		if (line[n] == '\n')
			break;
		n += (size_t)k;
	}
	line[n] = '\0';
	close(out[0]);
	if (sscanf(line, "listening on %127s", relay_url) != 1)
		return -EIO;
	return 0;
}

/* Stops the relay; returns its exit status or -1. */
static int relay_stop(void)
{
	int st = 0;

	if (relay_pid <= 0)
		return -1;
	kill(relay_pid, SIGTERM);
	if (waitpid(relay_pid, &st, 0) < 0)
		return -1;
	relay_pid = -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *file_read(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, len = 0;

	if (!f)
		return NULL;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 65536;
			char *p = realloc(buf, cap);
			if (!p)
				break;
			buf = p;
		}
		size_t k = fread(buf + len, 1, cap - len - 1, f);
		if (k == 0)
			break;
		len += k;
	}
	fclose(f);
	if (buf)
		buf[len] = '\0';
	*ret_len = len;
	return buf;
}

/* True when the bytes of needle are anywhere in the relay's writable memory. */
static int memory_holds(pid_t pid, const char *needle, size_t nlen)
{
	char path[64], line[512];
	FILE *maps;
	int memfd, found = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	maps = fopen(path, "r");
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	memfd = open(path, O_RDONLY | O_CLOEXEC);
	if (!maps || memfd < 0) {
		if (maps)
			fclose(maps);
		if (memfd >= 0)
			close(memfd);
		return -1;
	}
	while (!found && fgets(line, sizeof(line), maps)) {
		unsigned long lo, hi;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' ||
		    perms[1] != 'w' || hi - lo > (1UL << 30))
			continue;
		char *buf = malloc(hi - lo);
		if (!buf)
			continue;
		ssize_t k = pread(memfd, buf, hi - lo, (off_t)lo);
		if (k > 0 && memmem(buf, (size_t)k, needle, nlen))
			found = 1;
		free(buf);
	}
	fclose(maps);
	close(memfd);
	return found;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int read_all(int fd, uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t k = recv(fd, p, n, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

struct peer {
	struct identity *id;
	const struct identity *other;
	int side;
	int fd;
	const char *url; /* the relay to dial */
	const char *ca;	 /* trusted for https, or NULL */
	int frames;	 /* data frames each way */
	char err[ERR_LEN + 64];
	struct frame_enc *enc;
	struct frame_dec *dec;
	uint8_t sent_hash[32], got_hash[32];
	size_t got_bytes;
	bool marker_seen;
	bool ok;
};

static int handshake(struct peer *p)
{
	struct hs *hs = NULL;
	struct hs_keys keys;
	uint8_t buf[HS_MSG_MAX];
	int r;

	r = hs_new(p->side == 1 ? HS_INITIATOR : HS_RESPONDER, p->id, &p->other->fp, &hs);
	if (r < 0)
		return r;
	while (!hs_done(hs) && r >= 0) {
		if (hs_want(hs) == HS_WANT_WRITE) {
			r = hs_write(hs, buf, sizeof(buf));
			if (r > 0)
				r = write_all(p->fd, buf, (size_t)r) < 0 ? -EIO : 0;
		} else if (hs_want(hs) == HS_WANT_READ) {
			r = read_all(p->fd, buf, HS_HEADER_LEN) < 0 ? -EIO : 0;
			if (r == 0)
				r = hs_header_parse(hs, buf, HS_HEADER_LEN);
			if (r > 0 && (size_t)r <= sizeof(buf))
				r = read_all(p->fd, buf + HS_HEADER_LEN,
					     (size_t)r - HS_HEADER_LEN) < 0
					    ? -EIO
					    : hs_read(hs, buf, (size_t)r);
			else if (r >= 0)
				r = -EBADMSG;
		} else {
			r = -EPROTO;
		}
	}
	if (r < 0) {
		snprintf(p->err, sizeof(p->err), "handshake: %s (%s)", strerror(-r), hs_reason(hs));
		hs_free(hs);
		return r;
	}
	r = hs_split(hs, &keys);
	hs_free(hs);
	if (r < 0)
		return r;
	if (memcmp(keys.peer_pk, p->other->pk, IDENTITY_PK_LEN) != 0)
		r = -EKEYREJECTED;
	if (r == 0)
		r = frame_enc_new(keys.tx, &p->enc);
	if (r == 0)
		r = frame_dec_new(keys.rx, &p->dec);
	sodium_memzero(&keys, sizeof(keys));
	return r;
}

/* Frame i of the data p sends: the marker in frame 0, then random bytes. */
static void *sender(void *arg)
{
	struct peer *p = arg;
	uint8_t *out = malloc(FRAME_LEN(FRAME_DATA_LEN));
	uint8_t *payload = malloc(FRAME_DATA_LEN);
	crypto_generichash_state st;

	if (!out || !payload)
		goto out;
	crypto_generichash_init(&st, NULL, 0, 32);
	for (int i = 0; i < p->frames; i++) {
		randombytes_buf(payload, FRAME_DATA_LEN);
		if (i == 0)
			memcpy(payload, marker, strlen(marker));
		crypto_generichash_update(&st, payload, FRAME_DATA_LEN);
		int n = frame_enc_write(p->enc, FRAME_DATA, payload, FRAME_DATA_LEN, out,
					FRAME_LEN(FRAME_DATA_LEN));
		if (n < 0 || write_all(p->fd, out, (size_t)n) < 0)
			goto out;
	}
	crypto_generichash_final(&st, p->sent_hash, 32);
out:
	free(out);
	free(payload);
	return NULL;
}

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	uint8_t token[RELAY_SPLICE_TOKEN_LEN];
	struct err err;
	uint8_t *buf = malloc(65536);
	crypto_generichash_state st;
	pthread_t th;
	int frames = 0, r;

	if (!buf)
		return NULL;
	r = relay_splice_token(p->id, p->other->pk, derive_bucket(time(NULL), RELAY_BUCKET_SECONDS),
			       token);
	if (r == 0)
		r = relay_splice_dial_ca(p->url, p->ca, token, p->side, DIAL_MS, -1, &p->fd, NULL,
					 &err);
	if (r < 0) {
		snprintf(p->err, sizeof(p->err), "dial: %s", err.msg);
		goto out;
	}
	if (handshake(p) < 0)
		goto out;
	if (pthread_create(&th, NULL, sender, p) != 0)
		goto out;
	crypto_generichash_init(&st, NULL, 0, 32);
	while (frames < p->frames) {
		ssize_t k = recv(p->fd, buf, 65536, 0);
		if (k <= 0)
			break;
		size_t off = 0;
		while (off < (size_t)k) {
			struct frame f;
			size_t used = 0;
			r = frame_dec_feed(p->dec, buf + off, (size_t)k - off, &used, &f);
			off += used;
			if (r < 0) {
				snprintf(p->err, sizeof(p->err), "frame: %s",
					 frame_dec_reason(p->dec));
				goto joined;
			}
			if (r == 1 && f.type == FRAME_DATA) {
				if (frames == 0 && f.len >= strlen(marker) &&
				    memcmp(f.payload, marker, strlen(marker)) == 0)
					p->marker_seen = true;
				crypto_generichash_update(&st, f.payload, f.len);
				p->got_bytes += f.len;
				frames++;
			}
		}
	}
	crypto_generichash_final(&st, p->got_hash, 32);
	p->ok = frames == p->frames;
joined:
	pthread_join(th, NULL);
out:
	free(buf);
	return NULL;
}

static struct identity *id_new(void)
{
	struct identity *id = NULL;

	return identity_new(NULL, &id) == 0 ? id : NULL;
}

/*
 * Runs the secure channel between a and b through the relay at url (ca
 * trusted for https, or NULL), frames data frames each way, in two threads:
 * both end well and each got what the other sent.
 */
static void pair_run(struct peer *pa, struct peer *pb, struct identity *a, struct identity *b,
		     const char *url, const char *ca, int frames)
{
	pthread_t ta, tb;

	*pa = (struct peer){.id = a,
			    .other = b,
			    .side = relay_splice_side(a, b->pk),
			    .fd = -1,
			    .url = url,
			    .ca = ca,
			    .frames = frames};
	*pb = (struct peer){.id = b,
			    .other = a,
			    .side = relay_splice_side(b, a->pk),
			    .fd = -1,
			    .url = url,
			    .ca = ca,
			    .frames = frames};
	CHECK_INT_EQ(pa->side + pb->side, 3);
	REQUIRE(pthread_create(&ta, NULL, peer_main, pa) == 0);
	REQUIRE(pthread_create(&tb, NULL, peer_main, pb) == 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	if (pa->err[0])
		printf("#   peer a: %s\n", pa->err);
	if (pb->err[0])
		printf("#   peer b: %s\n", pb->err);
	CHECK(pa->ok && pb->ok);
	CHECK(memcmp(pa->got_hash, pb->sent_hash, 32) == 0);
	CHECK(memcmp(pb->got_hash, pa->sent_hash, 32) == 0);
}

/* Closes what pair_run left open (the sockets, unless closed already). */
static void pair_free(struct peer *pa, struct peer *pb)
{
	if (pa->fd >= 0)
		close(pa->fd);
	if (pb->fd >= 0)
		close(pb->fd);
	pa->fd = pb->fd = -1;
	frame_enc_free(pa->enc);
	frame_dec_free(pa->dec);
	frame_enc_free(pb->enc);
	frame_dec_free(pb->dec);
}

TEST(channel_through_relay)
{
	struct identity *a = id_new(), *b = id_new();
	struct peer pa = {0}, pb = {0};
	char *log;
	size_t log_len = 0;

	REQUIRE(a && b);
	pair_run(&pa, &pb, a, b, relay_url, NULL, FRAMES);
	CHECK_INT_EQ(pa.got_bytes, (size_t)FRAMES * FRAME_DATA_LEN);
	CHECK_INT_EQ(pb.got_bytes, (size_t)FRAMES * FRAME_DATA_LEN);
	CHECK(pa.marker_seen && pb.marker_seen);
	/* the relay held only ciphertext: the marker is not in its memory */
	int held = memory_holds(relay_pid, marker, strlen(marker));
	if (held < 0)
		printf("#   cannot read the relay's memory here; not checked\n");
	CHECK(held <= 0);
	pair_free(&pa, &pb);
	identity_free(a);
	identity_free(b);
	CHECK_INT_EQ(relay_stop(), 0);
	log = file_read(log_path, &log_len);
	REQUIRE(log);
	CHECK(strstr(log, "GET /v1/splice -> 101") != NULL);
	CHECK(memmem(log, log_len, marker, strlen(marker)) == NULL);
	CHECK(strstr(log, "error:") == NULL && strstr(log, "Sanitizer") == NULL);
	free(log);
}

TEST(dial_errors)
{
	static const char *const args[] = {"--splice-wait-timeout", "1", NULL};
	uint8_t tok[RELAY_SPLICE_TOKEN_LEN];
	struct err err;
	uint32_t retry = 0;
	uint64_t start;
	int fd = -1, fd2 = -1, r, efd;

	REQUIRE(relay_start(args) == 0);
	randombytes_buf(tok, sizeof(tok));
	/* the peer never comes: the relay's 504, with its message */
	start = clock_mono_ms();
	r = relay_splice_dial(relay_url, tok, 1, DIAL_MS, -1, &fd, &retry, &err);
	CHECK_INT_EQ(r, -ETIMEDOUT);
	CHECK(strstr(err.msg, "504") && strstr(err.msg, "peer_timeout"));
	CHECK(clock_mono_ms() - start < DIAL_MS);
	printf("#   %s\n", err.msg);
	/* our own deadline, shorter than the relay's wait */
	r = relay_splice_dial(relay_url, tok, 1, 200, -1, &fd, &retry, &err);
	CHECK_INT_EQ(r, -ETIMEDOUT);
	CHECK(strstr(err.msg, "in time") != NULL);
	/* cancelled: the cancel fd is readable */
	efd = eventfd(1, EFD_CLOEXEC);
	REQUIRE(efd >= 0);
	CHECK_INT_EQ(relay_splice_dial(relay_url, tok, 1, DIAL_MS, efd, &fd, NULL, &err),
		     -ECANCELED);
	close(efd);
	/* a bad URL, https, nobody listening */
	CHECK_INT_EQ(relay_splice_dial("ftp://x", tok, 1, 100, -1, &fd, NULL, &err), -EINVAL);
	CHECK_INT_EQ(relay_splice_dial("https://[::1]:1", tok, 1, 1000, -1, &fd, NULL, &err),
		     -ECONNREFUSED);
	CHECK_INT_EQ(relay_splice_dial("http://[::1]:1", tok, 1, 1000, -1, &fd, NULL, &err),
		     -ECONNREFUSED);
	CHECK_INT_EQ(relay_splice_dial(relay_url, tok, 3, 100, -1, &fd, NULL, &err), -EINVAL);
	/* a pair, then a third connection: 409 */
	randombytes_buf(tok, sizeof(tok));
	pid_t child = fork();
	REQUIRE(child >= 0);
	if (child == 0) {
		int cfd = -1;
		_exit(relay_splice_dial(relay_url, tok, 2, DIAL_MS, -1, &cfd, NULL, &err) == 0 &&
				      read(cfd, &r, 1) >= 0
			      ? 0
			      : 1);
	}
	r = relay_splice_dial(relay_url, tok, 1, DIAL_MS, -1, &fd, NULL, &err);
	CHECK_INT_EQ(r, 0);
	r = relay_splice_dial(relay_url, tok, 2, DIAL_MS, -1, &fd2, NULL, &err);
	CHECK_INT_EQ(r, -EEXIST);
	CHECK(strstr(err.msg, "session_busy") != NULL);
	if (fd >= 0)
		close(fd);
	int st = 0;
	waitpid(child, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_INT_EQ(relay_stop(), 0);
}

/* ---- https:// through a TLS front (tls_proxy.py) ---- */

/* A self-signed certificate for [::1] in tls_dir. */
static int cert_make(void)
{
	char cmd[512];

	if (!mkdtemp(tls_dir))
		return -errno;
	snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", tls_dir);
	snprintf(key_path, sizeof(key_path), "%s/key.pem", tls_dir);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
		 "-days 1 -subj /CN=tandem-test -addext subjectAltName=IP:::1 -keyout %s "
		 "-out %s >/dev/null 2>&1",
		 key_path, cert_path);
	return system(cmd) == 0 ? 0 : -ENOENT;
}

static void cert_remove(void)
{
	unlink(cert_path);
	unlink(key_path);
	rmdir(tls_dir);
}

/* Starts the TLS front before the relay at relay_url; reads its URL. */
static int proxy_start(void)
{
	const char *port = strrchr(relay_url, ':');
	int out[2];
	char line[256];
	size_t n = 0;

	if (!port || pipe2(out, O_CLOEXEC) < 0)
		return -EINVAL;
	proxy_pid = fork();
	if (proxy_pid < 0)
		return -errno;
	if (proxy_pid == 0) {
		dup2(out[1], 1);
		execlp(python_path, python_path, proxy_script, cert_path, key_path, "::1", port + 1,
		       (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	while (n < sizeof(line) - 1) {
		ssize_t k = read(out[0], line + n, 1);
		if (k <= 0 || line[n] == '\n')
			break;
		n += (size_t)k;
	}
	line[n] = '\0';
	close(out[0]);
	return sscanf(line, "listening on %127s", proxy_url) == 1 ? 0 : -EIO;
}

static void proxy_stop(void)
{
	if (proxy_pid <= 0)
		return;
	kill(proxy_pid, SIGKILL);
	waitpid(proxy_pid, NULL, 0);
	proxy_pid = -1;
}

/* Threads of this process now. */
static int threads_count(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Waits (bounded) until at most want threads run. */
static bool threads_wait(int want)
{
	for (int i = 0; i < 200; i++) {
		if (threads_count() <= want)
			return true;
		usleep(50 * 1000);
	}
	return false;
}

#define TLS_FRAMES 512 /* 32 MiB each way */

TEST(channel_through_https)
{
	struct identity *a = id_new(), *b = id_new();
	struct peer pa, pb;
	int base = threads_count();

	REQUIRE(a && b);
	pair_run(&pa, &pb, a, b, proxy_url, cert_path, TLS_FRAMES);
	CHECK_INT_EQ(pa.got_bytes, (size_t)TLS_FRAMES * FRAME_DATA_LEN);
	CHECK_INT_EQ(pb.got_bytes, (size_t)TLS_FRAMES * FRAME_DATA_LEN);
	CHECK(pa.marker_seen && pb.marker_seen);
	/* the returned sockets are plain stream sockets */
	int type = 0;
	socklen_t tl = sizeof(type);
	CHECK(pa.fd >= 0 && getsockopt(pa.fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 &&
	      type == SOCK_STREAM);
	/* closing them ends the pump threads */
	pair_free(&pa, &pb);
	CHECK(threads_wait(base));
	identity_free(a);
	identity_free(b);
}

/*
 * The relay's own HTTPS (--tls-cert): its TLS front hands microhttpd plain
 * HTTP, so splicing works whatever the libmicrohttpd version (a 501 from an
 * old one fails here).
 */
TEST(channel_through_tls_relay)
{
	static const char *args[] = {
		"--tls-cert", cert_path, "--tls-key", key_path, "--splice-wait-timeout", "1", NULL};
	uint8_t tok[RELAY_SPLICE_TOKEN_LEN];
	struct identity *a = id_new(), *b = id_new();
	struct peer pa, pb;
	struct err err;
	int fd = -1, r;

	REQUIRE(a && b);
	memcpy(log_path + strlen(log_path) - 6, "XXXXXX", 6);
	REQUIRE(relay_start(args) == 0);
	CHECK(strncmp(relay_url, "https://", 8) == 0);
	randombytes_buf(tok, sizeof(tok));
	r = relay_splice_dial_ca(relay_url, cert_path, tok, 1, DIAL_MS, -1, &fd, NULL, &err);
	if (r != -ETIMEDOUT)
		printf("#   first dial: %s\n", err.msg);
	CHECK_INT_EQ(r, -ETIMEDOUT); /* nobody came: the relay's 504 */
	pair_run(&pa, &pb, a, b, relay_url, cert_path, FRAMES);
	CHECK(memory_holds(relay_pid, marker, strlen(marker)) <= 0);
	pair_free(&pa, &pb);
	identity_free(a);
	identity_free(b);
	CHECK_INT_EQ(relay_stop(), 0);
	size_t log_len = 0;
	char *log = file_read(log_path, &log_len);
	CHECK(log && strstr(log, "error:") == NULL && strstr(log, "Sanitizer") == NULL);
	free(log);
	unlink(log_path);
}

TEST(relay_stops)
{
	CHECK_INT_EQ(relay_stop(), 0);
}

/* proxy_url with a path prefix that makes the front misbehave. */
static const char *bad_url(const char *prefix)
{
	static char url[200];

	snprintf(url, sizeof(url), "%s/%s", proxy_url, prefix);
	return url;
}

TEST(https_dial_errors)
{
	uint8_t tok[RELAY_SPLICE_TOKEN_LEN], buf[4096];
	struct err err;
	char url[160];
	int fd = -1, r, base = threads_count();

	randombytes_buf(tok, sizeof(tok));
	/* a certificate not trusted here (the system's CA bundle) */
	r = relay_splice_dial(proxy_url, tok, 1, DIAL_MS, -1, &fd, NULL, &err);
	CHECK_INT_EQ(r, -EKEYREJECTED);
	CHECK(strstr(err.msg, "TLS") && strstr(err.msg, "certificate"));
	printf("#   %s\n", err.msg);
	/* trusted, but not for this name: the certificate is for ::1 only */
	snprintf(url, sizeof(url), "https://localhost:%s", strrchr(proxy_url, ':') + 1);
	r = relay_splice_dial_ca(url, cert_path, tok, 1, DIAL_MS, -1, &fd, NULL, &err);
	if (r == -ECONNREFUSED) {
		printf("#   localhost is not ::1 here; the name check is not tested\n");
	} else {
		CHECK_INT_EQ(r, -EKEYREJECTED);
		printf("#   %s\n", err.msg);
	}
	/* TLS to a plain-http port */
	snprintf(url, sizeof(url), "https://%s", relay_url + strlen("http://"));
	r = relay_splice_dial_ca(url, cert_path, tok, 1, DIAL_MS, -1, &fd, NULL, &err);
	CHECK_INT_EQ(r, -EKEYREJECTED);
	printf("#   %s\n", err.msg);
	/* an answer that is not HTTP */
	r = relay_splice_dial_ca(bad_url("garbage"), cert_path, tok, 1, DIAL_MS, -1, &fd, NULL,
				 &err);
	CHECK_INT_EQ(r, -EPROTO);
	CHECK(strstr(err.msg, "not the protocol") != NULL);
	printf("#   %s\n", err.msg);
	/* half a 101, then the end */
	r = relay_splice_dial_ca(bad_url("short"), cert_path, tok, 1, DIAL_MS, -1, &fd, NULL, &err);
	CHECK_INT_EQ(r, -EPROTO);
	printf("#   %s\n", err.msg);
	/* a 101, then bytes that are not the channel: the channel says so */
	r = relay_splice_dial_ca(bad_url("after101"), cert_path, tok, 2, DIAL_MS, -1, &fd, NULL,
				 &err);
	CHECK_INT_EQ(r, 0);
	if (r == 0) {
		struct identity *me = id_new(), *other = id_new();
		struct peer p = {.id = me, .other = other, .side = 2, .fd = fd};
		REQUIRE(me && other);
		CHECK(handshake(&p) < 0);
		CHECK(p.err[0] != '\0');
		printf("#   %s\n", p.err);
		close(fd);
		identity_free(me);
		identity_free(other);
	}
	/* a 101, 1000 bytes, then a TCP close without close_notify: the bytes, then the end */
	r = relay_splice_dial_ca(bad_url("midstream"), cert_path, tok, 1, DIAL_MS, -1, &fd, NULL,
				 &err);
	CHECK_INT_EQ(r, 0);
	if (r == 0) {
		size_t got = 0;
		ssize_t k;
		struct timeval tv = {.tv_sec = 10};
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		while ((k = recv(fd, buf, sizeof(buf), 0)) > 0)
			got += (size_t)k;
		CHECK_INT_EQ(got, 1000);
		CHECK_INT_EQ(k, 0);
		close(fd);
	}
	/* every pump thread is gone */
	CHECK(threads_wait(base));
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH-TO-tandem-relay\n", argv[0]);
		return 2;
	}
	relay_path = argv[1];
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		return 1;
	randombytes_buf(marker, 16);
	snprintf(marker, sizeof(marker), "TANDEM-PLAINTEXT-MARKER-%08x%08x", randombytes_random(),
		 randombytes_random());
	if (relay_start(NULL) < 0) {
		printf("Bail out! cannot start %s\n", relay_path);
		return 1;
	}
	RUN(channel_through_relay);
	unlink(log_path);
	memcpy(log_path + strlen(log_path) - 6, "XXXXXX", 6);
	RUN(dial_errors);
	unlink(log_path);
	if (argc < 4) {
		printf("ok %d - https # SKIP no python3 and tls_proxy.py given\n", ++tap_n);
		return tap_done();
	}
	python_path = argv[2];
	proxy_script = argv[3];
	if (cert_make() < 0) {
		printf("ok %d - https # SKIP openssl cannot make a test certificate\n", ++tap_n);
		return tap_done();
	}
	memcpy(log_path + strlen(log_path) - 6, "XXXXXX", 6);
	int rs = relay_start(NULL), ps = rs < 0 ? rs : proxy_start();
	if (rs < 0 || ps < 0) {
		printf("Bail out! cannot start the relay (%s) and its TLS front (%s)\n",
		       strerror(-rs), strerror(-ps));
		proxy_stop();
		relay_stop();
		cert_remove();
		return 1;
	}
	RUN(channel_through_https);
	RUN(https_dial_errors);
	proxy_stop();
	RUN(relay_stops);
	unlink(log_path);
	RUN(channel_through_tls_relay);
	cert_remove();
	return tap_done();
}
