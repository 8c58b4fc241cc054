/*
 * request.c: what the classic builder is asked to do. The frontend's
 * dockerfile.v0 request (the attributes buildx sends BuildKit) and the job's
 * options become the Engine API's /build query parameters; what the
 * classic builder cannot do is refused here, before anything is sent.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "docker.h"

#define HINT "use the buildkit backend (--addr docker-unix://SOCKET for BuildKit " \
	     "inside dockerd, or a buildkitd address)"

static int unsupported(const struct kiln_host *host, struct kiln_err *err,
		       const char *flag, const char *value)
{
	return host->error(err, KILN_E_UNSUPPORTED,
			   "%s %s: not supported by the docker backend (Docker's classic "
			   "builder); " HINT, flag, value);
}

static void query_add(const struct kiln_host *host, struct docker_buf *q,
		      const char *key, const char *value)
{
	char *esc = curl_easy_escape(NULL, value, 0);
	if (q->len)
		docker_buf_adds(host, q, "&");
	docker_buf_adds(host, q, key);
	docker_buf_adds(host, q, "=");
	docker_buf_adds(host, q, esc ? esc : "");
	curl_free(esc);
}

static void query_add_json(const struct kiln_host *host, struct docker_buf *q,
			   const char *key, json_t *value)
{
	char *s = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
	if (s)
		query_add(host, q, key, s);
	free(s);
}

/* The value of key in a CSV such as "type=registry,ref=x", as a new
 * string, or NULL. */
static char *csv_get(const char *csv, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = csv; *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=')
			return strndup(p + kl + 1, len - kl - 1);
		p += len;
		if (*p == ',')
			p++;
	}
	return NULL;
}

/* Every key of csv is in allowed (NULL-terminated). */
static bool csv_keys_in(const char *csv, const char *const *allowed)
{
	for (const char *p = csv; *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		size_t kl = eq ? (size_t)(eq - p) : len;
		bool ok = false;
		for (const char *const *a = allowed; *a; a++)
			ok |= strlen(*a) == kl && strncmp(p, *a, kl) == 0;
		if (!ok)
			return false;
		p += len;
		if (*p == ',')
			p++;
	}
	return true;
}

/* -o: the classic builder always stores the image in the daemon, which is
 * buildx's type=docker (or type=image without push). A name= adds tags. */
static int check_outputs(const struct kiln_host *host, const struct kiln_build_opts *o,
			 json_t *tags, struct kiln_err *err)
{
	static const char *const allowed[] = { "type", "name", "push", NULL };
	for (size_t i = 0; i < o->n_outputs; i++) {
		const char *out = o->outputs[i];
		char *type = csv_get(out, "type");
		char *push = csv_get(out, "push");
		bool ok = type && (strcmp(type, "docker") == 0 || strcmp(type, "image") == 0) &&
			  (!push || strcmp(push, "false") == 0) && csv_keys_in(out, allowed);
		free(type);
		free(push);
		if (!ok)
			return unsupported(host, err, "-o", out);
		char *name = csv_get(out, "name");
		if (name && *name)
			json_array_append_new(tags, json_string_nocheck(name));
		free(name);
	}
	return 0;
}

/* --cache-from: the classic builder takes image references. */
static int cache_from(const struct kiln_host *host, const struct kiln_build_opts *o,
		      json_t *list, struct kiln_err *err)
{
	for (size_t i = 0; i < o->n_cache_from; i++) {
		const char *c = o->cache_from[i];
		if (!strchr(c, '=')) {
			json_array_append_new(list, json_string_nocheck(c));
			continue;
		}
		static const char *const allowed[] = { "type", "ref", NULL };
		char *type = csv_get(c, "type");
		char *ref = csv_get(c, "ref");
		bool ok = ref && *ref && (!type || strcmp(type, "registry") == 0) &&
			  csv_keys_in(c, allowed);
		if (ok)
			json_array_append_new(list, json_string_nocheck(ref));
		free(type);
		free(ref);
		if (!ok)
			return unsupported(host, err, "--cache-from", c);
	}
	return 0;
}

