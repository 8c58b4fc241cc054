/*
 * dockerfile.c: the `dockerfile` frontend. It reads the Dockerfile with
 * the plugin's parser (parser.h), so a syntax error stops the build with
 * FILE:LINE before any engine is contacted; counts the steps of the target
 * (Step N/M); lists the constructs that need a newer built-in Dockerfile
 * frontend than some engines have (kiln/check.h: kiln_syntax_need); and
 * describes the build as BuildKit's `dockerfile.v0` frontend request (the
 * attributes `docker buildx build` sends), which the buildkit backend
 * passes on and the docker backend maps onto the Engine API's /build.
 * check() is `kiln lint`: the parser's errors and lint.c's rules.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kiln/kiln.h>

#include "lint.h"
#include "parser.h"

static const char *const patterns[] = {
	"Dockerfile", "*.Dockerfile", "Dockerfile.*", "Containerfile", "dockerfile", NULL,
};

/* Dockerfiles above this size are refused (BuildKit reads them whole too). */
#define DOCKERFILE_MAX (64u << 20)

/* A growable list of key/value pairs in the job's arena. */
struct kvs {
	struct kiln_kv *v;
	size_t n, cap;
};

static void kvs_add(const struct kiln_host *host, struct kiln_arena *arena,
		    struct kvs *l, const char *key, const char *value)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct kiln_kv *v = host->arena_alloc(arena, cap * sizeof(*v));
		if (l->n)
			memcpy(v, l->v, l->n * sizeof(*v));
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].key = host->arena_strdup(arena, key);
	l->v[l->n].value = host->arena_strdup(arena, value);
	l->n++;
}

/* a + b, in the arena. */
static const char *concat(const struct kiln_host *host, struct kiln_arena *arena,
			  const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *p = host->arena_alloc(arena, la + lb + 1);
	memcpy(p, a, la);
	memcpy(p + la, b, lb + 1);
	return p;
}

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- finding and reading the Dockerfile -------------------------------- */

struct source {
	char path[PATH_MAX];   /* as the user names it (for messages) */
	char ctx_abs[PATH_MAX];
	char df_dir[PATH_MAX]; /* its directory, resolved */
	const char *filename;  /* its base name, inside path */
	char *text;            /* host->alloc'd, NUL-terminated */
	size_t len;
};

/* -f is relative to the current directory, as with docker; by default
 * <context>/Dockerfile, or <context>/Containerfile when only that exists
 * (as podman does). need_context: a build (not a lint) needs a context
 * directory. */
