/* cmd_build.c: `kiln build [OPTIONS] PATH`, the single-target build that
 * `docker buildx build` users know. One job per --platform entry, run in
 * order (the scheduler of kiln.lua runs them in parallel).
 * The backend is chosen by address (kiln__engine_addr in core/engine.c). */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fnmatch.h>
#include <sys/stat.h>

#include "arena.h"
#include "bus.h"
#include "cli.h"
#include "debugimage.h"
#include "imageinfo.h"
#include "plan.h"
#include "publish.h"
#include "util.h"

int kiln__kv_add(struct kiln_kvlist *l, const char *arg, bool from_env, const char *cmd,
		 const char *flag)
{
	const char *eq = strchr(arg, '=');
	char *key, *value;
	if (eq) {
		key = kiln__xasprintf("%.*s", (int)(eq - arg), arg);
		value = kiln__xstrdup(eq + 1);
	} else if (from_env) {
		/* --build-arg KEY takes its value from the environment, as
		 * docker does; unset means the argument is skipped. */
		const char *env = getenv(arg);
		if (!env)
			return 0;
		key = kiln__xstrdup(arg);
		value = kiln__xstrdup(env);
	} else {
		return kiln__usage_error(cmd, "%s expects KEY=VALUE, got '%s'", flag, arg);
	}
	if (!*key) {
		free(key);
		free(value);
		return kiln__usage_error(cmd, "%s has an empty key in '%s'", flag, arg);
	}
	kiln__strv_push_owned(&l->store, key);
	kiln__strv_push_owned(&l->store, value);
	l->v = kiln__xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = (struct kiln_kv){ key, value };
	return 0;
}

void kiln__kv_release(struct kiln_kvlist *l)
{
	free(l->v);
	kiln__strv_release(&l->store);
}

struct build_cli {
	struct kiln_build_opts o;
	struct kiln_kvlist args, labels, contexts, fopts;
	struct kiln_strv tags, outputs, cache_from, cache_to, secrets, ssh, hosts,
		allow, platforms, no_cache_filter, ulimits;
	const char *addr;
	const char *backend; /* --backend */
	bool push;           /* --push: -o type=registry */
	struct kiln_tls_cli tls;
	struct kiln_progress_opts progress;
	struct kiln_publish_dest dest; /* where a pushing build goes */
	bool pushes;                   /* --push, or an output that pushes */
	bool print_llb;       /* --print-llb: print the definition, build nothing */
	char *path_dir;       /* PATH's directory when PATH is a file */
	const char *debug_image;           /* --debug-image TAG */
	const char *export_context;        /* --export-context FILE */
	struct kiln_debug_watch *watch;    /* which vertex failed, per job */
	char *debug_note;                  /* said after the summary */
};

static void build_cli_release(struct build_cli *b)
{
	kiln__kv_release(&b->args);
	kiln__kv_release(&b->labels);
	kiln__kv_release(&b->contexts);
	kiln__kv_release(&b->fopts);
	free(b->path_dir);
	free(b->debug_note);
	struct kiln_strv *lists[] = { &b->tags, &b->outputs, &b->cache_from, &b->cache_to,
				      &b->secrets, &b->ssh, &b->hosts, &b->allow, &b->platforms,
				      &b->no_cache_filter, &b->ulimits };
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		kiln__strv_release(lists[i]);
	kiln__tls_cli_release(&b->tls);
	kiln__publish_dest_release(&b->dest);
}

static void split_csv_into(struct kiln_strv *sv, const char *s)
{
	char *copy = kiln__xstrdup(s), *save = NULL;
	for (char *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save))
		kiln__strv_push(sv, p);
	free(copy);
}

enum {
	OPT_BUILD_ARG = 256, OPT_LABEL, OPT_TARGET, OPT_PLATFORM, OPT_CACHE_FROM,
	OPT_CACHE_TO, OPT_SECRET, OPT_SSH, OPT_ADD_HOST, OPT_ALLOW, OPT_NETWORK,
	OPT_NO_CACHE, OPT_PULL, OPT_ADDR, OPT_PROGRESS, OPT_NO_EMOJI,
	OPT_NO_CACHE_FILTER, OPT_BUILD_CONTEXT, OPT_SHM_SIZE, OPT_ULIMIT, OPT_CHECK,
	OPT_BACKEND, OPT_PUSH,
	OPT_OPT, OPT_BUILD_IMAGE, OPT_SOURCE_DIR, OPT_SIGNING_KEY, OPT_ARCH, OPT_PRINT_LLB,
	OPT_DEBUG_IMAGE, OPT_EXPORT_CONTEXT,
};

/* --arch as melange spells it (x86_64, aarch64) or as Go does (amd64,
 * arm64): the platform, or NULL. */
static const char *arch_platform(const char *a)
{
	if (!strcmp(a, "x86_64") || !strcmp(a, "amd64"))
		return "linux/amd64";
	if (!strcmp(a, "aarch64") || !strcmp(a, "arm64"))
		return "linux/arm64";
	return NULL;
}