static const char *local_dir(const struct kiln_build_def *d, const char *name)
{
	for (size_t i = 0; i < d->n_local_dirs; i++)
		if (strcmp(d->local_dirs[i].key, name) == 0)
			return d->local_dirs[i].value;
	return NULL;
}

/* Where the Dockerfile is, and how /build should name it: its path inside
 * the context, or (outside the context) a name it is added to the tar
 * under, as the docker CLI does. */
static int locate_dockerfile(const struct kiln_host *host, const char *ctx_dir,
			     const char *df_dir, const char *filename,
			     struct docker_request *r, struct kiln_err *err)
{
	char ctx[PATH_MAX], dir[PATH_MAX];
	if (!realpath(ctx_dir, ctx))
		return host->error_at(err, KILN_E_NOTFOUND, ctx_dir, 0, 0,
				      "cannot use the build context: %s", strerror(errno));
	if (!realpath(df_dir, dir))
		return host->error_at(err, KILN_E_NOTFOUND, df_dir, 0, 0,
				      "cannot use the Dockerfile's directory: %s", strerror(errno));
	struct docker_buf b = { 0 };
	docker_buf_adds(host, &b, ctx);
	r->context_dir = b.p;
	b = (struct docker_buf){ 0 };
	docker_buf_adds(host, &b, dir);
	docker_buf_adds(host, &b, "/");
	docker_buf_adds(host, &b, filename);
	r->dockerfile = b.p;

	size_t cl = strlen(ctx);
	const char *rel = NULL;
	if (strcmp(dir, ctx) == 0)
		rel = "";
	else if (cl == 1) /* the context is "/" */
		rel = dir + 1;
	else if (strncmp(dir, ctx, cl) == 0 && dir[cl] == '/')
		rel = dir + cl + 1;
	b = (struct docker_buf){ 0 };
	if (rel) {
		if (*rel) {
			docker_buf_adds(host, &b, rel);
			docker_buf_adds(host, &b, "/");
		}
		docker_buf_adds(host, &b, filename);
	} else {
		/* A stable name, so that the context stays the same. */
		char digest[DOCKER_DIGEST_SIZE];
		const char *key[] = { r->dockerfile };
		docker_digest(digest, key, 1);
		docker_buf_adds(host, &b, ".dockerfile.");
		docker_buf_add(host, &b, digest + 7, 20);
		r->dockerfile_outside = true;
	}
	r->dockerfile_name = b.p;
	return 0;
}

/* Podman before 4.4 (Buildah 1.28, Debian 12's): kiln knows what its
 * Dockerfile parser lacks. Later ones are left to judge for themselves. */
static bool old_podman(const char *engine)
{
	unsigned major = 0, minor = 0;
	if (sscanf(engine, "Podman %u.%u", &major, &minor) != 2)
		return false;
	return major < 4 || (major == 4 && minor <= 3);
}

int docker_syntax_check(const struct docker_conn *conn, const struct kiln_build_def *d,
			struct kiln_err *err)
{
	const struct kiln_host *host = conn->host;
	if (!KILN_HAS_FIELD(d, struct kiln_build_def, n_syntax_needs) || !d->frontend ||
	    strcmp(d->frontend, "dockerfile.v0") != 0)
		return 0;
	if (conn->podman && !old_podman(conn->engine))
		return 0;
	for (size_t i = 0; i < d->n_syntax_needs; i++) {
		const struct kiln_syntax_need *n = &d->syntax_needs[i];
		/* options (line 0) become /build parameters; "# check=" is a
		 * comment to an engine that does not know it */
		if (n->line <= 0 || strncmp(n->construct, "# check=", 8) == 0)
			continue;
		if (conn->podman && strncmp(n->construct, "RUN --mount=", 12) == 0)
			continue; /* Buildah has RUN --mount */
		if (conn->podman)
			return host->error_at(err, KILN_E_UNSUPPORTED, n->file, n->line, n->column,
					      "%s needs Dockerfile syntax %s (BuildKit %s); %s at %s "
					      "cannot build it (Buildah's Dockerfile parser); build "
					      "it on an engine with BuildKit", n->construct,
					      n->syntax, n->buildkit, conn->engine, conn->addr);
		return host->error_at(err, KILN_E_UNSUPPORTED, n->file, n->line, n->column,
				      "%s needs BuildKit (Dockerfile syntax %s); %s at %s builds "
				      "with the classic builder here (docker backend); " HINT,
				      n->construct, n->syntax, conn->engine, conn->addr);
	}
	return 0;
}

