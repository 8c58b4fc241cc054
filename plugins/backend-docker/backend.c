/*
 * backend.c: the `docker` backend: builds through the Docker Engine API's
 * POST /build with the classic builder (version=1), on Docker or on
 * Podman's Docker-compatible service. kiln's fallback when there is no
 * BuildKit: no secrets, SSH, cache export or local outputs (those are
 * refused with a pointer to the buildkit backend).
 *
 * HTTP is libcurl over the daemon's unix socket. The request body (the
 * build context as tar) is produced while it is sent (context.c), and the
 * response is turned into events as it arrives (stream.c).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include <curl/curl.h>
#include <jansson.h>

#include "docker.h"

#define API_MAX_MAJOR 1
#define API_MAX_MINOR 41   /* Docker 20.10; what this backend was written for */
#define API_MIN_MINOR 25   /* Docker 1.13: version=1, labels, cachefrom */
#define PING_TIMEOUT_MS 3000L
/* GET /version when /_ping's headers do not say enough: Podman's answer
 * takes seconds (it collects the host's details first; 5-8 s on a busy
 * machine), so it gets longer than the ping. */
#define VERSION_TIMEOUT_MS 30000L
#define BODY_MAX (1024 * 1024) /* most of an error body kept */


static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- probe ------------------------------------------------------------- */

/* docker:// is buildx's name for the local Docker socket. */
#define DOCKER_DEFAULT_SOCK "/var/run/docker.sock"

static int probe(const char *addr)
{
	const char *path;
	if (strcmp(addr, "docker://") == 0)
		return 10;
	if (has_prefix(addr, "unix://"))
		path = addr + 7;
	else if (has_prefix(addr, "docker-unix://"))
		path = addr + 14;
	else
		return 0; /* tcp:// is buildkitd's; npipe:// is Windows */
	/* A buildkitd socket speaks gRPC only: offer little. */
	if (strstr(path, "buildkit"))
		return 1;
	return 10;
}

/* ---- HTTP ---------------------------------------------------------------- */

static size_t collect_cb(char *data, size_t size, size_t n, void *ud)
{
	struct { const struct kiln_host *host; struct docker_buf *b; } *c = ud;
	size_t len = size * n;
	if (c->b->len + len <= BODY_MAX)
		docker_buf_add(c->host, c->b, data, len);
	return len;
}

/* An easy handle for path ("/_ping", "/build?…") on the daemon's socket,
 * under the negotiated API version once known. */
CURL *docker_easy_new(const struct docker_conn *conn, const char *path, char *errbuf)
{
	CURL *c = curl_easy_init();
	if (!c)
		return NULL;
	struct docker_buf url = { 0 };
	docker_buf_adds(conn->host, &url, "http://docker");
	if (conn->api[0]) {
		docker_buf_adds(conn->host, &url, "/");
		docker_buf_adds(conn->host, &url, conn->api);
	}
	docker_buf_adds(conn->host, &url, path);
	curl_easy_setopt(c, CURLOPT_URL, url.p); /* curl copies it */
	docker_buf_release(conn->host, &url);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, conn->sock);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, PING_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "kiln/" KILN_VERSION);
	errbuf[0] = '\0';
	return c;
}

