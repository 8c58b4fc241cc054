/*
 * registry.c: image references, and the part of the registry HTTP API
 * kiln needs to publish a multi-platform image: HEAD and PUT of manifests
 * (OCI distribution spec v1.1), behind Docker's authentication:
 *
 *   a request answered 401 carries WWW-Authenticate;
 *   "Basic realm=…": send the client's credentials as Basic;
 *   "Bearer realm=R,service=S,scope=C": GET R?service=S&scope=C (Basic
 *   with the credentials if any, anonymous otherwise; an identity token is
 *   POSTed as an OAuth2 refresh_token instead), take "token" or
 *   "access_token" from the JSON answer and send it as Bearer.
 *   (https://distribution.github.io/distribution/spec/auth/token/)
 *
 * The scope asked is repository:REPO:pull,push. HTTP is libcurl.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "lazylib.h"
#include "dockercfg.h"
#include "registry.h"
#include "util.h"

#define CONNECT_TIMEOUT_MS 10000L
#define REQUEST_TIMEOUT_MS 120000L
#define BODY_MAX (4 * 1024 * 1024)

/* ---- references ---------------------------------------------------------------------------- */

static bool is_host_part(const char *s, size_t n)
{
	/* docker's rule: the first component is a host when it has '.' or
	 * ':' or is "localhost" */
	return memchr(s, '.', n) || memchr(s, ':', n) || (n == 9 && memcmp(s, "localhost", 9) == 0);
}

static bool repo_ok(const char *s)
{
	if (!*s || *s == '/' || s[strlen(s) - 1] == '/' || strstr(s, "//"))
		return false;
	for (const char *p = s; *p; p++)
		if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || strchr("._-/", *p)))
			return false;
	return true;
}

static bool tag_ok(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > 128 || !(isalnum((unsigned char)t[0]) || t[0] == '_'))
		return false;
	for (const char *p = t; *p; p++)
		if (!(isalnum((unsigned char)*p) || strchr("._-", *p)))
			return false;
	return true;
}

int kiln__ref_parse(const char *s, struct kiln_ref *out, struct kiln_err *err)
{
	*out = (struct kiln_ref){ 0 };
	char *copy = kiln__xstrdup(s);
	char *name = copy;
	char *at = strchr(name, '@');
	if (at) {
		*at = '\0';
		const char *d = at + 1;
		if (strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71 ||
		    strspn(d + 7, "0123456789abcdef") != 64) {
			free(copy);
			return kiln__err(err, KILN_E_INVALID, "image reference '%s': bad digest", s);
		}
		out->digest = kiln__xstrdup(d);
	}
	char *slash = strchr(name, '/');
	char *last = strrchr(name, '/');
	char *colon = strrchr(last ? last : name, ':');
	if (colon) {
		*colon = '\0';
		if (!tag_ok(colon + 1)) {
			kiln__ref_release(out);
			free(copy);
			return kiln__err(err, KILN_E_INVALID, "image reference '%s': bad tag", s);
		}
		out->tag = kiln__xstrdup(colon + 1);
	} else if (!out->digest) {
		out->tag = kiln__xstrdup("latest");
	}
	if (slash && is_host_part(name, (size_t)(slash - name))) {
		out->host = kiln__xasprintf("%.*s", (int)(slash - name), name);
		name = slash + 1;
	} else {
		out->host = kiln__xstrdup("docker.io");
	}
	if (strcmp(out->host, "docker.io") == 0 && !strchr(name, '/'))
		out->repo = kiln__xasprintf("library/%s", name);
	else
		out->repo = kiln__xstrdup(name);
	free(copy);
	if (!repo_ok(out->repo)) {
		kiln__ref_release(out);
		return kiln__err(err, KILN_E_INVALID, "image reference '%s': a repository name is "
				 "lower-case letters, digits and . _ - / separated components", s);
	}
	return 0;
}

void kiln__ref_release(struct kiln_ref *r)
{
	free(r->host);
	free(r->repo);
	free(r->tag);
	free(r->digest);
	*r = (struct kiln_ref){ 0 };
}

