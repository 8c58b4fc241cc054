/*
 * model.c: what the tty renderer knows of the build, and the permanent
 * lines that events produce.
 *
 * Bookkeeping follows the plain renderer: a vertex is keyed by (job,
 * digest), the same digest may be sent many times and later sends
 * supersede earlier ones, a log chunk is split at '\n' and a partial line
 * is held until its newline (or the vertex completes). A vertex's line
 * goes into the permanent log once, when it first completes: ✅ done with
 * its time, ♻️ cached, ❌ failed, ⛔ cancelled. A job's end adds its
 * summary, or the framed block of the step that failed. --verbose adds a
 * line for every raw event and every log line, as they come.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tty.h"

/* True when the sender's struct kiln_event holds union member m. */
#define EVENT_HAS(ev, m)                                                      \
	((ev)->struct_size >=                                                 \
	 offsetof(struct kiln_event, u) + sizeof(((struct kiln_event *)0)->u.m))

static bool multi(const struct tty *st)
{
	return st->n_jobs > 1 || (st->n_jobs == 1 && st->jobs[0]->run_jobs > 1);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static void replace_str(char **dst, const char *src)
{
	tty_free(*dst);
	*dst = src ? tty_strdup(src) : NULL;
}

/* ---- jobs and vertices ------------------------------------------------------ */

struct tty_job *tty_job_get(struct tty *st, const struct kiln_job *kj)
{
	const char *id = kj->id ? kj->id : "";
	for (size_t i = st->n_jobs; i-- > 0;)
		if (strcmp(st->jobs[i]->id, id) == 0)
			return st->jobs[i];
	if (st->n_jobs == st->cap_jobs) {
		st->cap_jobs = st->cap_jobs ? st->cap_jobs * 2 : 4;
		st->jobs = tty_realloc(st->jobs, st->cap_jobs * sizeof(*st->jobs));
	}
	struct tty_job *j = tty_alloc(sizeof(*j));
	j->index = st->n_jobs;
	j->id = tty_strdup(id);
	j->target = tty_strdup(kj->target);
	j->platform = tty_strdup(kj->platform);
	j->builder = tty_strdup(kj->builder);
	st->jobs[st->n_jobs++] = j;
	return j;
}

static uint64_t hash_key(const struct tty_job *j, const char *digest)
{
	uint64_t h = 1469598103934665603u ^ (uint64_t)j->index;
	for (const unsigned char *p = (const unsigned char *)digest; *p; p++)
		h = (h ^ *p) * 1099511628211u;
	return h;
}

static void tab_insert(struct tty *st, struct tty_vtx *v)
{
	size_t mask = st->tab_cap - 1;
	size_t i = (size_t)hash_key(v->job, v->digest) & mask;
	while (st->tab[i])
		i = (i + 1) & mask;
	st->tab[i] = v;
}

static struct tty_vtx *vtx_get(struct tty *st, struct tty_job *j, const char *digest,
			       bool *fresh)
{
	*fresh = false;
	if (st->tab_cap) {
		size_t mask = st->tab_cap - 1;
		for (size_t i = (size_t)hash_key(j, digest) & mask; st->tab[i];
		     i = (i + 1) & mask)
			if (st->tab[i]->job == j && strcmp(st->tab[i]->digest, digest) == 0)
				return st->tab[i];
	}
	if ((st->n_v + 1) * 2 > st->tab_cap) {
		tty_free(st->tab);
		st->tab_cap = st->tab_cap ? st->tab_cap * 2 : 64;
		st->tab = tty_alloc(st->tab_cap * sizeof(*st->tab));
		for (size_t i = 0; i < st->n_v; i++)
			tab_insert(st, st->v[i]);
	}
	if (st->n_v == st->cap_v) {
		st->cap_v = st->cap_v ? st->cap_v * 2 : 32;
		st->v = tty_realloc(st->v, st->cap_v * sizeof(*st->v));
	}
	struct tty_vtx *v = tty_alloc(sizeof(*v));
	v->job = j;
	v->digest = tty_strdup(digest);
	v->number = ++st->next_number;
	v->ring = tty_alloc(st->ring_cap * sizeof(*v->ring));
	tty_describe(NULL, &v->desc);
	st->v[st->n_v++] = v;
	tab_insert(st, v);
	*fresh = true;
	return v;
}

static void vtx_set_name(struct tty_vtx *v, const char *name)
{
	if (!name || (v->name && strcmp(v->name, name) == 0))
		return;
	replace_str(&v->name, name);
	tty_desc_release(&v->desc);
	tty_describe(name, &v->desc);
	if (v->desc.named_total > v->job->named_total)
		v->job->named_total = v->desc.named_total;
}

const struct tty_buf *tty_vtx_line(const struct tty *st, const struct tty_vtx *v, size_t i)
{
	if (i >= v->ring_n)
		return NULL;
	return &v->ring[(v->ring_next + st->ring_cap - v->ring_n + i) % st->ring_cap];
}

/* ---- permanent lines ----------------------------------------------------------- */

/* "app linux/arm64"; a bare CLI build's target ("default") is left out
 * when the platform says enough. */
static void add_label(struct tty_line *l, const struct tty_job *j)
{
	const char *target = *j->target ? j->target : j->id;
	bool show_target = !*j->platform || strcmp(target, "default") != 0;
	if (show_target)
		tty_line_str(l, target);
	if (*j->platform) {
		if (show_target)
			tty_line_str(l, " ");
		tty_line_str(l, j->platform);
	}
}

/* "[app linux/arm64] " in a run of several jobs. */
static void add_job_prefix(struct tty *st, struct tty_line *l, const struct tty_job *j)
{
	if (!multi(st))
		return;
	tty_line_color(l, TTY_CYAN);
	tty_line_str(l, "[");
	add_label(l, j);
	tty_line_str(l, "] ");
	tty_line_color(l, NULL);
}

/* A raw-event line of --verbose: dim, never cut. */
static void verbose_begin(struct tty *st, struct tty_line *l, const struct tty_vtx *v)
{
	tty_line_init(l, st, 0);
	tty_line_color(l, TTY_DIM);
	if (v)
		tty_line_printf(l, "#%d ", v->number);
	else
		tty_line_str(l, "#0 ");
}

static void verbose_end(struct tty *st, struct tty_line *l)
{
	tty_perm_line(st, l);
	tty_line_release(l);
}

/* The permanent line of a finished vertex. */
static void step_line(struct tty *st, struct tty_vtx *v)
{
	char num[64];
	struct tty_line right;
	tty_line_init(&right, st, 0);
	tty_line_color(&right, TTY_DIM);
	if (v->downloaded > 0) {
		tty_fmt_bytes(num, sizeof(num), v->downloaded);
		tty_line_color(&right, NULL);
		tty_line_sym(&right, SYM_DOWNLOAD);
		tty_line_color(&right, TTY_DIM);
		tty_line_printf(&right, "%s  ", num);
	}
	if (v->failed) {
		int code = tty_exit_code(v->error);
		tty_line_color(&right, TTY_RED);
		if (code >= 0)
			tty_line_printf(&right, "exit code %d  ", code);
		else
			tty_line_str(&right, "failed  ");
		tty_line_color(&right, TTY_DIM);
	}
	if (v->cached) {
		tty_line_str(&right, "cached");
	} else if (v->cancelled) {
		tty_line_str(&right, "cancelled");
	} else if (v->started_ns && v->completed_ns) {
		tty_fmt_duration(num, sizeof(num), v->completed_ns - v->started_ns);
		tty_line_str(&right, num);
	}
	tty_line_finish(&right);

	struct tty_line l;
	tty_line_init(&l, st, tty_perm_width(st));
	tty_line_sym(&l, v->failed      ? SYM_FAILED
			 : v->cancelled ? SYM_CANCELLED
			 : v->cached    ? SYM_CACHED
					: SYM_DONE);
	tty_line_sym(&l, v->desc.kind);
	int saved = tty_line_body(&l, right.width);
	add_job_prefix(st, &l, v->job);
	if (v->failed)
		tty_line_color(&l, TTY_RED ";" TTY_BOLD);
	tty_line_str(&l, v->desc.text);
	tty_line_color(&l, NULL);
	if (v->desc.tag) {
		tty_line_color(&l, TTY_DIM);
		tty_line_printf(&l, " [%s]", v->desc.tag);
		tty_line_color(&l, NULL);
	}
	tty_line_suffix(&l, saved, &right);
	tty_perm_line(st, &l);
	tty_line_release(&l);
	tty_line_release(&right);
	v->printed = true;
}

/* ---- logs ------------------------------------------------------------------------ */

/* A log line as a terminal would leave it: what follows the last '\r'. */
static void cr_cut(const char **p, size_t *n)
{
	while (*n && (*p)[*n - 1] == '\r')
		(*n)--;
	const char *cr = memrchr(*p, '\r', *n);
	if (cr) {
		*n -= (size_t)(cr + 1 - *p);
		*p = cr + 1;
	}
}

static void verbose_log_line(struct tty *st, struct tty_vtx *v, const char *p, size_t n,
			     int stream)
{
	struct tty_line l;
	verbose_begin(st, &l, v);
	tty_line_str(&l, st->ascii ? "| " : "\xe2\x94\x82 ");
	tty_line_color(&l, stream == 2 ? TTY_RED : NULL);
	tty_line_text(&l, p, n);
	verbose_end(st, &l);
}

/* A complete line of v's output: into the ring (and out, with --verbose). */
static void push_line(struct tty *st, struct tty_vtx *v, const char *p, size_t n, int stream)
{
	cr_cut(&p, &n);
	if (n > TTY_LINE_CAP)
		n = TTY_LINE_CAP;
	struct tty_buf *slot = &v->ring[v->ring_next];
	slot->len = 0;
	tty_buf_add(slot, p, n);
	v->ring_next = (v->ring_next + 1) % st->ring_cap;
	if (v->ring_n < st->ring_cap)
		v->ring_n++;
	v->log_lines++;
	if (st->verbose)
		verbose_log_line(st, v, p, n, stream);
}

static void flush_partial(struct tty *st, struct tty_vtx *v)
{
	if (!v->has_partial)
		return;
	push_line(st, v, v->partial.p, v->partial.len, v->partial_stream);
	v->partial.len = 0;
	v->has_partial = false;
}

static void on_log(struct tty *st, struct tty_vtx *v, const struct kiln_event_vertex_log *e)
{
	const char *p = (const char *)e->data;
	size_t n = p ? e->len : 0;
	v->log_bytes += n;
	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t seg = nl ? (size_t)(nl - p) : n;
		if (!v->has_partial && nl) {
			/* a whole line in this chunk: no copy into partial */
			push_line(st, v, p, seg, e->stream);
		} else {
			if (!v->has_partial) {
				v->has_partial = true;
				v->partial_stream = e->stream;
				v->partial.len = 0;
			}
			size_t room = v->partial.len < TTY_LINE_CAP + 1
					      ? TTY_LINE_CAP + 1 - v->partial.len : 0;
			tty_buf_add(&v->partial, p, seg < room ? seg : room);
			if (nl)
				flush_partial(st, v);
		}
		if (nl)
			seg++;
		p += seg;
		n -= seg;
	}
	if (v->done)
		flush_partial(st, v);
}

