/*
 * transport.c: from a parsed address (addr.c) to a gRPC channel.
 *
 *   unix     kiln connects the socket itself (a precise error, a bounded
 *            wait) and hands the fd to gRPC as an insecure HTTP/2 channel.
 *   tcp      gRPC connects, in plain HTTP/2 or, with buildctl's --tls*
 *            flags, over TLS (the PEM files are read before dialling);
 *            the first call reports what went wrong.
 *   docker   on Docker's socket, POST /grpc with "Upgrade: h2c"; after the
 *            101, the same fd carries HTTP/2 with kiln as the client
 *            (BUILDKIT-WIRE.md section 1.2).
 *
 * A channel made from an fd cannot reconnect; one kiln command does not
 * need it to.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "buildkit.h"
#include "session.h"

#define HEAD_MAX 16384 /* bytes of an HTTP response head we accept */
#define BODY_MAX 4096  /* bytes of an error body we read */

/* ---- sockets with deadlines --------------------------------------------------- */

int64_t buildkit_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for events or the deadline passes: 1 ready, 0
 * timed out, -1 error (errno). */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - buildkit_now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = { .fd = fd, .events = events };
		int rc = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (rc > 0)
			return 1;
		if (rc == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

/* Connect a unix stream socket to path, blocking at most until deadline
 * (a unix connect waits only when the listener's backlog is full; then
 * SO_SNDTIMEO bounds it). Returns the fd (non-blocking, close-on-exec) or
 * -1 with *why set. */
static int unix_connect(const char *path, int64_t deadline, char *why, size_t why_len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, path, strlen(path) + 1); /* length checked by the parser */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, why_len, "socket: %s", strerror(errno));
		return -1;
	}
	int64_t left = deadline - buildkit_now_ms();
	struct timeval tv = { .tv_sec = left > 0 ? left / 1000 : 0,
			      .tv_usec = left > 0 ? (left % 1000) * 1000 : 1000 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct stat st;
	int rc;
	do
		rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	while (rc < 0 && errno == EINTR && buildkit_now_ms() < deadline);
	if (rc < 0) {
		int e = errno;
		if (e == EAGAIN || e == EINPROGRESS || e == EINTR)
			snprintf(why, why_len, "connect: no answer within %d s (backlog full)",
				 BUILDKIT_CONNECT_MS / 1000);
		else if (e == ECONNREFUSED && stat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
			snprintf(why, why_len, "connect: %s is not a socket", path);
		else
			snprintf(why, why_len, "connect: %s", strerror(e));
		close(fd);
		return -1;
	}
	tv = (struct timeval){ 0 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static int write_all(int fd, const char *buf, size_t len, int64_t deadline, char *why,
		     size_t why_len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int w = wait_fd(fd, POLLOUT, deadline);
			if (w > 0)
				continue;
			if (w == 0) {
				snprintf(why, why_len, "write: no progress within %d s",
					 BUILDKIT_CONNECT_MS / 1000);
				return -1;
			}
		}
		snprintf(why, why_len, "write: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Read one byte: 1, 0 at end of stream, -1 error or timeout (*why). */
static int read_byte(int fd, char *c, int64_t deadline, char *why, size_t why_len)
{
	for (;;) {
		ssize_t n = recv(fd, c, 1, 0);
		if (n == 1)
			return 1;
		if (n == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int w = wait_fd(fd, POLLIN, deadline);
			if (w > 0)
				continue;
			if (w == 0) {
				snprintf(why, why_len, "no answer within %d s",
					 BUILDKIT_CONNECT_MS / 1000);
				return -1;
			}
		}
		snprintf(why, why_len, "read: %s", strerror(errno));
		return -1;
	}
}

/* ---- TLS: buildctl's --tlscacert, --tlscert, --tlskey, --tlsservername ----------- */

#define PEM_MAX (1024 * 1024) /* bytes of a PEM file we read */

static void wipe_free(const struct kiln_host *host, char *p, size_t len)
{
	if (!p)
		return;
	explicit_bzero(p, len);
	host->free(p);
}

/* Read the PEM file path (what it is: "CA certificate", ...) into *out,
 * NUL-terminated. Reads pipes too (--tlskey <(...)). Copies made while
 * growing are wiped: one of these is a private key. */
static int read_pem(const struct kiln_host *host, const char *path, const char *what,
		    char **out, struct kiln_err *err)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return host->error(err, e == ENOENT ? KILN_E_NOTFOUND : KILN_E_IO,
				   "cannot read the TLS %s %s: %s", what, path, strerror(e));
	}
	size_t cap = 4096, len = 0;
	char *buf = host->alloc(cap);
	for (;;) {
		if (len + 1 == cap) {
			if (cap >= PEM_MAX) {
				close(fd);
				wipe_free(host, buf, cap);
				return host->error(err, KILN_E_INVALID, "the TLS %s %s is larger "
						   "than %d bytes", what, path, PEM_MAX);
			}
			char *bigger = host->alloc(cap * 2);
			memcpy(bigger, buf, len);
			wipe_free(host, buf, cap);
			buf = bigger;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n > 0) {
			len += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			wipe_free(host, buf, cap);
			return host->error(err, KILN_E_IO, "cannot read the TLS %s %s: %s", what,
					   path, strerror(e));
		}
		break;
	}
	close(fd);
	buf[len] = '\0';
	if (!strstr(buf, "-----BEGIN ")) {
		wipe_free(host, buf, cap);
		return host->error(err, KILN_E_INVALID, "the TLS %s %s is not PEM (no "
				   "\"-----BEGIN\" line)", what, path);
	}
	*out = buf;
	return 0;
}

/* An encrypted key must not make OpenSSL ask on the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return 0;
}

/* The first certificate in pem, or NULL. */
static X509 *pem_cert(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, no_passphrase, NULL) : NULL;
	BIO_free(b);
	return x;
}

/* What gRPC would only say as "empty address list" at the first call: a
 * file without a certificate, an encrypted key, a key that is not the
 * certificate's. Checked with OpenSSL, which gRPC uses too. */
static int tls_check(const struct kiln_host *host, const struct kiln_connect_opts *opts,
		     const struct buildkit_tls *tls, struct kiln_err *err)
{
	int rc = 0;
	X509 *ca = NULL, *cert = NULL;
	EVP_PKEY *key = NULL;
	if (tls->ca_pem && !(ca = pem_cert(tls->ca_pem)))
		rc = host->error(err, KILN_E_INVALID, "the TLS CA certificate %s holds no PEM "
				 "certificate", opts->tls_ca_cert);
	else if (tls->cert_pem && !(cert = pem_cert(tls->cert_pem)))
		rc = host->error(err, KILN_E_INVALID, "the TLS client certificate %s holds no "
				 "PEM certificate", opts->tls_cert);
	if (rc == 0 && tls->key_pem) {
		BIO *b = BIO_new_mem_buf(tls->key_pem, -1);
		key = b ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
		BIO_free(b);
		if (!key)
			rc = host->error(err, KILN_E_INVALID, "the TLS client key %s holds no "
					 "unencrypted PEM private key", opts->tls_key);
		else if (cert && X509_check_private_key(cert, key) != 1)
			rc = host->error(err, KILN_E_INVALID, "the TLS client key %s is not the "
					 "key of the client certificate %s", opts->tls_key,
					 opts->tls_cert);
	}
	EVP_PKEY_free(key);
	X509_free(cert);
	X509_free(ca);
	ERR_clear_error(); /* the queue is per thread, and gRPC's too */
	return rc;
}

int buildkit_tls_load(const struct kiln_host *host, const struct kiln_connect_opts *opts,
		      const struct buildkit_addr *where, struct buildkit_tls **out,
		      struct kiln_err *err)
{
	*out = NULL;
	if (!opts->tls_cert != !opts->tls_key)
		return host->error(err, KILN_E_INVALID, "TLS to %s: a client certificate "
				   "needs its key (--tlscert with --tlskey)", opts->addr);
	const char *name = opts->tls_server_name && *opts->tls_server_name
				   ? opts->tls_server_name : where->host;
	struct buildkit_tls *tls = host->alloc(sizeof(*tls));
	*tls = (struct buildkit_tls){ 0 };
	if (strlen(name) >= sizeof(tls->server_name)) {
		host->free(tls);
		return host->error(err, KILN_E_INVALID, "TLS server name longer than %zu "
				   "bytes", sizeof(tls->server_name) - 1);
	}
	memcpy(tls->server_name, name, strlen(name) + 1);
	int rc = 0;
	if (opts->tls_ca_cert)
		rc = read_pem(host, opts->tls_ca_cert, "CA certificate", &tls->ca_pem, err);
	if (rc == 0 && opts->tls_cert)
		rc = read_pem(host, opts->tls_cert, "client certificate", &tls->cert_pem, err);
	if (rc == 0 && opts->tls_key)
		rc = read_pem(host, opts->tls_key, "client key", &tls->key_pem, err);
	if (rc == 0)
		rc = tls_check(host, opts, tls, err);
	if (rc < 0) {
		buildkit_tls_free(host, tls);
		return rc;
	}
	*out = tls;
	return 0;
}

void buildkit_tls_free(const struct kiln_host *host, struct buildkit_tls *tls)
{
	if (!tls)
		return;
	host->free(tls->ca_pem);
	host->free(tls->cert_pem);
	if (tls->key_pem)
		wipe_free(host, tls->key_pem, strlen(tls->key_pem));
	host->free(tls);
}

/* ---- dockerd: POST /grpc, Upgrade: h2c ------------------------------------------ */

/* The value of header name in an HTTP head, copied to out ("" if none). */
static void header_value(const char *head, const char *name, char *out, size_t len)
{
	size_t nl = strlen(name);
	out[0] = '\0';
	for (const char *p = strstr(head, "\r\n"); p; p = strstr(p, "\r\n")) {
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			const char *e = strstr(v, "\r\n");
			size_t vl = e ? (size_t)(e - v) : strlen(v);
			snprintf(out, len, "%.*s", (int)vl, v);
			return;
		}
	}
}