char *kiln__ref_string(const struct kiln_ref *r)
{
	if (r->digest)
		return kiln__xasprintf("%s/%s@%s", r->host, r->repo, r->digest);
	return kiln__xasprintf("%s/%s:%s", r->host, r->repo, r->tag);
}

/* ---- WWW-Authenticate ---------------------------------------------------------------------- */

int kiln__auth_challenge_parse(const char *v, struct kiln_auth_challenge *out,
			       struct kiln_err *err)
{
	*out = (struct kiln_auth_challenge){ 0 };
	while (*v == ' ')
		v++;
	size_t n = strcspn(v, " ");
	if (n == 0)
		return kiln__err(err, KILN_E_PROTOCOL, "registry: empty WWW-Authenticate");
	out->scheme = kiln__xasprintf("%.*s", (int)n, v);
	for (char *p = out->scheme; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	const char *p = v + n;
	/* key=value or key="quoted value", comma-separated */
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t kn = strcspn(p, "=, ");
		if (kn == 0 || p[kn] != '=')
			break;
		const char *k = p;
		p += kn + 1;
		struct kiln_sb val = KILN_SB_INIT;
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1])
					p++;
				kiln__sb_add(&val, p, 1);
			}
			if (*p == '"')
				p++;
		} else {
			size_t vn = strcspn(p, ",");
			kiln__sb_add(&val, p, vn);
			p += vn;
		}
		char **slot = kn == 5 && strncasecmp(k, "realm", 5) == 0     ? &out->realm
			      : kn == 7 && strncasecmp(k, "service", 7) == 0 ? &out->service
			      : kn == 5 && strncasecmp(k, "scope", 5) == 0   ? &out->scope
									     : NULL;
		if (slot && !*slot)
			*slot = kiln__xstrdup(kiln__sb_str(&val));
		kiln__sb_release(&val);
	}
	return 0;
}

void kiln__auth_challenge_release(struct kiln_auth_challenge *c)
{
	free(c->scheme);
	free(c->realm);
	free(c->service);
	free(c->scope);
	*c = (struct kiln_auth_challenge){ 0 };
}

/* ---- the client ------------------------------------------------------------------------------ */

struct kiln_registry {
	char *host;     /* as in references ("docker.io") */
	char *base;     /* "http://127.0.0.1:5000", "https://registry-1.docker.io" */
	char *authz;    /* "Authorization: Bearer …" / "Basic …", or NULL */
};

static bool loopback(const char *host)
{
	/* host may carry a port */
	if (strncmp(host, "localhost", 9) == 0 && (host[9] == '\0' || host[9] == ':'))
		return true;
	if (strncmp(host, "127.", 4) == 0)
		return true;
	return strncmp(host, "[::1]", 5) == 0;
}

struct kiln_registry *kiln__registry_new(const char *host, bool insecure)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct kiln_registry *r = kiln__xcalloc(1, sizeof(*r));
	r->host = kiln__xstrdup(host);
	const char *api = strcmp(host, "docker.io") == 0 ? "registry-1.docker.io" : host;
	r->base = kiln__xasprintf("%s://%s", insecure || loopback(host) ? "http" : "https", api);
	return r;
}