static int locate(const struct kiln_host *host, const struct kiln_build_opts *opts,
		  bool need_context, struct source *src, struct kiln_err *err)
{
	const char *context = opts->context && *opts->context ? opts->context : ".";
	if (need_context) {
		if (!realpath(context, src->ctx_abs))
			return host->error_at(err, KILN_E_NOTFOUND, context, 0, 0,
					      "cannot use the build context: %s", strerror(errno));
		if (!is_dir(src->ctx_abs))
			return host->error_at(err, KILN_E_INVALID, context, 0, 0,
					      "the build context is not a directory");
	}
	char *path = src->path;
	int w;
	if (opts->dockerfile && *opts->dockerfile) {
		w = snprintf(path, PATH_MAX, "%s", opts->dockerfile);
	} else {
		w = snprintf(path, PATH_MAX, "%s/Dockerfile", context);
		if (w > 0 && w < PATH_MAX && access(path, F_OK) != 0) {
			char alt[PATH_MAX];
			int w2 = snprintf(alt, sizeof(alt), "%s/Containerfile", context);
			if (w2 > 0 && (size_t)w2 < sizeof(alt) && access(alt, F_OK) == 0)
				memcpy(path, alt, (size_t)w2 + 1);
		}
	}
	if (w < 0 || w >= PATH_MAX)
		return host->error(err, KILN_E_INVALID, "Dockerfile path too long");
	if (is_dir(path))
		return host->error_at(err, KILN_E_INVALID, path, 0, 0,
				      "is a directory, not a Dockerfile");

	/* The Dockerfile's directory, resolved; its name as written (not a
	 * symlink's target): BuildKit and the daemon look it up by that name
	 * in that directory. */
	const char *slash = strrchr(path, '/');
	src->filename = slash ? slash + 1 : path;
	char dir[PATH_MAX];
	if (slash) {
		size_t dl = slash == path ? 1 : (size_t)(slash - path);
		memcpy(dir, path, dl);
		dir[dl] = '\0';
	} else {
		memcpy(dir, ".", 2);
	}
	FILE *f = fopen(path, "rb");
	if (!f)
		return host->error_at(err, errno == ENOENT ? KILN_E_NOTFOUND : KILN_E_IO,
				      path, 0, 0, "cannot read the Dockerfile: %s",
				      strerror(errno));
	if (!realpath(dir, src->df_dir)) {
		fclose(f);
		return host->error_at(err, KILN_E_IO, path, 0, 0, "%s", strerror(errno));
	}
	size_t cap = 8192, len = 0;
	char *text = host->alloc(cap);
	for (;;) {
		if (len + 1 >= cap) {
			if (cap > DOCKERFILE_MAX) {
				host->free(text);
				fclose(f);
				return host->error_at(err, KILN_E_INVALID, path, 0, 0,
						      "the Dockerfile is larger than %u MiB",
						      DOCKERFILE_MAX >> 20);
			}
			cap *= 2;
			text = host->realloc(text, cap);
		}
		size_t n = fread(text + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	bool bad = ferror(f);
	fclose(f);
	if (bad) {
		host->free(text);
		return host->error_at(err, KILN_E_IO, path, 0, 0, "cannot read the Dockerfile");
	}
	text[len] = '\0';
	src->text = text;
	src->len = len;
	return 0;
}

/* The build args as df_parse_opts wants them: key, value, key, value…
 * (host->alloc'd array of borrowed strings). */
static const char **flat_args(const struct kiln_host *host, const struct kiln_build_opts *o)
{
	const char **v = host->alloc((2 * o->n_build_args + 1) * sizeof(*v));
	for (size_t i = 0; i < o->n_build_args; i++) {
		v[2 * i] = o->build_args[i].key;
		v[2 * i + 1] = o->build_args[i].value;
	}
	v[2 * o->n_build_args] = NULL;
	return v;
}

static int parse(const struct kiln_host *host, const struct kiln_build_opts *o,
		 const struct source *src, struct df_file **out, struct df_error *perr)
{
	const char **args = flat_args(host, o);
	struct df_parse_opts popts = { .build_args = args, .n_build_args = o->n_build_args };
	memset(perr, 0, sizeof(*perr));
	int rc = df_parse(src->path, src->text, src->len, &popts, out, perr);
	host->free(args);
	return rc;
}

/* ---- what the engine's built-in frontend must support ------------------ */

/*
 * Constructs newer than the oldest engine kiln drives (dockerd 20.10's
 * BuildKit v0.8.3, whose built-in frontend is Dockerfile syntax 1.2), with
 * the syntax and the first BuildKit release whose built-in frontend takes
 * them. Sources: Docker's Dockerfile release notes; BuildKit's
 * frontend/dockerfile/instructions/parse.go at each tag (flags of the
 * labs channel count from the release that made them stable).
 */
struct need_rule {
	const char *construct, *syntax, *buildkit;
};
static const struct need_rule NEED_HEREDOC = { "heredoc", "1.4", "v0.10" };
static const struct need_rule NEED_COPY_LINK = { "COPY --link", "1.4", "v0.10" };
static const struct need_rule NEED_ADD_LINK = { "ADD --link", "1.4", "v0.10" };
static const struct need_rule NEED_RUN_NETWORK = { "RUN --network", "1.3", "v0.9" };
static const struct need_rule NEED_RUN_SECURITY = { "RUN --security", "1.20", "v0.26" };
static const struct need_rule NEED_ADD_CHECKSUM = { "ADD --checksum", "1.6", "v0.11" };
static const struct need_rule NEED_ADD_KEEP_GIT = { "ADD --keep-git-dir", "1.6", "v0.11" };
static const struct need_rule NEED_HC_START_INTERVAL = { "HEALTHCHECK --start-interval",
							  "1.6", "v0.12" };
static const struct need_rule NEED_COPY_EXCLUDE = { "COPY --exclude", "1.19", "v0.25" };
static const struct need_rule NEED_ADD_EXCLUDE = { "ADD --exclude", "1.19", "v0.25" };
static const struct need_rule NEED_COPY_PARENTS = { "COPY --parents", "1.19", "v0.25" };
static const struct need_rule NEED_CHMOD_SYMBOLIC = { "--chmod with a non-octal mode",
						       "1.14", "v0.20" };
static const struct need_rule NEED_CHECK_DIRECTIVE = { "# check= directive", "1.8",
							"v0.14" };
static const struct need_rule NEED_NAMED_CONTEXT = { "named build context (--build-context)",
						      "1.4", "v0.10" };
static const struct need_rule NEED_SHM_SIZE = { "--shm-size", "1.4", "v0.10" };
/* RUN --mount (Dockerfile 1.2, BuildKit v0.8): every BuildKit kiln drives
 * has it, the classic builder none (docker backend). */
static const struct need_rule NEED_MOUNT_BIND = { "RUN --mount=type=bind", "1.2", "v0.8" };
static const struct need_rule NEED_MOUNT_CACHE = { "RUN --mount=type=cache", "1.2", "v0.8" };
static const struct need_rule NEED_MOUNT_TMPFS = { "RUN --mount=type=tmpfs", "1.2", "v0.8" };
static const struct need_rule NEED_MOUNT_SECRET = { "RUN --mount=type=secret", "1.2", "v0.8" };
static const struct need_rule NEED_MOUNT_SSH = { "RUN --mount=type=ssh", "1.2", "v0.8" };
static const struct need_rule NEED_ULIMIT = { "--ulimit", "1.4", "v0.10" };

struct needs {
	struct kiln_syntax_need *v;
	size_t n, cap;
};

static void need_add(const struct kiln_host *host, struct kiln_arena *arena, struct needs *l,
		     const struct need_rule *r, const char *file, int line, int column)
{
	/* One entry per construct: the first place it is used. */
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].construct, r->construct) == 0)
			return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct kiln_syntax_need *v = host->arena_alloc(arena, cap * sizeof(*v));
		if (l->n)
			memcpy(v, l->v, l->n * sizeof(*v));
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct kiln_syntax_need){
		.construct = r->construct, .file = file, .line = line, .column = column,
		.syntax = r->syntax, .buildkit = r->buildkit,
	};
}

