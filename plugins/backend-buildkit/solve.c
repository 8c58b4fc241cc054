/*
 * solve.c: one build on BuildKit (BUILDKIT-WIRE.md 7.6): a session with
 * kiln's services, Status streamed into kiln's events, Solve with a
 * frontend request (dockerfile.v0) or an LLB definition, then the export
 * committed (or dropped) and the exporter response reported.
 *
 * Options are mapped as `docker buildx build` maps them: -o/-t to one
 * exporter, --cache-from/--cache-to CSV to cache entries, --allow to
 * entitlements; what the target engine lacks is refused before Solve
 * with a line saying which engine lacks it.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <nettle/sha2.h>

#include "buildkit.h"
#include "control.pb-c.h"
#include "ops.pb-c.h"
#include "session.h"

#define SOLVE_MS (24 * 3600 * 1000)  /* a build may run long; cancel ends it */
#define STATUS_DRAIN_MS 3000         /* Status may trail Solve by this much */

/* ---- CSV options ------------------------------------------------------------------------ */

struct csv {
	struct kiln_kv kv[32];
	size_t n;
};

/* Split "a=b,c=d" (buildx's CSV, see buildkit_csv_fields) into c, in
 * arena memory. Fields without '=' get a NULL value. */
static int csv_parse(const struct kiln_host *host, struct kiln_arena *arena, const char *flag,
		     const char *spec, struct csv *c, struct kiln_err *err)
{
	char **f;
	const char *why = "";
	long nf = buildkit_csv_fields(host, spec, &f, &why);
	if (nf < 0)
		return host->error(err, KILN_E_INVALID, "%s %s: %s", flag, spec, why);
	int rc = 0;
	c->n = 0;
	for (long i = 0; i < nf; i++) {
		if (!*f[i] || rc < 0)
			continue;
		if (c->n == sizeof(c->kv) / sizeof(c->kv[0])) {
			rc = host->error(err, KILN_E_INVALID, "%s %s: too many fields", flag, spec);
			continue;
		}
		char *eq = strchr(f[i], '=');
		if (eq)
			*eq = '\0';
		c->kv[c->n].key = host->arena_strdup(arena, f[i]);
		c->kv[c->n].value = eq ? host->arena_strdup(arena, eq + 1) : NULL;
		c->n++;
	}
	for (long i = 0; i < nf; i++)
		host->free(f[i]);
	host->free(f);
	return rc;
}

static const char *csv_get(const struct csv *c, const char *key)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->kv[i].key, key) == 0)
			return c->kv[i].value ? c->kv[i].value : "";
	return NULL;
}

/* ---- the request being built ---------------------------------------------------------------- */

struct plan {
	const struct kiln_host *host;
	struct kiln_arena *arena;
	struct buildkit_conn *conn;
	bool dockerd;               /* the BuildKit inside dockerd */
	const char *engine;         /* "BuildKit v0.8 (dockerd)" etc., for messages */
	const char *exporter;       /* NULL: no export */
	struct kiln_kv attrs[40];
	size_t n_attrs;
	enum buildkit_export_mode mode;
	const char *dest;
	Moby__Buildkit__V1__CacheOptionsEntry *imports[16], *exports[4];
	size_t n_imports, n_exports;
	const char *entitlements[4];
	size_t n_entitlements;
};

static void attr_add(struct plan *pl, const char *k, const char *v)
{
	for (size_t i = 0; i < pl->n_attrs; i++)
		if (strcmp(pl->attrs[i].key, k) == 0) {
			pl->attrs[i].value = v;
			return;
		}
	if (pl->n_attrs < sizeof(pl->attrs) / sizeof(pl->attrs[0]))
		pl->attrs[pl->n_attrs++] = (struct kiln_kv){ .key = k, .value = v };
}

static const char *join_tags(struct plan *pl, const struct kiln_build_opts *o,
			     const char *name)
{
	size_t len = name ? strlen(name) + 1 : 0;
	for (size_t i = 0; i < o->n_tags; i++)
		len += strlen(o->tags[i]) + 1;
	if (!len)
		return NULL;
	char *s = pl->host->arena_alloc(pl->arena, len + 1), *p = s;
	if (name && *name)
		p += snprintf(p, len + 1, "%s", name);
	for (size_t i = 0; i < o->n_tags; i++)
		p += snprintf(p, len + 1 - (size_t)(p - s), "%s%s", p == s ? "" : ",", o->tags[i]);
	return *s ? s : NULL;
}

