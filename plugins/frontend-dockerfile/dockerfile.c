/*
 * dockerfile.c: the minimal `dockerfile` frontend. It does not parse the
 * Dockerfile: it finds it, checks that it can be read, counts its
 * instructions, and describes the build as BuildKit's `dockerfile.v0`
 * frontend request (the attributes `docker buildx build` sends), which the
 * buildkit backend passes on and the docker backend maps onto the Engine
 * API's /build parameters.
 *
 * The full parser and linter replace this file later; the request it
 * produces stays the same.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kiln/kiln.h>

static const char *const patterns[] = {
	"Dockerfile", "*.Dockerfile", "Dockerfile.*", "Containerfile", NULL,
};

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

/* "prefix" + s, in the arena. */
static const char *prefixed(const struct kiln_host *host, struct kiln_arena *arena,
			    const char *prefix, const char *s)
{
	size_t a = strlen(prefix), b = strlen(s);
	char *p = host->arena_alloc(arena, a + b + 1);
	memcpy(p, prefix, a);
	memcpy(p + a, s, b + 1);
	return p;
}

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/*
 * A cheap count of the Dockerfile's instructions (Docker's "Step N/M"
 * total): lines that start an instruction, skipping comments, blank lines
 * and continuation lines. Returns 0 ("unknown") for what it cannot count
 * without a parser: heredocs.
 */
static int count_instructions(FILE *f)
{
	char line[8192];
	int n = 0;
	char escape = '\\';
	bool cont = false, directives = true, partial = false;
	while (fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		bool whole = len > 0 && line[len - 1] == '\n';
		bool was_partial = partial;
		partial = !whole;
		if (was_partial)
			continue; /* tail of an over-long line already counted */
		char *p = line;
		while (is_space((unsigned char)*p))
			p++;
		if (*p == '#') {
			/* Parser directives come first, before any other line. */
			if (directives && strncmp(p + 1, " escape=`", 9) == 0)
				escape = '`';
			else if (directives && strncmp(p + 1, "escape=`", 8) == 0)
				escape = '`';
			continue;
		}
		directives = false;
		while (len > 0 && (line[len - 1] == '\n' || is_space((unsigned char)line[len - 1])))
			line[--len] = '\0';
		if (*p == '\0')
			continue;
		if (!cont) {
			n++;
			if (strstr(p, "<<"))
				return 0; /* maybe a heredoc: leave it to the parser */
		}
		cont = len > 0 && line[len - 1] == escape;
	}
	return n;
}

static int load(const struct kiln_host *host, struct kiln_arena *arena,
		const struct kiln_build_opts *opts, struct kiln_build_def *def,
		struct kiln_err *err)
{
	const char *context = opts->context;
	if (!context || !*context)
		return host->error(err, KILN_E_INVALID, "no build context given");
	if (strcmp(context, "-") == 0)
		return host->error(err, KILN_E_UNSUPPORTED,
				   "a build context on standard input ('-') is not supported yet");
	char ctx_abs[PATH_MAX];
	if (!realpath(context, ctx_abs))
		return host->error_at(err, KILN_E_NOTFOUND, context, 0, 0,
				      "cannot use the build context: %s", strerror(errno));
	if (!is_dir(ctx_abs))
		return host->error_at(err, KILN_E_INVALID, context, 0, 0,
				      "the build context is not a directory");

	/* -f is relative to the current directory, as with docker; by
	 * default <context>/Dockerfile, or <context>/Containerfile when only
	 * that exists (as podman does). */
	char path[PATH_MAX];
	int w;
	if (opts->dockerfile && *opts->dockerfile) {
		w = snprintf(path, sizeof(path), "%s", opts->dockerfile);
	} else {
		w = snprintf(path, sizeof(path), "%s/Dockerfile", context);
		if (w > 0 && (size_t)w < sizeof(path) && access(path, F_OK) != 0) {
			char alt[PATH_MAX];
			int w2 = snprintf(alt, sizeof(alt), "%s/Containerfile", context);
			if (w2 > 0 && (size_t)w2 < sizeof(alt) && access(alt, F_OK) == 0)
				memcpy(path, alt, (size_t)w2 + 1);
		}
	}
	if (w < 0 || (size_t)w >= sizeof(path))
		return host->error(err, KILN_E_INVALID, "Dockerfile path too long");
	if (is_dir(path))
		return host->error_at(err, KILN_E_INVALID, path, 0, 0,
				      "is a directory, not a Dockerfile");
	FILE *f = fopen(path, "r");
	if (!f)
		return host->error_at(err, errno == ENOENT ? KILN_E_NOTFOUND : KILN_E_IO,
				      path, 0, 0, "cannot read the Dockerfile: %s",
				      strerror(errno));
	int steps = count_instructions(f);
	bool read_error = ferror(f);
	fclose(f);
	if (read_error)
		return host->error_at(err, KILN_E_IO, path, 0, 0,
				      "cannot read the Dockerfile");