static bool octal(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '7')
			return false;
	return true;
}

/* The rule of a RUN --mount value: its type= (bind when absent). */
static const struct need_rule *mount_rule(const char *v)
{
	static const struct need_rule *const rules[] = {
		&NEED_MOUNT_BIND, &NEED_MOUNT_CACHE, &NEED_MOUNT_TMPFS, &NEED_MOUNT_SECRET,
		&NEED_MOUNT_SSH,
	};
	for (const char *p = v; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
		if (strncmp(p, "type=", 5) != 0)
			continue;
		p += 5;
		size_t n = strcspn(p, ",");
		for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
			const char *t = rules[i]->construct + strlen("RUN --mount=type=");
			if (strlen(t) == n && strncmp(p, t, n) == 0)
				return rules[i];
		}
		return NULL; /* an unknown type: the frontend's own error */
	}
	return &NEED_MOUNT_BIND;
}

static void needs_of(const struct kiln_host *host, struct kiln_arena *arena,
		     struct needs *l, const char *file, const struct df_instruction *in)
{
	if (in->n_heredocs)
		need_add(host, arena, l, &NEED_HEREDOC, file, in->line, in->column);
	for (size_t i = 0; i < in->n_flags; i++) {
		const struct df_flag *f = &in->flags[i];
		const struct need_rule *r = NULL;
		bool copy = in->kind == DF_COPY, add = in->kind == DF_ADD;
		if (strcmp(f->name, "link") == 0 && (copy || add))
			r = copy ? &NEED_COPY_LINK : &NEED_ADD_LINK;
		else if (strcmp(f->name, "exclude") == 0 && (copy || add))
			r = copy ? &NEED_COPY_EXCLUDE : &NEED_ADD_EXCLUDE;
		else if (strcmp(f->name, "parents") == 0 && copy)
			r = &NEED_COPY_PARENTS;
		else if (strcmp(f->name, "chmod") == 0 && (copy || add) &&
			 !octal(f->expanded ? f->expanded : f->value))
			r = &NEED_CHMOD_SYMBOLIC;
		else if (strcmp(f->name, "checksum") == 0 && add)
			r = &NEED_ADD_CHECKSUM;
		else if (strcmp(f->name, "keep-git-dir") == 0 && add)
			r = &NEED_ADD_KEEP_GIT;
		else if (strcmp(f->name, "network") == 0 && in->kind == DF_RUN)
			r = &NEED_RUN_NETWORK;
		else if (strcmp(f->name, "mount") == 0 && in->kind == DF_RUN)
			r = mount_rule(f->expanded ? f->expanded : f->value);
		else if (strcmp(f->name, "security") == 0 && in->kind == DF_RUN)
			r = &NEED_RUN_SECURITY;
		else if (strcmp(f->name, "start-interval") == 0 && in->kind == DF_HEALTHCHECK)
			r = &NEED_HC_START_INTERVAL;
		if (r)
			need_add(host, arena, l, r, file, f->line ? f->line : in->line,
				 f->column ? f->column : in->column);
	}
	if (in->onbuild)
		needs_of(host, arena, l, file, in->onbuild);
}

