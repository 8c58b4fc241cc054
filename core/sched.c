/* sched.c: `kiln build [TARGET|GROUP…]` with a kiln.lua: runs the plan's
 * jobs (target × platform, plan.h) on a pool of builders.
 *
 * A job starts when every job it depends on has succeeded, at most -j at a
 * time and at most a builder's max_jobs on that builder. A job goes to a
 * builder that lists its platform natively, else to any builder (QEMU
 * emulation on the engine's side), the least busy first. A builder that
 * cannot be reached is reported once and its jobs go elsewhere. Each
 * running job has its own thread and its own connection; they share one
 * event bus (thread-safe), so every progress line carries its job.
 *
 * --fail-fast (the default) cancels running solves and starts nothing more
 * after the first failure; --keep-going finishes what does not depend on a
 * failure and reports every failure. A summary table closes the run. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "arena.h"
#include "bus.h"
#include "cli.h"
#include "imageinfo.h"
#include "plan.h"
#include "publish.h"
#include "util.h"

#define DEFAULT_JOBS 16

struct builder {
	const char *name;
	struct kiln_connect_opts copts;
	const struct kiln_backend *be;
	const struct kiln_backend *pusher; /* pushes from its image store, or NULL */
	struct kiln_engine_choice *choice; /* which backend and why (heap) */
	enum kiln_addr_source src;         /* where its address came from */
	const struct kiln_plan_list *platforms; /* native; NULL: none declared */
	int max_jobs;   /* 0: no limit of its own */
	int running;
	int used;       /* jobs started on it */
	bool down;      /* unreachable (reported once) */
	char *why_down;
	int down_code;  /* the kiln_code that put it down at the start */
	char *owned[5]; /* addr and TLS paths made absolute */
};

enum job_state { J_WAITING, J_RUNNING, J_DONE, J_FAILED, J_CANCELLED, J_SKIPPED };

struct sched;

struct job {
	struct sched *s;
	const struct kiln_plan_job *pj;
	enum job_state state;
	struct builder *builder;
	pthread_t thread;
	bool finished;    /* the thread has ended; join it */
	/* set by the job's thread */
	void *conn;       /* while solving, under s->mu */
	const struct kiln_backend *be;
	int rc;
	bool unreachable; /* connect failed: try another builder */
	bool retried;     /* its builder was lost mid-solve once already */
	struct kiln_err err;
	struct kiln_job_metrics metrics;
	char *digest;
	char *image_id;    /* the engine's image ID (config digest), if any */
	char *failed_step; /* the first vertex that failed, from the bus */
	struct kiln_job kj;
};

/* A target whose images go to a registry: published once all its jobs
 * have succeeded (with --publish after-all: once every job has). */
enum pub_state { P_WAITING, P_RUNNING, P_DONE, P_FAILED, P_SKIPPED };

struct pub {
	struct sched *s;
	const struct kiln_plan_target *t;
	size_t *jobs;            /* indices of the target's jobs */
	size_t n_jobs;
	struct kiln_publish_dest dest; /* refs, by_digest_name, insecure */
	enum pub_state state;
	pthread_t thread;
	bool finished;
	int rc;
	struct kiln_err err;
	struct kiln_publish_out out;
};

struct sched {
	struct kiln_ctx *ctx;
	struct kiln_plan *plan;
	struct builder *builders;
	size_t n_builders;
	struct job *jobs;
	size_t n_jobs;
	int max_jobs;
	bool keep_going;
	bool no_cache, pull;
	bool push_all;    /* --push: every target's output is type=registry */
	bool after_all;   /* --publish after-all */
	struct pub *pubs; /* targets that push, in plan order */
	size_t n_pubs;
	int publishing;   /* publish threads running */
	struct kiln_bus *bus;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int running;
	bool stop;        /* after a failure (fail-fast) or a signal */
	int signo;
	/* the signal thread */
	pthread_t sig_thread;
	sigset_t sigs;
};

/* ---- signals ------------------------------------------------------------------------------ */

/* Under s->mu: ask every running solve to stop. */
static void cancel_running(struct sched *s)
{
	for (size_t i = 0; i < s->n_jobs; i++) {
		struct job *j = &s->jobs[i];
		if (j->state == J_RUNNING && j->conn && j->be->cancel)
			j->be->cancel(j->conn);
	}
}