/* ---- vertices -------------------------------------------------------------------- */

static void complete_vertex(struct tty *st, struct tty_vtx *v,
			    const struct kiln_event_vertex *e)
{
	flush_partial(st, v);
	v->done = true;
	v->completed_ns = e->completed_ns;
	v->cached = v->cached || e->cached;
	if (e->error && *e->error) {
		replace_str(&v->error, e->error);
		/* BuildKit's check for a cancelled solve */
		if (ends_with(e->error, "context canceled") ||
		    ends_with(e->error, "context cancelled"))
			v->cancelled = true;
		else
			v->failed = true;
	}
}

static int cmp_completed(const void *a, const void *b)
{
	const struct tty_vtx *x = *(const struct tty_vtx *const *)a;
	const struct tty_vtx *y = *(const struct tty_vtx *const *)b;
	if (x->completed_ns != y->completed_ns)
		return (x->completed_ns > y->completed_ns) - (x->completed_ns < y->completed_ns);
	return (x->number > y->number) - (x->number < y->number);
}

/* Print the lines of finished steps that are settled: completed
 * TTY_SETTLE_NS ago without starting again (BuildKit completes a FROM
 * after resolving it and starts it again to pull), or of a finished job
 * (job != NULL: all of that job's). In order of completion. */
static void settle(struct tty *st, const struct tty_job *job, int64_t now)
{
	size_t n = 0;
	for (size_t i = 0; i < st->n_v; i++) {
		const struct tty_vtx *v = st->v[i];
		n += v->done && !v->printed &&
		     (job ? v->job == job : now - v->completed_ns >= TTY_SETTLE_NS);
	}
	if (!n)
		return;
	struct tty_vtx **due = tty_alloc(n * sizeof(*due));
	size_t k = 0;
	for (size_t i = 0; i < st->n_v; i++) {
		struct tty_vtx *v = st->v[i];
		if (v->done && !v->printed &&
		    (job ? v->job == job : now - v->completed_ns >= TTY_SETTLE_NS))
			due[k++] = v;
	}
	qsort(due, k, sizeof(*due), cmp_completed);
	for (size_t i = 0; i < k; i++)
		step_line(st, due[i]);
	tty_free(due);
}