/* Why a transfer failed, in a few words. */
void docker_cause(CURL *c, CURLcode rc, const char *errbuf, char *out, size_t len)
{
	long os_errno = 0;
	curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
	if (rc == CURLE_COULDNT_CONNECT && os_errno)
		snprintf(out, len, "connect: %s", strerror((int)os_errno));
	else if (rc == CURLE_OPERATION_TIMEDOUT)
		snprintf(out, len, "no answer within %ld s", PING_TIMEOUT_MS / 1000);
	else if (rc == CURLE_WEIRD_SERVER_REPLY || rc == CURLE_GOT_NOTHING ||
		 rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_HTTP2)
		snprintf(out, len, "%s (not a Docker Engine API: a buildkitd socket needs "
			 "the buildkit backend)", errbuf[0] ? errbuf : curl_easy_strerror(rc));
	else
		snprintf(out, len, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
}

/* The /_ping answer's headers that name the engine (both Docker and Podman
 * send them): Api-Version "1.41", Libpod-Api-Version "4.3.1" (Podman only),
 * Server "Docker/20.10.24+dfsg1 (linux)" or "Libpod/4.3.1 (linux)". */
struct ping_headers {
	char api[16], libpod[32], server[64];
};

static void header_value(const char *data, size_t len, const char *name, char *out,
			 size_t outlen)
{
	size_t n = strlen(name);
	if (len <= n + 1 || strncasecmp(data, name, n) != 0 || data[n] != ':')
		return;
	const char *v = data + n + 1, *end = data + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	size_t vl = (size_t)(end - v) < outlen - 1 ? (size_t)(end - v) : outlen - 1;
	memcpy(out, v, vl);
	out[vl] = '\0';
}

static size_t header_cb(char *data, size_t size, size_t n, void *ud)
{
	struct ping_headers *h = ud;
	size_t len = size * n;
	header_value(data, len, "Api-Version", h->api, sizeof(h->api));
	header_value(data, len, "Libpod-Api-Version", h->libpod, sizeof(h->libpod));
	header_value(data, len, "Server", h->server, sizeof(h->server));
	return len;
}

/* GET path into *body (within timeout_ms), the naming headers into *h when
 * h is not NULL. Returns 0 and the HTTP status, or KILN_E_CONNECT naming
 * the address and the cause. */
static int http_get(struct docker_conn *conn, const char *path, long timeout_ms,
		    struct docker_buf *body, struct ping_headers *h, long *status,
		    struct kiln_err *err)
{
	const struct kiln_host *host = conn->host;
	char errbuf[CURL_ERROR_SIZE];
	CURL *c = docker_easy_new(conn, path, errbuf);
	if (!c)
		return host->error(err, KILN_E_NOMEM, "cannot start libcurl");
	struct { const struct kiln_host *host; struct docker_buf *b; } ud = { host, body };
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &ud);
	if (h) {
		curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
		curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
	}
	CURLcode rc = curl_easy_perform(c);
	int ret = 0;
	if (rc != CURLE_OK) {
		char why[512];
		if (rc == CURLE_OPERATION_TIMEDOUT)
			snprintf(why, sizeof(why), "GET %s: no answer within %ld s", path,
				 timeout_ms / 1000);
		else
			docker_cause(c, rc, errbuf, why, sizeof(why));
		ret = host->error(err, KILN_E_CONNECT, "cannot reach docker at %s: %s",
				  conn->addr, why);
	} else {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	}
	curl_easy_cleanup(c);
	return ret;
}

/* ---- connect ---------------------------------------------------------------- */

/* The API version to use from the daemon's ("1.41"): at most API_MAX_MINOR,
 * refused below API_MIN_MINOR. */
static int use_api(struct docker_conn *conn, const char *api, long status,
		   struct kiln_err *err)
{
	const struct kiln_host *host = conn->host;
	unsigned major = 0, minor = 0;
	if (!api || sscanf(api, "%u.%u", &major, &minor) != 2)
		return host->error(err, KILN_E_PROTOCOL,
				   "docker at %s: GET /version answered HTTP %ld without an "
				   "ApiVersion", conn->addr, status);
	if (major != API_MAX_MAJOR || minor < API_MIN_MINOR)
		return host->error(err, KILN_E_UNSUPPORTED,
				   "docker at %s speaks Engine API %s; kiln needs 1.%d or newer",
				   conn->addr, api, API_MIN_MINOR);
	if (minor > API_MAX_MINOR)
		minor = API_MAX_MINOR;
	snprintf(conn->api, sizeof(conn->api), "v%u.%u", major, minor);
	return 0;
}

/* Name the engine from /_ping's headers alone when they say enough (Docker
 * and Podman both send Api-Version and Server). Returns true when done. */
static bool from_ping(struct docker_conn *conn, const struct ping_headers *h)
{
	const char *v;
	if (!h->api[0])
		return false;
	if (h->libpod[0]) {
		conn->podman = true;
		snprintf(conn->engine, sizeof(conn->engine), "Podman %s", h->libpod);
	} else if (strncmp(h->server, "Docker/", 7) == 0) {
		v = h->server + 7;
		snprintf(conn->engine, sizeof(conn->engine), "Docker %.*s",
			 (int)strcspn(v, " "), v);
	} else {
		return false;
	}
	return true;
}