/* After an error status: the daemon's {"message": "..."} (or the raw
 * body), at most BODY_MAX bytes of it, into why. */
static void error_body(int fd, const char *head, int64_t deadline, char *msg, size_t len)
{
	char cl[32], body[BODY_MAX + 1];
	header_value(head, "Content-Length", cl, sizeof(cl));
	size_t want = cl[0] ? (size_t)strtoul(cl, NULL, 10) : BODY_MAX;
	if (want > BODY_MAX)
		want = BODY_MAX;
	size_t got = 0;
	char why[64];
	while (got < want && read_byte(fd, &body[got], deadline, why, sizeof(why)) == 1)
		got++;
	body[got] = '\0';
	json_error_t jerr;
	json_t *v = json_loadb(body, got, 0, &jerr);
	const char *m = json_string_value(json_object_get(v, "message"));
	const char *text = m ? m : body;
	size_t ml = strlen(text) < len ? strlen(text) : len - 1;
	memcpy(msg, text, ml);
	msg[ml] = '\0';
	json_decref(v);
	while (ml && (msg[ml - 1] == '\n' || msg[ml - 1] == '\r'))
		msg[--ml] = '\0';
}

/* Ask dockerd to switch fd to h2c for endpoint ("/grpc" or "/session",
 * with extra header lines). The answer is read one byte at a time: what
 * follows the 101's blank line (HTTP/2 frames) belongs to gRPC. Returns 0
 * or -1 with *why; *http is set once a whole HTTP/1.x answer head
 * arrived. */