void tty_settle(struct tty *st)
{
	settle(st, NULL, tty_now(st));
}

static void verbose_vertex(struct tty *st, struct tty_vtx *v, bool fresh,
			   const struct kiln_event_vertex *e)
{
	struct tty_line l;
	if (fresh) {
		verbose_begin(st, &l, v);
		tty_line_printf(&l, "vertex %s", v->digest);
		for (size_t i = 0; i < e->n_inputs && e->inputs; i++)
			tty_line_printf(&l, "%s%s", i ? ", " : " <- ", e->inputs[i]);
		verbose_end(st, &l);
	}
	verbose_begin(st, &l, v);
	tty_line_str(&l, v->name ? v->name : v->digest);
	if (e->error && *e->error)
		tty_line_printf(&l, ": error: %s", e->error);
	else if (e->completed_ns && e->cached)
		tty_line_str(&l, ": cached");
	else if (e->completed_ns && e->started_ns) {
		char d[32];
		tty_fmt_duration(d, sizeof(d), e->completed_ns - e->started_ns);
		tty_line_printf(&l, ": completed in %s", d);
	} else if (e->completed_ns)
		tty_line_str(&l, ": completed");
	else if (e->started_ns)
		tty_line_str(&l, ": started");
	else
		tty_line_str(&l, ": queued");
	verbose_end(st, &l);
}