int docker_request_make(const struct docker_conn *conn, const struct kiln_solve *req,
			struct docker_request *r, struct kiln_err *err)
{
	const struct kiln_host *host = conn->host;
	bool podman = conn->podman;
	const struct kiln_build_opts *o = req->opts;
	const struct kiln_build_def *d = req->def;
	*r = (struct docker_request){ 0 };

	if (o->n_secrets)
		return unsupported(host, err, "--secret", o->secrets[0]);
	if (o->n_ssh)
		return unsupported(host, err, "--ssh", o->ssh[0]);
	if (o->n_cache_to)
		return unsupported(host, err, "--cache-to", o->cache_to[0]);
	if (o->n_allow)
		return unsupported(host, err, "--allow", o->allow[0]);
	if (!d->frontend || strcmp(d->frontend, "dockerfile.v0") != 0)
		return host->error(err, KILN_E_UNSUPPORTED,
				   "the docker backend runs Dockerfile builds only, not %s%s; " HINT,
				   d->frontend ? "frontend " : "an LLB definition",
				   d->frontend ? d->frontend : "");

	int src = docker_syntax_check(conn, d, err);
	if (src < 0)
		return src;

	const char *ctx_dir = local_dir(d, "context");
	const char *df_dir = local_dir(d, "dockerfile");
	if (!ctx_dir)
		return host->error(err, KILN_E_INVALID, "the build definition has no context directory");
	const char *filename = "Dockerfile";
	for (size_t i = 0; i < d->n_frontend_attrs; i++)
		if (strcmp(d->frontend_attrs[i].key, "filename") == 0)
			filename = d->frontend_attrs[i].value;

	json_t *tags = json_array(), *cachefrom = json_array();
	json_t *buildargs = json_object(), *labels = json_object(), *hosts = json_array();
	struct docker_buf q = { 0 };
	int rc = 0;
	for (size_t i = 0; i < o->n_tags; i++)
		json_array_append_new(tags, json_string_nocheck(o->tags[i]));
	if ((rc = check_outputs(host, o, tags, err)) < 0 ||
	    (rc = cache_from(host, o, cachefrom, err)) < 0 ||
	    (rc = locate_dockerfile(host, ctx_dir, df_dir ? df_dir : ctx_dir, filename, r,
				    err)) < 0)
		goto out;