/* Read GET /version: the API version to use, and Docker or Podman. */
static int read_version(struct docker_conn *conn, struct kiln_err *err)
{
	const struct kiln_host *host = conn->host;
	struct docker_buf body = { 0 };
	long status = 0;
	int rc = http_get(conn, "/version", VERSION_TIMEOUT_MS, &body, NULL, &status, err);
	if (rc < 0)
		return rc;
	json_error_t jerr;
	json_t *v = status == 200 && body.p ? json_loadb(body.p, body.len, 0, &jerr) : NULL;
	const char *api = json_string_value(json_object_get(v, "ApiVersion"));
	if ((rc = use_api(conn, api, status, err)) < 0)
		goto out;

	const char *version = json_string_value(json_object_get(v, "Version"));
	const char *name = "Docker";
	size_t i;
	json_t *comp;
	json_array_foreach(json_object_get(v, "Components"), i, comp) {
		const char *cn = json_string_value(json_object_get(comp, "Name"));
		if (cn && strstr(cn, "Podman")) {
			conn->podman = true;
			name = "Podman";
			const char *cv = json_string_value(json_object_get(comp, "Version"));
			if (cv)
				version = cv;
		}
	}
	snprintf(conn->engine, sizeof(conn->engine), "%s %s", name, version ? version : "?");
	host->log(KILN_LOG_DEBUG, "docker: %s at %s (Engine API %s, using %s)",
		  conn->engine, conn->addr, api, conn->api);
out:
	json_decref(v);
	docker_buf_release(host, &body);
	return rc;
}

static void disconnect(void *connp);

static int connect_(const struct kiln_host *host, const char *addr, void **connp,
		    struct kiln_err *err)
{
	const char *path = has_prefix(addr, "unix://") ? addr + 7
			   : has_prefix(addr, "docker-unix://") ? addr + 14
			   : strcmp(addr, "docker://") == 0 ? DOCKER_DEFAULT_SOCK : NULL;
	if (!path)
		return host->error(err, KILN_E_INVALID,
				   "the docker backend cannot use '%s' (it needs unix://PATH)", addr);
	if (!*path)
		path = "/var/run/docker.sock";
	struct docker_conn *conn = host->alloc(sizeof(*conn));
	*conn = (struct docker_conn){ .host = host };
	atomic_init(&conn->cancelled, false);
	conn->addr = host->alloc(strlen(addr) + 1);
	memcpy(conn->addr, addr, strlen(addr) + 1);
	if (strlen(path) >= sizeof(conn->sock)) {
		int rc = host->error(err, KILN_E_INVALID,
				     "cannot reach docker at %s: socket path longer than %zu bytes",
				     addr, sizeof(conn->sock) - 1);
		host->free(conn->addr);
		host->free(conn);
		return rc;
	}
	memcpy(conn->sock, path, strlen(path) + 1);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		host->free(conn->addr);
		host->free(conn);
		return host->error(err, KILN_E_NOMEM, "cannot initialise libcurl");
	}

	struct docker_buf body = { 0 };
	struct ping_headers h = { 0 };
	long status = 0;
	int rc = http_get(conn, "/_ping", PING_TIMEOUT_MS, &body, &h, &status, err);
	if (rc == 0 && status != 200)
		rc = host->error(err, KILN_E_PROTOCOL,
				 "cannot reach docker at %s: GET /_ping answered HTTP %ld%s%.200s",
				 addr, status, body.len ? ": " : "", body.len ? body.p : "");
	docker_buf_release(host, &body);
	/* /_ping's headers name the engine; /version only when they do not */
	if (rc == 0 && from_ping(conn, &h)) {
		rc = use_api(conn, h.api, status, err);
		if (rc == 0)
			host->log(KILN_LOG_DEBUG, "docker: %s at %s (Engine API %s, using %s)",
				  conn->engine, conn->addr, h.api, conn->api);
	} else if (rc == 0) {
		rc = read_version(conn, err);
	}
	if (rc < 0) {
		disconnect(conn);
		return rc;
	}
	*connp = conn;
	return 0;
}

static void disconnect(void *connp)
{
	struct docker_conn *conn = connp;
	if (!conn)
		return;
	const struct kiln_host *host = conn->host;
	host->free(conn->addr);
	host->free(conn);
	curl_global_cleanup();
}

static void cancel(void *connp)
{
	struct docker_conn *conn = connp;
	atomic_store(&conn->cancelled, true);
}

/* ---- solve ------------------------------------------------------------------- */

struct transfer {
	struct docker_conn *conn;
	struct docker_stream *stream;
	struct docker_context *ctx;
	CURL *curl;
	long status;           /* HTTP status, once known */
	struct docker_buf body; /* the body of an error response */
	bool ctx_failed;
	bool ctx_done;
};