static void on_vertex(struct tty *st, struct tty_job *j, const struct kiln_event_vertex *e)
{
	if (!e->digest)
		return;
	bool fresh;
	struct tty_vtx *v = vtx_get(st, j, e->digest, &fresh);
	vtx_set_name(v, e->name);
	if (st->verbose)
		verbose_vertex(st, v, fresh, e);
	if (e->started_ns && e->started_ns != v->started_ns) {
		/* a new start after completion is a new run of the vertex */
		if (v->done && e->completed_ns != v->completed_ns)
			v->done = false;
		v->started_ns = e->started_ns;
		if (!v->started) {
			v->started = true;
			v->start_order = st->next_start++;
		}
	}
	if (e->cached)
		v->cached = true;
	bool terminal = e->completed_ns || (e->error && *e->error);
	if (terminal && !v->done)
		complete_vertex(st, v, e);
}

/* ---- status items ------------------------------------------------------------------ */

/* A name the exporter gave the image, as the user would write it
 * ("hello:1" for docker.io/library/hello:1); once. */
static void add_tag(struct tty_job *j, const char *name)
{
	char *tag = tty_short_ref(name, strlen(name));
	for (size_t i = 0; i < j->n_tags; i++)
		if (strcmp(j->tags[i], tag) == 0) {
			tty_free(tag);
			return;
		}
	j->tags = tty_realloc(j->tags, (j->n_tags + 1) * sizeof(*j->tags));
	j->tags[j->n_tags++] = tag;
}

static void on_status(struct tty *st, struct tty_job *j,
		      const struct kiln_event_vertex_status *e)
{
	if (!e->vertex)
		return;
	bool fresh;
	struct tty_vtx *v = vtx_get(st, j, e->vertex, &fresh);
	const char *id = e->id && *e->id ? e->id : e->name ? e->name : "";
	struct tty_item *it = NULL;
	for (size_t i = 0; i < v->n_items; i++)
		if (strcmp(v->items[i].id, id) == 0)
			it = &v->items[i];
	if (!it) {
		if (v->n_items == v->cap_items) {
			v->cap_items = v->cap_items ? v->cap_items * 2 : 4;
			v->items = tty_realloc(v->items, v->cap_items * sizeof(*v->items));
		}
		it = &v->items[v->n_items++];
		memset(it, 0, sizeof(*it));
		it->id = tty_strdup(id);
		it->order = st->next_item++;
		it->sym = tty_describe_item(id, e->total, &it->text);
		it->first_ts = e->timestamp_ns;
		it->first_current = e->current;
		if (strncmp(id, "naming to ", 10) == 0)
			add_tag(j, id + 10);
	}
	if (e->name && (!it->name || strcmp(it->name, e->name) != 0))
		replace_str(&it->name, e->name);
	bool was_done = it->completed_ns != 0;
	it->current = e->current;
	it->total = e->total;
	it->started_ns = e->started_ns;
	it->completed_ns = e->completed_ns;
	it->timestamp_ns = e->timestamp_ns;
	if (!was_done && it->completed_ns && it->sym == SYM_DOWNLOAD && it->total > 0)
		v->downloaded += it->total;

	if (st->verbose) {
		struct tty_line l;
		verbose_begin(st, &l, v);
		tty_line_printf(&l, "status %s", id);
		char a[32], b[32];
		if (e->total) {
			tty_fmt_bytes(a, sizeof(a), e->current);
			tty_fmt_bytes(b, sizeof(b), e->total);
			tty_line_printf(&l, " %s / %s", a, b);
		} else if (e->current) {
			tty_fmt_bytes(a, sizeof(a), e->current);
			tty_line_printf(&l, " %s", a);
		}
		if (e->completed_ns)
			tty_line_str(&l, " done");
		verbose_end(st, &l);
	}
}