	size_t i;
	json_t *v;
	json_array_foreach(tags, i, v)
		query_add(host, &q, "t", json_string_value(v));
	query_add(host, &q, "dockerfile", r->dockerfile_name);
	for (i = 0; i < d->n_frontend_attrs; i++) {
		const char *key = d->frontend_attrs[i].key, *val = d->frontend_attrs[i].value;
		if (strcmp(key, "filename") == 0) {
			/* done above */
		} else if (strcmp(key, "target") == 0) {
			query_add(host, &q, "target", val);
		} else if (strncmp(key, "build-arg:", 10) == 0) {
			json_object_set_new_nocheck(buildargs, key + 10, json_string_nocheck(val));
		} else if (strncmp(key, "label:", 6) == 0) {
			json_object_set_new_nocheck(labels, key + 6, json_string_nocheck(val));
		} else if (strcmp(key, "platform") == 0) {
			if (strchr(val, ',')) {
				rc = unsupported(host, err, "--platform", val);
				goto out;
			}
			query_add(host, &q, "platform", val);
		} else if (strcmp(key, "no-cache") == 0) {
			/* "" = every stage; the classic builder knows no other */
			if (*val) {
				rc = unsupported(host, err, "--no-cache-filter", val);
				goto out;
			}
			query_add(host, &q, "nocache", "1");
		} else if (strncmp(key, "context:", 8) == 0) {
			rc = unsupported(host, err, "--build-context", key + 8);
			goto out;
		} else if (strcmp(key, "shm-size") == 0) {
			query_add(host, &q, "shmsize", val);
		} else if (strcmp(key, "ulimit") == 0) {
			/* "nofile=1024:2048,nproc=10" -> [{"Name","Soft","Hard"}] */
			json_t *ul = json_array();
			for (const char *p = val; *p;) {
				char name[32];
				long long soft = 0, hard = 0;
				int used = 0;
				if (sscanf(p, "%31[a-z]=%lld%n", name, &soft, &used) < 2) {
					json_decref(ul);
					rc = unsupported(host, err, "--ulimit", val);
					goto out;
				}
				p += used;
				hard = soft;
				if (*p == ':' && sscanf(p + 1, "%lld%n", &hard, &used) == 1)
					p += 1 + used;
				json_array_append_new(ul, json_pack("{s:s,s:I,s:I}", "Name", name,
								    "Soft", (json_int_t)soft,
								    "Hard", (json_int_t)hard));
				if (*p == ',')
					p++;
				else if (*p)
					break;
			}
			query_add_json(host, &q, "ulimits", ul);
			json_decref(ul);
		} else if (strcmp(key, "image-resolve-mode") == 0) {
			if (strcmp(val, "pull") == 0)
				query_add(host, &q, "pull", "1");
		} else if (strcmp(key, "force-network-mode") == 0) {
			query_add(host, &q, "networkmode", val);
		} else if (strcmp(key, "add-hosts") == 0) {
			/* "h=ip,h2=ip2" -> "h:ip", "h2:ip2" */
			for (const char *p = val; *p;) {
				const char *end = strchr(p, ',');
				size_t len = end ? (size_t)(end - p) : strlen(p);
				char *h = strndup(p, len);
				char *eq = h ? strchr(h, '=') : NULL;
				if (eq)
					*eq = ':';
				if (h && *h)
					json_array_append_new(hosts, json_string_nocheck(h));
				free(h);
				p += len;
				if (*p == ',')
					p++;
			}
		} else {
			host->log(KILN_LOG_DEBUG, "docker: ignoring frontend attribute %s", key);
		}
	}
	if (json_object_size(buildargs))
		query_add_json(host, &q, "buildargs", buildargs);
	if (json_object_size(labels))
		query_add_json(host, &q, "labels", labels);
	if (json_array_size(cachefrom))
		query_add_json(host, &q, "cachefrom", cachefrom);
	if (json_array_size(hosts)) {
		if (podman) { /* Podman decodes one JSON list */
			query_add_json(host, &q, "extrahosts", hosts);
		} else {      /* Docker takes the parameter once per host */
			json_array_foreach(hosts, i, v)
				query_add(host, &q, "extrahosts", json_string_value(v));
		}
	}
	query_add(host, &q, "rm", "1");
	query_add(host, &q, "forcerm", "1");
	query_add(host, &q, "version", "1"); /* the classic builder */
	if (json_array_size(tags)) {
		struct docker_buf t = { 0 };
		json_array_foreach(tags, i, v) {
			if (i)
				docker_buf_adds(host, &t, ",");
			docker_buf_adds(host, &t, json_string_value(v));
		}
		r->tags = t.p;
	}
	r->query = q.p;
	q = (struct docker_buf){ 0 };
out:
	docker_buf_release(host, &q);
	json_decref(tags);
	json_decref(cachefrom);
	json_decref(buildargs);
	json_decref(labels);
	json_decref(hosts);
	if (rc < 0)
		docker_request_release(host, r);
	return rc;
}

void docker_request_release(const struct kiln_host *host, struct docker_request *r)
{
	host->free(r->query);
	host->free(r->context_dir);
	host->free(r->dockerfile);
	host->free(r->dockerfile_name);
	host->free(r->tags);
	*r = (struct docker_request){ 0 };
}