/* Docker's RAMInBytes (go-units): a number, optionally fractional, then an
 * optional unit k, m, g, t or p (binary multiples), an optional 'i' and an
 * optional 'b', case-insensitive: "67108864", "64m", "64MiB", "1.5g". */
static int parse_ram_bytes(const char *s, int64_t *out)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || v < 0 || *s == '-' || *s == '+' || !(*s >= '0' && *s <= '9'))
		return -1;
	if (*end == ' ')
		end++;
	double mult = 1;
	const char *units = "kmgtp";
	const char *u = *end ? strchr(units, *end | 0x20) : NULL;
	if (u && *end) {
		for (const char *q = units; q <= u; q++)
			mult *= 1024;
		end++;
	}
	if (*end == 'i' || *end == 'I')
		end++;
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end || v * mult > 9.2e18)
		return -1;
	*out = (int64_t)(v * mult);
	return 0;
}

/* --ulimit NAME=SOFT[:HARD], as docker checks it (go-units ParseUlimit). */
static bool ulimit_valid(const char *s)
{
	static const char *const names[] = {
		"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
		"nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack", NULL,
	};
	const char *eq = strchr(s, '=');
	if (!eq)
		return false;
	bool known = false;
	for (const char *const *n = names; *n; n++)
		if (strlen(*n) == (size_t)(eq - s) && strncmp(*n, s, (size_t)(eq - s)) == 0)
			known = true;
	if (!known)
		return false;
	const char *p = eq + 1;
	for (int part = 0; part < 2; part++) {
		if (*p == '-')
			p++;
		if (!(*p >= '0' && *p <= '9'))
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
		if (*p == ':' && part == 0)
			p++;
		else
			break;
	}
	return *p == '\0';
}