/* ---- warnings ------------------------------------------------------------------------ */

static void on_warning(struct tty *st, struct tty_job *j, const struct kiln_event_warning *e)
{
	j->warnings++;
	struct tty_vtx *v = NULL;
	bool fresh;
	if (e->vertex && *e->vertex)
		v = vtx_get(st, j, e->vertex, &fresh);
	struct tty_line l;
	tty_line_init(&l, st, 0);
	tty_line_sym(&l, SYM_WARN);
	add_job_prefix(st, &l, j);
	tty_line_color(&l, TTY_YELLOW);
	tty_line_str(&l, "WARNING: ");
	tty_line_color(&l, NULL);
	tty_line_str(&l, e->message ? e->message : "");
	if (e->file && *e->file && e->line > 0)
		tty_line_printf(&l, " (%s:%d)", e->file, e->line);
	else if (e->file && *e->file)
		tty_line_printf(&l, " (%s)", e->file);
	else if (e->line > 0)
		tty_line_printf(&l, " (line %d)", e->line);
	if (st->verbose && v)
		tty_line_printf(&l, " #%d", v->number);
	tty_perm_line(st, &l);
	tty_line_release(&l);
	if (!st->verbose)
		return;
	for (size_t i = 0; i < e->n_detail && e->detail; i++) {
		tty_line_init(&l, st, 0);
		tty_line_printf(&l, "   %s", e->detail[i]);
		tty_perm_line(st, &l);
		tty_line_release(&l);
	}
	if (e->url && *e->url) {
		tty_line_init(&l, st, 0);
		tty_line_printf(&l, "   More info: %s", e->url);
		tty_perm_line(st, &l);
		tty_line_release(&l);
	}
}

/* ---- jobs ------------------------------------------------------------------------------ */

static void on_job_started(struct tty *st, struct tty_job *j, const struct kiln_event *ev)
{
	const struct kiln_event_job_started *e = &ev->u.job_started;
	if (j->started)
		return;
	j->started = true;
	j->started_ns = ev->time_ns;
	replace_str(&j->frontend, e->frontend);
	replace_str(&j->backend, e->backend);
	j->declared_steps = e->steps;
	if (KILN_HAS_FIELD(ev, struct kiln_event, u.job_started.jobs))
		j->run_jobs = e->jobs;
	if (KILN_HAS_FIELD(ev, struct kiln_event, u.job_started.previous_duration_ns)) {
		replace_str(&j->log_dir, e->log_dir);
		j->previous_ns = e->previous_duration_ns;
	}
	if (!st->verbose)
		return;
	struct tty_line l;
	verbose_begin(st, &l, NULL);
	tty_line_printf(&l, "job %s started: target %s, platform %s, builder %s", j->id,
			j->target, *j->platform ? j->platform : "(native)", j->builder);
	if (j->frontend)
		tty_line_printf(&l, ", frontend %s", j->frontend);
	if (j->backend)
		tty_line_printf(&l, ", backend %s", j->backend);
	if (j->declared_steps)
		tty_line_printf(&l, ", %d steps", j->declared_steps);
	if (j->previous_ns) {
		char d[32];
		tty_fmt_duration(d, sizeof(d), j->previous_ns);
		tty_line_printf(&l, ", last build %s", d);
	}
	if (j->log_dir)
		tty_line_printf(&l, ", logs in %s", j->log_dir);
	verbose_end(st, &l);
}