/* -o and -t -> one exporter (neither target has more than one). */
static int plan_exporter(struct plan *pl, const struct kiln_build_opts *o, struct kiln_err *err)
{
	const struct kiln_host *host = pl->host;
	if (o->n_outputs > 1)
		return host->error(err, KILN_E_UNSUPPORTED, "-o: multiple outputs are not "
				   "supported by BuildKit before v0.13; give one -o");
	struct csv c = { .n = 0 };
	const char *type = NULL;
	if (o->n_outputs == 1) {
		const char *spec = o->outputs[0];
		int rc = csv_parse(host, pl->arena, "-o", spec, &c, err);
		if (rc < 0)
			return rc;
		if (c.n == 1 && !c.kv[0].value) { /* -o DIR, -o - (buildx) */
			const char *d = c.kv[0].key;
			c.kv[0] = (struct kiln_kv){ .key = "dest", .value = d };
			c.kv[1] = (struct kiln_kv){ .key = "type",
						    .value = strcmp(d, "-") == 0 ? "tar" : "local" };
			c.n = 2;
		}
		for (size_t i = 0; i < c.n; i++)
			if (!c.kv[i].value)
				return host->error(err, KILN_E_INVALID, "-o %s: field '%s' "
						   "must be key=value", spec, c.kv[i].key);
		type = csv_get(&c, "type");
		const char *dest = csv_get(&c, "dest");
		if (!type)
			type = dest ? "local" : NULL;
		if (!type)
			return host->error(err, KILN_E_INVALID, "-o %s: type is required "
					   "(local, tar, oci, docker, image, registry)", spec);
		pl->dest = dest;
	}
	bool v011 = pl->conn->v011;
	if (!type) {
		/* buildx's docker driver loads the image into dockerd; a
		 * standalone buildkitd keeps the result in its cache unless
		 * tagged */
		if (pl->dockerd) {
			pl->exporter = "moby";
		} else if (o->n_tags) {
			pl->exporter = "image";
		} else {
			host->log(KILN_LOG_WARN, "no output specified: the build result will "
				  "only remain in the build cache (use -o or -t)");
			return 0;
		}
	} else if (strcmp(type, "local") == 0 || strcmp(type, "tar") == 0) {
		pl->exporter = type;
		pl->mode = type[0] == 'l' ? BUILDKIT_EXPORT_PACKETS : BUILDKIT_EXPORT_RAW;
		if (!pl->dest || !*pl->dest)
			return host->error(err, KILN_E_INVALID, "-o type=%s: dest is required "
					   "(a %s)", type, type[0] == 'l' ? "directory" : "file");
		if (pl->mode == BUILDKIT_EXPORT_PACKETS && strcmp(pl->dest, "-") == 0)
			return host->error(err, KILN_E_INVALID,
					   "-o type=local: dest must be a directory, not '-'");
	} else if (strcmp(type, "oci") == 0 || strcmp(type, "docker") == 0) {
		if (strcmp(type, "docker") == 0 && pl->dockerd && (!pl->dest || !*pl->dest)) {
			pl->exporter = "moby"; /* buildx: type=docker loads into dockerd */
		} else if (!v011) {
			return host->error(err, KILN_E_UNSUPPORTED,
					   "-o type=%s: %s has no %s exporter (it has moby, local "
					   "and tar); use type=tar or a standalone buildkitd",
					   type, pl->engine, type);
		} else if (!pl->dest || !*pl->dest) {
			return host->error(err, KILN_E_INVALID, "-o type=%s: dest is required "
					   "(a file, or '-' for stdout)", type);
		} else {
			pl->exporter = type;
			pl->mode = BUILDKIT_EXPORT_RAW;
		}
	} else if (strcmp(type, "image") == 0 || strcmp(type, "registry") == 0 ||
		   strcmp(type, "moby") == 0) {
		const char *push = csv_get(&c, "push");
		bool pushing = strcmp(type, "registry") == 0 ||
			       (push && (strcmp(push, "") == 0 || strcmp(push, "true") == 0));
		if (pl->dockerd && pushing)
			return host->error(err, KILN_E_UNSUPPORTED,
					   "-o type=%s: %s cannot push (it has no image exporter); "
					   "push with 'docker push', or use a standalone buildkitd",
					   type, pl->engine);
		if (strcmp(type, "moby") == 0 && !pl->dockerd)
			return host->error(err, KILN_E_UNSUPPORTED, "-o type=moby: only dockerd "
					   "has the moby exporter; use type=image");
		pl->exporter = pl->dockerd ? "moby" : "image";
		if (pushing && !pl->dockerd)
			attr_add(pl, "push", "true");
	} else {
		return host->error(err, KILN_E_INVALID, "-o type=%s: unknown exporter (local, "
				   "tar, oci, docker, image, registry)", type);
	}
	for (size_t i = 0; i < c.n; i++) {
		const char *k = c.kv[i].key;
		if (strcmp(k, "type") == 0 || strcmp(k, "dest") == 0 ||
		    (strcmp(k, "push") == 0 && pl->dockerd))
			continue; /* client-side keys; buildctl strips them too */
		attr_add(pl, k, c.kv[i].value);
	}
	bool named = strcmp(pl->exporter, "moby") == 0 || strcmp(pl->exporter, "image") == 0 ||
		     strcmp(pl->exporter, "oci") == 0 || strcmp(pl->exporter, "docker") == 0;
	if (named) {
		const char *name = NULL;
		for (size_t i = 0; i < pl->n_attrs; i++)
			if (strcmp(pl->attrs[i].key, "name") == 0)
				name = pl->attrs[i].value;
		const char *names = join_tags(pl, o, name);
		if (names)
			attr_add(pl, "name", names);
	}
	return 0;
}