static void *sig_main(void *arg)
{
	struct sched *s = arg;
	int sig = 0;
	if (sigwait(&s->sigs, &sig) != 0 || sig == SIGUSR1)
		return NULL; /* SIGUSR1: our own wake-up at the end */
	pthread_mutex_lock(&s->mu);
	s->signo = sig;
	s->stop = true;
	cancel_running(s);
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* ---- one job ------------------------------------------------------------------------------ */

static bool is_url(const char *s)
{
	return strstr(s, "://") != NULL || strncmp(s, "git@", 4) == 0;
}

/* path relative to dir (dir "." leaves it as it is). */
static char *join(struct kiln_arena *a, const char *dir, const char *path)
{
	if (path[0] == '/' || is_url(path) || strcmp(dir, ".") == 0)
		return kiln__arena_strdup(a, path);
	size_t n = strlen(dir) + strlen(path) + 2;
	char *p = kiln__arena_alloc(a, n);
	snprintf(p, n, "%s/%s", dir, path);
	return p;
}

/* "linux/arm/v7" -> "linux_arm_v7", buildx's directory for a platform. */
static char *platform_dir(struct kiln_arena *a, const char *platform)
{
	char *d = kiln__arena_strdup(a, platform);
	for (char *p = d; *p; p++)
		if (*p == '/')
			*p = '_';
	return d;
}

static int mkdir_p(const char *path)
{
	char *p = kiln__xstrdup(path);
	int rc = 0;
	for (char *c = p + 1; *c && rc == 0; c++) {
		if (*c != '/')
			continue;
		*c = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			rc = -1;
		*c = '/';
	}
	if (rc == 0 && mkdir(p, 0755) < 0 && errno != EEXIST)
		rc = -1;
	free(p);
	return rc;
}

/* The pub of target t, or NULL. */
static struct pub *pub_of(struct sched *s, const struct kiln_plan_target *t)
{
	for (size_t i = 0; i < s->n_pubs; i++)
		if (s->pubs[i].t == t)
			return &s->pubs[i];
	return NULL;
}

/*
 * The outputs of one platform's job. A target with several platforms runs
 * one solve per platform; a local export (type=local, or a bare path) then
 * goes to DEST/<os>_<arch>[_<variant>], where buildx puts each platform of
 * a multi-platform build. An output that pushes is kept in the engine
 * instead (the publish step pushes it once the target is built): an
 * image in dockerd's store, or, where the engine has no store to push
 * from, BuildKit's image exporter pushing by digest only.
 */
static int job_outputs(struct sched *s, struct kiln_arena *a, const struct kiln_plan_job *pj,
		       const struct builder *b, const char ***out, size_t *n_out,
		       struct kiln_err *err)
{
	const struct kiln_plan_target *t = pj->target;
	const char *dir = s->plan->dir;
	const char *const *outs = t->output.v;
	size_t n = t->output.n;
	static const char *const registry[] = { "type=registry" };
	if (s->push_all) { /* bake's --push: *.output=type=registry */
		outs = registry;
		n = 1;
	}
	const struct pub *pub = pub_of(s, t);
	const char **v = kiln__arena_alloc(a, (n + 1) * sizeof(*v));
	*n_out = n;
	for (size_t i = 0; i < n; i++) {
		const char *o = outs[i];
		bool csv = strchr(o, '=') != NULL;
		if (pub && kiln__output_pushes(o)) {
			char *w = kiln__publish_job_output(o, b->pusher != NULL, t->platforms.n,
							   pub->dest.by_digest_name);
			v[i] = kiln__arena_strdup(a, w);
			free(w);
			continue;
		}
		bool local = !csv || strstr(o, "type=local") != NULL;
		const char *dest = csv ? strstr(o, "dest=") : o;
		if (dest && csv && dest != o && dest[-1] != ',')
			dest = NULL;
		if (!local || !dest) {
			v[i] = o;
			continue;
		}
		const char *dval = csv ? dest + 5 : dest;
		size_t dlen = strcspn(dval, ",");
		char *d = kiln__arena_alloc(a, dlen + 1);
		memcpy(d, dval, dlen);
		const char *base = join(a, dir, d);
		if (t->platforms.n > 1 && pj->platform) {
			if (mkdir_p(base) < 0)
				return kiln__err(err, KILN_E_IO, "target \"%s\": cannot create output "
						 "directory '%s': %s", t->name, base, strerror(errno));
			size_t sn = strlen(base) + strlen(pj->platform) + 2;
			char *sub = kiln__arena_alloc(a, sn);
			snprintf(sub, sn, "%s/%s", base, platform_dir(a, pj->platform));
			base = sub;
		}
		/* the CSV with dest replaced */
		size_t pre = csv ? (size_t)(dval - o) : 0;
		const char *post = dval + dlen;
		size_t sn = pre + strlen(base) + strlen(post) + (csv ? 1 : 17);
		char *str = kiln__arena_alloc(a, sn);
		if (csv)
			snprintf(str, sn, "%.*s%s%s", (int)pre, o, base, post);
		else
			snprintf(str, sn, "type=local,dest=%s", base);
		v[i] = str;
	}
	*out = v;
	return 0;
}

/* Named contexts: "target:NAME" becomes the image the other target made,
 * by its first tag (it was built first). */
static int job_contexts(struct sched *s, struct kiln_arena *a, const struct kiln_plan_target *t,
			struct kiln_kv **out, struct kiln_err *err)
{
	struct kiln_kv *v = kiln__arena_alloc(a, (t->contexts.n + 1) * sizeof(*v));
	for (size_t i = 0; i < t->contexts.n; i++) {
		const char *name = t->contexts.v[i].key, *value = t->contexts.v[i].value;
		v[i].key = name;
		if (strncmp(value, "target:", 7) == 0) {
			const struct kiln_plan_target *dep = kiln__plan_target(s->plan, value + 7);
			if (!dep || dep->tags.n == 0)
				return kiln__err_at(err, KILN_E_INVALID, t->file, t->line, 0,
						    "target \"%s\": context '%s' comes from target \"%s\", "
						    "which has no tags to refer to its image by", t->name,
						    name, value + 7);
			size_t n = strlen(dep->tags.v[0]) + 16;
			char *ref = kiln__arena_alloc(a, n);
			snprintf(ref, n, "docker-image://%s", dep->tags.v[0]);
			v[i].value = ref;
		} else if (strstr(value, "://") || value[0] == '/') {
			v[i].value = value;
		} else {
			v[i].value = join(a, s->plan->dir, value);
		}
	}
	*out = v;
	return 0;
}

static void emit(struct sched *s, const struct kiln_job *kj, enum kiln_event_kind kind,
		 struct kiln_event *ev)
{
	ev->struct_size = sizeof(*ev);
	ev->kind = kind;
	ev->time_ns = kiln__now_ns();
	ev->job = kj;
	kiln__bus_emit(s->bus, ev);
}

/* Load, connect, solve. Returns 0 or a negative code with j->err;
 * *solved says whether job.started/finished were sent. */
static int job_run(struct job *j, struct kiln_arena *a, char **tmpdir, bool *solved)
{
	struct sched *s = j->s;
	const struct kiln_plan_job *pj = j->pj;
	const struct kiln_plan_target *t = pj->target;
	struct kiln_err *err = &j->err;
	*solved = false;

	struct kiln_build_opts o = { .struct_size = sizeof(o) };
	o.context = join(a, s->plan->dir, t->context);
	if (t->dockerfile_inline) {
		const char *tmp = getenv("TMPDIR");
		char *path = kiln__xasprintf("%s/kiln-inline.XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(path)) {
			int e = errno;
			free(path);
			return kiln__err(err, KILN_E_IO, "target \"%s\": cannot make a directory for "
					 "dockerfile_inline: %s", t->name, strerror(e));
		}
		*tmpdir = path;
		size_t n = strlen(path) + 12;
		char *file = kiln__arena_alloc(a, n);
		snprintf(file, n, "%s/Dockerfile", path);
		FILE *f = fopen(file, "w");
		bool ok = f && fputs(t->dockerfile_inline, f) >= 0;
		if (f && fclose(f) != 0)
			ok = false;
		if (!ok)
			return kiln__err(err, KILN_E_IO, "target \"%s\": cannot write "
					 "dockerfile_inline to %s", t->name, file);
		o.dockerfile = file;
	} else {
		o.dockerfile = is_url(o.context) ? t->dockerfile : join(a, o.context, t->dockerfile);
	}
	o.target = t->target;
	o.platform = pj->platform;
	o.build_args = t->args.v;
	o.n_build_args = t->args.n;
	o.labels = t->labels.v;
	o.n_labels = t->labels.n;
	o.tags = t->tags.v;
	o.n_tags = t->tags.n;
	if (pub_of(s, t) && !j->builder->pusher && t->platforms.n > 1) {
		/* BuildKit's exporter pushes by digest only, refusing a tag;
		 * the index the publish step writes carries the tags. */
		o.tags = NULL;
		o.n_tags = 0;
	}
	o.cache_from = t->cache_from.v;
	o.n_cache_from = t->cache_from.n;
	o.cache_to = t->cache_to.v;
	o.n_cache_to = t->cache_to.n;
	o.secrets = t->secrets.v;
	o.n_secrets = t->secrets.n;
	o.ssh = t->ssh.v;
	o.n_ssh = t->ssh.n;
	o.network = t->network;
	o.no_cache = t->no_cache || s->no_cache;
	o.pull = t->pull || s->pull;
	const char **outputs = NULL;
	size_t n_outputs = 0;
	int rc = job_outputs(s, a, pj, j->builder, &outputs, &n_outputs, err);
	if (rc < 0)
		return rc;
	o.outputs = outputs;
	o.n_outputs = n_outputs;
	struct kiln_kv *contexts = NULL;
	if ((rc = job_contexts(s, a, t, &contexts, err)) < 0)
		return rc;
	o.build_contexts = contexts;
	o.n_build_contexts = t->contexts.n;

	const struct kiln_frontend *fe;
	if (t->frontend) {
		const struct kiln_reg_entry *e =
			kiln__registry_want(&s->ctx->reg, KILN_KIND_FRONTEND, t->frontend);
		fe = e ? e->vt : NULL;
		if (!fe)
			return kiln__err_at(err, KILN_E_NOTFOUND, t->file, t->line, 0,
					    "target \"%s\": no frontend plugin named '%s' (see 'kiln "
					    "plugins')", t->name, t->frontend);
	} else {
		fe = kiln__pick_frontend(s->ctx, o.dockerfile);
		if (!fe)
			return kiln__err(err, KILN_E_NOTFOUND, "target \"%s\": no frontend plugin "
					 "reads '%s' (see 'kiln plugins')", t->name, o.dockerfile);
	}
	struct kiln_build_def def = { .struct_size = sizeof(def) };
	if ((rc = fe->load(&kiln__host, a, &o, &def, err)) < 0)
		return rc;
	/* A frontend that does not hand named contexts on would build
	 * without them; refuse instead. */
	for (size_t i = 0; i < o.n_build_contexts; i++) {
		bool passed = false;
		for (size_t k = 0; k < def.n_frontend_attrs && !passed; k++)
			passed = strncmp(def.frontend_attrs[k].key, "context:", 8) == 0 &&
				 strcmp(def.frontend_attrs[k].key + 8, o.build_contexts[i].key) == 0;
		if (!passed)
			return kiln__err_at(err, KILN_E_UNSUPPORTED, t->file, t->line, 0,
					    "target \"%s\": named context '%s' cannot be passed: the "
					    "'%s' frontend does not support named contexts", t->name,
					    o.build_contexts[i].key, fe->name);
	}

	struct builder *b = j->builder;
	void *conn = NULL;
	if ((rc = kiln__backend_connect(b->be, &b->copts, &conn, err)) < 0) {
		j->unreachable = rc == KILN_E_CONNECT;
		return rc;
	}
	pthread_mutex_lock(&s->mu);
	j->conn = conn;
	j->be = b->be;
	bool stop = s->stop;
	pthread_mutex_unlock(&s->mu);
	if (stop && b->be->cancel)
		b->be->cancel(conn);

	j->kj = (struct kiln_job){
		.id = pj->id, .target = t->name, .platform = pj->platform ? pj->platform : "",
		.builder = b->name, .number = (int)(pj - s->plan->jobs) + 1,
	};
	struct kiln_event ev = { 0 };
	ev.u.job_started.frontend = fe->name;
	ev.u.job_started.backend = b->be->name;
	ev.u.job_started.backend_reason = b->choice ? b->choice->why : NULL;
	ev.u.job_started.steps = def.steps;
	ev.u.job_started.jobs = (int)s->n_jobs;
	emit(s, &j->kj, KILN_EVENT_JOB_STARTED, &ev);
	*solved = true;

	struct kiln_solve_result res = { .struct_size = sizeof(res) };
	struct kiln_solve req = {
		.struct_size = sizeof(req), .job = &j->kj, .opts = &o,
		.def = &def, .arena = a, .bus = s->bus,
	};
	rc = b->be->solve(conn, &req, &res, err);
	pthread_mutex_lock(&s->mu);
	j->conn = NULL;
	pthread_mutex_unlock(&s->mu);
	b->be->disconnect(conn);
	if (rc == 0) /* the frontend's post-export step (melange: .apk files) */
		rc = kiln__frontend_package(fe, a, &o, &def, err);

	memset(&ev, 0, sizeof(ev));
	ev.u.job_finished.status = rc;
	ev.u.job_finished.error = rc ? err->msg : NULL;
	ev.u.job_finished.image_digest = res.image_digest;
	ev.u.job_finished.config_digest = res.config_digest;
	if (rc == 0)
		kiln__image_info_fill(b->be->name, b->copts.addr, &ev.u.job_finished);
	emit(s, &j->kj, KILN_EVENT_JOB_FINISHED, &ev);
	j->metrics = kiln__bus_metrics(s->bus, pj->id);
	if (rc == 0 && res.image_digest)
		j->digest = kiln__xstrdup(res.image_digest);
	if (rc == 0 && res.config_digest)
		j->image_id = kiln__xstrdup(res.config_digest);
	return rc;
}

static void remove_tree(const char *dir)
{
	char *f = kiln__xasprintf("%s/Dockerfile", dir);
	unlink(f);
	free(f);
	rmdir(dir);
}

static void *job_main(void *arg)
{
	struct job *j = arg;
	struct sched *s = j->s;
	struct kiln_arena *a = kiln__arena_new();
	char *tmpdir = NULL;
	bool solved = false;
	int64_t t0 = kiln__mono_ns();
	memset(&j->err, 0, sizeof(j->err));
	int rc = job_run(j, a, &tmpdir, &solved);
	if (!solved)
		j->metrics.duration_ns = kiln__mono_ns() - t0;
	if (tmpdir) {
		remove_tree(tmpdir);
		free(tmpdir);
	}
	kiln__arena_free(a);
	pthread_mutex_lock(&s->mu);
	j->rc = rc;
	j->finished = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* A bus sink: remember each job's first failed step, for the list of
 * failures at the end. Deliveries are serialised by the bus. */
static void step_sink(void *ctx, const struct kiln_event *ev)
{
	struct sched *s = ctx;
	if (ev->kind != KILN_EVENT_VERTEX || !ev->u.vertex.error || !ev->u.vertex.name)
		return;
	for (size_t i = 0; i < s->n_jobs; i++) {
		struct job *j = &s->jobs[i];
		if (strcmp(j->pj->id, ev->job->id) == 0) {
			if (!j->failed_step)
				j->failed_step = kiln__xstrdup(ev->u.vertex.name);
			return;
		}
	}
}

/* ---- publishing ---------------------------------------------------------------------------- */

static void *pub_main(void *arg)
{
	struct pub *p = arg;
	struct sched *s = p->s;
	struct kiln_publish_image *im = kiln__xcalloc(p->n_jobs + 1, sizeof(*im));
	/* The machine's own platform last: between the pushes and the index,
	 * the tag (and dockerd's local tag) points at the last one. */
	size_t k = 0;
	for (int pass = 0; pass < 2; pass++)
		for (size_t rank = 0; rank < p->n_jobs; rank++) {
			const struct job *j = &s->jobs[p->jobs[rank]];
			const char *pl = j->pj->platform;
			if (kiln__platform_is_native(pl) != (pass == 1))
				continue;
			im[k++] = (struct kiln_publish_image){
				.platform = pl, .pusher = j->builder->pusher,
				.copts = &j->builder->copts, .image = j->image_id,
				.digest = j->digest, .rank = rank,
			};
		}
	struct kiln_publish_req req = {
		.target = p->t->name, .refs = (const char *const *)p->dest.refs.v,
		.n_refs = p->dest.refs.n, .insecure = p->dest.insecure,
		.index = p->t->platforms.n > 1, .images = im, .n_images = k,
	};
	bool done_by_exporter = p->t->platforms.n <= 1 && k == 1 && !im[0].pusher;
	int rc = done_by_exporter ? 0 : kiln__publish(&req, &p->out, &p->err);
	free(im);
	pthread_mutex_lock(&s->mu);
	p->rc = rc;
	p->finished = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* Under s->mu: start, skip or reap publish steps. Returns true while one
 * may still start. */
static bool pubs_step(struct sched *s)
{
	bool pending = false, all_done = true, any_lost = false;
	for (size_t i = 0; i < s->n_jobs; i++) {
		enum job_state st = s->jobs[i].state;
		all_done = all_done && st == J_DONE;
		any_lost = any_lost || st == J_FAILED || st == J_CANCELLED || st == J_SKIPPED;
	}
	for (size_t i = 0; i < s->n_pubs; i++) {
		struct pub *p = &s->pubs[i];
		if (p->finished) {
			pthread_join(p->thread, NULL);
			p->finished = false;
			s->publishing--;
			p->state = p->rc == 0 ? P_DONE : P_FAILED;
			if (p->rc < 0 && !s->keep_going && !s->stop) {
				s->stop = true;
				cancel_running(s);
			}
		}
		if (p->state != P_WAITING)
			continue;
		bool ready = true, blocked = false;
		for (size_t k = 0; k < p->n_jobs; k++) {
			const struct job *j = &s->jobs[p->jobs[k]];
			if (j->state == J_FAILED || j->state == J_CANCELLED || j->state == J_SKIPPED)
				blocked = true;
			else if (j->state != J_DONE)
				ready = false;
		}
		if (blocked || (s->after_all && any_lost)) {
			p->state = P_SKIPPED;
			continue;
		}
		if (s->after_all && !all_done)
			ready = false;
		if (!ready || s->stop) {
			pending = pending || !s->stop;
			continue;
		}
		p->state = P_RUNNING;
		s->publishing++;
		if (pthread_create(&p->thread, NULL, pub_main, p) != 0) {
			s->publishing--;
			p->state = P_FAILED;
			p->rc = kiln__err(&p->err, KILN_E_NOMEM, "cannot start a thread to publish");
		}
	}
	return pending;
}

/* The targets that push (an output of type=registry or push=true, or
 * --push) and where to. Returns 0 or a usage exit code. */
static int setup_pubs(struct sched *s)
{
	const struct kiln_plan *plan = s->plan;
	s->pubs = kiln__xcalloc(plan->n_selected + 1, sizeof(*s->pubs));
	for (size_t i = 0; i < plan->n_selected; i++) {
		const struct kiln_plan_target *t = plan->selected[i];
		struct pub p = { .s = s, .t = t };
		int rc = kiln__publish_dest((const char *const *)t->output.v, t->output.n,
					    (const char *const *)t->tags.v, t->tags.n, s->push_all,
					    &p.dest);
		if (rc == 0)
			continue;
		if (rc < 0) {
			fprintf(stderr, "kiln: %s:%d: target \"%s\" pushes but has no tags and no "
				"name= in its output\n", t->file, t->line, t->name);
			return KILN_EXIT_USAGE;
		}
		s->pubs[s->n_pubs++] = p;
	}
	return 0;
}

/* ---- the scheduler ------------------------------------------------------------------------ */

/* The length of platform p without a default variant: containerd's
 * normalisation makes linux/arm64 and linux/arm64/v8 (and linux/amd64
 * and linux/amd64/v1) the same platform. */
static size_t platform_key_len(const char *p)
{
	size_t n = strlen(p);
	static const char *const defaults[] = { "/arm64/v8", "/amd64/v1" };
	for (size_t i = 0; i < 2; i++) {
		size_t dn = strlen(defaults[i]);
		if (n > dn && strcmp(p + n - dn, defaults[i]) == 0)
			return n - 3;
	}
	return n;
}

static bool lists(const struct kiln_plan_list *l, const char *platform)
{
	size_t pn = platform_key_len(platform);
	for (size_t i = 0; l && i < l->n; i++)
		if (platform_key_len(l->v[i]) == pn && strncmp(l->v[i], platform, pn) == 0)
			return true;
	return false;
}

/* Under s->mu: the builder for job j: native for its platform if any
 * builder lists it, else any; the least busy with room. NULL with *none
 * false: all are busy (wait); with *none true: no builder is reachable. */
static struct builder *route(struct sched *s, const struct job *j, bool *none)
{
	const char *p = j->pj->platform;
	bool native = false;
	*none = true;
	for (size_t i = 0; i < s->n_builders; i++) {
		if (s->builders[i].down)
			continue;
		*none = false;
		if (p && lists(s->builders[i].platforms, p))
			native = true;
	}
	struct builder *best = NULL;
	for (size_t i = 0; i < s->n_builders; i++) {
		struct builder *b = &s->builders[i];
		if (b->down || (native && !lists(b->platforms, p)))
			continue;
		if (b->max_jobs && b->running >= b->max_jobs)
			continue;
		if (!best || b->running < best->running)
			best = b;
	}
	return best;
}

/* Under s->mu: whether any builder is still up. */
static bool others_up(const struct sched *s)
{
	for (size_t i = 0; i < s->n_builders; i++)
		if (!s->builders[i].down)
			return true;
	return false;
}

/* Under s->mu: a finished thread's outcome. */
static void reap(struct sched *s, struct job *j)
{
	pthread_join(j->thread, NULL);
	j->finished = false;
	s->running--;
	j->builder->running--;
	if (j->rc < 0 && j->unreachable) {
		struct builder *b = j->builder;
		if (!b->down) {
			b->down = true;
			b->why_down = kiln__xstrdup(j->err.msg);
			if (s->n_builders > 1) /* alone, its jobs' failure says it */
				kiln__log(KILN_LOG_WARN, "builder \"%s\" is unreachable: %s; its jobs "
					  "go to other builders", b->name, j->err.msg);
		}
		j->state = J_WAITING; /* again, elsewhere */
		j->unreachable = false;
		return;
	}
	if (j->rc == KILN_E_ENGINE_LOST && !j->builder->down) {
		j->builder->down = true;
		j->builder->why_down = kiln__xstrdup(j->err.msg);
	}
	if (j->rc == KILN_E_ENGINE_LOST && !j->retried && !s->stop && others_up(s)) {
		/* The builder died under the solve: once, the job runs again
		 * on another builder (route() skips the lost one). */
		struct builder *b = j->builder;
		kiln__log(KILN_LOG_WARN, "builder \"%s\" was lost during %s: %s; retrying the "
			  "job once on another builder", b->name, j->pj->id, j->err.msg);
		j->retried = true;
		j->state = J_WAITING;
		return;
	}
	if (j->rc == 0) {
		j->state = J_DONE;
	} else if (j->rc == KILN_E_CANCELLED && s->stop) {
		j->state = J_CANCELLED;
	} else {
		j->state = J_FAILED;
		if (!s->keep_going && !s->stop) {
			s->stop = true;
			cancel_running(s);
		}
	}
}

/* Under s->mu: fail job j before it runs. */
static void fail_now(struct sched *s, struct job *j, int code, const char *fmt, ...)
	KILN_PRINTF(4, 5);
static void fail_now(struct sched *s, struct job *j, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kiln__verr_at(&j->err, code, NULL, 0, 0, fmt, ap);
	va_end(ap);
	j->rc = code;
	j->state = J_FAILED;
	if (!s->keep_going && !s->stop) {
		s->stop = true;
		cancel_running(s);
	}
}

static void run_all(struct sched *s)
{
	pthread_mutex_lock(&s->mu);
	for (;;) {
		for (size_t i = 0; i < s->n_jobs; i++)
			if (s->jobs[i].finished)
				reap(s, &s->jobs[i]);
		bool waiting = false;
		for (size_t i = 0; i < s->n_jobs && !s->stop; i++) {
			struct job *j = &s->jobs[i];
			if (j->state != J_WAITING)
				continue;
			bool ready = true, blocked = false;
			for (size_t d = 0; d < j->pj->n_deps; d++) {
				enum job_state ds = s->jobs[j->pj->deps[d]].state;
				if (ds == J_FAILED || ds == J_CANCELLED || ds == J_SKIPPED)
					blocked = true;
				else if (ds != J_DONE)
					ready = false;
			}
			if (blocked) {
				j->state = J_SKIPPED;
				continue;
			}
			waiting = true;
			if (!ready || s->running >= s->max_jobs)
				continue;
			bool none;
			struct builder *b = route(s, j, &none);
			if (none) {
				struct kiln_sb why = KILN_SB_INIT;
				for (size_t k = 0; k < s->n_builders; k++)
					kiln__sb_addf(&why, "%s%s: %s", k ? "; " : "",
						      s->builders[k].name, s->builders[k].why_down);
				fail_now(s, j, KILN_E_CONNECT, "no reachable builder for %s (%s)",
					 j->pj->platform ? j->pj->platform : "the job",
					 kiln__sb_str(&why));
				kiln__sb_release(&why);
				continue;
			}
			if (!b)
				continue;
			j->builder = b;
			j->state = J_RUNNING;
			b->running++;
			b->used++;
			s->running++;
			if (pthread_create(&j->thread, NULL, job_main, j) != 0) {
				b->running--;
				s->running--;
				fail_now(s, j, KILN_E_NOMEM, "cannot start a thread for the job");
			}
		}
		if (pubs_step(s))
			waiting = true;
		if (s->running == 0 && s->publishing == 0 && (s->stop || !waiting))
			break;
		pthread_cond_wait(&s->cv, &s->mu);
	}
	for (size_t i = 0; i < s->n_pubs; i++)
		if (s->pubs[i].state == P_WAITING)
			s->pubs[i].state = P_SKIPPED;
	/* What never started. */
	for (size_t i = 0; i < s->n_jobs; i++)
		if (s->jobs[i].state == J_WAITING)
			s->jobs[i].state = s->stop ? J_CANCELLED : J_SKIPPED;
	pthread_mutex_unlock(&s->mu);
}

/* ---- the summary -------------------------------------------------------------------------- */

static const char *state_name(enum job_state st)
{
	switch (st) {
	case J_DONE: return "done";
	case J_FAILED: return "failed";
	case J_CANCELLED: return "cancelled";
	case J_SKIPPED: return "skipped";
	default: return "?";
	}
}

/* The table: TARGET PLATFORM BUILDER STATUS DURATION CACHED DIGEST. */
static void print_summary(struct sched *s, FILE *f)
{
	static const char *const head[7] = { "TARGET", "PLATFORM", "BUILDER", "STATUS",
					     "DURATION", "CACHED", "DIGEST" };
	int w[7];
	for (int c = 0; c < 7; c++)
		w[c] = (int)strlen(head[c]);
	char *cell[7];
	struct kiln_sb sb = KILN_SB_INIT;
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			kiln__sb_addf(&sb, "\n");
			for (int c = 0; c < 7; c++)
				kiln__sb_addf(&sb, "%-*s%s", c < 6 ? w[c] : 0, head[c],
					      c < 6 ? "  " : "\n");
		}
		for (size_t i = 0; i < s->n_jobs; i++) {
			const struct job *j = &s->jobs[i];
			bool ran = j->state == J_DONE || j->state == J_FAILED ||
				   (j->state == J_CANCELLED && j->metrics.duration_ns);
			cell[0] = kiln__xstrdup(j->pj->target->name);
			cell[1] = kiln__xstrdup(j->pj->platform ? j->pj->platform : "-");
			cell[2] = kiln__xstrdup(j->builder ? j->builder->name : "-");
			cell[3] = kiln__xstrdup(state_name(j->state));
			cell[4] = ran ? kiln__xasprintf("%.1fs", (double)j->metrics.duration_ns / 1e9)
				      : kiln__xstrdup("-");
			cell[5] = ran && j->metrics.vertices
					  ? kiln__xasprintf("%u/%u", j->metrics.cached, j->metrics.vertices)
					  : kiln__xstrdup("-");
			cell[6] = kiln__xstrdup(j->digest ? j->digest : "-");
			for (int c = 0; c < 7; c++) {
				if (pass == 0 && (int)strlen(cell[c]) > w[c])
					w[c] = (int)strlen(cell[c]);
				if (pass == 1)
					kiln__sb_addf(&sb, "%-*s%s", c < 6 ? w[c] : 0, cell[c],
						      c < 6 ? "  " : "\n");
				free(cell[c]);
			}
		}
	}
	/* What went to registries, and what was held back. */
	size_t pushed = 0, held = 0;
	for (size_t i = 0; i < s->n_pubs; i++) {
		pushed += s->pubs[i].out.n_lines;
		held += s->pubs[i].state == P_SKIPPED;
	}
	if (pushed)
		kiln__sb_addf(&sb, "\npushed:\n");
	for (size_t i = 0; i < s->n_pubs; i++)
		for (size_t k = 0; k < s->pubs[i].out.n_lines; k++)
			kiln__sb_addf(&sb, "  %s\n", s->pubs[i].out.lines[k]);
	if (held)
		kiln__sb_addf(&sb, "\nnot pushed (%s): ", s->after_all ? "--publish after-all, and "
			      "a job did not succeed" : "their jobs did not all succeed");
	for (size_t i = 0, k = 0; i < s->n_pubs; i++)
		if (s->pubs[i].state == P_SKIPPED)
			kiln__sb_addf(&sb, "%s%s", k++ ? ", " : "", s->pubs[i].t->name);
	if (held)
		kiln__sb_addf(&sb, "\n");
	/* Every failure, with its message (the renderer showed the step). */
	size_t failed = 0;
	for (size_t i = 0; i < s->n_jobs; i++)
		failed += s->jobs[i].state == J_FAILED;
	if (failed)
		kiln__sb_addf(&sb, "\n%zu of %zu job%s failed:\n", failed, s->n_jobs,
			      s->n_jobs == 1 ? "" : "s");
	for (size_t i = 0; i < s->n_jobs; i++) {
		const struct job *j = &s->jobs[i];
		if (j->state != J_FAILED)
			continue;
		kiln__sb_addf(&sb, "  %s: ", j->pj->id);
		if (j->failed_step)
			kiln__sb_addf(&sb, "%s: ", j->failed_step);
		if (j->err.file[0] && j->err.line)
			kiln__sb_addf(&sb, "%s:%d: ", j->err.file, j->err.line);
		kiln__sb_addf(&sb, "%s\n", j->err.msg[0] ? j->err.msg : kiln__strerror(j->rc));
	}
	for (size_t i = 0; i < s->n_pubs; i++)
		if (s->pubs[i].state == P_FAILED)
			kiln__sb_addf(&sb, "%spublish %s: %s\n", failed ? "  " : "\n",
				      s->pubs[i].t->name, s->pubs[i].err.msg);
	fwrite(sb.buf, 1, sb.len, f);
	fflush(f);
	kiln__sb_release(&sb);
}

/* ---- the command -------------------------------------------------------------------------- */

enum {
	OPT_JOBS = 0x400, OPT_FAIL_FAST, OPT_KEEP_GOING, OPT_PROGRESS, OPT_NO_EMOJI,
	OPT_ADDR, OPT_NO_CACHE, OPT_PULL, OPT_PUSH, OPT_PUBLISH, OPT_BACKEND,
};

struct build_plan_cli {
	struct kiln_plan_cli plan;
	struct kiln_tls_cli tls;
	struct kiln_progress_opts progress;
	const char *addr;
	const char *backend; /* --backend */
	int jobs;
	int fail_mode; /* 0 unset, 1 fail-fast, 2 keep-going */
	bool no_cache, pull, push, after_all;
};

static int parse_args(struct build_plan_cli *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "set", required_argument, NULL, KILN_OPT_SET },
		{ "var", required_argument, NULL, KILN_OPT_VAR },
		{ "jobs", required_argument, NULL, 'j' },
		{ "fail-fast", no_argument, NULL, OPT_FAIL_FAST },
		{ "keep-going", no_argument, NULL, OPT_KEEP_GOING },
		{ "progress", required_argument, NULL, OPT_PROGRESS },
		{ "no-emoji", no_argument, NULL, OPT_NO_EMOJI },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "addr", required_argument, NULL, OPT_ADDR },
		{ "backend", required_argument, NULL, OPT_BACKEND },
		{ "no-cache", no_argument, NULL, OPT_NO_CACHE },
		{ "pull", no_argument, NULL, OPT_PULL },
		{ "push", no_argument, NULL, OPT_PUSH },
		{ "publish", required_argument, NULL, OPT_PUBLISH },
		KILN_TLS_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	int o, rc;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":f:j:vq", longopts, NULL)) != -1) {
		if (kiln__tls_cli_take(&c->tls, o, optarg))
			continue;
		if ((rc = kiln__plan_cli_take(&c->plan, "build", o, optarg)) == 1)
			continue;
		if (rc)
			return rc;
		switch (o) {
		case 'j': {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end || n < 1 || n > 1024)
				return kiln__usage_error("build", "-j expects a number from 1 to 1024, "
							 "not '%s'", optarg);
			c->jobs = (int)n;
			break;
		}
		case OPT_FAIL_FAST:
		case OPT_KEEP_GOING: {
			int mode = o == OPT_FAIL_FAST ? 1 : 2;
			if (c->fail_mode && c->fail_mode != mode)
				return kiln__usage_error("build", "--fail-fast and --keep-going "
							 "exclude each other");
			c->fail_mode = mode;
			break;
		}
		case OPT_PROGRESS: c->progress.mode = optarg; break;
		case OPT_NO_EMOJI: c->progress.no_emoji = true; break;
		case 'v': c->progress.verbose = true; break;
		case 'q': c->progress.mode = "quiet"; break;
		case OPT_ADDR: c->addr = optarg; break;
		case OPT_BACKEND: c->backend = optarg; break;
		case OPT_NO_CACHE: c->no_cache = true; break;
		case OPT_PULL: c->pull = true; break;
		case OPT_PUSH: c->push = true; break;
		case OPT_PUBLISH:
			if (strcmp(optarg, "after-all") == 0)
				c->after_all = true;
			else if (strcmp(optarg, "per-target") == 0)
				c->after_all = false;
			else
				return kiln__usage_error("build", "--publish takes 'per-target' (the "
							 "default) or 'after-all', not '%s'", optarg);
			break;
		case ':':
			return kiln__usage_error("build", "option '%s' needs a value",
						 argv[optind - 1]);
		default:
			return kiln__usage_error("build", "option '%s' is not for builds from a "
						 "script (set target fields in %s, or with --set)",
						 argv[optind - 1], c->plan.file ? c->plan.file
										 : "kiln.lua");
		}
	}
	return 0;
}