static int docker_upgrade(int fd, const char *endpoint, const char *extra, int64_t deadline,
			  bool *http, char *why, size_t why_len)
{
	char req[8192];
	int rl = snprintf(req, sizeof(req),
			  "POST %s HTTP/1.1\r\n"
			  "Host: localhost\r\n"
			  "User-Agent: kiln/" KILN_VERSION "\r\n"
			  "Connection: Upgrade\r\n"
			  "Upgrade: h2c\r\n"
			  "Content-Length: 0\r\n"
			  "%s"
			  "\r\n", endpoint, extra ? extra : "");
	if (rl < 0 || (size_t)rl >= sizeof(req)) {
		snprintf(why, why_len, "POST %s: request head too long", endpoint);
		return -1;
	}
	if (write_all(fd, req, (size_t)rl, deadline, why, why_len) < 0)
		return -1;
	char head[HEAD_MAX + 1];
	size_t n = 0;
	for (;;) {
		if (n == HEAD_MAX) {
			snprintf(why, why_len, "POST %s: answer head longer than %d bytes",
				 endpoint, HEAD_MAX);
			return -1;
		}
		int rc = read_byte(fd, &head[n], deadline, why, why_len);
		if (rc < 0)
			return -1;
		if (rc == 0) {
			if (n == 0)
				snprintf(why, why_len, "the socket closed without an answer "
					 "(not a Docker Engine API socket?)");
			else if (n < 5 || memcmp(head, "HTTP/", 5) != 0)
				snprintf(why, why_len, "not a Docker Engine API socket (it does "
					 "not speak HTTP/1.1; a buildkitd socket is unix://PATH)");
			else
				snprintf(why, why_len, "POST %s: the daemon closed the "
					 "connection in the answer's head", endpoint);
			return -1;
		}
		n++;
		/* A buildkitd (HTTP/2) socket starts with a SETTINGS frame. */
		if (n <= 5 && memcmp(head, "HTTP/", n) != 0) {
			snprintf(why, why_len, "not a Docker Engine API socket (it does not "
				 "speak HTTP/1.1; a buildkitd socket is unix://PATH)");
			return -1;
		}
		if (n >= 4 && memcmp(head + n - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	head[n] = '\0';
	*http = true;
	int status = 0;
	if (sscanf(head, "HTTP/%*d.%*d %d", &status) != 1) {
		snprintf(why, why_len, "POST %s: not an HTTP status line", endpoint);
		return -1;
	}
	if (status == 101)
		return 0;
	char msg[400];
	error_body(fd, head, deadline, msg, sizeof(msg));
	if (status == 404)
		snprintf(why, why_len, "POST %s answered HTTP 404%s%s (a Docker Engine "
			 "without BuildKit's %s endpoint: Docker 18.09 or newer is needed)",
			 endpoint, msg[0] ? ": " : "", msg, endpoint);
	else
		snprintf(why, why_len, "POST %s answered HTTP %d%s%s", endpoint, status,
			 msg[0] ? ": " : "", msg);
	return -1;
}

/* ---- channels ----------------------------------------------------------------------- */

/* Channel arguments every transport uses; authority is set for channels
 * made from an fd (gRPC's default there is "test.authority"); tls_name,
 * when not NULL, is the name the daemon's certificate must carry (the Go
 * client's tls.Config.ServerName). */
static grpc_channel_args *channel_args(grpc_arg *a, size_t cap, grpc_channel_args *args,
				       bool authority, char *tls_name)
{
	static char max_recv[] = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	static char auth_key[] = GRPC_ARG_DEFAULT_AUTHORITY;
	static char auth_val[] = "localhost";
	static char retries[] = GRPC_ARG_ENABLE_RETRIES;
	static char srv[] = GRPC_ARG_DNS_ENABLE_SRV_QUERIES;
	static char name_key[] = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
	size_t n = 0;
	a[n++] = (grpc_arg){ .type = GRPC_ARG_INTEGER, .key = max_recv,
			     .value.integer = BUILDKIT_MAX_RECV };
	a[n++] = (grpc_arg){ .type = GRPC_ARG_INTEGER, .key = retries, .value.integer = 0 };
	a[n++] = (grpc_arg){ .type = GRPC_ARG_INTEGER, .key = srv, .value.integer = 0 };
	if (authority && n < cap)
		a[n++] = (grpc_arg){ .type = GRPC_ARG_STRING, .key = auth_key,
				     .value.string = auth_val };
	if (tls_name && n < cap)
		a[n++] = (grpc_arg){ .type = GRPC_ARG_STRING, .key = name_key,
				     .value.string = tls_name };
	*args = (grpc_channel_args){ .num_args = n, .args = a };
	return args;
}

static void fd_channel(struct buildkit_conn *conn, int fd)
{
	grpc_arg a[4];
	grpc_channel_args args;
	grpc_channel_credentials *creds = grpc_insecure_credentials_create();
	/* gRPC owns fd from here, and sets O_NONBLOCK itself. */
	conn->channel = grpc_channel_create_from_fd(conn->addr, fd, creds,
						    channel_args(a, 4, &args, true, NULL));
	grpc_channel_credentials_release(creds);
}

int buildkit_dial(struct buildkit_conn *conn, int64_t deadline, struct kiln_err *err)
{
	const struct kiln_host *host = conn->host;
	const struct buildkit_addr *w = &conn->where;
	char why[600];

	if (w->transport == BUILDKIT_TCP) {
		/* gRPC connects (and shakes hands); the first call (Info)
		 * reports what went wrong, within its deadline. gRPC copies
		 * the PEM text: the caller may free conn->tls_pem after this. */
		grpc_arg a[4];
		grpc_channel_args args;
		grpc_channel_credentials *creds;
		struct buildkit_tls *tls = conn->tls_pem;
		if (tls) {
			conn->tls = true;
			conn->tls_ca = tls->ca_pem != NULL;
			conn->tls_client_cert = tls->cert_pem != NULL;
			grpc_ssl_pem_key_cert_pair pair = { .private_key = tls->key_pem,
							    .cert_chain = tls->cert_pem };
			creds = grpc_ssl_credentials_create(tls->ca_pem,
							    tls->cert_pem ? &pair : NULL, NULL, NULL);
		} else {
			creds = grpc_insecure_credentials_create();
		}
		conn->channel = grpc_channel_create(
			w->target, creds,
			channel_args(a, 4, &args, false, tls ? tls->server_name : NULL));
		grpc_channel_credentials_release(creds);
		if (tls)
			host->log(KILN_LOG_DEBUG, "buildkit: %s: gRPC target %s, TLS: server name "
				  "%s, %s, %s", conn->addr, w->target, tls->server_name,
				  tls->ca_pem ? "the given CA" : "the system's CAs",
				  tls->cert_pem ? "a client certificate" : "no client certificate");
		else
			host->log(KILN_LOG_DEBUG, "buildkit: %s: gRPC target %s", conn->addr,
				  w->target);
		return 0;
	}

	int fd = unix_connect(w->path, deadline, why, sizeof(why));
	if (fd < 0)
		return host->error(err, KILN_E_CONNECT, "cannot reach buildkit at %s: %s",
				   conn->addr, why);
	if (w->transport == BUILDKIT_DOCKER) {
		if (docker_upgrade(fd, "/grpc", NULL, deadline, &conn->http_answered, why,
				   sizeof(why)) < 0) {
			close(fd);
			return host->error(err, KILN_E_CONNECT, "cannot reach buildkit at %s: %s",
					   conn->addr, why);
		}
		host->log(KILN_LOG_DEBUG, "buildkit: %s: POST /grpc switched to h2c", conn->addr);
	}
	fd_channel(conn, fd);
	return 0;
}

/* ---- dockerd: POST /session ------------------------------------------------------------ */

int buildkit_docker_session(struct buildkit_conn *conn, const struct buildkit_session *s,
			    int64_t deadline, int *fdp, struct kiln_err *err)
{
	const struct kiln_host *host = conn->host;
	char why[600], extra[4096];
	size_t n = 0;
	int w = snprintf(extra, sizeof(extra),
			 "X-Docker-Expose-Session-Uuid: %s\r\n"
			 "X-Docker-Expose-Session-Name: %s\r\n"
			 "X-Docker-Expose-Session-Sharedkey: %s\r\n",
			 s->id, s->name, s->sharedkey);
	n = (size_t)w;
	for (const char *const *m = buildkit_session_methods(s); *m && n < sizeof(extra); m++) {
		w = snprintf(extra + n, sizeof(extra) - n,
			     "X-Docker-Expose-Session-Grpc-Method: %s\r\n", *m);
		n += (size_t)w;
	}
	if (n >= sizeof(extra))
		return host->error(err, KILN_E_INVALID, "session: too many methods");
	int fd = unix_connect(conn->where.path, deadline, why, sizeof(why));
	bool http = false;
	if (fd < 0 || docker_upgrade(fd, "/session", extra, deadline, &http, why,
				     sizeof(why)) < 0) {
		if (fd >= 0)
			close(fd);
		return host->error(err, KILN_E_CONNECT, "buildkit at %s: cannot open a session: %s",
				   conn->addr, why);
	}
	*fdp = fd;
	return 0;
}
