/*
 * plain.c: the `--progress=plain` renderer, in BuildKit's plain style
 * (moby/buildkit util/progress/progressui/printer.go), one line per state
 * change:
 *
 *   #5 [build 2/5] RUN make            vertex header, on (re)entering it
 *   #5 0.215 hello                     log line: seconds since start, text
 *   #5 sha256:ab… 1.05MB / 4.20MB 0.3s vertex status (progress)
 *   #5 WARN: …                         warning of the vertex
 *   #5 DONE 1.2s | CACHED | ERROR: … | CANCELED
 *   #5 ...                             output switches to another vertex
 *
 * Differences from BuildKit, all for determinism: output is produced as
 * events arrive, never on a timer, and every time printed comes from event
 * timestamps, so replaying a recorded stream gives byte-identical output.
 * A vertex that merely starts while another vertex's block is open gets
 * its header when it first has something to show (BuildKit's anti-flicker
 * does the same, with wall-clock delays). Partial log lines are held until
 * their newline arrives or the vertex completes, so every printed line
 * carries its #N.
 *
 * Jobs: each job.started prints "#0 building with "B" instance using X
 * backend" (buildx's description line). Once the run has seen more than
 * one job, vertex names and #0 lines carry the job as a prefix, as buildx
 * bake does: "#3 [app linux/arm64 build 2/5] RUN make". At job.finished
 * the renderer prints, in BuildKit/buildx order, a framed block with the
 * last log lines of each failed vertex, a summary of the job's warnings,
 * and "ERROR: msg" when the job failed (or "#0 [job] DONE 3.2s" when it
 * succeeded in a run of several jobs). docs/events.md has the long form.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kiln/kiln.h>

#define NS_PER_SEC INT64_C(1000000000)
/* Last log lines kept per vertex for the error block (BuildKit: 10). */
#define RING_LINES 10
/* A partial line longer than this is printed without waiting for '\n'. */
#define PARTIAL_MAX (64 * 1024)
/* Status throttle (BuildKit's minProgressDelta / minTimeDelta). */
#define MIN_PROGRESS_DELTA 0.05
#define MIN_TIME_DELTA_NS (5 * NS_PER_SEC)

struct buf {
	char *p;
	size_t len, cap;
};

struct warn {
	char *message, *url, *file;
	char **detail;
	size_t n_detail;
	int line;
};

struct job {
	size_t index;
	char *id, *target, *platform, *builder;
	char *frontend, *backend;
	int steps;
	int run_jobs; /* jobs in the run, as job.started declared it */
	int64_t started_ns;
	bool started;  /* job.started seen */
	bool announce; /* its #0 line is due */
	bool finished; /* job.finished seen and reported */
	struct warn *warns;
	size_t n_warns, cap_warns;
};

/* Last printed state of one status item, for the throttle. */
struct seen {
	char *id;
	int64_t current, timestamp_ns;
	bool done;
};

struct vtx {
	struct job *job;
	char *digest, *name;
	int number;             /* #N, 0 until first printed */
	int64_t started_ns, completed_ns;
	bool done;              /* its DONE/CACHED/ERROR/CANCELED was printed */
	bool failed, framed;
	struct buf partial;     /* a log line without its '\n' yet */
	int64_t partial_ns;     /* timestamp of its first chunk */
	bool has_partial;
	char *ring[RING_LINES]; /* last log lines, "0.215 text" */
	size_t ring_next, ring_n;
	struct seen *seen;
	size_t n_seen, cap_seen;
};

enum last_out { OUT_NONE, OUT_VERTEX, OUT_JOB, OUT_REPORT };

struct state {
	const struct kiln_host *host;
	int fd;
	bool verbose;
	int write_errno;
	struct job **jobs;
	size_t n_jobs, cap_jobs;
	struct vtx **v;      /* in order of first sight */
	size_t n_v, cap_v;
	struct vtx **tab;    /* hash of (job, digest) -> vertex */
	size_t tab_cap;      /* power of two */
	int next_number;
	struct vtx *current; /* vertex whose block is open, or NULL */
	enum last_out last;  /* what the output ended with */
	struct buf out;      /* this event's output: one write */
};