static Moby__Buildkit__V1__CacheOptionsEntry *cache_entry(struct plan *pl, const char *type,
							    const struct csv *c)
{
	const struct kiln_host *host = pl->host;
	Moby__Buildkit__V1__CacheOptionsEntry *e = host->arena_alloc(pl->arena, sizeof(*e));
	moby__buildkit__v1__cache_options_entry__init(e);
	e->type = (char *)type;
	e->attrs = host->arena_alloc(pl->arena, (c->n + 1) * sizeof(*e->attrs));
	for (size_t i = 0; i < c->n; i++) {
		if (strcmp(c->kv[i].key, "type") == 0)
			continue;
		Moby__Buildkit__V1__CacheOptionsEntry__AttrsEntry *a =
			host->arena_alloc(pl->arena, sizeof(*a));
		moby__buildkit__v1__cache_options_entry__attrs_entry__init(a);
		a->key = (char *)c->kv[i].key;
		a->value = (char *)(c->kv[i].value ? c->kv[i].value : "");
		e->attrs[e->n_attrs++] = a;
	}
	return e;
}

/* Go's strconv.ParseBool true, as buildx reads BUILDKIT_INLINE_CACHE */
static bool go_true(const char *v)
{
	static const char *const yes[] = { "1", "t", "T", "TRUE", "true", "True", NULL };
	for (const char *const *y = yes; v && *y; y++)
		if (strcmp(*y, v) == 0)
			return true;
	return false;
}

/* --build-arg BUILDKIT_INLINE_CACHE=1: buildx and `docker build` add an
 * inline cache export for it (the frontend itself ignores the arg). */
static bool inline_cache_arg(const struct kiln_build_opts *o)
{
	bool on = false;
	for (size_t i = 0; i < o->n_build_args; i++)
		if (strcmp(o->build_args[i].key, "BUILDKIT_INLINE_CACHE") == 0)
			on = go_true(o->build_args[i].value); /* the last one wins */
	return on;
}

/* --cache-from / --cache-to: buildx's CSV forms ("type=registry,ref=R",
 * a bare "R" = registry ref), checked against what the engine has:
 * BuildKit v0.8 in dockerd 20.10 imports registry and local cache but
 * exports only inline cache (moby's builder-next/controller.go registers
 * the "inline" exporter alone), one entry at most. */
static int plan_cache(struct plan *pl, const struct kiln_build_opts *o, struct kiln_err *err)
{
	const struct kiln_host *host = pl->host;
	bool v011 = pl->conn->v011;
	bool has_inline = false;
	for (int dir = 0; dir < 2; dir++) {
		const char *flag = dir ? "--cache-to" : "--cache-from";
		const char *const *specs = dir ? o->cache_to : o->cache_from;
		size_t n = dir ? o->n_cache_to : o->n_cache_from;
		for (size_t i = 0; i < n; i++) {
			struct csv c;
			int rc = csv_parse(host, pl->arena, flag, specs[i], &c, err);
			if (rc < 0)
				return rc;
			if (c.n == 0)
				continue; /* "" (a kiln.lua list entry): nothing */
			if (c.n == 1 && !c.kv[0].value)
				c.kv[0] = (struct kiln_kv){ .key = "ref", .value = c.kv[0].key };
			const char *type = csv_get(&c, "type");
			if (!type)
				type = "registry";
			static const char *const known[] = { "registry", "inline", "local", "gha",
							     "s3", "azblob", NULL };
			bool ok = false;
			for (const char *const *k = known; *k; k++)
				ok |= strcmp(*k, type) == 0;
			if (!ok)
				return host->error(err, KILN_E_INVALID, "%s %s: unknown cache type "
						   "'%s' (registry, inline, local, gha, s3, azblob)",
						   flag, specs[i], type);
			const char *mode = csv_get(&c, "mode");
			if (mode && strcmp(mode, "min") != 0 && strcmp(mode, "max") != 0)
				return host->error(err, KILN_E_INVALID, "%s %s: mode must be min or "
						   "max", flag, specs[i]);
			const char *ref = csv_get(&c, "ref");
			if (strcmp(type, "registry") == 0 && (!ref || !*ref))
				return host->error(err, KILN_E_INVALID, "%s %s: the registry cache "
						   "needs ref=NAME[:TAG]", flag, specs[i]);
			const char *path = csv_get(&c, dir ? "dest" : "src");
			if (strcmp(type, "local") == 0 && (!path || !*path))
				return host->error(err, KILN_E_INVALID, "%s %s: the local cache "
						   "needs %s=DIR", flag, specs[i], dir ? "dest" : "src");
			if (dir == 0 && strcmp(type, "inline") == 0)
				return host->error(err, KILN_E_INVALID, "--cache-from %s: inline is "
						   "an export type; import the image with "
						   "type=registry,ref=IMAGE", specs[i]);
			if (!v011 && (strcmp(type, "gha") == 0 || strcmp(type, "s3") == 0 ||
				      strcmp(type, "azblob") == 0))
				return host->error(err, KILN_E_UNSUPPORTED, "%s %s: %s has no '%s' "
						   "cache", flag, specs[i], pl->engine, type);
			if (dir == 1 && !v011 && strcmp(type, "inline") != 0)
				return host->error(err, KILN_E_UNSUPPORTED, "--cache-to %s: %s has "
						   "no '%s' cache exporter; it exports only inline "
						   "cache (--cache-to type=inline, imported with "
						   "--cache-from type=registry,ref=IMAGE)", specs[i],
						   pl->engine, type);
			if (strcmp(type, "local") == 0)
				return host->error(err, KILN_E_UNSUPPORTED, "%s %s: the local cache "
						   "type needs the session's content store, which "
						   "kiln does not serve; use type=registry", flag,
						   specs[i]);
			if (dir == 0) {
				if (pl->n_imports == sizeof(pl->imports) / sizeof(pl->imports[0]))
					return host->error(err, KILN_E_INVALID, "--cache-from: at "
							   "most %zu sources", pl->n_imports);
				pl->imports[pl->n_imports++] = cache_entry(pl, type, &c);
				continue;
			}
			if (strcmp(type, "inline") == 0) {
				if (mode && strcmp(mode, "max") == 0)
					host->log(KILN_LOG_WARN, "--cache-to %s: inline cache holds "
						  "only the final stage's steps (mode=min); use "
						  "type=registry for mode=max", specs[i]);
				if (has_inline)
					continue; /* the same entry twice */
				has_inline = true;
			}
			if (pl->n_exports == (v011 ? sizeof(pl->exports) /
							     sizeof(pl->exports[0]) : 1))
				return host->error(err, KILN_E_UNSUPPORTED, "--cache-to: %s takes "
						   "at most %s", pl->engine, v011 ? "4" : "one");
			pl->exports[pl->n_exports++] = cache_entry(pl, type, &c);
		}
	}
	if (!has_inline && inline_cache_arg(o)) {
		if (pl->n_exports == (v011 ? sizeof(pl->exports) / sizeof(pl->exports[0]) : 1))
			return host->error(err, KILN_E_UNSUPPORTED, "--build-arg "
					   "BUILDKIT_INLINE_CACHE: %s takes at most %s cache "
					   "export", pl->engine, v011 ? "4" : "one");
		struct csv none = { .n = 0 };
		pl->exports[pl->n_exports++] = cache_entry(pl, "inline", &none);
	}
	return 0;
}