static void wipe(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void kiln__registry_free(struct kiln_registry *r)
{
	if (!r)
		return;
	free(r->host);
	free(r->base);
	wipe(r->authz);
	free(r);
	curl_global_cleanup();
}

struct reply {
	long status;
	struct kiln_sb body;
	char *www_auth;
	char *content_type;
	char *digest;
	uint64_t length;
	bool has_length;
};

static void reply_release(struct reply *rp)
{
	kiln__sb_release(&rp->body);
	free(rp->www_auth);
	free(rp->content_type);
	free(rp->digest);
	*rp = (struct reply){ 0 };
}

static size_t body_cb(char *data, size_t size, size_t n, void *ud)
{
	struct reply *rp = ud;
	if (rp->body.len + size * n <= BODY_MAX)
		kiln__sb_add(&rp->body, data, size * n);
	return size * n;
}

static char *header_value(const char *line, size_t len, const char *name)
{
	size_t nl = strlen(name);
	if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return NULL;
	const char *v = line + nl + 1;
	const char *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	return kiln__xasprintf("%.*s", (int)(end - v), v);
}

static size_t header_cb(char *data, size_t size, size_t n, void *ud)
{
	struct reply *rp = ud;
	size_t len = size * n;
	char *v;
	if (len > 5 && strncmp(data, "HTTP/", 5) == 0) { /* a new response (redirect) */
		free(rp->www_auth);
		rp->www_auth = NULL;
	}
	if (!rp->www_auth && (v = header_value(data, len, "WWW-Authenticate")))
		rp->www_auth = v;
	else if ((v = header_value(data, len, "Content-Type"))) {
		free(rp->content_type);
		rp->content_type = v;
	} else if ((v = header_value(data, len, "Docker-Content-Digest"))) {
		free(rp->digest);
		rp->digest = v;
	} else if ((v = header_value(data, len, "Content-Length"))) {
		rp->length = strtoull(v, NULL, 10);
		rp->has_length = true;
		free(v);
	}
	return len;
}

/* One request; body/len for PUT and POST (NULL: none). extra: headers. */
static int request(const char *method, const char *url, const char *const *extra,
		   const char *body, size_t len, const char *userpwd, struct reply *rp,
		   struct kiln_err *err)
{
	CURL *c = curl_easy_init();
	if (!c)
		return kiln__err(err, KILN_E_NOMEM, "cannot start libcurl");
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdr = NULL;
	for (size_t i = 0; extra && extra[i]; i++) {
		struct curl_slist *h = curl_slist_append(hdr, extra[i]);
		if (h)
			hdr = h;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "kiln/" KILN_VERSION);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, rp);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, rp);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	if (userpwd) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERPWD, userpwd);
	}
	if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
	}
	CURLcode cc = curl_easy_perform(c);
	int rc = 0;
	if (cc != CURLE_OK)
		rc = kiln__err(err, KILN_E_CONNECT, "cannot reach the registry at %s: %s", url,
			       errbuf[0] ? errbuf : curl_easy_strerror(cc));
	else
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rp->status);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	return rc;
}

static char *escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	char *d = kiln__xstrdup(e ? e : "");
	curl_free(e);
	return d;
}

