/*
 * push.c: the backend's push(): an image of the daemon's store goes to a
 * registry the way `docker push` sends it (Engine API v1.41, "Image"):
 *
 *   POST /images/{image}/tag?repo=HOST/REPO&tag=TAG      201 Created
 *   POST /images/HOST/REPO/push?tag=TAG                  200, a JSON stream
 *        X-Registry-Auth: base64url({"username","password","serveraddress"})
 *
 * The stream is one JSON object per line: {"status":…} progress,
 * {"errorDetail":{"message":…},"error":…} on failure, and at the end
 * {"aux":{"Tag":…,"Digest":"sha256:…","Size":N}}, the manifest the
 * registry stored. dockerd wants X-Registry-Auth even for an anonymous
 * push ("{}" then). The daemon talks to the registry; its own list of
 * insecure registries (127.0.0.0/8 by default) applies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "docker.h"

#define PUSH_BODY_MAX (4 * 1024 * 1024)

struct push_io {
	struct docker_conn *conn;
	struct docker_buf body;
};

static size_t push_write_cb(char *data, size_t size, size_t n, void *ud)
{
	struct push_io *io = ud;
	size_t len = size * n;
	if (atomic_load(&io->conn->cancelled))
		return 0;
	if (io->body.len + len <= PUSH_BODY_MAX)
		docker_buf_add(io->conn->host, &io->body, data, len);
	return len;
}

static int push_xfer_cb(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	(void)a, (void)b, (void)c, (void)d;
	struct push_io *io = ud;
	return atomic_load(&io->conn->cancelled) ? 1 : 0;
}

/* Percent-encode s for a query value or a path. */
static void add_escaped(const struct kiln_host *host, struct docker_buf *b, const char *s,
			bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~:", *p) || (keep_slash && *p == '/')) {
			docker_buf_add(host, b, p, 1);
		} else {
			char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
			docker_buf_add(host, b, e, 3);
		}
	}
}

/* X-Registry-Auth for registry host reg: the client's credentials for
 * it (host->registry_credentials), or "{}". Heap string (host->alloc). */
static char *auth_header(const struct kiln_host *host, const char *reg)
{
	json_t *o = json_object();
	char *user = NULL, *secret = NULL;
	if (KILN_HAS_FIELD(host, struct kiln_host, registry_credentials) &&
	    host->registry_credentials && host->registry_credentials(reg, &user, &secret) == 0) {
		if (user) {
			json_object_set_new(o, "username", json_string(user));
			json_object_set_new(o, "password", json_string(secret ? secret : ""));
		} else {
			json_object_set_new(o, "identitytoken", json_string(secret ? secret : ""));
		}
		json_object_set_new(o, "serveraddress", json_string(reg));
	}
	char *js = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	size_t n = js ? strlen(js) : 0;
	unsigned char *b64 = host->alloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock(b64, (const unsigned char *)(js ? js : ""), (int)n);
	for (unsigned char *p = b64; *p; p++) /* Go's base64.URLEncoding */
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	if (js) {
		explicit_bzero(js, n);
		free(js);
	}
	for (char **p = (char *[]){ user, secret }, **e = p + 2; p < e; p++)
		if (*p) {
			explicit_bzero(*p, strlen(*p));
			host->free(*p);
		}
	const char *name = "X-Registry-Auth: ";
	size_t hn = strlen(name) + strlen((char *)b64) + 1;
	char *h = host->alloc(hn);
	snprintf(h, hn, "%s%s", name, (char *)b64);
	explicit_bzero(b64, strlen((char *)b64));
	host->free(b64);
	return h;
}

/* POST path with no body; the answer into io->body. extra: one more
 * header or NULL. Returns 0 with *status, or a negative code. */
static int post(struct docker_conn *conn, const char *path, const char *extra,
		struct push_io *io, long *status, struct kiln_err *err)
{
	const struct kiln_host *host = conn->host;
	char errbuf[CURL_ERROR_SIZE];
	CURL *c = docker_easy_new(conn, path, errbuf);
	if (!c)
		return host->error(err, KILN_E_NOMEM, "cannot start libcurl");
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	if (extra && hdr) {
		struct curl_slist *h2 = curl_slist_append(hdr, extra);
		if (h2)
			hdr = h2;
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, push_write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, io);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, push_xfer_cb);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, io);
	CURLcode cc = curl_easy_perform(c);
	int rc = 0;
	if (atomic_load(&conn->cancelled)) {
		rc = host->error(err, KILN_E_CANCELLED, "push cancelled");
	} else if (cc != CURLE_OK) {
		char why[512];
		docker_cause(c, cc, errbuf, why, sizeof(why));
		rc = host->error(err, cc == CURLE_COULDNT_CONNECT ? KILN_E_CONNECT : KILN_E_PROTOCOL,
				 "%s docker at %s: %s",
				 cc == CURLE_COULDNT_CONNECT ? "cannot reach" : "lost", conn->addr, why);
	} else {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	}
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	return rc;
}

/* {"message": …} of an error answer, or its first bytes. */
static void answer_text(const struct docker_buf *b, char *out, size_t len)
{
	json_error_t jerr;
	json_t *v = b->p ? json_loadb(b->p, b->len, 0, &jerr) : NULL;
	const char *m = json_string_value(json_object_get(v, "message"));
	if (m)
		snprintf(out, len, "%s", m);
	else
		snprintf(out, len, "%.*s", (int)(b->len > 300 ? 300 : b->len), b->p ? b->p : "");
	json_decref(v);
	size_t n = strlen(out);
	while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
}