static int parse_args(struct build_cli *b, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "tag", required_argument, NULL, 't' },
		{ "output", required_argument, NULL, 'o' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "build-arg", required_argument, NULL, OPT_BUILD_ARG },
		{ "label", required_argument, NULL, OPT_LABEL },
		{ "target", required_argument, NULL, OPT_TARGET },
		{ "platform", required_argument, NULL, OPT_PLATFORM },
		{ "cache-from", required_argument, NULL, OPT_CACHE_FROM },
		{ "cache-to", required_argument, NULL, OPT_CACHE_TO },
		{ "secret", required_argument, NULL, OPT_SECRET },
		{ "ssh", required_argument, NULL, OPT_SSH },
		{ "add-host", required_argument, NULL, OPT_ADD_HOST },
		{ "allow", required_argument, NULL, OPT_ALLOW },
		{ "network", required_argument, NULL, OPT_NETWORK },
		{ "no-cache", no_argument, NULL, OPT_NO_CACHE },
		{ "pull", no_argument, NULL, OPT_PULL },
		{ "addr", required_argument, NULL, OPT_ADDR },
		{ "progress", required_argument, NULL, OPT_PROGRESS },
		{ "no-emoji", no_argument, NULL, OPT_NO_EMOJI },
		{ "no-cache-filter", required_argument, NULL, OPT_NO_CACHE_FILTER },
		{ "build-context", required_argument, NULL, OPT_BUILD_CONTEXT },
		{ "shm-size", required_argument, NULL, OPT_SHM_SIZE },
		{ "ulimit", required_argument, NULL, OPT_ULIMIT },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "backend", required_argument, NULL, OPT_BACKEND },
		{ "push", no_argument, NULL, OPT_PUSH },
		{ "opt", required_argument, NULL, OPT_OPT },
		{ "build-image", required_argument, NULL, OPT_BUILD_IMAGE },
		{ "source-dir", required_argument, NULL, OPT_SOURCE_DIR },
		{ "signing-key", required_argument, NULL, OPT_SIGNING_KEY },
		{ "arch", required_argument, NULL, OPT_ARCH },
		{ "print-llb", no_argument, NULL, OPT_PRINT_LLB },
		{ "debug-image", required_argument, NULL, OPT_DEBUG_IMAGE },
		{ "export-context", required_argument, NULL, OPT_EXPORT_CONTEXT },
		KILN_TLS_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	int c, rc;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "f:t:o:vq", longopts, NULL)) != -1) {
		if (kiln__tls_cli_take(&b->tls, c, optarg))
			continue;
		switch (c) {
		case 'f': b->o.dockerfile = optarg; break;
		case 't': kiln__strv_push(&b->tags, optarg); break;
		case 'o': kiln__strv_push(&b->outputs, optarg); break;
		case 'v': b->progress.verbose = true; break;
		case 'q': b->progress.mode = "quiet"; break;
		case OPT_BUILD_ARG:
			if ((rc = kiln__kv_add(&b->args, optarg, true, "build", "--build-arg")))
				return rc;
			break;
		case OPT_LABEL:
			if ((rc = kiln__kv_add(&b->labels, optarg, false, "build", "--label")))
				return rc;
			break;
		case OPT_TARGET: b->o.target = optarg; break;
		case OPT_PLATFORM: split_csv_into(&b->platforms, optarg); break;
		case OPT_CACHE_FROM: kiln__strv_push(&b->cache_from, optarg); break;
		case OPT_CACHE_TO: kiln__strv_push(&b->cache_to, optarg); break;
		case OPT_SECRET: kiln__strv_push(&b->secrets, optarg); break;
		case OPT_SSH: kiln__strv_push(&b->ssh, optarg); break;
		case OPT_ADD_HOST: kiln__strv_push(&b->hosts, optarg); break;
		case OPT_ALLOW: kiln__strv_push(&b->allow, optarg); break;
		case OPT_NETWORK: b->o.network = optarg; break;
		case OPT_NO_CACHE: b->o.no_cache = true; break;
		case OPT_PULL: b->o.pull = true; break;
		case OPT_ADDR: b->addr = optarg; break;
		case OPT_PROGRESS: b->progress.mode = optarg; break;
		case OPT_NO_EMOJI: b->progress.no_emoji = true; break;
		case OPT_NO_CACHE_FILTER: split_csv_into(&b->no_cache_filter, optarg); break;
		case OPT_BUILD_CONTEXT:
			if ((rc = kiln__kv_add(&b->contexts, optarg, false, "build",
					       "--build-context")))
				return rc;
			break;
		case OPT_SHM_SIZE:
			if (parse_ram_bytes(optarg, &b->o.shm_size) < 0)
				return kiln__usage_error("build", "invalid --shm-size '%s' (bytes, "
							 "or a number with k, m, g)", optarg);
			break;
		case OPT_ULIMIT:
			if (!ulimit_valid(optarg))
				return kiln__usage_error("build", "invalid --ulimit '%s' (expected "
							 "NAME=SOFT[:HARD], e.g. nofile=1024:2048)",
							 optarg);
			kiln__strv_push(&b->ulimits, optarg);
			break;
		case OPT_CHECK: b->o.check = true; break;
		case OPT_BACKEND: b->backend = optarg; break;
		case OPT_PUSH: b->push = true; break;
		case OPT_OPT:
			if ((rc = kiln__kv_add(&b->fopts, optarg, false, "build", "--opt")))
				return rc;
			break;
		case OPT_BUILD_IMAGE:
		case OPT_SIGNING_KEY:
		case OPT_SOURCE_DIR: {
			char *kv = kiln__xasprintf("%s=%s", c == OPT_BUILD_IMAGE ? "build-image"
						   : c == OPT_SIGNING_KEY ? "signing-key"
									: "source-dir", optarg);
			rc = kiln__kv_add(&b->fopts, kv, false, "build", "--opt");
			free(kv);
			if (rc)
				return rc;
			break;
		}
		case OPT_ARCH: {
			char *copy = kiln__xstrdup(optarg), *save = NULL;
			for (char *a = strtok_r(copy, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
				const char *pl = arch_platform(a);
				if (!pl) {
					free(copy);
					return kiln__usage_error("build", "unknown --arch '%s' (x86_64, "
								 "aarch64, amd64, arm64)", a);
				}
				kiln__strv_push(&b->platforms, pl);
			}
			free(copy);
			break;
		}
		case OPT_PRINT_LLB: b->print_llb = true; break;
		case OPT_DEBUG_IMAGE: b->debug_image = optarg; break;
		case OPT_EXPORT_CONTEXT: b->export_context = optarg; break;
		case ':':
			return kiln__usage_error("build", "option '%s' needs a value",
						 argv[optind - 1]);
		default:
			return kiln__usage_error("build", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (b->debug_image && b->platforms.n > 1)
		return kiln__usage_error("build", "--debug-image takes one platform (the tag "
					 "would hold the last one only)");
	if (optind != argc - 1)
		return kiln__usage_error("build", "'kiln build' requires exactly one PATH "
					 "(the build context)");
	b->o.context = argv[optind];
	/* PATH may name the input file itself (`kiln build pkg.yaml`): it is
	 * then -f, and its directory the context. */
	struct stat st;
	if (!b->o.dockerfile && strcmp(b->o.context, "-") != 0 &&
	    stat(b->o.context, &st) == 0 && S_ISREG(st.st_mode)) {
		b->o.dockerfile = b->o.context;
		const char *slash = strrchr(b->o.context, '/');
		b->path_dir = slash ? kiln__xasprintf("%.*s", (int)(slash == b->o.context ? 1
								: slash - b->o.context), b->o.context)
				    : kiln__xstrdup(".");
		b->o.context = b->path_dir;
	}
	return 0;
}

const struct kiln_frontend *kiln__pick_frontend(struct kiln_ctx *ctx, const char *file)
{
	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;
	/* Frontend files are opened one at a time, in search order, until
	 * one reads this file (loader.h, kiln__registry_load_next). */
	size_t seen = 0;
	do {
		for (size_t i = seen; i < ctx->reg.n_entries; i++) {
			const struct kiln_reg_entry *e = &ctx->reg.entries[i];
			if (e->kind != KILN_KIND_FRONTEND)
				continue;
			const struct kiln_frontend *f = e->vt;
			for (const char *const *p = f->patterns; p && *p; p++)
				if (fnmatch(*p, base, 0) == 0)
					return f;
		}
		seen = ctx->reg.n_entries;
	} while (kiln__registry_load_next(&ctx->reg, KILN_KIND_FRONTEND));
	return NULL;
}

/* Signals: a dedicated thread waits for SIGINT/SIGTERM and cancels the
 * running solve, so no work happens in a signal handler. */
struct sigwatch {
	pthread_t thread;
	sigset_t set;
	pthread_mutex_t mu;
	const struct kiln_backend *backend;
	void *conn;
	int signo;
};

static void *sigwatch_main(void *arg)
{
	struct sigwatch *w = arg;
	int sig = 0;
	if (sigwait(&w->set, &sig) != 0)
		return NULL;
	pthread_mutex_lock(&w->mu);
	w->signo = sig;
	if (sig == SIGUSR1) { /* our own wake-up at the end of the build */
		pthread_mutex_unlock(&w->mu);
		return NULL;
	}
	if (w->backend && w->conn && w->backend->cancel)
		w->backend->cancel(w->conn);
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void sigwatch_start(struct sigwatch *w)
{
	sigemptyset(&w->set);
	sigaddset(&w->set, SIGINT);
	sigaddset(&w->set, SIGTERM);
	sigaddset(&w->set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &w->set, NULL);
	pthread_mutex_init(&w->mu, NULL);
	pthread_create(&w->thread, NULL, sigwatch_main, w);
}

static void sigwatch_set(struct sigwatch *w, const struct kiln_backend *b, void *conn)
{
	pthread_mutex_lock(&w->mu);
	w->backend = b;
	w->conn = conn;
	int sig = w->signo;
	pthread_mutex_unlock(&w->mu);
	if (sig && sig != SIGUSR1 && b && conn && b->cancel)
		b->cancel(conn); /* signal arrived before the connection existed */
}

/* Whether SIGINT or SIGTERM arrived. */
static bool sigwatch_caught(struct sigwatch *w)
{
	pthread_mutex_lock(&w->mu);
	bool caught = w->signo && w->signo != SIGUSR1;
	pthread_mutex_unlock(&w->mu);
	return caught;
}

static int sigwatch_stop(struct sigwatch *w)
{
	pthread_kill(w->thread, SIGUSR1);
	pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->mu);
	pthread_sigmask(SIG_UNBLOCK, &w->set, NULL);
	return w->signo == SIGUSR1 ? 0 : w->signo;
}

static void emit_job(struct kiln_bus *bus, const struct kiln_job *job,
		     enum kiln_event_kind kind, const struct kiln_event *tmpl)
{
	struct kiln_event ev = *tmpl;
	ev.struct_size = sizeof(ev);
	ev.kind = kind;
	ev.time_ns = kiln__now_ns();
	ev.job = job;
	kiln__bus_emit(bus, &ev);
}

/* Run one job. Problems found before the engine runs anything (no
 * frontend, a bad Dockerfile, an unreachable engine) return without events
 * and the caller prints them; a failed solve is reported through the
 * job.finished event, which the renderers show. *reported says which. */
/* What a job of a pushing build leaves for the publish step. */
struct job_image {
	const char *platform;
	char *image_id; /* the engine's image ID (config digest), or NULL */
	char *digest;   /* the manifest digest, or NULL */
};

/* The directory of a local export (type=local,dest=DIR, or a bare
 * path), malloc'ed; NULL for other outputs. */
static char *local_dest(const char *o)
{
	bool csv = strchr(o, '=') != NULL;
	if (!csv)
		return strcmp(o, "-") ? kiln__xstrdup(o) : NULL;
	if (!strstr(o, "type=local"))
		return NULL;
	const char *d = strstr(o, "dest=");
	if (!d || (d != o && d[-1] != ','))
		return NULL;
	d += 5;
	return kiln__xasprintf("%.*s", (int)strcspn(d, ","), d);
}

/* One post-export step at a time in this process: two jobs may add
 * packages to the same directory. */
static pthread_mutex_t package_mu = PTHREAD_MUTEX_INITIALIZER;

int kiln__frontend_package(const struct kiln_frontend *fe, struct kiln_arena *arena,
			   const struct kiln_build_opts *opts, const struct kiln_build_def *def,
			   struct kiln_err *err)
{
	if (!KILN_HAS_FIELD(fe, struct kiln_frontend, package) || !fe->package ||
	    opts->n_outputs != 1)
		return 0;
	char *dir = local_dest(opts->outputs[0]);
	if (!dir)
		return 0;
	pthread_mutex_lock(&package_mu);
	int rc = fe->package(&kiln__host, arena, opts, def, dir, err);
	pthread_mutex_unlock(&package_mu);
	free(dir);
	return rc;
}

/* --debug-image TAG after a failed solve of an LLB definition: solve
 * again (all cached) with the result moved to the root the failing step
 * ran on, into the engine's image store as TAG (debugimage.h). Quiet: its
 * outcome is kept in b->debug_note for after the summary. */
static void debug_image(struct build_cli *b, const struct kiln_backend *be,
			const struct kiln_connect_opts *copts, const struct kiln_job *job,
			const struct kiln_build_opts *opts, const struct kiln_build_def *def,
			struct kiln_arena *arena, struct sigwatch *sw)
{
	struct kiln_err err = { 0 };
	char *name = NULL;
	char *failed = kiln__debug_watch_failed(b->watch, job->id, &name);
	struct kiln_build_def dd = *def;
	int rc;
	if (!failed)
		rc = kiln__err(&err, KILN_E_NOTFOUND, "no failed step was reported");
	else
		rc = kiln__debug_root_def(def->llb, def->llb_len, failed, arena, &dd.llb,
					  &dd.llb_len, &err);
	void *conn = NULL;
	if (rc == 0)
		rc = kiln__backend_connect(be, copts, &conn, &err);
	if (rc == 0) {
		struct kiln_build_opts o = *opts;
		const char *tags[1] = { b->debug_image };
		o.tags = tags;
		o.n_tags = 1;
		o.outputs = NULL;
		o.n_outputs = 0;
		o.no_cache = false;
		struct kiln_bus *quiet = kiln__bus_new();
		char *id = kiln__xasprintf("%s/debug-image", job->id);
		struct kiln_job dj = *job;
		dj.id = id;
		struct kiln_solve_result res = { .struct_size = sizeof(res) };
		struct kiln_solve req = {
			.struct_size = sizeof(req), .job = &dj, .opts = &o,
			.def = &dd, .arena = arena, .bus = quiet,
		};
		sigwatch_set(sw, be, conn);
		rc = be->solve(conn, &req, &res, &err);
		sigwatch_set(sw, NULL, NULL);
		be->disconnect(conn);
		kiln__bus_close(quiet, NULL);
		kiln__bus_free(quiet);
		free(id);
	}
	free(b->debug_note);
	if (rc == 0)
		b->debug_note = kiln__xasprintf("debug image %s: the root filesystem \"%s\" ran "
						"on (without that step's changes); try: docker "
						"run -it --rm %s sh", b->debug_image, name,
						b->debug_image);
	else
		b->debug_note = kiln__xasprintf("debug image %s not written: %s", b->debug_image,
						err.msg);
	free(failed);
	free(name);
}

static int run_job(struct kiln_ctx *ctx, struct build_cli *b, struct kiln_bus *bus,
		   const struct kiln_engine_choice *ch, const struct kiln_connect_opts *copts,
		   const char *platform, int number, struct sigwatch *sw, struct kiln_err *err,
		   bool *reported, struct job_image *img)
{
	const struct kiln_backend *be = ch->backend;
	const char *file = b->o.dockerfile ? b->o.dockerfile : "Dockerfile";
	const struct kiln_frontend *fe = kiln__pick_frontend(ctx, file);
	*reported = false;
	if (!fe)
		return kiln__err(err, KILN_E_NOTFOUND,
				 "no frontend plugin reads '%s' (see 'kiln plugins')", file);

	struct kiln_arena *arena = kiln__arena_new();
	struct kiln_build_opts opts = b->o;
	opts.platform = platform;
	if (b->pushes) {
		/* A pushing output stays in the engine's store for the publish
		 * step, or is pushed by BuildKit's image exporter (by digest
		 * when kiln writes the index); as kiln.lua targets do. */
		const char **outs = kiln__arena_alloc(arena, (b->outputs.n + 1) * sizeof(*outs));
		size_t n_platforms = b->platforms.n ? b->platforms.n : 1;
		for (size_t i = 0; i < b->outputs.n; i++) {
			const char *o = b->outputs.v[i];
			if (kiln__output_pushes(o)) {
				char *w = kiln__publish_job_output(o, ch->pusher != NULL, n_platforms,
								   b->dest.by_digest_name);
				o = kiln__arena_strdup(arena, w);
				free(w);
			}
			outs[i] = o;
		}
		opts.outputs = outs;
		if (!ch->pusher && n_platforms > 1) {
			/* pushed by digest: BuildKit refuses a tag there; the
			 * index carries the tags */
			opts.tags = NULL;
			opts.n_tags = 0;
		}
	}
	struct kiln_build_def def = { .struct_size = sizeof(def) };
	struct kiln_solve_result res = { .struct_size = sizeof(res) };
	void *conn = NULL;
	int rc = fe->load(&kiln__host, arena, &opts, &def, err);
	/* the frontend's default output when the user gave no -o */
	const char *default_output[1] = { def.default_output };
	if (rc == 0 && opts.n_outputs == 0 && def.default_output) {
		opts.outputs = default_output;
		opts.n_outputs = 1;
	}
	if (rc == 0 && b->debug_image && !def.llb)
		rc = kiln__err(err, KILN_E_UNSUPPORTED, "--debug-image needs an LLB definition; the %s "
			       "frontend sends a frontend request (%s) to the engine", fe->name,
			       def.frontend ? def.frontend : "none");
	if (rc == 0)
		rc = kiln__backend_connect(be, copts, &conn, err);
	if (rc < 0) {
		kiln__arena_free(arena);
		return rc;
	}

	char *id = kiln__xasprintf("default@%s", platform ? platform : "native");
	struct kiln_job job = {
		.id = id, .target = "default", .platform = platform ? platform : "",
		.builder = copts->addr, .number = number,
	};
	struct kiln_event ev = { 0 };
	ev.u.job_started.frontend = fe->name;
	ev.u.job_started.backend = be->name;
	ev.u.job_started.backend_reason = ch->why;
	ev.u.job_started.steps = def.steps;
	ev.u.job_started.jobs = (int)(b->platforms.n ? b->platforms.n : 1);
	emit_job(bus, &job, KILN_EVENT_JOB_STARTED, &ev);

	sigwatch_set(sw, be, conn);
	struct kiln_solve req = {
		.struct_size = sizeof(req), .job = &job, .opts = &opts,
		.def = &def, .arena = arena, .bus = bus,
	};
	rc = be->solve(conn, &req, &res, err);
	sigwatch_set(sw, NULL, NULL);
	be->disconnect(conn);
	if (rc < 0 && b->debug_image && !sigwatch_caught(sw))
		debug_image(b, be, copts, &job, &opts, &def, arena, sw);
	if (rc == 0) /* the frontend's post-export step (melange: .apk files) */
		rc = kiln__frontend_package(fe, arena, &opts, &def, err);

	memset(&ev, 0, sizeof(ev));
	ev.u.job_finished.status = rc;
	/* The message as kiln__err_print words it: with FILE:LINE:COL when
	 * the problem has a source position (a construct the engine lacks). */
	char *where = NULL;
	if (rc && err->file[0] && err->line > 0)
		where = err->column > 0
				? kiln__xasprintf("%s:%d:%d: %s", err->file, err->line, err->column,
						  err->msg)
				: kiln__xasprintf("%s:%d: %s", err->file, err->line, err->msg);
	ev.u.job_finished.error = rc ? (where ? where : err->msg) : NULL;
	ev.u.job_finished.image_digest = res.image_digest;
	ev.u.job_finished.config_digest = res.config_digest;
	if (rc == 0)
		kiln__image_info_fill(be->name, copts->addr, &ev.u.job_finished);
	emit_job(bus, &job, KILN_EVENT_JOB_FINISHED, &ev);
	free(where);
	/* `docker build -q` prints the image ID on stdout */
	if (rc == 0 && res.image_digest && b->progress.mode &&
	    strcmp(b->progress.mode, "quiet") == 0)
		printf("%s\n", res.image_digest);
	*reported = true;
	if (rc == 0 && res.config_digest)
		img->image_id = kiln__xstrdup(res.config_digest);
	if (rc == 0 && res.image_digest)
		img->digest = kiln__xstrdup(res.image_digest);
	kiln__arena_free(arena);
	free(id);
	return rc;
}

static int build_run(struct kiln_ctx *ctx, struct build_cli *b);


/* --print-llb: the frontend's LLB definition as JSON on stdout (one
 * document per platform), contacting no engine. */
static int print_llb(struct kiln_ctx *ctx, struct build_cli *b)
{
	const char *file = b->o.dockerfile ? b->o.dockerfile : "Dockerfile";
	const struct kiln_frontend *fe = kiln__pick_frontend(ctx, file);
	if (!fe) {
		fprintf(stderr, "kiln: no frontend plugin reads '%s' (see 'kiln plugins')\n", file);
		return KILN_EXIT_USAGE;
	}
	size_t n = b->platforms.n ? b->platforms.n : 1;
	for (size_t i = 0; i < n; i++) {
		struct kiln_arena *arena = kiln__arena_new();
		struct kiln_build_opts opts = b->o;
		opts.platform = b->platforms.n ? b->platforms.v[i] : NULL;
		struct kiln_build_def def = { .struct_size = sizeof(def) };
		struct kiln_err err = { 0 };
		int rc = fe->load(&kiln__host, arena, &opts, &def, &err);
		if (rc == 0 && !def.llb)
			rc = kiln__err(&err, KILN_E_UNSUPPORTED, "the %s frontend makes a frontend "
				       "request (%s), not LLB", fe->name,
				       def.frontend ? def.frontend : "none");
		if (rc == 0 && kiln__llb_print(stdout, def.llb, def.llb_len) < 0)
			rc = kiln__err(&err, KILN_E_INVALID, "the LLB definition does not decode");
		kiln__arena_free(arena);
		if (rc < 0) {
			kiln__err_print(&err);
			return kiln__exit_code(rc);
		}
	}
	return KILN_EXIT_OK;
}

int kiln__cmd_print_llb(struct kiln_ctx *ctx, int argc, char **argv)
{
	char **v = kiln__xmalloc((size_t)(argc + 2) * sizeof(*v));
	v[0] = argv[0];
	v[1] = (char *)"--print-llb";
	for (int i = 1; i < argc; i++)
		v[i + 1] = argv[i];
	v[argc + 1] = NULL;
	int rc = kiln__cmd_build(ctx, argc + 1, v);
	free(v);
	return rc;
}

int kiln__cmd_build(struct kiln_ctx *ctx, int argc, char **argv)
{
	/* kiln build [TARGET|GROUP…] with a kiln.lua: the scheduler. */
	if (kiln__build_wants_script(argc, argv))
		return kiln__cmd_build_plan(ctx, argc, argv);
	struct build_cli b = { .o = { .struct_size = sizeof(b.o) } };
	b.progress.fd = 2; /* progress goes to stderr, as with buildx */
	int rc = parse_args(&b, argc, argv);
	if (rc) {
		build_cli_release(&b);
		return rc;
	}
	if (b.push) /* buildx: --push is shorthand for --output=type=registry */
		kiln__strv_push(&b.outputs, "type=registry");
	rc = kiln__publish_dest((const char *const *)b.outputs.v, b.outputs.n,
				(const char *const *)b.tags.v, b.tags.n, false, &b.dest);
	if (rc < 0) {
		build_cli_release(&b);
		return kiln__usage_error("build", "%s pushes to a registry but names no image: "
					 "give a tag (-t REGISTRY/NAME:TAG) or name= in the output",
					 b.push ? "--push" : "the output");
	}
	b.pushes = rc == 1;
	b.o.build_args = b.args.v;
	b.o.n_build_args = b.args.n;
	b.o.labels = b.labels.v;
	b.o.n_labels = b.labels.n;
#define SET_LIST(field, sv) \
	b.o.field = (const char *const *)(sv).v, b.o.n_##field = (sv).n
	SET_LIST(tags, b.tags);
	SET_LIST(outputs, b.outputs);
	SET_LIST(cache_from, b.cache_from);
	SET_LIST(cache_to, b.cache_to);
	SET_LIST(secrets, b.secrets);
	SET_LIST(ssh, b.ssh);
	SET_LIST(add_hosts, b.hosts);
	SET_LIST(allow, b.allow);
	SET_LIST(no_cache_filter, b.no_cache_filter);
	SET_LIST(ulimits, b.ulimits);
#undef SET_LIST
	b.o.build_contexts = b.contexts.v;
	b.o.n_build_contexts = b.contexts.n;
	b.o.frontend_opts = b.fopts.v;
	b.o.n_frontend_opts = b.fopts.n;

	/* Inputs on stdin ("-f -", PATH "-") become files in a temp dir. */
	struct kiln_stdin_input in = { 0 };
	struct kiln_err err = { 0 };
	if (kiln__stdin_prepare(&in, &b.o, &err) < 0) {
		kiln__err_print(&err);
		kiln__stdin_cleanup(&in);
		build_cli_release(&b);
		return kiln__exit_code(err.code);
	}
	if (b.export_context && !b.print_llb &&
	    kiln__context_export(b.o.context, b.o.dockerfile, b.export_context, &err) < 0) {
		kiln__err_print(&err);
		kiln__stdin_cleanup(&in);
		build_cli_release(&b);
		return kiln__exit_code(err.code);
	}
	if (b.o.check) {
		/* --check: the static check only; no engine is contacted. */
		rc = kiln__check_run(ctx, &b.o, "text");
		kiln__stdin_cleanup(&in);
		build_cli_release(&b);
		return rc;
	}
	rc = b.print_llb ? print_llb(ctx, &b) : build_run(ctx, &b);
	kiln__stdin_cleanup(&in);
	build_cli_release(&b);
	return rc;
}

/* kiln build --push: each platform's image into the registry under every
 * ref, and the image index for several platforms (the publish step of
 * kiln.lua targets, core/publish.c). Native platform last. Prints what
 * was written unless the progress is json or quiet. */
static int publish_images(struct build_cli *b, const struct kiln_engine_choice *ch,
			  const struct kiln_connect_opts *copts, struct job_image *imgs,
			  size_t n, struct kiln_err *err)
{
	if (n == 1 && !ch->pusher) /* pushed by BuildKit's image exporter */
		return 0;
	struct kiln_publish_image *im = kiln__xcalloc(n, sizeof(*im));
	size_t k = 0;
	for (int pass = 0; pass < 2; pass++)
		for (size_t rank = 0; rank < n; rank++) {
			if (kiln__platform_is_native(imgs[rank].platform) != (pass == 1))
				continue;
			im[k++] = (struct kiln_publish_image){
				.platform = imgs[rank].platform, .pusher = ch->pusher,
				.copts = copts, .image = imgs[rank].image_id,
				.digest = imgs[rank].digest, .rank = rank,
			};
		}
	struct kiln_publish_req req = {
		.target = "default", .refs = (const char *const *)b->dest.refs.v,
		.n_refs = b->dest.refs.n, .insecure = b->dest.insecure, .index = n > 1,
		.images = im, .n_images = k,
	};
	struct kiln_publish_out out;
	int rc = kiln__publish(&req, &out, err);
	bool quiet = b->progress.mode && (strcmp(b->progress.mode, "quiet") == 0 ||
					  strcmp(b->progress.mode, "json") == 0);
	for (size_t i = 0; i < out.n_lines && !quiet; i++)
		fprintf(stderr, "pushed %s\n", out.lines[i]);
	kiln__publish_out_release(&out);
	free(im);
	return rc;
}

/* kiln build after the options are checked: pick the backend, open the
 * renderers, run the jobs, publish. Returns the exit code. */
static int build_run(struct kiln_ctx *ctx, struct build_cli *b)
{
	struct kiln_err err = { 0 };
	int rc;
	struct kiln_connect_opts copts;
	struct kiln_engine_choice *ch = kiln__xcalloc(1, sizeof(*ch));
	if (kiln__engine_choose(ctx, b->addr, b->backend, KILN_NEED_SOLVE, b->pushes, ch,
				&err) < 0) {
		kiln__err_print(&err);
		free(ch);
		return err.code == KILN_E_NOTFOUND ? KILN_EXIT_USAGE : kiln__exit_code(err.code);
	}
	if (kiln__tls_cli_resolve(&b->tls, ch->addr, &copts, &err) < 0) {
		free(ch);
		return kiln__usage_error("build", "%s", err.msg);
	}
	/* Build records (full logs, durations for the tty's ETA) are kept
	 * per context directory, Dockerfile and stage. */
	char *ctxdir = realpath(b->o.context, NULL);
	char *record_key = kiln__xasprintf("%s|%s|%s", ctxdir ? ctxdir : b->o.context,
					   b->o.dockerfile ? b->o.dockerfile : "Dockerfile",
					   b->o.target ? b->o.target : "");
	/* the records' name: the context directory's, as buildx names a
	 * build, with the stage */
	const char *base = ctxdir ? strrchr(ctxdir, '/') : NULL;
	base = base && base[1] ? base + 1 : ctxdir ? ctxdir : b->o.context;
	char *record_name = b->o.target ? kiln__xasprintf("%s (%s)", base, b->o.target)
					: kiln__xstrdup(base);
	b->progress.record_key = record_key;
	b->progress.record_name = record_name;
	b->progress.record_context = ctxdir ? ctxdir : b->o.context;
	b->progress.record_file = b->o.dockerfile ? b->o.dockerfile : "Dockerfile";
	struct kiln_bus *bus = NULL;
	rc = kiln__progress_open(ctx, &b->progress, &bus, &err);
	b->progress.record_key = NULL;
	b->progress.record_name = b->progress.record_context = b->progress.record_file = NULL;
	free(record_key);
	free(record_name);
	free(ctxdir);
	if (rc < 0) {
		kiln__err_print(&err);
		free(ch);
		return kiln__exit_code(rc);
	}

	if (b->debug_image) {
		b->watch = kiln__debug_watch_new();
		kiln__bus_add_sink(bus, kiln__debug_watch_sink, b->watch);
	}
	struct sigwatch sw = { 0 };
	sigwatch_start(&sw);
	size_t n_jobs = b->platforms.n ? b->platforms.n : 1;
	struct job_image *imgs = kiln__xcalloc(n_jobs, sizeof(*imgs));
	int first_rc = 0;
	bool first_reported = false;
	struct kiln_err first_err = { 0 };
	for (size_t i = 0; i < n_jobs; i++) {
		bool reported = false;
		memset(&err, 0, sizeof(err));
		imgs[i].platform = b->platforms.n ? b->platforms.v[i] : NULL;
		rc = run_job(ctx, b, bus, ch, &copts, imgs[i].platform, (int)i + 1, &sw, &err,
			     &reported, &imgs[i]);
		if (rc < 0 && !first_rc) {
			first_rc = rc;
			first_err = err;
			first_reported = reported;
		}
		if (rc < 0)
			break;
	}
	int sig = sigwatch_stop(&sw);
	kiln__bus_close(bus, NULL);
	kiln__bus_free(bus);
	kiln__debug_watch_free(b->watch);
	b->watch = NULL;
	if (b->debug_note)
		fprintf(stderr, "kiln: %s\n", b->debug_note);
	if (!first_rc && !sig && b->pushes) {
		memset(&err, 0, sizeof(err));
		if ((rc = publish_images(b, ch, &copts, imgs, n_jobs, &err)) < 0) {
			first_rc = rc;
			first_err = err;
			first_reported = false;
		}
	}
	for (size_t i = 0; i < n_jobs; i++) {
		free(imgs[i].image_id);
		free(imgs[i].digest);
	}
	free(imgs);
	free(ch);
	if (sig == SIGINT)
		return KILN_EXIT_SIGINT;
	if (sig == SIGTERM)
		return KILN_EXIT_SIGTERM;
	if (first_rc) {
		/* A failed solve was already shown by the renderer (ERROR: …);
		 * say it here only when nothing rendered it. */
		bool quiet = b->progress.mode && strcmp(b->progress.mode, "quiet") == 0;
		if (!first_reported || quiet)
			kiln__err_print(&first_err);
		return kiln__exit_code(first_rc);
	}
	return KILN_EXIT_OK;
}