/* "v0.12.5" -> 12 (BuildKit's minor; its major is 0); -1 if unparsable. */
static int buildkit_minor(const char *v)
{
	if (*v == 'v')
		v++;
	if (strncmp(v, "0.", 2) != 0)
		return strncmp(v, "1.", 2) == 0 ? 1000 : -1; /* a future 1.x has it all */
	char *end;
	long m = strtol(v + 2, &end, 10);
	return end == v + 2 ? -1 : (int)m;
}

/*
 * Refuse, before anything is sent, a Dockerfile construct that the engine's
 * built-in Dockerfile frontend cannot build (kiln/check.h), naming it, its
 * line and the engine. Only for the built-in frontend: a "# syntax=" image
 * brings its own parser. Engines before v0.11 have no Info call: kiln
 * assumes v0.8's frontend (dockerd 20.10), the oldest it drives. A
 * "# check=" directive is not refused: older frontends ignore it, so kiln
 * says that instead.
 */
static int check_syntax_needs(struct plan *pl, const struct kiln_build_def *def,
			      struct kiln_err *err)
{
	const struct kiln_host *host = pl->host;
	if (!KILN_HAS_FIELD(def, struct kiln_build_def, n_syntax_needs) || def->syntax ||
	    !def->frontend || strcmp(def->frontend, "dockerfile.v0") != 0)
		return 0;
	int have = pl->conn->v011 ? buildkit_minor(pl->conn->version) : 8;
	if (have < 0)
		return 0; /* a version string kiln cannot read: let the engine judge */
	for (size_t i = 0; i < def->n_syntax_needs; i++) {
		const struct kiln_syntax_need *n = &def->syntax_needs[i];
		if (buildkit_minor(n->buildkit) <= have)
			continue;
		if (strncmp(n->construct, "# check=", 8) == 0) {
			host->log(KILN_LOG_WARN, "%s:%d: the '# check=' directive needs "
				  "Dockerfile syntax %s (BuildKit %s); %s ignores it (kiln lint "
				  "applies it)", n->file, n->line, n->syntax, n->buildkit, pl->engine);
			continue;
		}
		if (n->line > 0)
			return host->error_at(err, KILN_E_UNSUPPORTED, n->file, n->line, n->column,
					      "%s needs Dockerfile syntax %s (the built-in frontend "
					      "of BuildKit %s or later); the engine runs %s",
					      n->construct, n->syntax, n->buildkit, pl->engine);
		return host->error(err, KILN_E_UNSUPPORTED, "%s needs Dockerfile syntax %s (the "
				   "built-in frontend of BuildKit %s or later); the engine runs %s",
				   n->construct, n->syntax, n->buildkit, pl->engine);
	}
	return 0;
}