/* ---- memory and buffers ------------------------------------------------ */

static char *xstrdup(struct state *st, const char *s)
{
	size_t n = strlen(s ? s : "") + 1;
	return memcpy(st->host->alloc(n), s ? s : "", n);
}

static void buf_reserve(struct state *st, struct buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 128;
	while (cap < b->len + extra + 1)
		cap *= 2;
	b->p = st->host->realloc(b->p, cap);
	b->cap = cap;
}

static void buf_add(struct state *st, struct buf *b, const void *d, size_t n)
{
	buf_reserve(st, b, n);
	if (n)
		memcpy(b->p + b->len, d, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_adds(struct state *st, struct buf *b, const char *s)
{
	buf_add(st, b, s, strlen(s));
}

KILN_PRINTF(3, 4)
static void buf_addf(struct state *st, struct buf *b, const char *fmt, ...)
{
	va_list ap, cp;
	va_start(ap, fmt);
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n > 0) {
		buf_reserve(st, b, (size_t)n);
		vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
		b->len += (size_t)n;
	}
	va_end(ap);
}

/* Shorthands for the output buffer. */
#define OUTS(s) buf_adds(st, &st->out, (s))
#define OUTF(...) buf_addf(st, &st->out, __VA_ARGS__)

static void flush_out(struct state *st)
{
	const char *p = st->out.p;
	size_t n = st->out.len;
	while (n > 0 && !st->write_errno) {
		ssize_t w = write(st->fd, p, n);
		if (w <= 0) {
			if (w == 0)
				st->write_errno = EIO;
			else if (errno != EINTR)
				st->write_errno = errno;
			continue;
		}
		p += w;
		n -= (size_t)w;
	}
	st->out.len = 0;
}

/* ---- jobs and vertices ------------------------------------------------- */

/* Several jobs: seen, or declared by a job.started (so that the first of
 * several jobs run one after another is already labelled). */
static bool multi(const struct state *st)
{
	if (st->n_jobs > 1)
		return true;
	return st->n_jobs == 1 && st->jobs[0]->run_jobs > 1;
}

static struct job *job_get(struct state *st, const struct kiln_job *kj)
{
	const char *id = kj->id ? kj->id : "";
	for (size_t i = st->n_jobs; i-- > 0;)
		if (strcmp(st->jobs[i]->id, id) == 0)
			return st->jobs[i];
	if (st->n_jobs == st->cap_jobs) {
		st->cap_jobs = st->cap_jobs ? st->cap_jobs * 2 : 4;
		st->jobs = st->host->realloc(st->jobs, st->cap_jobs * sizeof(*st->jobs));
	}
	struct job *j = st->host->alloc(sizeof(*j));
	memset(j, 0, sizeof(*j));
	j->index = st->n_jobs;
	j->id = xstrdup(st, id);
	j->target = xstrdup(st, kj->target);
	j->platform = xstrdup(st, kj->platform);
	j->builder = xstrdup(st, kj->builder);
	st->jobs[st->n_jobs++] = j;
	return j;
}

/* "app linux/arm64": the target (or the job id) and the platform. */
static void add_label(struct state *st, struct buf *b, const struct job *j)
{
	buf_adds(st, b, *j->target ? j->target : j->id);
	if (*j->platform) {
		buf_adds(st, b, " ");
		buf_adds(st, b, j->platform);
	}
}

/* "[app linux/arm64] " in a run of several jobs, else nothing. */
static void add_job_prefix(struct state *st, const struct job *j)
{
	if (!multi(st))
		return;
	OUTS("[");
	add_label(st, &st->out, j);
	OUTS("] ");
}

/* The vertex name as printed: with several jobs, the job goes inside the
 * leading bracket ("[app linux/arm64 build 2/5] RUN make") or in front. */
static void add_vname(struct state *st, struct buf *b, const struct vtx *v)
{
	const char *name = v->name && *v->name ? v->name : v->digest;
	if (!multi(st)) {
		buf_adds(st, b, name);
		return;
	}
	buf_adds(st, b, "[");
	add_label(st, b, v->job);
	if (name[0] == '[' && name[1] != ']' && strchr(name, ']')) {
		buf_adds(st, b, " ");
		buf_adds(st, b, name + 1);
	} else {
		buf_adds(st, b, "] ");
		buf_adds(st, b, name);
	}
}

static uint64_t hash_key(const struct job *j, const char *digest)
{
	uint64_t h = 1469598103934665603u ^ (uint64_t)j->index;
	for (const unsigned char *p = (const unsigned char *)digest; *p; p++)
		h = (h ^ *p) * 1099511628211u;
	return h;
}

static void tab_insert(struct state *st, struct vtx *v)
{
	size_t mask = st->tab_cap - 1;
	size_t i = (size_t)hash_key(v->job, v->digest) & mask;
	while (st->tab[i])
		i = (i + 1) & mask;
	st->tab[i] = v;
}

/* The vertex (job, digest), created on first sight. */
static struct vtx *vtx_get(struct state *st, struct job *j, const char *digest)
{
	if (st->tab_cap) {
		size_t mask = st->tab_cap - 1;
		for (size_t i = (size_t)hash_key(j, digest) & mask; st->tab[i];
		     i = (i + 1) & mask)
			if (st->tab[i]->job == j && strcmp(st->tab[i]->digest, digest) == 0)
				return st->tab[i];
	}
	if ((st->n_v + 1) * 2 > st->tab_cap) {
		st->host->free(st->tab);
		st->tab_cap = st->tab_cap ? st->tab_cap * 2 : 64;
		st->tab = st->host->alloc(st->tab_cap * sizeof(*st->tab));
		memset(st->tab, 0, st->tab_cap * sizeof(*st->tab));
		for (size_t i = 0; i < st->n_v; i++)
			tab_insert(st, st->v[i]);
	}
	if (st->n_v == st->cap_v) {
		st->cap_v = st->cap_v ? st->cap_v * 2 : 32;
		st->v = st->host->realloc(st->v, st->cap_v * sizeof(*st->v));
	}
	struct vtx *v = st->host->alloc(sizeof(*v));
	memset(v, 0, sizeof(*v));
	v->job = j;
	v->digest = xstrdup(st, digest);
	st->v[st->n_v++] = v;
	tab_insert(st, v);
	return v;
}

/* ---- blocks ------------------------------------------------------------- */

/* Close the open vertex block; "#N ..." when that vertex is still running
 * (BuildKit's mark that its output continues later). */
static void leave_current(struct state *st)
{
	if (st->current && !st->current->done)
		OUTF("#%d ...\n", st->current->number);
	st->current = NULL;
}

/* Make v the open block, printing its header when output switches. */
static void enter_vertex(struct state *st, struct vtx *v)
{
	if (st->current == v)
		return;
	leave_current(st);
	if (st->last != OUT_NONE)
		OUTS("\n");
	bool first = v->number == 0;
	if (first)
		v->number = ++st->next_number;
	OUTF("#%d ", v->number);
	add_vname(st, &st->out, v);
	OUTS("\n");
	if (first && st->verbose)
		OUTF("#%d digest: %s\n", v->number, v->digest);
	st->current = v;
	st->last = OUT_VERTEX;
}

/* Start a "#0" job line: blank line before, unless it follows another. */
static void enter_job_line(struct state *st)
{
	leave_current(st);
	if (st->last != OUT_NONE && st->last != OUT_JOB)
		OUTS("\n");
	OUTS("#0 ");
	st->last = OUT_JOB;
}

static void announce(struct state *st, struct job *j)
{
	j->announce = false;
	enter_job_line(st);
	add_job_prefix(st, j);
	OUTS("building");
	if (*j->builder)
		OUTF(" with \"%s\" instance", j->builder);
	if (j->backend && *j->backend)
		OUTF(" using %s backend", j->backend);
	if (st->verbose && j->frontend && *j->frontend)
		OUTF(", %s frontend", j->frontend);
	if (st->verbose && j->steps > 0)
		OUTF(", %d steps", j->steps);
	OUTS("\n");
}

/* Print the #0 lines of jobs that started since the last other event:
 * held back so that jobs started together all get their prefix. */
static void flush_announcements(struct state *st)
{
	for (size_t i = 0; i < st->n_jobs; i++)
		if (st->jobs[i]->announce)
			announce(st, st->jobs[i]);
}

/* ---- vertex lines ------------------------------------------------------- */

/* Seconds as BuildKit prints log offsets: 3 decimals under 10 s, 2 under
 * 100 s, else 1. */
static void add_offset(struct state *st, struct buf *b, double sec)
{
	int prec = sec < 10 ? 3 : sec < 100 ? 2 : 1;
	buf_addf(st, b, "%.*f", prec, sec);
}

static void ring_add(struct state *st, struct vtx *v, const char *line)
{
	st->host->free(v->ring[v->ring_next]);
	v->ring[v->ring_next] = xstrdup(st, line);
	v->ring_next = (v->ring_next + 1) % RING_LINES;
	if (v->ring_n < RING_LINES)
		v->ring_n++;
}

/* Print the held partial line of v as a complete log line. */
static void emit_partial(struct state *st, struct vtx *v)
{
	if (!v->has_partial)
		return;
	double sec = 0;
	if (v->started_ns && v->partial_ns > v->started_ns)
		sec = (double)(v->partial_ns - v->started_ns) / 1e9;
	struct buf line = { 0 };
	add_offset(st, &line, sec);
	buf_adds(st, &line, " ");
	buf_add(st, &line, v->partial.p, v->partial.len);
	enter_vertex(st, v);
	OUTF("#%d ", v->number);
	buf_add(st, &st->out, line.p, line.len);
	OUTS("\n");
	ring_add(st, v, line.p);
	st->host->free(line.p);
	v->partial.len = 0;
	v->has_partial = false;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static void complete_vertex(struct state *st, struct vtx *v,
			    const struct kiln_event_vertex *e)
{
	enter_vertex(st, v);
	emit_partial(st, v);
	v->completed_ns = e->completed_ns;
	if (e->error && *e->error) {
		/* BuildKit's check for a cancelled solve. */
		if (ends_with(e->error, "context canceled")) {
			OUTF("#%d CANCELED\n", v->number);
		} else {
			OUTF("#%d ERROR: %s\n", v->number, e->error);
			v->failed = true;
		}
	} else if (e->cached) {
		OUTF("#%d CACHED\n", v->number);
	} else if (v->started_ns && e->completed_ns) {
		int64_t d = e->completed_ns - v->started_ns;
		OUTF("#%d DONE %.1fs\n", v->number, d > 0 ? (double)d / 1e9 : 0.0);
	} else {
		OUTF("#%d DONE\n", v->number);
	}
	v->done = true;
	st->current = NULL;
}

static void on_vertex(struct state *st, struct job *j, const struct kiln_event_vertex *e)
{
	if (!e->digest)
		return;
	struct vtx *v = vtx_get(st, j, e->digest);
	if (e->name && (!v->name || strcmp(v->name, e->name) != 0)) {
		st->host->free(v->name);
		v->name = xstrdup(st, e->name);
	}
	bool newly_started = false;
	if (e->started_ns && e->started_ns != v->started_ns) {
		/* A new start after completion is a new run of the vertex. */
		if (v->done && e->completed_ns != v->completed_ns)
			v->done = false;
		v->started_ns = e->started_ns;
		newly_started = true;
	}
	bool terminal = e->completed_ns || (e->error && *e->error);
	if (terminal && !v->done)
		complete_vertex(st, v, e);
	else if (newly_started && !v->done && !st->current)
		enter_vertex(st, v);
}

static void on_log(struct state *st, struct job *j, const struct kiln_event_vertex_log *e)
{
	if (!e->vertex)
		return;
	struct vtx *v = vtx_get(st, j, e->vertex);
	const uint8_t *p = e->data;
	size_t n = p ? e->len : 0;
	while (n > 0) {
		const uint8_t *nl = memchr(p, '\n', n);
		size_t seg = nl ? (size_t)(nl - p) : n;
		if (!v->has_partial) {
			v->has_partial = true;
			v->partial_ns = e->timestamp_ns;
			v->partial.len = 0;
		}
		buf_add(st, &v->partial, p, seg);
		if (nl) {
			emit_partial(st, v);
			seg++;
		} else if (v->partial.len >= PARTIAL_MAX) {
			emit_partial(st, v);
		}
		p += seg;
		n -= seg;
	}
	/* Nothing more is coming for a completed vertex. */
	if (v->done)
		emit_partial(st, v);
}

/* Byte counts as BuildKit prints them (github.com/tonistiigi/units with
 * "%.2f"): decimal units, whole bytes below 1000. */
static void add_bytes(struct state *st, int64_t b)
{
	static const char *const units[] = { "B", "kB", "MB", "GB", "TB", "PB", "EB" };
	if (b > -1000 && b < 1000) {
		OUTF("%lldB", (long long)b);
		return;
	}
	uint64_t a = b < 0 ? (uint64_t)0 - (uint64_t)b : (uint64_t)b, unit = 1;
	size_t i = 0;
	while (i + 1 < sizeof(units) / sizeof(units[0]) && a / unit >= 1000) {
		unit *= 1000;
		i++;
	}
	OUTF("%.2f%s", (double)b / (double)unit, units[i]);
}

static struct seen *seen_get(struct state *st, struct vtx *v, const char *id,
			     bool *fresh)
{
	for (size_t i = 0; i < v->n_seen; i++)
		if (strcmp(v->seen[i].id, id) == 0) {
			*fresh = false;
			return &v->seen[i];
		}
	if (v->n_seen == v->cap_seen) {
		v->cap_seen = v->cap_seen ? v->cap_seen * 2 : 4;
		v->seen = st->host->realloc(v->seen, v->cap_seen * sizeof(*v->seen));
	}
	struct seen *s = &v->seen[v->n_seen++];
	memset(s, 0, sizeof(*s));
	s->id = xstrdup(st, id);
	*fresh = true;
	return s;
}

static void on_status(struct state *st, struct job *j,
		      const struct kiln_event_vertex_status *e)
{
	if (!e->vertex)
		return;
	struct vtx *v = vtx_get(st, j, e->vertex);
	const char *id = e->id ? e->id : "";
	bool fresh, completed = e->completed_ns != 0;
	struct seen *s = seen_get(st, v, id, &fresh);
	if (!fresh && s->done && completed)
		return; /* "done" again: not a change */
	if (!fresh && !completed && !st->verbose) {
		/* BuildKit's throttle: print when 5% more is done or 5 s
		 * (of event time) have passed. */
		double progress = e->total > 0 ? (double)(e->current - s->current) /
							 (double)e->total
					       : 0;
		if (progress < MIN_PROGRESS_DELTA &&
		    e->timestamp_ns - s->timestamp_ns < MIN_TIME_DELTA_NS)
			return;
	}
	s->current = e->current;
	s->timestamp_ns = e->timestamp_ns;
	s->done = completed;

	enter_vertex(st, v);
	/* BuildKit's printer shows the status ID ("transferring context:") */
	OUTF("#%d %s", v->number, *id ? id : e->name ? e->name : "");
	if (e->total != 0) {
		OUTS(" ");
		add_bytes(st, e->current);
		OUTS(" / ");
		add_bytes(st, e->total);
	} else if (e->current != 0) {
		OUTS(" ");
		add_bytes(st, e->current);
	}
	int64_t end = completed ? e->completed_ns : e->timestamp_ns;
	if (e->started_ns && end) {
		double diff = (double)(end - e->started_ns) / 1e9;
		if (diff > 0.01)
			OUTF(" %.1fs", diff);
	}
	if (completed)
		OUTS(" done");
	OUTS("\n");
}

/* " (Dockerfile:3)": where a warning points, or nothing. */
static void add_location(struct state *st, const char *file, int line)
{
	if (file && *file && line > 0)
		OUTF(" (%s:%d)", file, line);
	else if (file && *file)
		OUTF(" (%s)", file);
	else if (line > 0)
		OUTF(" (line %d)", line);
}

static void on_warning(struct state *st, struct job *j, const struct kiln_event_warning *e)
{
	if (j->n_warns == j->cap_warns) {
		j->cap_warns = j->cap_warns ? j->cap_warns * 2 : 4;
		j->warns = st->host->realloc(j->warns, j->cap_warns * sizeof(*j->warns));
	}
	struct warn *w = &j->warns[j->n_warns++];
	memset(w, 0, sizeof(*w));
	w->message = xstrdup(st, e->message);
	w->url = e->url && *e->url ? xstrdup(st, e->url) : NULL;
	w->file = e->file && *e->file ? xstrdup(st, e->file) : NULL;
	w->line = e->line;
	if (e->detail && e->n_detail) {
		w->detail = st->host->alloc(e->n_detail * sizeof(*w->detail));
		for (size_t i = 0; i < e->n_detail; i++)
			w->detail[i] = xstrdup(st, e->detail[i]);
		w->n_detail = e->n_detail;
	}

	if (e->vertex && *e->vertex) {
		/* BuildKit prints a vertex's warnings inside its block. */
		struct vtx *v = vtx_get(st, j, e->vertex);
		enter_vertex(st, v);
		OUTF("#%d WARN: %s\n", v->number, w->message);
		return;
	}
	leave_current(st);
	if (st->last != OUT_NONE)
		OUTS("\n");
	OUTS("WARNING: ");
	add_job_prefix(st, j);
	OUTS(w->message);
	add_location(st, w->file, w->line);
	OUTS("\n");
	st->last = OUT_REPORT;
}

/* ---- end of a job --------------------------------------------------------- */

static int cmp_number(const void *a, const void *b)
{
	const struct vtx *x = *(const struct vtx *const *)a;
	const struct vtx *y = *(const struct vtx *const *)b;
	return (x->number > y->number) - (x->number < y->number);
}

/* BuildKit's error block: the last log lines of each failed vertex. */
static void report_failed(struct state *st, struct job *j)
{
	size_t n = 0;
	for (size_t i = 0; i < st->n_v; i++)
		if (st->v[i]->job == j && st->v[i]->failed && !st->v[i]->framed)
			n++;
	if (!n)
		return;
	struct vtx **f = st->host->alloc(n * sizeof(*f));
	n = 0;
	for (size_t i = 0; i < st->n_v; i++)
		if (st->v[i]->job == j && st->v[i]->failed && !st->v[i]->framed)
			f[n++] = st->v[i];
	qsort(f, n, sizeof(*f), cmp_number);
	leave_current(st);
	for (size_t k = 0; k < n; k++) {
		struct vtx *v = f[k];
		v->framed = true;
		OUTS("------\n > ");
		add_vname(st, &st->out, v);
		OUTS(":\n");
		size_t start = v->ring_n < RING_LINES ? 0 : v->ring_next;
		for (size_t i = 0; i < v->ring_n; i++) {
			OUTS(v->ring[(start + i) % RING_LINES]);
			OUTS("\n");
		}
		OUTS("------\n");
	}
	st->host->free(f);
	st->last = OUT_REPORT;
}

/* buildx's summary: " 2 warnings found (use --verbose to expand):". */
static void report_warnings(struct state *st, struct job *j)
{
	if (!j->n_warns)
		return;
	bool expandable = false;
	for (size_t i = 0; i < j->n_warns; i++)
		if (j->warns[i].n_detail || j->warns[i].url)
			expandable = true;
	leave_current(st);
	if (st->last != OUT_NONE)
		OUTS("\n");
	OUTF(" %zu warning%s found", j->n_warns, j->n_warns == 1 ? "" : "s");
	if (multi(st)) {
		OUTS(" for [");
		add_label(st, &st->out, j);
		OUTS("]");
	}
	OUTS(expandable && !st->verbose ? " (use --verbose to expand):\n" : ":\n");
	for (size_t i = 0; i < j->n_warns; i++) {
		const struct warn *w = &j->warns[i];
		OUTF(" - %s", w->message);
		add_location(st, w->file, w->line);
		OUTS("\n");
		if (!st->verbose)
			continue;
		for (size_t k = 0; k < w->n_detail; k++)
			OUTF("   %s\n", w->detail[k]);
		if (w->url)
			OUTF("   More info: %s\n", w->url);
	}
	st->last = OUT_REPORT;
}

static void flush_partials(struct state *st, const struct job *j)
{
	for (size_t i = 0; i < st->n_v; i++)
		if (!j || st->v[i]->job == j)
			emit_partial(st, st->v[i]);
}

static void on_job_finished(struct state *st, struct job *j, const struct kiln_event *ev)
{
	const struct kiln_event_job_finished *e = &ev->u.job_finished;
	if (j->finished)
		return;
	j->finished = true;
	flush_partials(st, j);
	report_failed(st, j);
	report_warnings(st, j);
	if (st->verbose) {
		const struct kiln_job_metrics *m = &e->metrics;
		enter_job_line(st);
		add_job_prefix(st, j);
		OUTF("metrics: %u vertices, %u completed, %u cached, %u failed, "
		     "%u warnings, %llu bytes of logs\n",
		     m->vertices, m->completed, m->cached, m->failed, m->warnings,
		     (unsigned long long)m->log_bytes);
	}
	if (e->status != 0) {
		leave_current(st);
		OUTS("ERROR: ");
		add_job_prefix(st, j);
		OUTS(e->error && *e->error ? e->error : st->host->strerror(e->status));
		OUTS("\n");
		st->last = OUT_REPORT;
	} else if (multi(st)) {
		int64_t d = j->started_ns && ev->time_ns ? ev->time_ns - j->started_ns
							 : e->metrics.duration_ns;
		enter_job_line(st);
		add_job_prefix(st, j);
		OUTF("DONE %.1fs\n", d > 0 ? (double)d / 1e9 : 0.0);
	}
	if (e->status == 0 && KILN_HAS_FIELD(ev, struct kiln_event, u.job_finished.image_layers) &&
	    e->image_size > 0) {
		/* the image the engine stored, when it says (docs/history.md) */
		enter_job_line(st);
		add_job_prefix(st, j);
		OUTS("image size ");
		add_bytes(st, e->image_size);
		OUTF(", %u layer%s\n", e->image_layers, e->image_layers == 1 ? "" : "s");
	}
}

/* ---- the renderer --------------------------------------------------------- */

/* True when the sender's struct kiln_event holds union member m. */
#define EVENT_HAS(ev, m)                                                      \
	((ev)->struct_size >=                                                 \
	 offsetof(struct kiln_event, u) + sizeof(((struct kiln_event *)0)->u.m))

static void plain_event(void *state, const struct kiln_event *ev)
{
	struct state *st = state;
	if (!ev->job || !kiln_event_kind_name(ev->kind))
		return; /* receivers ignore kinds they do not know */
	struct job *j = job_get(st, ev->job);
	switch (ev->kind) {
	case KILN_EVENT_JOB_STARTED:
		if (!EVENT_HAS(ev, job_started) || j->started)
			break;
		j->started = true;
		j->announce = true;
		j->started_ns = ev->time_ns;
		j->frontend = ev->u.job_started.frontend
				      ? xstrdup(st, ev->u.job_started.frontend) : NULL;
		j->backend = ev->u.job_started.backend
				     ? xstrdup(st, ev->u.job_started.backend) : NULL;
		j->steps = ev->u.job_started.steps;
		if (KILN_HAS_FIELD(ev, struct kiln_event, u.job_started.jobs))
			j->run_jobs = ev->u.job_started.jobs;
		break; /* printed with the next other event */
	case KILN_EVENT_JOB_FINISHED:
		flush_announcements(st);
		if (EVENT_HAS(ev, job_finished))
			on_job_finished(st, j, ev);
		break;
	case KILN_EVENT_VERTEX:
		flush_announcements(st);
		if (EVENT_HAS(ev, vertex))
			on_vertex(st, j, &ev->u.vertex);
		break;
	case KILN_EVENT_VERTEX_STATUS:
		flush_announcements(st);
		if (EVENT_HAS(ev, status))
			on_status(st, j, &ev->u.status);
		break;
	case KILN_EVENT_VERTEX_LOG:
		flush_announcements(st);
		if (EVENT_HAS(ev, log))
			on_log(st, j, &ev->u.log);
		break;
	case KILN_EVENT_WARNING:
		flush_announcements(st);
		if (EVENT_HAS(ev, warning))
			on_warning(st, j, &ev->u.warning);
		break;
	}
	flush_out(st);
}

static int plain_open(const struct kiln_host *host,
		      const struct kiln_renderer_opts *opts, void **statep,
		      struct kiln_err *err)
{
	if (!opts || !KILN_HAS_FIELD(opts, struct kiln_renderer_opts, fd) || opts->fd < 0)
		return host->error(err, KILN_E_INVALID, "plain progress: no output");
	struct state *st = host->alloc(sizeof(*st));
	memset(st, 0, sizeof(*st));
	st->host = host;
	st->fd = opts->fd;
	st->verbose = KILN_HAS_FIELD(opts, struct kiln_renderer_opts, verbose) &&
		      opts->verbose;
	*statep = st;
	return 0;
}

static void free_vtx(struct state *st, struct vtx *v)
{
	const struct kiln_host *h = st->host;
	h->free(v->digest);
	h->free(v->name);
	h->free(v->partial.p);
	for (size_t i = 0; i < RING_LINES; i++)
		h->free(v->ring[i]);
	for (size_t i = 0; i < v->n_seen; i++)
		h->free(v->seen[i].id);
	h->free(v->seen);
	h->free(v);
}

static void free_job(struct state *st, struct job *j)
{
	const struct kiln_host *h = st->host;
	for (size_t i = 0; i < j->n_warns; i++) {
		struct warn *w = &j->warns[i];
		h->free(w->message);
		h->free(w->url);
		h->free(w->file);
		for (size_t k = 0; k < w->n_detail; k++)
			h->free(w->detail[k]);
		h->free(w->detail);
	}
	h->free(j->warns);
	h->free(j->id);
	h->free(j->target);
	h->free(j->platform);
	h->free(j->builder);
	h->free(j->frontend);
	h->free(j->backend);
	h->free(j);
}

static int plain_close(void *state, struct kiln_err *err)
{
	struct state *st = state;
	const struct kiln_host *h = st->host;

	/* The stream ended: show what is still held, and the reports of jobs
	 * that never finished. */
	flush_announcements(st);
	flush_partials(st, NULL);
	for (size_t i = 0; i < st->n_jobs; i++) {
		if (!st->jobs[i]->finished) {
			report_failed(st, st->jobs[i]);
			report_warnings(st, st->jobs[i]);
		}
	}
	flush_out(st);

	int e = st->write_errno;
	for (size_t i = 0; i < st->n_v; i++)
		free_vtx(st, st->v[i]);
	for (size_t i = 0; i < st->n_jobs; i++)
		free_job(st, st->jobs[i]);
	h->free(st->v);
	h->free(st->tab);
	h->free(st->jobs);
	h->free(st->out.p);
	h->free(st);
	if (e)
		return h->error(err, KILN_E_IO, "plain progress: write: %s", strerror(e));
	return 0;
}

static const struct kiln_renderer plain_renderer = {
	.abi_version = KILN_ABI_VERSION,
	.struct_size = sizeof(struct kiln_renderer),
	.name = "plain",
	.version = "1.0.0",
	.description = "BuildKit-style plain text, one line per change",
	.open = plain_open,
	.event = plain_event,
	.close = plain_close,
};

KILN_EXPORT int kiln_plugin_init(const struct kiln_host *host, uint32_t host_abi,
				 struct kiln_plugin *plugin, struct kiln_err *err)
{
	int rc = kiln_check_host_abi(host, host_abi, err);
	return rc < 0 ? rc : host->register_renderer(plugin, &plain_renderer);
}