	/* The Dockerfile's directory, resolved; its name as written (not a
	 * symlink's target): BuildKit and the daemon look it up by that
	 * name in that directory. */
	char df_dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	const char *filename = slash ? slash + 1 : path;
	if (slash) {
		size_t dl = slash == path ? 1 : (size_t)(slash - path);
		char dir[PATH_MAX];
		memcpy(dir, path, dl);
		dir[dl] = '\0';
		if (!realpath(dir, df_dir))
			return host->error_at(err, KILN_E_IO, path, 0, 0, "%s", strerror(errno));
	} else if (!realpath(".", df_dir)) {
		return host->error_at(err, KILN_E_IO, path, 0, 0, "%s", strerror(errno));
	}

	struct kvs attrs = { 0 };
	kvs_add(host, arena, &attrs, "filename", filename);
	if (opts->target && *opts->target)
		kvs_add(host, arena, &attrs, "target", opts->target);
	for (size_t i = 0; i < opts->n_build_args; i++)
		kvs_add(host, arena, &attrs,
			prefixed(host, arena, "build-arg:", opts->build_args[i].key),
			opts->build_args[i].value);
	for (size_t i = 0; i < opts->n_labels; i++)
		kvs_add(host, arena, &attrs,
			prefixed(host, arena, "label:", opts->labels[i].key),
			opts->labels[i].value);
	if (opts->platform && *opts->platform)
		kvs_add(host, arena, &attrs, "platform", opts->platform);
	if (opts->no_cache)
		kvs_add(host, arena, &attrs, "no-cache", "");
	if (opts->n_add_hosts) {
		/* BuildKit's form: "host=ip,host2=ip2" (buildx turns --add-host
		 * host:ip into host=ip). */
		size_t len = 1;
		for (size_t i = 0; i < opts->n_add_hosts; i++)
			len += strlen(opts->add_hosts[i]) + 1;
		char *csv = host->arena_alloc(arena, len), *q = csv;
		for (size_t i = 0; i < opts->n_add_hosts; i++) {
			const char *h = opts->add_hosts[i];
			size_t hl = strlen(h);
			const char *sep = strchr(h, '=');
			if (!sep)
				sep = strchr(h, ':');
			if (!sep || sep == h || !sep[1])
				return host->error(err, KILN_E_INVALID,
						   "--add-host expects HOST:IP, got '%s'", h);
			if (q != csv)
				*q++ = ',';
			memcpy(q, h, hl);
			q[sep - h] = '=';
			q += hl;
		}
		*q = '\0';
		kvs_add(host, arena, &attrs, "add-hosts", csv);
	}
	if (opts->network && *opts->network)
		kvs_add(host, arena, &attrs, "force-network-mode", opts->network);
	if (opts->pull)
		kvs_add(host, arena, &attrs, "image-resolve-mode", "pull");

	struct kvs dirs = { 0 };
	kvs_add(host, arena, &dirs, "context", ctx_abs);
	kvs_add(host, arena, &dirs, "dockerfile", df_dir);

	def->frontend = host->arena_strdup(arena, "dockerfile.v0");
	def->frontend_attrs = attrs.v;
	def->n_frontend_attrs = attrs.n;
	def->local_dirs = dirs.v;
	def->n_local_dirs = dirs.n;
	def->llb = NULL;
	def->llb_len = 0;
	def->steps = steps;
	return 0;
}

static const struct kiln_frontend frontend = {
	.abi_version = KILN_ABI_VERSION,
	.struct_size = sizeof(struct kiln_frontend),
	.name = "dockerfile",
	.version = "0.1.0",
	.description = "Dockerfile, as a BuildKit dockerfile.v0 request (minimal: no parsing yet)",
	.patterns = patterns,
	.load = load,
};

KILN_EXPORT int kiln_plugin_init(const struct kiln_host *host, uint32_t host_abi,
				 struct kiln_plugin *plugin, struct kiln_err *err)
{
	int rc = kiln_check_host_abi(host, host_abi, err);
	return rc < 0 ? rc : host->register_frontend(plugin, &frontend);
}
