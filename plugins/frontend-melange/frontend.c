/*
 * frontend.c: the `melange` frontend (docs/melange.md). load() reads a
 * melange build file (-f FILE, or `kiln build FILE.yaml`), compiles it
 * (config.c, compile.c) and describes the build as one LLB graph (llb.c)
 * that runs every step on a build image with the sources at /home/build
 * and exports melange-out. Problems in the file stop the build with
 * FILE:LINE before any engine is contacted; unknown keys are warnings.
 * check() is `kiln lint FILE.yaml`.
 *
 * Frontend options (kiln_build_opts.frontend_opts): build-image=REF (the
 * root; default busybox:latest), source-dir=DIR (default: the file's
 * directory), source-date-epoch=N (default 0).
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <unistd.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <kiln/kiln.h>

#include "apk.h"
#include "melange.h"

static const char *const patterns[] = { "*.yaml", "*.yml", NULL };

#define FILE_MAX (16u << 20)
#define DEFAULT_IMAGE "busybox:latest"

static const char *fopt(const struct kiln_build_opts *o, const char *key)
{
	const char *v = NULL;
	if (!KILN_HAS_FIELD(o, struct kiln_build_opts, n_frontend_opts))
		return NULL;
	for (size_t i = 0; i < o->n_frontend_opts; i++)
		if (strcmp(o->frontend_opts[i].key, key) == 0)
			v = o->frontend_opts[i].value;
	return v;
}

static int read_file(const struct kiln_host *host, const char *path, char **text, size_t *len,
		     struct kiln_err *err)
{
	struct stat st;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return host->error_at(err, KILN_E_INVALID, path, 0, 0,
				      "is a directory, not a melange build file");
	FILE *f = fopen(path, "rb");
	if (!f)
		return host->error_at(err, errno == ENOENT ? KILN_E_NOTFOUND : KILN_E_IO, path, 0,
				      0, "cannot read the build file: %s", strerror(errno));
	size_t cap = 8192, n = 0;
	char *t = host->alloc(cap);
	for (;;) {
		if (n + 1 >= cap) {
			if (cap > FILE_MAX) {
				host->free(t);
				fclose(f);
				return host->error_at(err, KILN_E_INVALID, path, 0, 0,
						      "the build file is larger than %u MiB",
						      FILE_MAX >> 20);
			}
			cap *= 2;
			t = host->realloc(t, cap);
		}
		size_t r = fread(t + n, 1, cap - n - 1, f);
		n += r;
		if (r == 0)
			break;
	}
	bool bad = ferror(f);
	fclose(f);
	if (bad) {
		host->free(t);
		return host->error_at(err, KILN_E_IO, path, 0, 0, "cannot read the build file");
	}
	t[n] = '\0';
	*text = t;
	*len = n;
	return 0;
}

/* The platform of the build: the job's, else the machine's. */
static const char *native_platform(void)
{
	struct utsname u;
	if (uname(&u) == 0 && (!strcmp(u.machine, "aarch64") || !strcmp(u.machine, "arm64")))
		return "linux/arm64";
	return "linux/amd64";
}

/* Everything load() and check() share: read, parse, compile. */
struct job {
	const char *path;
	const char *platform;
	struct mel_pool *pool;
	struct mel_config *cfg;
	struct mel_plan *plan;
	struct mel_diags warn;
	struct mel_err merr;
};