/* Split "HOST/REPO:TAG" at the tag's colon (the last ':' after the last
 * '/'). */
static const char *tag_colon(const char *ref)
{
	const char *slash = strrchr(ref, '/');
	const char *colon = strrchr(slash ? slash : ref, ':');
	return colon && !strchr(colon, '@') ? colon : NULL;
}

int docker_push(void *connp, const struct kiln_push *req, struct kiln_push_result *res,
		struct kiln_err *err)
{
	struct docker_conn *conn = connp;
	const struct kiln_host *host = conn->host;
	const char *colon = tag_colon(req->ref);
	const char *slash = strchr(req->ref, '/');
	if (!colon || !slash || slash > colon)
		return host->error(err, KILN_E_INVALID, "push: '%s' is not HOST/REPO:TAG",
				   req->ref);
	size_t repo_len = (size_t)(colon - req->ref);
	char *repo = host->alloc(repo_len + 1);
	memcpy(repo, req->ref, repo_len);
	repo[repo_len] = '\0';
	const char *tag = colon + 1;
	char *reg = host->alloc((size_t)(slash - req->ref) + 1);
	memcpy(reg, req->ref, (size_t)(slash - req->ref));
	reg[slash - req->ref] = '\0';

	struct push_io io = { .conn = conn };
	struct docker_buf path = { 0 };
	long status = 0;
	int rc;
	char text[KILN_ERR_MSG_MAX];

	/* 1. tag */
	docker_buf_adds(host, &path, "/images/");
	add_escaped(host, &path, req->image, true);
	docker_buf_adds(host, &path, "/tag?repo=");
	add_escaped(host, &path, repo, false);
	docker_buf_adds(host, &path, "&tag=");
	add_escaped(host, &path, tag, false);
	rc = post(conn, path.p, NULL, &io, &status, err);
	if (rc == 0 && status != 201 && status != 200) {
		answer_text(&io.body, text, sizeof(text));
		rc = host->error(err, status == 404 ? KILN_E_NOTFOUND : KILN_E_PROTOCOL,
				 "cannot tag %s as %s on docker at %s: %s (HTTP %ld)", req->image,
				 req->ref, conn->addr, text[0] ? text : "no message", status);
	}
	docker_buf_release(host, &path);
	docker_buf_release(host, &io.body);
	io.body = (struct docker_buf){ 0 };

	/* 2. push */
	char *auth = NULL;
	if (rc == 0) {
		auth = auth_header(host, reg);
		docker_buf_adds(host, &path, "/images/");
		add_escaped(host, &path, repo, true);
		docker_buf_adds(host, &path, "/push?tag=");
		add_escaped(host, &path, tag, false);
		host->log(KILN_LOG_DEBUG, "docker: push %s (%s) from %s", req->ref, req->image,
			  conn->addr);
		rc = post(conn, path.p, auth, &io, &status, err);
		docker_buf_release(host, &path);
	}
	if (rc == 0 && status != 200) {
		answer_text(&io.body, text, sizeof(text));
		rc = host->error(err, status == 401 || status == 403 ? KILN_E_DENIED
				 : status == 404 ? KILN_E_NOTFOUND : KILN_E_PROTOCOL,
				 "cannot push %s from docker at %s: %s (HTTP %ld)", req->ref,
				 conn->addr, text[0] ? text : "no message", status);
	}
	bool got = false;
	for (char *line = io.body.p; rc == 0 && line && *line;) {
		char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		json_error_t jerr;
		json_t *v = json_loadb(line, len, 0, &jerr);
		const char *e = json_string_value(
			json_object_get(json_object_get(v, "errorDetail"), "message"));
		if (!e)
			e = json_string_value(json_object_get(v, "error"));
		json_t *aux = json_object_get(v, "aux");
		const char *dg = json_string_value(json_object_get(aux, "Digest"));
		if (e) {
			bool denied = strstr(e, "unauthorized") || strstr(e, "denied") ||
				      strstr(e, "authentication required") ||
				      strstr(e, "no basic auth credentials");
			rc = host->error(err, denied ? KILN_E_DENIED : KILN_E_PROTOCOL,
					 "cannot push %s: %s", req->ref, e);
		} else if (dg && strlen(dg) < sizeof(res->digest)) {
			snprintf(res->digest, sizeof(res->digest), "%s", dg);
			json_int_t sz = json_integer_value(json_object_get(aux, "Size"));
			res->size = sz > 0 ? (uint64_t)sz : 0;
			got = true;
		}
		json_decref(v);
		line = nl ? nl + 1 : NULL;
	}
	if (rc == 0 && !got)
		rc = host->error(err, KILN_E_PROTOCOL, "docker at %s pushed %s without saying "
				 "its digest", conn->addr, req->ref);
	if (rc == 0)
		/* what dockerd (18.06 and later) writes for an image it built */
		snprintf(res->media_type, sizeof(res->media_type), "%s",
			 conn->podman ? "" : "application/vnd.docker.distribution.manifest.v2+json");
	docker_buf_release(host, &io.body);
	if (auth) {
		explicit_bzero(auth, strlen(auth));
		host->free(auth);
	}
	host->free(repo);
	host->free(reg);
	return rc;
}