static void collect_needs(const struct kiln_host *host, struct kiln_arena *arena,
			  const struct kiln_build_opts *o, const struct df_file *df,
			  const char *file, struct kiln_build_def *def)
{
	struct needs l = { 0 };
	for (size_t i = 0; i < df->n_directives; i++)
		if (strcmp(df->directives[i].name, "check") == 0)
			need_add(host, arena, &l, &NEED_CHECK_DIRECTIVE, file,
				 df->directives[i].line, 1);
	for (size_t i = 0; i < df->n_instructions; i++)
		needs_of(host, arena, &l, file, &df->instructions[i]);
	bool has = KILN_HAS_FIELD(o, struct kiln_build_opts, n_ulimits);
	if (has && o->n_build_contexts)
		need_add(host, arena, &l, &NEED_NAMED_CONTEXT, NULL, 0, 0);
	if (has && o->shm_size)
		need_add(host, arena, &l, &NEED_SHM_SIZE, NULL, 0, 0);
	if (has && o->n_ulimits)
		need_add(host, arena, &l, &NEED_ULIMIT, NULL, 0, 0);
	def->syntax_needs = l.v;
	def->n_syntax_needs = l.n;
}

/* ---- the frontend request ---------------------------------------------- */

/* A comma-joined list, in the arena. */
static const char *join(const struct kiln_host *host, struct kiln_arena *arena,
			const char *const *v, size_t n)
{
	size_t len = 1;
	for (size_t i = 0; i < n; i++)
		len += strlen(v[i]) + 1;
	char *s = host->arena_alloc(arena, len), *q = s;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(v[i]);
		if (i)
			*q++ = ',';
		memcpy(q, v[i], l);
		q += l;
	}
	*q = '\0';
	return s;
}

/* A named context value that is not a local directory (buildx's list). */
static bool context_is_ref(const char *v)
{
	static const char *const schemes[] = {
		"docker-image://", "target:", "oci-layout://", "http://", "https://",
		"git://", "git@", "ssh://", "input:", NULL,
	};
	for (const char *const *s = schemes; *s; s++)
		if (strncmp(v, *s, strlen(*s)) == 0)
			return true;
	return false;
}