static size_t read_cb(char *buf, size_t size, size_t n, void *ud)
{
	struct transfer *t = ud;
	if (atomic_load(&t->conn->cancelled))
		return CURL_READFUNC_ABORT;
	ssize_t got = docker_context_read(t->ctx, buf, size * n);
	if (got < 0) {
		t->ctx_failed = true;
		return CURL_READFUNC_ABORT;
	}
	if (got == 0 && !t->ctx_done) {
		t->ctx_done = true;
		docker_stream_context_progress(t->stream, docker_context_bytes(t->ctx), true);
	}
	return (size_t)got;
}

static size_t write_cb(char *data, size_t size, size_t n, void *ud)
{
	struct transfer *t = ud;
	size_t len = size * n;
	if (atomic_load(&t->conn->cancelled))
		return 0; /* ends the transfer */
	if (!t->status)
		curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &t->status);
	if (t->status == 200) {
		docker_stream_feed(t->stream, data, len);
	} else if (t->body.len + len <= BODY_MAX) {
		docker_buf_add(t->conn->host, &t->body, data, len);
	}
	return len;
}

static int xferinfo_cb(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	struct transfer *t = ud;
	if (atomic_load(&t->conn->cancelled))
		return 1;
	if (!t->ctx_done)
		docker_stream_context_progress(t->stream, docker_context_bytes(t->ctx), false);
	return 0;
}

/* An answer other than 200: {"message":"…"}. A Dockerfile syntax error
 * points at its line. */
static int http_error(struct docker_conn *conn, const struct docker_request *r,
		      long status, const struct docker_buf *body, struct kiln_err *err)
{
	const struct kiln_host *host = conn->host;
	json_error_t jerr;
	json_t *v = body->p ? json_loadb(body->p, body->len, 0, &jerr) : NULL;
	const char *msg = json_string_value(json_object_get(v, "message"));
	char text[KILN_ERR_MSG_MAX];
	if (msg)
		snprintf(text, sizeof(text), "%s", msg);
	else
		snprintf(text, sizeof(text), "%.*s", (int)(body->len > 300 ? 300 : body->len),
			 body->p ? body->p : "");
	size_t tl = strlen(text);
	while (tl && (text[tl - 1] == '\n' || text[tl - 1] == '\r'))
		text[--tl] = '\0';
	json_decref(v);

	int line = 0, off = 0;
	if (sscanf(text, "dockerfile parse error line %d: %n", &line, &off) == 1 && off > 0)
		return host->error_at(err, KILN_E_SYNTAX, r->dockerfile, line, 0, "%s",
				      text + off);
	if (status >= 400 && status < 500 && tl) /* the request's fault: say what */
		return host->error(err, status == 404 ? KILN_E_NOTFOUND : KILN_E_INVALID,
				   "%s", text);
	return host->error(err, status >= 400 && status < 500 ? KILN_E_INVALID : KILN_E_BUILD,
			   "docker at %s: %s (HTTP %ld)", conn->addr, tl ? text : "no message",
			   status);
}

static int solve(void *connp, const struct kiln_solve *req, struct kiln_solve_result *res,
		 struct kiln_err *err)
{
	struct docker_conn *conn = connp;
	const struct kiln_host *host = conn->host;
	if (atomic_load(&conn->cancelled))
		return host->error(err, KILN_E_CANCELLED, "build cancelled");

	struct docker_request r;
	int rc = docker_request_make(conn, req, &r, err);
	if (rc < 0)
		return rc;
	struct docker_context *ctx = NULL;
	rc = docker_context_open(host, r.context_dir, r.dockerfile_name, r.dockerfile,
				 r.dockerfile_outside ? r.dockerfile : NULL, &ctx, err);
	if (rc < 0) {
		docker_request_release(host, &r);
		return rc;
	}