static int cmp_number(const void *a, const void *b)
{
	const struct tty_vtx *x = *(const struct tty_vtx *const *)a;
	const struct tty_vtx *y = *(const struct tty_vtx *const *)b;
	return (x->number > y->number) - (x->number < y->number);
}

static void frame_line(struct tty *st, const char *corner, const char *text, size_t n,
		       const char *sgr)
{
	struct tty_line l;
	tty_line_init(&l, st, 0);
	tty_line_color(&l, TTY_RED);
	tty_line_str(&l, corner);
	tty_line_color(&l, sgr);
	tty_line_text(&l, text, n);
	tty_line_color(&l, NULL);
	tty_perm_line(st, &l);
	tty_line_release(&l);
}

/* The failure block: the failing step, its exit code, its last lines and
 * where its full log is. */
static void failure_block(struct tty *st, struct tty_vtx *v)
{
	const char *top = st->ascii ? "+- " : "\xe2\x94\x8c\xe2\x94\x80 ";
	const char *side = st->ascii ? "| " : "\xe2\x94\x82 ";
	const char *bottom = st->ascii ? "+- " : "\xe2\x94\x94\xe2\x94\x80 ";
	struct tty_line l;
	tty_line_init(&l, st, 0);
	tty_line_color(&l, TTY_RED);
	tty_line_str(&l, top);
	tty_line_color(&l, NULL);
	tty_line_sym(&l, SYM_FAILED);
	add_job_prefix(st, &l, v->job);
	tty_line_color(&l, TTY_BOLD);
	tty_line_str(&l, v->desc.text);
	tty_line_color(&l, NULL);
	if (v->desc.tag) {
		tty_line_color(&l, TTY_DIM);
		tty_line_printf(&l, " [%s]", v->desc.tag);
		tty_line_color(&l, NULL);
	}
	int code = tty_exit_code(v->error);
	tty_line_color(&l, TTY_RED);
	if (code >= 0)
		tty_line_printf(&l, "  exit code %d", code);
	tty_line_color(&l, TTY_DIM);
	size_t shown = v->ring_n < TTY_FAIL_LINES ? v->ring_n : TTY_FAIL_LINES;
	if (v->log_lines > shown)
		tty_line_printf(&l, "  (last %zu of %llu lines)", shown,
				(unsigned long long)v->log_lines);
	tty_perm_line(st, &l);
	tty_line_release(&l);

	if (!shown)
		frame_line(st, side, "(no output)", 11, TTY_DIM);
	size_t first = (v->ring_next + st->ring_cap - shown) % st->ring_cap;
	for (size_t i = 0; i < shown; i++) {
		const struct tty_buf *b = &v->ring[(first + i) % st->ring_cap];
		frame_line(st, side, b->p ? b->p : "", b->len, NULL);
	}
	struct tty_buf where = { 0 };
	if (v->job->log_dir && v->log_bytes) {
		const char *hex = strchr(v->digest, ':');
		tty_buf_addf(&where, "full log: %s/%s.log", v->job->log_dir,
			     hex ? hex + 1 : v->digest);
	} else if (v->error && *v->error) {
		tty_buf_addf(&where, "%s", v->error);
	} else {
		tty_buf_adds(&where, "no full log kept");
	}
	frame_line(st, bottom, where.p, where.len, TTY_DIM);
	tty_buf_release(&where);
}

static void summary_line(struct tty *st, struct tty_job *j, enum tty_sym sym, const char *sgr,
			 const char *what, int64_t ns)
{
	char d[32];
	tty_fmt_duration(d, sizeof(d), ns);
	struct tty_line l;
	tty_line_init(&l, st, 0);
	tty_line_sym(&l, sym);
	tty_line_color(&l, sgr);
	tty_line_printf(&l, "%s %s", what, d);
	tty_line_color(&l, NULL);
	if (multi(st) || strcmp(j->target, "default") != 0) {
		tty_line_str(&l, " for ");
		tty_line_color(&l, TTY_CYAN);
		add_label(&l, j);
		tty_line_color(&l, NULL);
	}
	tty_perm_line(st, &l);
	tty_line_release(&l);
}

/* Steps of the job: finished, of them cached, and failed. */
static void count_steps(const struct tty *st, const struct tty_job *j, uint32_t *done,
			uint32_t *cached, uint32_t *failed)
{
	*done = *cached = *failed = 0;
	for (size_t i = 0; i < st->n_v; i++) {
		const struct tty_vtx *v = st->v[i];
		if (v->job != j || !v->desc.is_step || !v->done)
			continue;
		(*done)++;
		*cached += v->cached;
		*failed += v->failed;
	}
}