static int map_attrs(const struct kiln_host *host, struct kiln_arena *arena,
		     const struct kiln_build_opts *opts, const struct source *src,
		     struct kvs *attrs, struct kvs *dirs, struct kiln_err *err)
{
	kvs_add(host, arena, attrs, "filename", src->filename);
	if (opts->target && *opts->target)
		kvs_add(host, arena, attrs, "target", opts->target);
	for (size_t i = 0; i < opts->n_build_args; i++)
		kvs_add(host, arena, attrs, concat(host, arena, "build-arg:",
						   opts->build_args[i].key),
			opts->build_args[i].value);
	for (size_t i = 0; i < opts->n_labels; i++)
		kvs_add(host, arena, attrs, concat(host, arena, "label:", opts->labels[i].key),
			opts->labels[i].value);
	if (opts->platform && *opts->platform)
		kvs_add(host, arena, attrs, "platform", opts->platform);
	bool has = KILN_HAS_FIELD(opts, struct kiln_build_opts, n_ulimits);
	/* buildx: --no-cache is "no-cache" = "", --no-cache-filter the
	 * stage names joined by commas. */
	if (opts->no_cache)
		kvs_add(host, arena, attrs, "no-cache", "");
	else if (has && opts->n_no_cache_filter)
		kvs_add(host, arena, attrs, "no-cache",
			join(host, arena, opts->no_cache_filter, opts->n_no_cache_filter));
	if (opts->n_add_hosts) {
		/* BuildKit's form: "host=ip,host2=ip2" (buildx turns --add-host
		 * host:ip into host=ip). */
		const char **v = host->arena_alloc(arena, opts->n_add_hosts * sizeof(*v));
		for (size_t i = 0; i < opts->n_add_hosts; i++) {
			const char *h = opts->add_hosts[i];
			const char *sep = strchr(h, '=');
			if (!sep)
				sep = strchr(h, ':');
			if (!sep || sep == h || !sep[1])
				return host->error(err, KILN_E_INVALID,
						   "--add-host expects HOST:IP, got '%s'", h);
			char *c = host->arena_strdup(arena, h);
			c[sep - h] = '=';
			v[i] = c;
		}
		kvs_add(host, arena, attrs, "add-hosts", join(host, arena, v, opts->n_add_hosts));
	}
	if (opts->network && *opts->network)
		kvs_add(host, arena, attrs, "force-network-mode", opts->network);
	if (opts->pull)
		kvs_add(host, arena, attrs, "image-resolve-mode", "pull");
	if (has && opts->shm_size) {
		char n[32];
		snprintf(n, sizeof(n), "%lld", (long long)opts->shm_size);
		kvs_add(host, arena, attrs, "shm-size", n);
	}
	if (has && opts->n_ulimits)
		kvs_add(host, arena, attrs, "ulimit", join(host, arena, opts->ulimits,
							    opts->n_ulimits));

	kvs_add(host, arena, dirs, "context", src->ctx_abs);
	kvs_add(host, arena, dirs, "dockerfile", src->df_dir);
	/* --build-context NAME=VALUE, as buildx sends it: a directory becomes
	 * a session dir of that name and "context:NAME" = "local:NAME". */
	for (size_t i = 0; has && i < opts->n_build_contexts; i++) {
		const char *name = opts->build_contexts[i].key;
		const char *value = opts->build_contexts[i].value;
		const char *key = concat(host, arena, "context:", name);
		if (strcmp(name, "context") == 0 || strcmp(name, "dockerfile") == 0)
			return host->error(err, KILN_E_INVALID, "--build-context: '%s' is a "
					   "reserved name", name);
		if (context_is_ref(value)) {
			kvs_add(host, arena, attrs, key, value);
			continue;
		}
		char abs[PATH_MAX];
		if (!realpath(value, abs) || !is_dir(abs))
			return host->error(err, KILN_E_NOTFOUND, "--build-context %s=%s: not a "
					   "directory, an image (docker-image://) or a URL",
					   name, value);
		kvs_add(host, arena, dirs, name, abs);
		kvs_add(host, arena, attrs, key, concat(host, arena, "local:", name));
	}
	return 0;
}

/* The external frontend named by "# syntax=" or BUILDKIT_SYNTAX, or NULL. */
static const char *syntax_of(const struct kiln_build_opts *o, const struct df_file *df)
{
	for (size_t i = 0; i < o->n_build_args; i++)
		if (strcmp(o->build_args[i].key, "BUILDKIT_SYNTAX") == 0 &&
		    *o->build_args[i].value)
			return o->build_args[i].value;
	return df->syntax && *df->syntax ? df->syntax : NULL;
}

static int load(const struct kiln_host *host, struct kiln_arena *arena,
		const struct kiln_build_opts *opts, struct kiln_build_def *def,
		struct kiln_err *err)
{
	if (!opts->context || !*opts->context)
		return host->error(err, KILN_E_INVALID, "no build context given");
	struct source src = { 0 };
	int rc = locate(host, opts, true, &src, err);
	if (rc < 0)
		return rc;
	struct df_file *df = NULL;
	struct df_error perr;
	if (parse(host, opts, &src, &df, &perr) < 0) {
		host->free(src.text);
		return host->error_at(err, KILN_E_SYNTAX, src.path, perr.line, perr.column,
				      "%s", perr.message);
	}
	host->free(src.text);
	src.text = NULL;