/* Answer challenge ch for repo: set r->authz. Returns 0 or an error. */
static int authenticate(struct kiln_registry *r, const char *repo, const char *challenge,
			struct kiln_err *err)
{
	struct kiln_auth_challenge ch;
	int rc = kiln__auth_challenge_parse(challenge, &ch, err);
	if (rc < 0)
		return rc;
	char *user = NULL, *secret = NULL;
	bool have = kiln__docker_credentials(r->host, &user, &secret) == 0;
	wipe(r->authz);
	r->authz = NULL;
	if (strcmp(ch.scheme, "basic") == 0) {
		if (!have || !user) {
			rc = kiln__err(err, KILN_E_DENIED, "registry %s wants a user name and "
				       "password (docker login %s)", r->host, r->host);
		} else {
			char *up = kiln__xasprintf("%s:%s", user, secret ? secret : "");
			size_t n = strlen(up);
			unsigned char *b64 = kiln__xmalloc(4 * ((n + 2) / 3) + 1);
			EVP_EncodeBlock(b64, (unsigned char *)up, (int)n);
			r->authz = kiln__xasprintf("Authorization: Basic %s", (char *)b64);
			wipe((char *)b64);
			wipe(up);
		}
	} else if (strcmp(ch.scheme, "bearer") == 0 && ch.realm) {
		char *scope = kiln__xasprintf("repository:%s:pull,push", repo);
		char *e_scope = escape(scope), *e_service = escape(ch.service ? ch.service : "");
		struct reply rp = { 0 };
		if (have && !user) {
			/* an identity token: OAuth2 refresh_token grant */
			char *e_tok = escape(secret ? secret : "");
			char *form = kiln__xasprintf("grant_type=refresh_token&client_id=kiln&"
						     "service=%s&scope=%s&refresh_token=%s",
						     e_service, e_scope, e_tok);
			const char *hdr[] = { "Content-Type: application/x-www-form-urlencoded",
					      NULL };
			rc = request("POST", ch.realm, hdr, form, strlen(form), NULL, &rp, err);
			wipe(form);
			wipe(e_tok);
		} else {
			char *url = kiln__xasprintf("%s%sservice=%s&scope=%s", ch.realm,
						    strchr(ch.realm, '?') ? "&" : "?", e_service,
						    e_scope);
			char *up = have ? kiln__xasprintf("%s:%s", user, secret ? secret : "") : NULL;
			rc = request("GET", url, NULL, NULL, 0, up, &rp, err);
			wipe(up);
			free(url);
		}
		if (rc == 0 && rp.status != 200) {
			rc = kiln__err(err, rp.status == 401 || rp.status == 403 ? KILN_E_DENIED
				       : KILN_E_PROTOCOL, "registry %s: the token server %s answered "
				       "HTTP %ld%s", r->host, ch.realm, rp.status,
				       rp.status == 401 ? " (check docker login)" : "");
		} else if (rc == 0) {
			json_error_t jerr;
			json_t *v = json_loadb(rp.body.buf ? rp.body.buf : "", rp.body.len, 0, &jerr);
			const char *tok = json_string_value(json_object_get(v, "token"));
			if (!tok)
				tok = json_string_value(json_object_get(v, "access_token"));
			if (tok)
				r->authz = kiln__xasprintf("Authorization: Bearer %s", tok);
			else
				rc = kiln__err(err, KILN_E_PROTOCOL, "registry %s: the token server "
					       "%s gave no token", r->host, ch.realm);
			json_decref(v);
		}
		if (rp.body.buf)
			explicit_bzero(rp.body.buf, rp.body.len);
		reply_release(&rp);
		free(scope);
		free(e_scope);
		free(e_service);
	} else {
		rc = kiln__err(err, KILN_E_PROTOCOL, "registry %s asks for '%s' authentication, "
			       "which kiln does not speak", r->host, ch.scheme);
	}
	kiln__creds_free(user, secret);
	kiln__auth_challenge_release(&ch);
	return rc;
}

/* A request to /v2/REPO/manifests/REFERENCE, authenticating once on 401. */
static int manifest_call(struct kiln_registry *r, const char *method, const char *repo,
			 const char *reference, const char *ctype, const char *body, size_t len,
			 struct reply *rp, struct kiln_err *err)
{
	char *url = kiln__xasprintf("%s/v2/%s/manifests/%s", r->base, repo, reference);
	char *ct = ctype ? kiln__xasprintf("Content-Type: %s", ctype) : NULL;
	static const char accept[] = "Accept: " KILN_MT_OCI_INDEX ", " KILN_MT_DOCKER_LIST ", "
				     KILN_MT_OCI_MANIFEST ", " KILN_MT_DOCKER_MANIFEST;
	int rc = 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		const char *hdr[4] = { accept };
		size_t k = 1;
		if (ct)
			hdr[k++] = ct;
		if (r->authz)
			hdr[k++] = r->authz;
		reply_release(rp);
		if ((rc = request(method, url, hdr, body, len, NULL, rp, err)) < 0)
			break;
		if (rp->status != 401 || attempt == 1 || !rp->www_auth)
			break;
		if ((rc = authenticate(r, repo, rp->www_auth, err)) < 0)
			break;
	}
	if (rc == 0 && (rp->status < 200 || rp->status >= 300)) {
		/* {"errors":[{"code":…,"message":…}]} */
		json_error_t jerr;
		json_t *v = rp->body.len ? json_loadb(rp->body.buf, rp->body.len, 0, &jerr) : NULL;
		json_t *e0 = json_array_get(json_object_get(v, "errors"), 0);
		const char *code = json_string_value(json_object_get(e0, "code"));
		const char *msg = json_string_value(json_object_get(e0, "message"));
		int kc = rp->status == 404 ? KILN_E_NOTFOUND
			 : rp->status == 401 || rp->status == 403 ? KILN_E_DENIED : KILN_E_PROTOCOL;
		rc = kiln__err(err, kc, "registry: %s %s answered HTTP %ld%s%s%s%s", method, url,
			       rp->status, code ? " " : "", code ? code : "", msg ? ": " : "",
			       msg ? msg : "");
		json_decref(v);
	}
	free(ct);
	free(url);
	return rc;
}