/* A path of a builder declaration relative to the script's directory. */
static const char *builder_path(struct builder *b, int slot, const char *dir, const char *p)
{
	if (!p || p[0] == '/' || strcmp(dir, ".") == 0)
		return p;
	b->owned[slot] = kiln__xasprintf("%s/%s", dir, p);
	return b->owned[slot];
}

/* The builders: those the script declares, else one for --addr (or the
 * default engine) with the TLS flags. Returns 0 or an exit code. */
static int setup_builders(struct sched *s, struct build_plan_cli *c)
{
	struct kiln_plan *plan = s->plan;
	if (plan->n_builders && (c->addr || c->tls.ca_cert || c->tls.cert || c->tls.key ||
				 c->tls.server_name || c->tls.dir))
		return kiln__usage_error("build", "--addr and the TLS flags are for builds without "
					 "builders; %s declares %zu", plan->file, plan->n_builders);
	s->n_builders = plan->n_builders ? plan->n_builders : 1;
	s->builders = kiln__xcalloc(s->n_builders, sizeof(*s->builders));
	if (!plan->n_builders) {
		struct builder *b = &s->builders[0];
		const char *addr = kiln__engine_addr_from(c->addr, &b->src);
		struct kiln_err err = { 0 };
		if (kiln__tls_cli_resolve(&c->tls, addr, &b->copts, &err) < 0)
			return kiln__usage_error("build", "%s", err.msg);
		b->name = "default";
	}
	for (size_t i = 0; i < plan->n_builders; i++) {
		const struct kiln_plan_builder *pb = plan->builders[i];
		struct builder *b = &s->builders[i];
		b->name = pb->name;
		b->platforms = &pb->platforms;
		b->max_jobs = pb->max_jobs;
		b->src = KILN_ADDR_BUILDER;
		b->copts = (struct kiln_connect_opts){
			.struct_size = sizeof(b->copts),
			.addr = pb->addr ? pb->addr : kiln__engine_addr(NULL),
			.tls_ca_cert = builder_path(b, 0, plan->dir, pb->tls_ca_cert),
			.tls_cert = builder_path(b, 1, plan->dir, pb->tls_cert),
			.tls_key = builder_path(b, 2, plan->dir, pb->tls_key),
			.tls_server_name = pb->tls_server_name,
		};
		if ((b->copts.tls_cert != NULL) != (b->copts.tls_key != NULL)) {
			fprintf(stderr, "kiln: %s:%d: builder \"%s\": tls needs both cert and key\n",
				pb->file, pb->line, pb->name);
			return KILN_EXIT_USAGE;
		}
	}
	for (size_t i = 0; i < s->n_builders; i++) {
		struct builder *b = &s->builders[i];
		struct kiln_err err = { 0 };
		b->choice = kiln__xcalloc(1, sizeof(*b->choice));
		if (kiln__engine_choose_at(s->ctx, b->copts.addr, b->src, c->backend,
					   KILN_NEED_SOLVE, s->n_pubs > 0, b->choice, &err) == 0) {
			b->be = b->choice->backend;
			b->pusher = b->choice->pusher;
			b->copts.addr = b->choice->addr;
		} else {
			b->down = true;
			b->down_code = err.code;
			b->why_down = kiln__xstrdup(err.msg);
			if (s->n_builders > 1)
				kiln__log(KILN_LOG_WARN, "builder \"%s\": %s", b->name, b->why_down);
		}
	}
	if (s->n_builders == 1 && s->builders[0].down) {
		fprintf(stderr, "kiln: %s\n", s->builders[0].why_down);
		return s->builders[0].down_code == KILN_E_CONNECT ? KILN_EXIT_ENGINE
								  : KILN_EXIT_USAGE;
	}
	return 0;
}