	int steps = df_steps(df, opts->target);
	if (steps < 0) {
		rc = host->error_at(err, KILN_E_NOTFOUND, src.path, 0, 0,
				    "target stage \"%s\" could not be found", opts->target);
		goto out;
	}
	struct kvs attrs = { 0 }, dirs = { 0 };
	rc = map_attrs(host, arena, opts, &src, &attrs, &dirs, err);
	if (rc < 0)
		goto out;
	const char *syntax = syntax_of(opts, df);
	def->frontend = host->arena_strdup(arena, "dockerfile.v0");
	def->frontend_attrs = attrs.v;
	def->n_frontend_attrs = attrs.n;
	def->local_dirs = dirs.v;
	def->n_local_dirs = dirs.n;
	def->llb = NULL;
	def->llb_len = 0;
	def->steps = steps;
	if (KILN_HAS_FIELD(def, struct kiln_build_def, n_syntax_needs)) {
		def->syntax = syntax ? host->arena_strdup(arena, syntax) : NULL;
		collect_needs(host, arena, opts, df, host->arena_strdup(arena, src.path), def);
	}
out:
	df_free(df);
	return rc;
}

/* ---- kiln lint ----------------------------------------------------------- */

static int check(const struct kiln_host *host, struct kiln_arena *arena,
		 const struct kiln_build_opts *opts, struct kiln_check_result *res,
		 struct kiln_err *err)
{
	struct source src = { 0 };
	int rc = locate(host, opts, false, &src, err);
	if (rc < 0)
		return rc;
	const char *file = host->arena_strdup(arena, src.path);
	struct df_file *df = NULL;
	struct df_error perr;
	if (parse(host, opts, &src, &df, &perr) < 0) {
		host->free(src.text);
		struct kiln_diagnostic *d = host->arena_alloc(arena, sizeof(*d));
		*d = (struct kiln_diagnostic){
			.severity = KILN_SEV_ERROR, .message = host->arena_strdup(arena, perr.message),
			.file = file, .line = perr.line, .column = perr.column,
		};
		res->diags = d;
		res->n_diags = 1;
		res->fail = true;
		return 0;
	}
	host->free(src.text);

	const char **args = flat_args(host, opts);
	struct df_lint_opts lopts = { .build_args = args, .n_build_args = opts->n_build_args };
	struct df_lint_result lr = { 0 };
	struct df_error lerr = { 0 };
	rc = df_lint(df, &lopts, &lr, &lerr);
	host->free(args);
	df_free(df);
	if (rc < 0) {
		/* A bad check directive or BUILDKIT_DOCKERFILE_CHECK: BuildKit
		 * refuses the build, so it is an error finding here. */
		df_lint_result_free(&lr);
		struct kiln_diagnostic *e = host->arena_alloc(arena, sizeof(*e));
		*e = (struct kiln_diagnostic){
			.severity = KILN_SEV_ERROR, .message = host->arena_strdup(arena, lerr.message),
			.file = file, .line = lerr.line, .column = lerr.column,
		};
		res->diags = e;
		res->n_diags = 1;
		res->fail = true;
		return 0;
	}
	struct kiln_diagnostic *d = host->arena_alloc(arena, (lr.n + 1) * sizeof(*d));
	for (size_t i = 0; i < lr.n; i++) {
		const struct df_finding *f = &lr.findings[i];
		d[i] = (struct kiln_diagnostic){
			.severity = KILN_SEV_WARNING,
			.rule = host->arena_strdup(arena, f->rule),
			.message = host->arena_strdup(arena, f->message),
			.url = f->url ? host->arena_strdup(arena, f->url) : NULL,
			.file = file, .line = f->line, .column = f->column,
			.end_line = f->end_line,
		};
	}
	res->diags = d;
	res->n_diags = lr.n;
	res->fail = lr.error && lr.n > 0;
	if (KILN_HAS_FIELD(res, struct kiln_check_result, skipped_rules))
		res->skipped_rules = (int)lr.skipped;
	df_lint_result_free(&lr);
	return 0;
}

static const struct kiln_frontend frontend = {
	.abi_version = KILN_ABI_VERSION,
	.struct_size = sizeof(struct kiln_frontend),
	.name = "dockerfile",
	.version = "0.2.0",
	.description = "Dockerfile: parser, lint (build checks) and a BuildKit dockerfile.v0 request",
	.patterns = patterns,
	.load = load,
	.check = check,
};

KILN_EXPORT int kiln_plugin_init(const struct kiln_host *host, uint32_t host_abi,
				 struct kiln_plugin *plugin, struct kiln_err *err)
{
	int rc = kiln_check_host_abi(host, host_abi, err);
	return rc < 0 ? rc : host->register_frontend(plugin, &frontend);
}