static int plan_entitlements(struct plan *pl, const struct kiln_build_opts *o,
			     struct kiln_err *err)
{
	for (size_t i = 0; i < o->n_allow; i++) {
		const char *a = o->allow[i];
		if (strcmp(a, "network.host") != 0 && strcmp(a, "security.insecure") != 0)
			return pl->host->error(err, KILN_E_INVALID, "--allow %s: unknown "
					       "entitlement (network.host, security.insecure)", a);
		bool dup = false;
		for (size_t j = 0; j < pl->n_entitlements; j++)
			dup |= strcmp(pl->entitlements[j], a) == 0;
		if (!dup && pl->n_entitlements < 4)
			pl->entitlements[pl->n_entitlements++] = a;
	}
	return 0;
}

/* ---- Status -> events --------------------------------------------------------------------------- */

/* A Timestamp in ns since the epoch, or 0 (unknown) for none and for one
 * int64 nanoseconds cannot hold (before 1970, after 2262) or with nanos
 * outside [0, 1e9): a broken daemon's times must not overflow. */
static int64_t ts_ns(const Moby__Buildkit__V1__Timestamp *t)
{
	if (!t || t->seconds < 0 || t->seconds >= INT64_MAX / 1000000000 || t->nanos < 0 ||
	    t->nanos >= 1000000000)
		return 0;
	return (int64_t)t->seconds * 1000000000 + t->nanos;
}

struct status_reader {
	struct buildkit_conn *conn;
	const struct kiln_solve *req;
	char ref[32];
	struct buildkit_stream stream;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int rc;
	struct kiln_err err;
};

void buildkit_status_emit(const struct kiln_host *host, const struct kiln_solve *req,
			  const Moby__Buildkit__V1__StatusResponse *m)
{
	int64_t now = host->now_ns();
	for (size_t i = 0; i < m->n_vertexes; i++) {
		const Moby__Buildkit__V1__Vertex *v = m->vertexes[i];
		struct kiln_event ev = { .struct_size = sizeof(ev), .kind = KILN_EVENT_VERTEX,
					 .time_ns = now, .job = req->job };
		ev.u.vertex = (struct kiln_event_vertex){
			.digest = v->digest, .name = v->name,
			.inputs = (const char *const *)v->inputs, .n_inputs = v->n_inputs,
			.started_ns = ts_ns(v->started), .completed_ns = ts_ns(v->completed),
			.cached = v->cached, .error = v->error && *v->error ? v->error : NULL,
		};
		host->emit(req->bus, &ev);
	}
	for (size_t i = 0; i < m->n_statuses; i++) {
		const Moby__Buildkit__V1__VertexStatus *s = m->statuses[i];
		struct kiln_event ev = { .struct_size = sizeof(ev),
					 .kind = KILN_EVENT_VERTEX_STATUS, .time_ns = now,
					 .job = req->job };
		ev.u.status = (struct kiln_event_vertex_status){
			.id = s->id, .vertex = s->vertex, .name = s->name && *s->name ? s->name : NULL,
			.current = s->current, .total = s->total,
			.timestamp_ns = ts_ns(s->timestamp), .started_ns = ts_ns(s->started),
			.completed_ns = ts_ns(s->completed),
		};
		host->emit(req->bus, &ev);
	}
	for (size_t i = 0; i < m->n_logs; i++) {
		const Moby__Buildkit__V1__VertexLog *l = m->logs[i];
		struct kiln_event ev = { .struct_size = sizeof(ev), .kind = KILN_EVENT_VERTEX_LOG,
					 .time_ns = now, .job = req->job };
		ev.u.log = (struct kiln_event_vertex_log){
			.vertex = l->vertex, .stream = (int)l->stream, .data = l->msg.data,
			.len = l->msg.len, .timestamp_ns = ts_ns(l->timestamp),
		};
		host->emit(req->bus, &ev);
	}
	for (size_t i = 0; i < m->n_warnings; i++) {
		const Moby__Buildkit__V1__VertexWarning *w = m->warnings[i];
		/* an empty bytes field is {0, NULL}: no memcpy from NULL */
		char *msg = host->alloc(w->short_.len + 1);
		if (w->short_.len)
			memcpy(msg, w->short_.data, w->short_.len);
		msg[w->short_.len] = '\0';
		char **detail = host->alloc((w->n_detail + 1) * sizeof(char *));
		for (size_t j = 0; j < w->n_detail; j++) {
			detail[j] = host->alloc(w->detail[j].len + 1);
			if (w->detail[j].len)
				memcpy(detail[j], w->detail[j].data, w->detail[j].len);
			detail[j][w->detail[j].len] = '\0';
		}
		struct kiln_event ev = { .struct_size = sizeof(ev), .kind = KILN_EVENT_WARNING,
					 .time_ns = now, .job = req->job };
		ev.u.warning = (struct kiln_event_warning){
			.vertex = w->vertex && *w->vertex ? w->vertex : NULL, .level = (int)w->level,
			.message = msg, .detail = (const char *const *)detail,
			.n_detail = w->n_detail, .url = w->url && *w->url ? w->url : NULL,
			.file = w->info && w->info->filename && *w->info->filename
					? w->info->filename : NULL,
			.line = w->n_ranges && w->ranges[0]->start ? w->ranges[0]->start->line : 0,
		};
		host->emit(req->bus, &ev);
		for (size_t j = 0; j < w->n_detail; j++)
			host->free(detail[j]);
		host->free(detail);
		host->free(msg);
	}
}