static int prepare(const struct kiln_host *host, const struct kiln_build_opts *opts,
		   struct job *j, struct kiln_err *err)
{
	j->path = opts->dockerfile && *opts->dockerfile ? opts->dockerfile : NULL;
	if (!j->path)
		return host->error(err, KILN_E_INVALID, "the melange frontend needs a build file: "
				   "kiln build FILE.yaml, or -f FILE.yaml");
	j->platform = opts->platform && *opts->platform ? opts->platform : native_platform();
	struct mel_target t = { .arch = mel_apk_arch(j->platform),
				.source_date_epoch = fopt(opts, "source-date-epoch") };
	if (!t.arch)
		return host->error(err, KILN_E_INVALID, "melange: platform \"%s\" is not supported "
				   "(linux/amd64, linux/arm64)", j->platform);
	if (!t.source_date_epoch)
		t.source_date_epoch = "0";
	for (const char *q = t.source_date_epoch; *q; q++)
		if (*q < '0' || *q > '9')
			return host->error(err, KILN_E_INVALID, "source-date-epoch=%s: not a number",
					   t.source_date_epoch);
	if (mel_apk_arch(j->platform) && strncmp(j->platform, "linux/", 6) != 0)
		j->platform = !strcmp(t.arch, "x86_64") ? "linux/amd64" : "linux/arm64";
	char *text = NULL;
	size_t len = 0;
	int rc = read_file(host, j->path, &text, &len, err);
	if (rc < 0)
		return rc;
	j->pool = mel_pool_new();
	rc = mel_config_parse(j->pool, j->path, text, len, &j->cfg, &j->warn, &j->merr);
	host->free(text);
	if (rc == 0)
		rc = mel_compile(j->pool, j->cfg, &t, &j->plan, &j->warn, &j->merr);
	if (rc < 0)
		return host->error_at(err, KILN_E_SYNTAX, j->merr.file, j->merr.line,
				      j->merr.column, "%s", j->merr.msg);
	return 0;
}

static int load(const struct kiln_host *host, struct kiln_arena *arena,
		const struct kiln_build_opts *opts, struct kiln_build_def *def,
		struct kiln_err *err)
{
	struct job j = { 0 };
	int rc = prepare(host, opts, &j, err);
	for (size_t i = 0; i < j.warn.n; i++)
		host->log(KILN_LOG_WARN, "%s:%d: %s", j.warn.v[i].file, j.warn.v[i].line,
			  j.warn.v[i].msg);
	if (rc < 0)
		goto out;
	if (j.cfg->target_archs.n) {
		bool listed = false;
		for (size_t i = 0; i < j.cfg->target_archs.n; i++)
			listed = listed || !strcmp(j.cfg->target_archs.v[i], j.plan->arch) ||
				 !strcmp(j.cfg->target_archs.v[i], "all");
		if (!listed) {
			rc = host->error_at(err, KILN_E_INVALID, j.path, 0, 0,
					    "package.target-architecture does not list %s",
					    j.plan->arch);
			goto out;
		}
	}

	/* the sources: source-dir=, else the build file's directory */
	const char *sd = fopt(opts, "source-dir");
	char dir[PATH_MAX], abs[PATH_MAX];
	if (sd) {
		snprintf(dir, sizeof(dir), "%s", sd);
	} else {
		const char *slash = strrchr(j.path, '/');
		if (slash)
			snprintf(dir, sizeof(dir), "%.*s", (int)(slash == j.path ? 1 : slash - j.path),
				 j.path);
		else
			snprintf(dir, sizeof(dir), ".");
	}
	struct stat st;
	if (!realpath(dir, abs) || stat(abs, &st) != 0 || !S_ISDIR(st.st_mode)) {
		rc = host->error_at(err, KILN_E_NOTFOUND, dir, 0, 0,
				    "the source directory is not a directory");
		goto out;
	}
	const char *image = fopt(opts, "build-image");
	const char *base = strrchr(j.path, '/');
	struct mel_llb_opts lo = {
		.build_image = image && *image ? image : DEFAULT_IMAGE,
		.platform = j.platform,
		.source_name = "source",
		.file_base = base ? base + 1 : j.path,
	};
	char digest[KILN_GRAPH_DIGEST_SIZE];
	rc = mel_llb(host, j.plan, &lo, arena, &def->llb, &def->llb_len, digest, err);
	if (rc < 0)
		goto out;
	struct kiln_kv *dirs = host->arena_alloc(arena, sizeof(*dirs));
	dirs[0].key = "source";
	dirs[0].value = host->arena_strdup(arena, abs);
	def->frontend = NULL;
	def->local_dirs = dirs;
	def->n_local_dirs = 1;
	def->steps = (int)j.plan->n_execs;
	if (KILN_HAS_FIELD(def, struct kiln_build_def, default_output))
		def->default_output = "type=local,dest=melange-out";
	host->log(KILN_LOG_DEBUG, "melange: %s: %zu steps, %zu packages, LLB %zu bytes, %s",
		  j.path, j.plan->n_execs, j.plan->n_outputs, def->llb_len, digest);
out:
	mel_pool_free(j.pool);
	return rc;
}