static void sched_release(struct sched *s)
{
	for (size_t i = 0; i < s->n_builders; i++) {
		free(s->builders[i].why_down);
		free(s->builders[i].choice);
		for (int k = 0; k < 5; k++)
			free(s->builders[i].owned[k]);
	}
	free(s->builders);
	for (size_t i = 0; i < s->n_pubs; i++) {
		kiln__publish_dest_release(&s->pubs[i].dest);
		free(s->pubs[i].jobs);
		kiln__publish_out_release(&s->pubs[i].out);
	}
	free(s->pubs);
	for (size_t i = 0; i < s->n_jobs; i++) {
		free(s->jobs[i].image_id);
		free(s->jobs[i].digest);
		free(s->jobs[i].failed_step);
	}
	free(s->jobs);
}

int kiln__cmd_build_plan(struct kiln_ctx *ctx, int argc, char **argv)
{
	struct build_plan_cli c = { .jobs = DEFAULT_JOBS };
	c.progress.fd = 2;
	struct kiln_plan plan = { 0 };
	struct sched s = { .ctx = ctx, .plan = &plan };
	/* Jobs look plugins up from several threads: load every kind now,
	 * before any starts (the registry is not locked). */
	kiln__registry_load_kinds(&ctx->reg, KILN_KINDS_ALL);
	int rc = parse_args(&c, argc, argv);
	if (rc == 0)
		rc = kiln__plan_cli_open(&c.plan, &plan, (const char *const *)argv + optind,
					 (size_t)(argc - optind));
	s.push_all = c.push;
	s.after_all = c.after_all;
	if (rc == 0)
		rc = setup_pubs(&s); /* first: builders ping for a store when it pushes */
	if (rc == 0)
		rc = setup_builders(&s, &c);
	if (rc == 0) {
		/* Build records (kiln history; the tty's ETA) keyed by the
		 * script; each job's record is named after its target. */
		struct kiln_err err = { 0 };
		char *script = realpath(plan.file ? plan.file : "kiln.lua", NULL);
		char *key = kiln__xasprintf("%s", script ? script : plan.file ? plan.file : "kiln.lua");
		c.progress.record_key = key;
		c.progress.record_context = plan.dir;
		c.progress.record_file = key;
		if (kiln__progress_open(ctx, &c.progress, &s.bus, &err) < 0) {
			kiln__err_print(&err);
			rc = kiln__exit_code(err.code);
		}
		c.progress.record_key = c.progress.record_context = c.progress.record_file = NULL;
		free(key);
		free(script);
	}
	if (rc) {
		sched_release(&s);
		kiln__plan_release(&plan);
		kiln__plan_cli_release(&c.plan);
		kiln__tls_cli_release(&c.tls);
		return rc;
	}

	s.max_jobs = c.jobs;
	s.keep_going = c.fail_mode == 2;
	s.no_cache = c.no_cache;
	s.pull = c.pull;
	s.n_jobs = plan.n_jobs;
	s.jobs = kiln__xcalloc(s.n_jobs + 1, sizeof(*s.jobs));
	for (size_t i = 0; i < s.n_jobs; i++) {
		s.jobs[i] = (struct job){ .s = &s, .pj = &plan.jobs[i] };
		struct pub *p = pub_of(&s, plan.jobs[i].target);
		if (p) {
			p->jobs = kiln__xrealloc(p->jobs, (p->n_jobs + 1) * sizeof(*p->jobs));
			p->jobs[p->n_jobs++] = i;
		}
	}
	kiln__bus_add_sink(s.bus, step_sink, &s);
	pthread_mutex_init(&s.mu, NULL);
	pthread_cond_init(&s.cv, NULL);
	/* Signals go to one thread, which cancels the running solves; every
	 * other thread (the jobs') starts with them blocked. */
	sigemptyset(&s.sigs);
	sigaddset(&s.sigs, SIGINT);
	sigaddset(&s.sigs, SIGTERM);
	sigaddset(&s.sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &s.sigs, NULL);
	pthread_create(&s.sig_thread, NULL, sig_main, &s);

	run_all(&s);

	pthread_kill(s.sig_thread, SIGUSR1);
	pthread_join(s.sig_thread, NULL);
	pthread_sigmask(SIG_UNBLOCK, &s.sigs, NULL);
	kiln__bus_close(s.bus, NULL);
	kiln__bus_free(s.bus);

	bool quiet = c.progress.mode && strcmp(c.progress.mode, "quiet") == 0;
	bool json = c.progress.mode && (strcmp(c.progress.mode, "json") == 0 ||
					strcmp(c.progress.mode, "rawjson") == 0);
	if (!quiet && !json)
		print_summary(&s, stderr);
	int first = 0;
	for (size_t i = 0; i < s.n_jobs && !first; i++)
		if (s.jobs[i].state == J_FAILED)
			first = s.jobs[i].rc;
	for (size_t i = 0; i < s.n_pubs && !first; i++)
		if (s.pubs[i].state == P_FAILED)
			first = s.pubs[i].rc;
	if (quiet || json) /* no summary: the failures, one line each */
		for (size_t i = 0; i < s.n_jobs; i++)
			if (s.jobs[i].state == J_FAILED)
				kiln__err_print(&s.jobs[i].err);
	if (quiet || json)
		for (size_t i = 0; i < s.n_pubs; i++)
			if (s.pubs[i].state == P_FAILED)
				kiln__err_print(&s.pubs[i].err);
	if (s.signo == SIGINT)
		rc = KILN_EXIT_SIGINT;
	else if (s.signo == SIGTERM)
		rc = KILN_EXIT_SIGTERM;
	else if (first)
		rc = c.fail_mode == 2 ? KILN_EXIT_FAILED : kiln__exit_code(first);
	pthread_cond_destroy(&s.cv);
	pthread_mutex_destroy(&s.mu);
	sched_release(&s);
	kiln__plan_release(&plan);
	kiln__plan_cli_release(&c.plan);
	kiln__tls_cli_release(&c.tls);
	return rc;
}