static void success_summary(struct tty *st, struct tty_job *j, int64_t ns)
{
	summary_line(st, j, SYM_SUCCESS, TTY_GREEN ";" TTY_BOLD, "Built in", ns);
	uint32_t done, cached, failed;
	count_steps(st, j, &done, &cached, &failed);
	struct tty_line l;
	tty_line_init(&l, st, 0);
	tty_line_printf(&l, "   %u step%s, %u cached", done, done == 1 ? "" : "s", cached);
	if (done)
		tty_line_printf(&l, " (%u%% cache hits)", (unsigned)(cached * 100u / done));
	if (j->warnings)
		tty_line_printf(&l, ", %u warning%s", j->warnings, j->warnings == 1 ? "" : "s");
	tty_perm_line(st, &l);
	tty_line_release(&l);
	const char *digest = j->image_digest ? j->image_digest : j->config_digest;
	if (digest) {
		tty_line_init(&l, st, 0);
		tty_line_str(&l, "   ");
		tty_line_sym(&l, SYM_COMMIT);
		if (st->ascii || !j->image_digest)
			tty_line_str(&l, j->image_digest ? "image " : "config ");
		tty_line_color(&l, TTY_BOLD);
		tty_line_str(&l, digest);
		tty_line_color(&l, NULL);
		if (j->image_size > 0) {
			char b[32];
			tty_fmt_bytes(b, sizeof(b), j->image_size);
			tty_line_printf(&l, "  %s, %u layer%s", b, j->image_layers,
					j->image_layers == 1 ? "" : "s");
		}
		tty_perm_line(st, &l);
		tty_line_release(&l);
	}
	for (size_t i = 0; i < j->n_tags; i++) {
		tty_line_init(&l, st, 0);
		tty_line_str(&l, "   ");
		tty_line_sym(&l, SYM_TAG);
		if (st->ascii)
			tty_line_str(&l, "tag ");
		tty_line_color(&l, TTY_BOLD);
		tty_line_str(&l, j->tags[i]);
		tty_line_color(&l, NULL);
		tty_perm_line(st, &l);
		tty_line_release(&l);
	}
}

static void failure_summary(struct tty *st, struct tty_job *j, int64_t ns, bool cancelled)
{
	size_t n = 0;
	for (size_t i = 0; i < st->n_v; i++)
		if (st->v[i]->job == j && st->v[i]->failed)
			n++;
	if (n) {
		struct tty_vtx **f = tty_alloc(n * sizeof(*f));
		n = 0;
		for (size_t i = 0; i < st->n_v; i++)
			if (st->v[i]->job == j && st->v[i]->failed)
				f[n++] = st->v[i];
		qsort(f, n, sizeof(*f), cmp_number);
		for (size_t i = 0; i < n; i++)
			failure_block(st, f[i]);
		tty_free(f);
	}
	summary_line(st, j, cancelled ? SYM_CANCELLED : SYM_FAILED, TTY_RED ";" TTY_BOLD,
		     cancelled ? "Build cancelled after" : "Build failed after", ns);
	if (j->error && *j->error) {
		struct tty_line l;
		tty_line_init(&l, st, 0);
		tty_line_str(&l, "   ");
		tty_line_color(&l, TTY_RED);
		tty_line_str(&l, "ERROR: ");
		tty_line_color(&l, NULL);
		tty_line_str(&l, j->error);
		tty_perm_line(st, &l);
		tty_line_release(&l);
	}
}

/* Steps still running when their job ends were cut short. */
static void end_running(struct tty *st, struct tty_job *j, bool cancel)
{
	for (size_t i = 0; i < st->n_v; i++) {
		struct tty_vtx *v = st->v[i];
		if (v->job != j)
			continue;
		flush_partial(st, v);
		if (v->started && !v->done && cancel) {
			v->done = true;
			v->cancelled = true;
		}
	}
	settle(st, j, 0);
}