	struct docker_stream st;
	docker_stream_init(&st, host, req);
	struct transfer t = { .conn = conn, .stream = &st, .ctx = ctx };
	char errbuf[CURL_ERROR_SIZE];
	struct docker_buf path = { 0 };
	docker_buf_adds(host, &path, "/build?");
	docker_buf_adds(host, &path, r.query);
	t.curl = docker_easy_new(conn, path.p, errbuf);
	docker_buf_release(host, &path);
	if (!t.curl) {
		docker_context_free(ctx);
		docker_request_release(host, &r);
		return host->error(err, KILN_E_NOMEM, "cannot start libcurl");
	}
	struct curl_slist *hdr = NULL, *h;
	hdr = curl_slist_append(hdr, "Content-Type: application/x-tar");
	/* a body of unknown length, sent as it is made; no 100-continue
	 * round trip (curl would wait a second for it) */
	if (hdr && (h = curl_slist_append(hdr, "Transfer-Encoding: chunked")))
		hdr = h;
	if (hdr && (h = curl_slist_append(hdr, "Expect:")))
		hdr = h;
	CURL *c = t.curl;
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(c, CURLOPT_READDATA, &t);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
	curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 256L * 1024);

	host->log(KILN_LOG_DEBUG, "docker: POST /%s/build (%s, Dockerfile %s)", conn->api,
		  conn->engine, r.dockerfile_name);
	docker_stream_context_begin(&st);
	if (docker_context_note(ctx))
		docker_stream_warning(&st, docker_context_note(ctx));
	CURLcode cc = curl_easy_perform(c);
	if (!t.status)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t.status);

	if (atomic_load(&conn->cancelled)) {
		docker_stream_finish(&st, "cancelled");
		rc = host->error(err, KILN_E_CANCELLED, "build cancelled");
	} else if (t.ctx_failed) {
		docker_stream_finish(&st, docker_context_error(ctx));
		rc = host->error_at(err, KILN_E_IO, r.context_dir, 0, 0,
				    "cannot send the build context: %s", docker_context_error(ctx));
	} else if (t.status >= 400 && t.body.len) {
		/* an answer, even if the daemon hung up before taking the
		 * whole context */
		rc = http_error(conn, &r, t.status, &t.body, err);
		docker_stream_finish(&st, err->msg);
	} else if (cc != CURLE_OK) {
		char why[512];
		docker_cause(c, cc, errbuf, why, sizeof(why));
		docker_stream_finish(&st, why);
		rc = host->error(err, cc == CURLE_COULDNT_CONNECT ? KILN_E_CONNECT : KILN_E_PROTOCOL,
				 "%s docker at %s: %s",
				 cc == CURLE_COULDNT_CONNECT ? "cannot reach" : "lost",
				 conn->addr, why);
	} else if (t.status != 200) {
		rc = http_error(conn, &r, t.status, &t.body, err); /* no body */
		docker_stream_finish(&st, err->msg);
	} else {
		docker_stream_finish(&st, NULL);
		if (st.error && st.error_vertex)
			rc = host->error(err, KILN_E_BUILD, "%s: %s", st.error_vertex, st.error);
		else if (st.error)
			rc = host->error(err, KILN_E_BUILD, "%s", st.error);
		else if (!(st.exporting && (st.image_id || st.short_id)) &&
			 !(conn->podman && st.image_id))
			/* Docker ends with "Successfully built"; an aux ID
			 * alone may be an intermediate stage's */
			rc = host->error(err, KILN_E_PROTOCOL,
					 "docker at %s ended the build without an image ID",
					 conn->addr);
	}

	if (rc == 0) {
		const char *id = st.image_id;
		if (id) {
			res->config_digest = host->arena_strdup(req->arena, id);
			/* no registry digest: the image lives in the daemon */
			res->image_digest = res->config_digest;
		}
		size_t n = 0;
		struct kiln_kv *kv = host->arena_alloc(req->arena, 4 * sizeof(*kv));
		if (id) {
			kv[n++] = (struct kiln_kv){ "containerimage.config.digest", res->config_digest };
			kv[n++] = (struct kiln_kv){ "containerimage.digest", res->config_digest };
		} else {
			kv[n++] = (struct kiln_kv){ "image.id",
						    host->arena_strdup(req->arena, st.short_id) };
		}
		if (r.tags)
			kv[n++] = (struct kiln_kv){ "image.name",
						    host->arena_strdup(req->arena, r.tags) };
		res->exporter_response = kv;
		res->n_exporter_response = n;
	}

	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	docker_buf_release(host, &t.body);
	docker_stream_release(&st);
	docker_context_free(ctx);
	docker_request_release(host, &r);
	return rc;
}

static const struct kiln_backend backend = {
	.abi_version = KILN_ABI_VERSION,
	.struct_size = sizeof(struct kiln_backend),
	.name = "docker",
	.version = "0.1.0",
	.description = "Docker Engine API /build (classic builder); Docker and Podman",
	.probe = probe,
	.connect = connect_,
	.solve = solve,
	.cancel = cancel,
	.disconnect = disconnect,
	.push = docker_push,
};

KILN_EXPORT int kiln_plugin_init(const struct kiln_host *host, uint32_t host_abi,
				 struct kiln_plugin *plugin, struct kiln_err *err)
{
	int rc = kiln_check_host_abi(host, host_abi, err);
	return rc < 0 ? rc : host->register_backend(plugin, &backend);
}