static void *status_main(void *arg)
{
	struct status_reader *sr = arg;
	const struct kiln_host *host = sr->conn->host;
	ProtobufCAllocator a;
	buildkit_allocator(host, &a);
	int rc = 0;
	for (;;) {
		ProtobufCMessage *m = NULL;
		rc = buildkit_stream_next(&sr->stream, &moby__buildkit__v1__status_response__descriptor,
					  &m, &sr->err);
		if (rc <= 0)
			break;
		buildkit_status_emit(host, sr->req, (Moby__Buildkit__V1__StatusResponse *)m);
		protobuf_c_message_free_unpacked(m, &a);
	}
	pthread_mutex_lock(&sr->mu);
	sr->rc = rc;
	sr->done = true;
	pthread_cond_broadcast(&sr->cv);
	pthread_mutex_unlock(&sr->mu);
	return NULL;
}

/* Wait up to ms for the Status stream to end by itself, then cancel it. */
static void status_finish(struct status_reader *sr, int ms)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&sr->mu);
	while (!sr->done)
		if (pthread_cond_timedwait(&sr->cv, &sr->mu, &until) == ETIMEDOUT)
			break;
	bool done = sr->done;
	pthread_mutex_unlock(&sr->mu);
	if (!done)
		buildkit_stream_cancel(&sr->stream);
	pthread_join(sr->thread, NULL);
	buildkit_stream_close(&sr->stream);
	pthread_mutex_destroy(&sr->mu);
	pthread_cond_destroy(&sr->cv);
}

/* ---- the session's configuration ---------------------------------------------------------------------- */

/* A stable shared key per context directory, so that a later build's
 * transfer only sends what changed (the daemon keys its copy of a local
 * directory by name, hint and this). */
static void session_names(struct buildkit_session *s, const struct kiln_build_def *def)
{
	char cwd[PATH_MAX] = "kiln";
	if (!getcwd(cwd, sizeof(cwd)))
		snprintf(cwd, sizeof(cwd), "kiln");
	const char *base = strrchr(cwd, '/');
	base = base && base[1] ? base + 1 : cwd;
	const char *ctx = NULL;
	for (size_t i = 0; i < def->n_local_dirs; i++)
		if (strcmp(def->local_dirs[i].key, "context") == 0)
			ctx = def->local_dirs[i].value;
	char abs[PATH_MAX], key[128];
	if (!ctx || !realpath(ctx, abs))
		snprintf(abs, sizeof(abs), "%s", ctx ? ctx : cwd);
	/* nettle, not OpenSSL: libcrypto's first digest sets up its
	 * providers, ~2 MB of resident memory for one hash */
	uint8_t md[SHA256_DIGEST_SIZE];
	struct sha256_ctx sc;
	sha256_init(&sc);
	sha256_update(&sc, strlen(abs), (const uint8_t *)abs);
	sha256_digest(&sc, sizeof(md), md);
	const char *cbase = strrchr(abs, '/');
	cbase = cbase && cbase[1] ? cbase + 1 : abs;
	int n = snprintf(key, sizeof(key), "%.40s:", cbase);
	for (int i = 0; i < 8 && n + 2 < (int)sizeof(key); i++)
		n += snprintf(key + n, sizeof(key) - (size_t)n, "%02x", md[i]);
	buildkit_session_identity(s, base, key);
}

/* ---- solve --------------------------------------------------------------------------------------------------- */

static Moby__Buildkit__V1__SolveRequest__ExporterAttrsEntry **kv_entries(
	struct plan *pl, const struct kiln_kv *kv, size_t n)
{
	const struct kiln_host *host = pl->host;
	/* ExporterAttrsEntry and FrontendAttrsEntry have the same shape;
	 * the descriptor decides which message a pointer packs as. */
	Moby__Buildkit__V1__SolveRequest__ExporterAttrsEntry **v =
		host->arena_alloc(pl->arena, (n + 1) * sizeof(*v));
	for (size_t i = 0; i < n; i++) {
		v[i] = host->arena_alloc(pl->arena, sizeof(*v[i]));
		moby__buildkit__v1__solve_request__exporter_attrs_entry__init(v[i]);
		v[i]->key = (char *)kv[i].key;
		v[i]->value = (char *)(kv[i].value ? kv[i].value : "");
	}
	return v;
}