static int check(const struct kiln_host *host, struct kiln_arena *arena,
		 const struct kiln_build_opts *opts, struct kiln_check_result *res,
		 struct kiln_err *err)
{
	struct job j = { 0 };
	int rc = prepare(host, opts, &j, err);
	if (rc < 0 && err->code != KILN_E_SYNTAX) {
		mel_pool_free(j.pool);
		return rc;
	}
	size_t n = j.warn.n + (rc < 0 ? 1 : 0);
	struct kiln_diagnostic *d = host->arena_alloc(arena, (n + 1) * sizeof(*d));
	for (size_t i = 0; i < j.warn.n; i++)
		d[i] = (struct kiln_diagnostic){
			.severity = KILN_SEV_WARNING, .rule = "UnknownKey",
			.message = host->arena_strdup(arena, j.warn.v[i].msg),
			.file = host->arena_strdup(arena, j.warn.v[i].file),
			.line = j.warn.v[i].line, .column = j.warn.v[i].column,
		};
	if (rc < 0)
		d[j.warn.n] = (struct kiln_diagnostic){
			.severity = KILN_SEV_ERROR, .message = host->arena_strdup(arena, err->msg),
			.file = host->arena_strdup(arena, err->file), .line = err->line,
			.column = err->column,
		};
	res->diags = d;
	res->n_diags = n;
	res->fail = rc < 0;
	mel_pool_free(j.pool);
	memset(err, 0, sizeof(*err));
	return 0;
}

/* ---- packaging after the export ---------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)flag; (void)f;
	return remove(path);
}

static void rm_tree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static unsigned prio(const char *s)
{
	return s ? (unsigned)strtoul(s, NULL, 10) : 0;
}

/* The directory packages go to: next to the export (its parent's
 * packages/), or packages-dir=DIR. */
static void packages_dir(const struct kiln_build_opts *opts, const char *export_dir,
			 char *out, size_t n)
{
	const char *pd = fopt(opts, "packages-dir");
	if (pd && *pd) {
		snprintf(out, n, "%s", pd);
		return;
	}
	char d[PATH_MAX];
	snprintf(d, sizeof(d), "%s", export_dir);
	size_t l = strlen(d);
	while (l > 1 && d[l - 1] == '/')
		d[--l] = '\0';
	char *slash = strrchr(d, '/');
	if (!slash)
		snprintf(out, n, "packages");
	else if (slash == d)
		snprintf(out, n, "/packages");
	else
		snprintf(out, n, "%.*s/packages", (int)(slash - d), d);
}