static void on_job_finished(struct tty *st, struct tty_job *j, const struct kiln_event *ev)
{
	const struct kiln_event_job_finished *e = &ev->u.job_finished;
	if (j->finished)
		return;
	j->finished = true;
	j->finished_ns = ev->time_ns;
	j->status = e->status;
	replace_str(&j->error, e->error);
	replace_str(&j->image_digest, e->image_digest);
	replace_str(&j->config_digest, e->config_digest);
	if (KILN_HAS_FIELD(ev, struct kiln_event, u.job_finished.image_layers)) {
		j->image_size = e->image_size;
		j->image_layers = e->image_layers;
	}
	end_running(st, j, e->status != 0);
	int64_t ns = j->started_ns && ev->time_ns > j->started_ns ? ev->time_ns - j->started_ns
								  : e->metrics.duration_ns;
	if (st->verbose) {
		const struct kiln_job_metrics *m = &e->metrics;
		char b[32];
		tty_fmt_bytes(b, sizeof(b), (int64_t)(m->log_bytes > INT64_MAX ? INT64_MAX
										 : m->log_bytes));
		struct tty_line l;
		verbose_begin(st, &l, NULL);
		tty_line_printf(&l, "job %s finished: status %d, %u vertices, %u completed, "
				"%u cached, %u failed, %u warnings, %s of logs",
				j->id, e->status, m->vertices, m->completed, m->cached,
				m->failed, m->warnings, b);
		verbose_end(st, &l);
	}
	if (e->status == 0)
		success_summary(st, j, ns);
	else
		failure_summary(st, j, ns, e->status == KILN_E_CANCELLED);
}

void tty_finish_all(struct tty *st)
{
	for (size_t i = 0; i < st->n_jobs; i++) {
		struct tty_job *j = st->jobs[i];
		if (!j->started || j->finished) {
			settle(st, j, 0);
			continue;
		}
		j->finished = true;
		end_running(st, j, true);
		summary_line(st, j, SYM_CANCELLED, TTY_RED ";" TTY_BOLD, "Interrupted after",
			     tty_now(st) - j->started_ns);
	}
}

/* ---- events -------------------------------------------------------------------------- */

void tty_on_event(struct tty *st, const struct kiln_event *ev)
{
	if (!ev->job || !kiln_event_kind_name(ev->kind))
		return; /* receivers ignore kinds they do not know */
	struct tty_job *j = tty_job_get(st, ev->job);
	bool fresh;
	switch (ev->kind) {
	case KILN_EVENT_JOB_STARTED:
		if (EVENT_HAS(ev, job_started))
			on_job_started(st, j, ev);
		break;
	case KILN_EVENT_JOB_FINISHED:
		if (EVENT_HAS(ev, job_finished))
			on_job_finished(st, j, ev);
		break;
	case KILN_EVENT_VERTEX:
		if (EVENT_HAS(ev, vertex))
			on_vertex(st, j, &ev->u.vertex);
		break;
	case KILN_EVENT_VERTEX_STATUS:
		if (EVENT_HAS(ev, status))
			on_status(st, j, &ev->u.status);
		break;
	case KILN_EVENT_VERTEX_LOG:
		if (EVENT_HAS(ev, log) && ev->u.log.vertex)
			on_log(st, vtx_get(st, j, ev->u.log.vertex, &fresh), &ev->u.log);
		break;
	case KILN_EVENT_WARNING:
		if (EVENT_HAS(ev, warning))
			on_warning(st, j, &ev->u.warning);
		break;
	}
	tty_settle(st);
}

void tty_free_model(struct tty *st)
{
	for (size_t i = 0; i < st->n_v; i++) {
		struct tty_vtx *v = st->v[i];
		tty_free(v->digest);
		tty_free(v->name);
		tty_free(v->error);
		tty_desc_release(&v->desc);
		tty_buf_release(&v->partial);
		for (size_t k = 0; k < st->ring_cap; k++)
			tty_buf_release(&v->ring[k]);
		tty_free(v->ring);
		for (size_t k = 0; k < v->n_items; k++) {
			tty_free(v->items[k].id);
			tty_free(v->items[k].name);
			tty_free(v->items[k].text);
		}
		tty_free(v->items);
		tty_free(v);
	}
	for (size_t i = 0; i < st->n_jobs; i++) {
		struct tty_job *j = st->jobs[i];
		tty_free(j->id);
		tty_free(j->target);
		tty_free(j->platform);
		tty_free(j->builder);
		tty_free(j->frontend);
		tty_free(j->backend);
		tty_free(j->log_dir);
		tty_free(j->error);
		tty_free(j->image_digest);
		tty_free(j->config_digest);
		for (size_t k = 0; k < j->n_tags; k++)
			tty_free(j->tags[k]);
		tty_free(j->tags);
		tty_free(j);
	}
	tty_free(st->v);
	tty_free(st->tab);
	tty_free(st->jobs);
}