static int frontend_attrs(struct plan *pl, const struct kiln_build_def *def,
			  Moby__Buildkit__V1__SolveRequest *sr)
{
	const struct kiln_host *host = pl->host;
	size_t n = def->n_frontend_attrs;
	struct kiln_kv *kv = host->arena_alloc(pl->arena, (n + 1) * sizeof(*kv));
	memcpy(kv, def->frontend_attrs, n * sizeof(*kv));
	if (pl->n_imports) { /* the Go client sets both, for the frontend */
		json_t *arr = json_array();
		for (size_t i = 0; i < pl->n_imports; i++) {
			json_t *attrs = json_object();
			for (size_t j = 0; j < pl->imports[i]->n_attrs; j++)
				json_object_set_new(attrs, pl->imports[i]->attrs[j]->key,
						    json_string(pl->imports[i]->attrs[j]->value));
			json_array_append_new(arr, json_pack("{s:s,s:o}", "Type",
							     pl->imports[i]->type, "Attrs", attrs));
		}
		char *js = json_dumps(arr, JSON_COMPACT);
		kv[n++] = (struct kiln_kv){ .key = "cache-imports",
					    .value = host->arena_strdup(pl->arena, js) };
		free(js);
		json_decref(arr);
	}
	Moby__Buildkit__V1__SolveRequest__ExporterAttrsEntry **e = kv_entries(pl, kv, n);
	sr->frontendattrs = (Moby__Buildkit__V1__SolveRequest__FrontendAttrsEntry **)e;
	for (size_t i = 0; i < n; i++)
		e[i]->base.descriptor =
			&moby__buildkit__v1__solve_request__frontend_attrs_entry__descriptor;
	sr->n_frontendattrs = n;
	return 0;
}

static void result_from(struct plan *pl, const Moby__Buildkit__V1__SolveResponse *resp,
			struct kiln_solve_result *res)
{
	const struct kiln_host *host = pl->host;
	size_t n = resp->n_exporterresponse;
	struct kiln_kv *kv = host->arena_alloc(pl->arena, (n + 1) * sizeof(*kv));
	for (size_t i = 0; i < n; i++) {
		const char *k = resp->exporterresponse[i]->key;
		const char *v = resp->exporterresponse[i]->value;
		kv[i] = (struct kiln_kv){ .key = host->arena_strdup(pl->arena, k),
					  .value = host->arena_strdup(pl->arena, v ? v : "") };
		if (strcmp(k, "containerimage.digest") == 0)
			res->image_digest = kv[i].value;
		else if (strcmp(k, "containerimage.config.digest") == 0)
			res->config_digest = kv[i].value;
	}
	res->exporter_response = kv;
	res->n_exporter_response = n;
	/* moby's containerimage.digest is the image ID, i.e. the config */
	if (pl->exporter && strcmp(pl->exporter, "moby") == 0 && !res->config_digest)
		res->config_digest = res->image_digest;
}

static enum buildkit_tunnel tunnel_kind(const struct buildkit_conn *conn)
{
	const char *force = getenv("KILN_BUILDKIT_SESSION");
	if (force && strcmp(force, "control") == 0)
		return BUILDKIT_TUNNEL_CONTROL;
	return conn->where.transport == BUILDKIT_DOCKER ? BUILDKIT_TUNNEL_HIJACK
							: BUILDKIT_TUNNEL_CONTROL;
}

/* msg after its "... at ADDR: " opening (the cause alone). */
static const char *cause_of(const char *msg, const char *addr)
{
	const char *p = strstr(msg, addr);
	if (p && strncmp(p + strlen(addr), ": ", 2) == 0)
		return p + strlen(addr) + 2;
	return msg;
}

int buildkit_solve(void *connp, const struct kiln_solve *req, struct kiln_solve_result *res,
		   struct kiln_err *err)
{
	struct buildkit_conn *conn = connp;
	const struct kiln_host *host = conn->host;
	const struct kiln_build_opts *o = req->opts;
	const struct kiln_build_def *def = req->def;
	struct plan pl = {
		.host = host, .arena = req->arena, .conn = conn,
		.dockerd = conn->where.transport == BUILDKIT_DOCKER,
	};
	char engine[128];
	if (conn->v011)
		snprintf(engine, sizeof(engine), "BuildKit %s", conn->version);
	else
		snprintf(engine, sizeof(engine), "BuildKit v0.8 (as in dockerd 20.10)");
	pl.engine = engine;

	if (!def->frontend && !def->llb)
		return host->error(err, KILN_E_INVALID, "the frontend gave neither a frontend "
				   "request nor an LLB definition");
	int rc = check_syntax_needs(&pl, def, err);
	if (rc == 0)
		rc = plan_exporter(&pl, o, err);
	if (rc == 0)
		rc = plan_cache(&pl, o, err);
	if (rc == 0)
		rc = plan_entitlements(&pl, o, err);
	if (rc < 0)
		return rc;

	struct buildkit_session s = { .host = host, .dirs = def->local_dirs,
				      .n_dirs = def->n_local_dirs, .bus = req->bus,
				      .job = req->job };
	session_names(&s, def);
	rc = buildkit_secrets_parse(&s, o->secrets, o->n_secrets, err);
	if (rc == 0)
		rc = buildkit_ssh_parse(&s, o->ssh, o->n_ssh, err);
	if (rc == 0 && pl.mode != BUILDKIT_EXPORT_NONE) {
		s.export_.mode = pl.mode;
		s.export_.dest = host->alloc(strlen(pl.dest) + 1);
		memcpy(s.export_.dest, pl.dest, strlen(pl.dest) + 1);
		rc = buildkit_export_prepare(&s, err);
	}
	if (rc == 0)
		rc = buildkit_session_start(conn, &s, tunnel_kind(conn), err);
	if (rc < 0) {
		buildkit_export_abort(&s);
		buildkit_secrets_free(&s);
		buildkit_ssh_free(&s);
		return rc;
	}