int kiln__registry_manifest_head(struct kiln_registry *r, const char *repo,
				 const char *reference, struct kiln_manifest_info *out,
				 struct kiln_err *err)
{
	struct reply rp = { 0 };
	*out = (struct kiln_manifest_info){ 0 };
	int rc = manifest_call(r, "HEAD", repo, reference, NULL, NULL, 0, &rp, err);
	if (rc == 0) {
		snprintf(out->digest, sizeof(out->digest), "%s",
			 rp.digest ? rp.digest : (strncmp(reference, "sha256:", 7) == 0 ? reference
										   : ""));
		if (rp.content_type)
			snprintf(out->media_type, sizeof(out->media_type), "%.*s",
				 (int)strcspn(rp.content_type, ";"), rp.content_type);
		out->size = rp.has_length ? rp.length : 0;
		if (!out->digest[0] || !out->media_type[0] || !out->size)
			rc = kiln__err(err, KILN_E_PROTOCOL, "registry %s: HEAD of %s:%s lacks its "
				       "digest, type or length", r->host, repo, reference);
	}
	reply_release(&rp);
	return rc;
}

int kiln__registry_manifest_put(struct kiln_registry *r, const char *repo,
				const char *reference, const char *mt, const char *body,
				size_t len, struct kiln_manifest_info *out, struct kiln_err *err)
{
	struct reply rp = { 0 };
	*out = (struct kiln_manifest_info){ 0 };
	kiln__sha256_digest(body, len, out->digest);
	snprintf(out->media_type, sizeof(out->media_type), "%s", mt);
	out->size = len;
	int rc = manifest_call(r, "PUT", repo, reference, mt, body, len, &rp, err);
	if (rc == 0 && rp.digest && strcmp(rp.digest, out->digest) != 0)
		rc = kiln__err(err, KILN_E_PROTOCOL, "registry %s stored %s:%s as %s, not %s",
			       r->host, repo, reference, rp.digest, out->digest);
	reply_release(&rp);
	return rc;
}

/* ---- the index ------------------------------------------------------------------------------- */

char *kiln__index_json(const struct kiln_index_entry *e, size_t n, const char **mt)
{
	bool docker = true;
	for (size_t i = 0; i < n; i++)
		docker = docker && strcmp(e[i].m.media_type, KILN_MT_DOCKER_MANIFEST) == 0;
	*mt = docker ? KILN_MT_DOCKER_LIST : KILN_MT_OCI_INDEX;
	json_t *root = json_object();
	json_object_set_new(root, "schemaVersion", json_integer(2));
	json_object_set_new(root, "mediaType", json_string(*mt));
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *m = json_object();
		json_object_set_new(m, "mediaType", json_string(e[i].m.media_type));
		json_object_set_new(m, "digest", json_string(e[i].m.digest));
		json_object_set_new(m, "size", json_integer((json_int_t)e[i].m.size));
		json_t *p = json_object();
		char *plat = kiln__xstrdup(e[i].platform);
		char *os = plat, *arch = strchr(os, '/'), *variant = NULL;
		if (arch) {
			*arch++ = '\0';
			if ((variant = strchr(arch, '/')))
				*variant++ = '\0';
		}
		json_object_set_new(p, "architecture", json_string(arch ? arch : ""));
		json_object_set_new(p, "os", json_string(os));
		if (variant && *variant)
			json_object_set_new(p, "variant", json_string(variant));
		free(plat);
		json_object_set_new(m, "platform", p);
		json_array_append_new(arr, m);
	}
	json_object_set_new(root, "manifests", arr);
	char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	return s;
}