static int package(const struct kiln_host *host, struct kiln_arena *arena,
		   const struct kiln_build_opts *opts, const struct kiln_build_def *def,
		   const char *export_dir, struct kiln_err *err)
{
	(void)arena; (void)def;
	struct job j = { 0 };
	int rc = prepare(host, opts, &j, err);
	if (rc < 0)
		goto out;
	const struct mel_config *c = j.cfg;
	const char *arch = j.plan->arch;
	const char *sde = fopt(opts, "source-date-epoch");
	uint64_t builddate = sde ? strtoull(sde, NULL, 10) : 0;
	const char *keypath = fopt(opts, "signing-key");
	struct apk_key key = { .path = keypath, .hash = APK_SIG_SHA256 };
	char keyname[PATH_MAX];
	if (keypath && *keypath) {
		const char *b = strrchr(keypath, '/');
		snprintf(keyname, sizeof(keyname), "%s", b ? b + 1 : keypath);
		key.name = keyname;
	}
	const struct apk_key *kp = keypath && *keypath ? &key : NULL;

	char pkgs[PATH_MAX], tmp[PATH_MAX + 64], final[PATH_MAX + 128], old[PATH_MAX + 128];
	char dst[PATH_MAX + 128];
	packages_dir(opts, export_dir, pkgs, sizeof(pkgs));
	if (mkdir(pkgs, 0755) < 0 && errno != EEXIST) {
		rc = host->error(err, KILN_E_IO, "melange: cannot create %s: %s", pkgs,
				 strerror(errno));
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s/.tmp-%s-XXXXXX", pkgs, arch);
	if (!mkdtemp(tmp)) {
		rc = host->error(err, KILN_E_IO, "melange: cannot create a directory in %s: %s",
				 pkgs, strerror(errno));
		goto out;
	}
	chmod(tmp, 0755);
	if ((size_t)snprintf(final, sizeof(final), "%s/%s", tmp, arch) >= sizeof(final) ||
	    (size_t)snprintf(dst, sizeof(dst), "%s/%s", pkgs, arch) >= sizeof(dst) ||
	    (size_t)snprintf(old, sizeof(old), "%s.old", tmp) >= sizeof(old)) {
		rm_tree(tmp);
		rc = host->error(err, KILN_E_INVALID, "melange: path too long: %s", pkgs);
		goto out;
	}
	/* the repository keeps the other packages already there (hard links
	 * into the new directory; this build's files then replace theirs) */
	DIR *dh = opendir(dst);
	if (dh && mkdir(final, 0755) == 0) {
		struct dirent *de;
		while ((de = readdir(dh))) {
			size_t l = strlen(de->d_name);
			if (l < 5 || strcmp(de->d_name + l - 4, ".apk") != 0 || de->d_name[0] == '.')
				continue;
			char a[PATH_MAX * 2 + 512], b2[PATH_MAX * 2 + 512];
			snprintf(a, sizeof(a), "%s/%s", dst, de->d_name);
			snprintf(b2, sizeof(b2), "%s/%s", final, de->d_name);
			if (link(a, b2) < 0)
				host->log(KILN_LOG_WARN, "melange: %s is left out of the new index: %s",
					  a, strerror(errno));
		}
	}
	if (dh)
		closedir(dh);
	for (size_t i = 0; i <= c->n_subs && rc == 0; i++) {
		const struct mel_subpkg *s = i ? &c->subs[i - 1] : NULL;
		const char *name = s ? s->name : c->name;
		const struct mel_deps *d = s ? &s->deps : &c->deps;
		char root[PATH_MAX + 256];
		snprintf(root, sizeof(root), "%s/%s", export_dir, name);
		struct stat st;
		if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode))
			continue; /* a subpackage whose if: was false */
		struct apk_meta m = {
			.name = name, .version = c->version, .epoch = (unsigned)c->epoch,
			.arch = arch,
			.description = s && s->description ? s->description : c->description,
			.url = s && s->url ? s->url : c->url,
			.commit = s && s->commit ? s->commit : c->commit,
			.origin = c->name, .builddate = builddate,
			.licenses = c->licenses.v, .n_licenses = c->licenses.n,
			.depends = d->runtime.v, .n_depends = d->runtime.n,
			.provides = d->provides.v, .n_provides = d->provides.n,
			.replaces = d->replaces.v, .n_replaces = d->replaces.n,
			.provider_priority = prio(d->provider_priority),
			.replaces_priority = prio(d->replaces_priority),
		};
		struct apk_options ao = { .root_owner = true, .key = kp };
		rc = apk_write(root, tmp, &m, &ao, NULL, err);
	}
	if (rc == 0 && mkdir(final, 0755) < 0 && errno != EEXIST)
		rc = host->error(err, KILN_E_IO, "melange: cannot create %s: %s", final,
				 strerror(errno));
	size_t n = 0;
	if (rc == 0)
		rc = apk_index_write(final, c->description, kp, &n, err);
	if (rc < 0) {
		rm_tree(tmp);
		goto out;
	}
	/* swap the arch directory in: the old one moves aside, then goes */
	bool had = rename(dst, old) == 0;
	if (rename(final, dst) < 0) {
		rc = host->error(err, KILN_E_IO, "melange: cannot move the packages to %s: %s",
				 dst, strerror(errno));
		if (had)
			rename(old, dst);
	} else {
		host->log(KILN_LOG_INFO, "melange: %zu packages and APKINDEX.tar.gz in %s", n,
			  dst);
	}
	if (had)
		rm_tree(old);
	rm_tree(tmp);
out:
	mel_pool_free(j.pool);
	return rc;
}

static const struct kiln_frontend frontend = {
	.abi_version = KILN_ABI_VERSION,
	.struct_size = sizeof(struct kiln_frontend),
	.name = "melange",
	.version = "0.1.0",
	.description = "melange build YAML: pipelines as one deterministic LLB graph",
	.patterns = patterns,
	.load = load,
	.check = check,
	.package = package,
};

KILN_EXPORT int kiln_plugin_init(const struct kiln_host *host, uint32_t host_abi,
				 struct kiln_plugin *plugin, struct kiln_err *err)
{
	int rc = kiln_check_host_abi(host, host_abi, err);
	return rc < 0 ? rc : host->register_frontend(plugin, &frontend);
}