	/* Status first: the daemon waits up to 6 s for the job to appear */
	struct status_reader sr = { .conn = conn, .req = req };
	char ref[32];
	buildkit_random_id(ref, 26);
	memcpy(sr.ref, ref, sizeof(ref));
	pthread_mutex_init(&sr.mu, NULL);
	pthread_cond_init(&sr.cv, NULL);
	Moby__Buildkit__V1__StatusRequest sreq = MOBY__BUILDKIT__V1__STATUS_REQUEST__INIT;
	sreq.ref = sr.ref;
	bool status_on = buildkit_stream_open(conn, BUILDKIT_M_STATUS, &sreq.base, SOLVE_MS,
					      &sr.stream, &sr.err) == 0 &&
			 pthread_create(&sr.thread, NULL, status_main, &sr) == 0;
	if (!status_on) {
		host->log(KILN_LOG_WARN, "buildkit: no progress: %s", sr.err.msg);
		buildkit_stream_close(&sr.stream);
		pthread_mutex_destroy(&sr.mu);
		pthread_cond_destroy(&sr.cv);
	}

	Moby__Buildkit__V1__SolveRequest sq = MOBY__BUILDKIT__V1__SOLVE_REQUEST__INIT;
	sq.ref = ref;
	sq.session = s.id;
	Pb__Definition *llb = NULL;
	ProtobufCAllocator a;
	buildkit_allocator(host, &a);
	if (def->frontend) {
		sq.frontend = (char *)def->frontend;
		frontend_attrs(&pl, def, &sq);
	} else {
		llb = pb__definition__unpack(&a, def->llb_len, def->llb);
		if (!llb) {
			rc = host->error(err, KILN_E_INVALID, "the LLB definition from the "
					 "frontend does not decode as pb.Definition");
			goto out;
		}
		sq.definition = llb;
	}
	if (pl.exporter) {
		sq.exporter = (char *)pl.exporter;
		sq.exporterattrs = kv_entries(&pl, pl.attrs, pl.n_attrs);
		sq.n_exporterattrs = pl.n_attrs;
	}
	Moby__Buildkit__V1__CacheOptions cache = MOBY__BUILDKIT__V1__CACHE_OPTIONS__INIT;
	if (pl.n_imports || pl.n_exports) {
		cache.imports = pl.imports;
		cache.n_imports = pl.n_imports;
		cache.exports = pl.exports;
		cache.n_exports = pl.n_exports;
		sq.cache = &cache;
	}
	sq.entitlements = (char **)pl.entitlements;
	sq.n_entitlements = pl.n_entitlements;

	size_t packed = protobuf_c_message_get_packed_size(&sq.base);
	if (packed > BUILDKIT_MAX_SEND) {
		rc = host->error(err, KILN_E_INVALID, "the solve request is %zu bytes; BuildKit "
				 "accepts at most 4 MiB", packed);
		goto out;
	}
	host->log(KILN_LOG_DEBUG, "buildkit: Solve ref=%s session=%s exporter=%s (%zu bytes)",
		  ref, s.id, pl.exporter ? pl.exporter : "none", packed);
	ProtobufCMessage *resp = NULL;
	struct buildkit_status st = { 0 };
	struct kiln_err serr = { 0 };
	rc = buildkit_unary(conn, BUILDKIT_M_SOLVE, &sq.base,
			    &moby__buildkit__v1__solve_response__descriptor, SOLVE_MS, &resp, &st,
			    &serr);
	if (rc == 0) {
		result_from(&pl, (Moby__Buildkit__V1__SolveResponse *)resp, res);
		protobuf_c_message_free_unpacked(resp, &a);
	} else if (serr.code == KILN_E_CANCELLED || atomic_load(&conn->cancelled)) {
		rc = host->error(err, KILN_E_CANCELLED, "build cancelled");
	} else if (__atomic_load_n(&s.export_.failed, __ATOMIC_SEQ_CST)) {
		/* kiln's side of the export failed (disk full): its words, not
		 * the daemon's "EOF" */
		rc = host->error(err, KILN_E_BUILD, "failed to solve: %s", s.export_.why);
	} else if (serr.code == KILN_E_CONNECT) {
		/* It answered Info and took the session: the engine went away
		 * (killed, restarted) while solving. */
		rc = host->error(err, KILN_E_ENGINE_LOST, "lost the engine at %s during the "
				 "solve: %s", conn->addr, cause_of(serr.msg, conn->addr));
	} else if (serr.code == KILN_E_DENIED) {
		*err = serr;
	} else {
		/* the daemon's words, as buildx shows them */
		rc = host->error(err, KILN_E_BUILD, "failed to solve: %s",
				 st.details[0] ? st.details : serr.msg);
	}
out:
	if (status_on)
		status_finish(&sr, rc == 0 ? STATUS_DRAIN_MS : 500);
	buildkit_session_stop(&s);
	if (rc == 0 && pl.mode != BUILDKIT_EXPORT_NONE)
		rc = buildkit_export_commit(&s, err);
	else
		buildkit_export_abort(&s);
	buildkit_secrets_free(&s);
	buildkit_ssh_free(&s);
	if (llb)
		pb__definition__free_unpacked(llb, &a);
	return rc;
}
