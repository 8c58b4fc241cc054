/*
 * draw.c: the frame. Permanent lines go above; under them, the live area
 * is redrawn in place: per running job a header (target, platform,
 * builder), one line per running step with a spinner and a timer, its
 * active status items (📥 layer downloads with bytes and speed) and its
 * last log lines, and the job's bar (Step N/M, percent, elapsed, ETA).
 *
 * A frame moves the cursor up over the previous live area and writes the
 * new permanent lines and live area over it in one write(2). Live lines are cut one column short of the width, so
 * nothing wraps and the count of lines to move up over is exact. The area
 * is fitted to the terminal's height: fewer log lines first, then fewer
 * status items, then "… N more" for steps that do not fit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "tty.h"

static const char *const spin_utf8[] = {
	"\xe2\xa0\x8b", "\xe2\xa0\x99", "\xe2\xa0\xb9", "\xe2\xa0\xb8", "\xe2\xa0\xbc",
	"\xe2\xa0\xb4", "\xe2\xa0\xa6", "\xe2\xa0\xa7", "\xe2\xa0\x87", "\xe2\xa0\x8f",
};
static const char *const spin_ascii[] = { "|", "/", "-", "\\" };

/* Eighths of a bar cell: "▏" … "▉". */
static const char *const eighths[] = {
	"", "\xe2\x96\x8f", "\xe2\x96\x8e", "\xe2\x96\x8d", "\xe2\x96\x8c",
	"\xe2\x96\x8b", "\xe2\x96\x8a", "\xe2\x96\x89",
};
#define FULL_CELL "\xe2\x96\x88" /* █ */
#define BAR_CELLS 20

int tty_perm_width(const struct tty *st)
{
	/* One column short, so that the cursor never waits at the margin;
	 * with emoji, two more: terminals that draw a symbol with U+FE0F
	 * two columns wide ("⚙️", "♻️") would otherwise wrap the line. */
	int w = st->cols - (st->ascii ? 1 : 3);
	return w > 1 ? w : 1;
}

void tty_perm_line(struct tty *st, struct tty_line *l)
{
	tty_line_finish(l);
	tty_buf_add(&st->perm, l->b.p, l->b.len);
	tty_buf_add(&st->perm, "\n", 1);
	if (st->n_perm == st->cap_perm) {
		st->cap_perm = st->cap_perm ? st->cap_perm * 2 : 32;
		st->perm_w = tty_realloc(st->perm_w, st->cap_perm * sizeof(*st->perm_w));
	}
	st->perm_w[st->n_perm++] = l->width;
}

/* One line over whatever the row showed: erase the row, write, and erase
 * what is left of the last row it takes (not when the line fills it: a
 * terminal waiting to wrap would erase the line's last character). */
static void put_line(struct tty *st, const char *p, size_t n, int width)
{
	tty_buf_adds(&st->out, "\x1b[2K");
	tty_buf_add(&st->out, p, n);
	if (!st->cols || width % st->cols)
		tty_buf_adds(&st->out, "\x1b[K");
	tty_buf_add(&st->out, "\n", 1);
}

/* ---- the live area ----------------------------------------------------------- */

struct frame {
	struct tty_line *lines;
	size_t n, cap;
};

/* How much of each job to show. */
struct fit {
	int logs;   /* log lines per step */
	int items;  /* status items per step */
	int steps;  /* steps per job (the rest: "… N more") */
};

static struct tty_line *frame_add(struct tty *st, struct frame *f)
{
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 16;
		f->lines = tty_realloc(f->lines, f->cap * sizeof(*f->lines));
	}
	struct tty_line *l = &f->lines[f->n++];
	tty_line_init(l, st, tty_perm_width(st));
	return l;
}

static void frame_release(struct frame *f)
{
	for (size_t i = 0; i < f->n; i++)
		tty_line_release(&f->lines[i]);
	tty_free(f->lines);
	*f = (struct frame){ 0 };
}

static const char *spinner(const struct tty *st, int64_t now)
{
	int64_t tick = now / TTY_FRAME_NS;
	if (tick < 0)
		tick = 0;
	if (st->ascii)
		return spin_ascii[tick % 4];
	return spin_utf8[tick % 10];
}

/* Columns of the indent under a step's name. */
static int sub_indent(const struct tty *st)
{
	return st->ascii ? 4 : 7;
}

static int cmp_item(const void *a, const void *b)
{
	const struct tty_item *x = *(const struct tty_item *const *)a;
	const struct tty_item *y = *(const struct tty_item *const *)b;
	return (x->order > y->order) - (x->order < y->order);
}

static void item_line(struct tty *st, struct frame *f, const struct tty_item *it)
{
	char a[32], b[32], c[48];
	struct tty_line right;
	tty_line_init(&right, st, 0);
	tty_line_color(&right, TTY_DIM);
	if (it->total > 0) {
		tty_fmt_bytes(a, sizeof(a), it->current);
		tty_fmt_bytes(b, sizeof(b), it->total);
		tty_line_printf(&right, "%s / %s", a, b);
		int64_t dt = it->timestamp_ns - it->first_ts;
		int64_t db = it->current - it->first_current;
		if (dt >= 100 * TTY_MS && db > 0) {
			tty_fmt_bytes(c, sizeof(c), (int64_t)((double)db * 1e9 / (double)dt));
			tty_line_printf(&right, "  %s/s", c);
		}
	} else if (it->current > 0) {
		tty_fmt_bytes(a, sizeof(a), it->current);
		tty_line_str(&right, a);
	}
	tty_line_finish(&right);
	struct tty_line *l = frame_add(st, f);
	tty_line_pad(l, sub_indent(st));
	if (st->ascii)
		tty_line_str(l, "- ");
	tty_line_sym(l, it->sym);
	int saved = tty_line_body(l, right.width);
	tty_line_str(l, it->text);
	tty_line_suffix(l, saved, &right);
	tty_line_release(&right);
}

static void log_line(struct tty *st, struct frame *f, const char *p, size_t n)
{
	struct tty_line *l = frame_add(st, f);
	tty_line_pad(l, sub_indent(st) - 2);
	tty_line_color(l, TTY_DIM);
	tty_line_str(l, st->ascii ? "| " : "\xe2\x94\x82 ");
	tty_line_text(l, p, n);
}

/* Shown in the live area: running, or finished and not yet settled. */
static bool is_live(const struct tty_vtx *v)
{
	return v->done ? !v->printed : v->started;
}

static void step_lines(struct tty *st, struct frame *f, const struct tty_vtx *v,
		       const struct fit *fit, int64_t now)
{
	char d[32];
	struct tty_line right;
	tty_line_init(&right, st, 0);
	tty_line_color(&right, TTY_DIM);
	int64_t end = v->done ? v->completed_ns : now;
	if (v->done && v->cached)
		tty_line_str(&right, "cached");
	else {
		tty_fmt_duration(d, sizeof(d), v->started_ns && end > v->started_ns
							 ? end - v->started_ns : 0);
		tty_line_str(&right, d);
	}
	tty_line_finish(&right);

	struct tty_line *l = frame_add(st, f);
	if (v->done) {
		/* just finished: its line moves up once it has settled */
		tty_line_sym(l, v->failed      ? SYM_FAILED
				: v->cancelled ? SYM_CANCELLED
				: v->cached    ? SYM_CACHED
					       : SYM_DONE);
		if (st->ascii)
			tty_line_str(l, "  ");
	} else {
		tty_line_str(l, "  ");
		tty_line_color(l, TTY_CYAN);
		tty_line_str(l, spinner(st, now));
		tty_line_color(l, NULL);
		tty_line_str(l, " ");
	}
	tty_line_sym(l, v->desc.kind);
	int saved = tty_line_body(l, right.width);
	tty_line_color(l, TTY_BOLD);
	tty_line_str(l, v->desc.text);
	tty_line_color(l, NULL);
	if (v->desc.tag) {
		tty_line_color(l, TTY_DIM);
		tty_line_printf(l, " [%s]", v->desc.tag);
		tty_line_color(l, NULL);
	}
	tty_line_suffix(l, saved, &right);
	tty_line_release(&right);
	if (v->done)
		return;

	/* active status items, oldest first */
	size_t n_active = 0;
	for (size_t i = 0; i < v->n_items; i++)
		n_active += !v->items[i].completed_ns;
	if (n_active && fit->items > 0) {
		const struct tty_item **act = tty_alloc(n_active * sizeof(*act));
		size_t k = 0;
		for (size_t i = 0; i < v->n_items; i++)
			if (!v->items[i].completed_ns)
				act[k++] = &v->items[i];
		qsort(act, k, sizeof(*act), cmp_item);
		size_t show = k <= (size_t)fit->items ? k : (size_t)fit->items - 1;
		for (size_t i = 0; i < show; i++)
			item_line(st, f, act[i]);
		if (show < k) {
			struct tty_line *m = frame_add(st, f);
			tty_line_pad(m, sub_indent(st));
			tty_line_color(m, TTY_DIM);
			tty_line_printf(m, "%s %zu more", st->ascii ? "..." : "\xe2\x80\xa6",
					k - show);
		}
		tty_free(act);
	}

	/* the last log lines, the held partial line last */
	if (fit->logs > 0) {
		bool partial = v->has_partial && v->partial.len > 0;
		size_t want = (size_t)fit->logs;
		size_t from_ring = v->ring_n;
		if (from_ring + partial > want)
			from_ring = want - partial;
		for (size_t i = v->ring_n - from_ring; i < v->ring_n; i++) {
			const struct tty_buf *b = tty_vtx_line(st, v, i);
			log_line(st, f, b->p ? b->p : "", b->len);
		}
		if (partial) {
			const char *p = v->partial.p;
			size_t n = v->partial.len;
			const char *cr = memrchr(p, '\r', n);
			if (cr && (size_t)(cr - p) + 1 < n) { /* what a terminal shows */
				n -= (size_t)(cr + 1 - p);
				p = cr + 1;
			}
			log_line(st, f, p, n);
		}
	}
}

/* Steps of j: total (M of "Step N/M"), finished, and a fraction done. */
static void job_progress(const struct tty *st, const struct tty_job *j, int *total,
			 int *done, double *frac)
{
	int known = 0, finished = 0;
	double part = 0;
	for (size_t i = 0; i < st->n_v; i++) {
		const struct tty_vtx *v = st->v[i];
		if (v->job != j || !v->desc.is_step)
			continue;
		known++;
		if (v->done) {
			finished++;
			continue;
		}
		if (!v->started)
			continue;
		int64_t cur = 0, tot = 0;
		for (size_t k = 0; k < v->n_items; k++)
			if (v->items[k].total > 0 && v->items[k].sym == SYM_DOWNLOAD) {
				cur += v->items[k].current;
				tot += v->items[k].total;
			}
		if (tot > 0)
			part += (double)(cur > tot ? tot : cur) / (double)tot;
	}
	int m = known;
	if (j->named_total > m)
		m = j->named_total;
	if (!known && j->declared_steps > m)
		m = j->declared_steps;
	if (finished > m)
		m = finished;
	*total = m;
	*done = finished;
	*frac = m ? ((double)finished + part) / (double)m : 0;
	if (*frac > 1)
		*frac = 1;
}

static void bar_line(struct tty *st, struct frame *f, const struct tty_job *j, int64_t now)
{
	int total, done;
	double frac;
	job_progress(st, j, &total, &done, &frac);
	int64_t elapsed = j->started_ns && now > j->started_ns ? now - j->started_ns : 0;
	int64_t eta = -1;
	if (j->previous_ns > elapsed)
		eta = j->previous_ns - elapsed;
	else if (frac >= 0.05 && elapsed >= TTY_NS)
		eta = (int64_t)((double)elapsed * (1 - frac) / frac);

	struct tty_line *l = frame_add(st, f);
	tty_line_str(l, "  ");
	int eights = (int)(frac * BAR_CELLS * 8);
	tty_line_color(l, TTY_GREEN);
	if (st->ascii) {
		tty_line_str(l, "[");
		for (int i = 0; i < BAR_CELLS; i++)
			tty_line_str(l, i < eights / 8 ? "#" : ".");
		tty_line_str(l, "]");
	} else {
		tty_line_color(l, TTY_DIM);
		tty_line_str(l, "\xe2\x96\x95"); /* ▕ */
		tty_line_color(l, TTY_GREEN);
		int cells = 0;
		for (; cells < eights / 8; cells++)
			tty_line_str(l, FULL_CELL);
		if (cells < BAR_CELLS && eights % 8) {
			tty_line_str(l, eighths[eights % 8]);
			cells++;
		}
		for (; cells < BAR_CELLS; cells++)
			tty_line_str(l, " ");
		tty_line_color(l, TTY_DIM);
		tty_line_str(l, "\xe2\x96\x8f"); /* ▏ */
	}
	tty_line_color(l, NULL);
	char d[32];
	tty_fmt_duration(d, sizeof(d), elapsed);
	tty_line_printf(l, " Step %d/%d  %d%%  %s", done, total, (int)(frac * 100), d);
	if (eta >= 0) {
		tty_fmt_duration(d, sizeof(d), eta);
		tty_line_color(l, TTY_DIM);
		tty_line_printf(l, "  ETA %s", d);
		tty_line_color(l, NULL);
	}
}

static int cmp_start(const void *a, const void *b)
{
	const struct tty_vtx *x = *(const struct tty_vtx *const *)a;
	const struct tty_vtx *y = *(const struct tty_vtx *const *)b;
	return (x->start_order > y->start_order) - (x->start_order < y->start_order);
}

static void job_section(struct tty *st, struct frame *f, const struct tty_job *j,
			const struct fit *fit, int64_t now)
{
	struct tty_line *h = frame_add(st, f);
	tty_line_sym(h, SYM_JOB);
	tty_line_color(h, TTY_BOLD);
	tty_line_str(h, *j->target ? j->target : j->id);
	tty_line_color(h, NULL);
	tty_line_str(h, st->ascii ? " - " : " \xc2\xb7 ");
	tty_line_str(h, *j->platform ? j->platform : "native");
	if (*j->builder) {
		tty_line_str(h, st->ascii ? " - " : " \xc2\xb7 ");
		tty_line_str(h, j->builder);
	}
	if (j->backend) {
		tty_line_color(h, TTY_DIM);
		tty_line_printf(h, " (%s)", j->backend);
		tty_line_color(h, NULL);
	}

	size_t n = 0;
	for (size_t i = 0; i < st->n_v; i++)
		n += st->v[i]->job == j && is_live(st->v[i]);
	if (n) {
		const struct tty_vtx **run = tty_alloc(n * sizeof(*run));
		size_t k = 0;
		for (size_t i = 0; i < st->n_v; i++)
			if (st->v[i]->job == j && is_live(st->v[i]))
				run[k++] = st->v[i];
		qsort(run, k, sizeof(*run), cmp_start);
		size_t show = k <= (size_t)fit->steps ? k : (size_t)(fit->steps > 0 ? fit->steps - 1 : 0);
		for (size_t i = 0; i < show; i++)
			step_lines(st, f, run[i], fit, now);
		if (show < k) {
			struct tty_line *m = frame_add(st, f);
			tty_line_str(m, "  ");
			tty_line_color(m, TTY_DIM);
			tty_line_printf(m, "%s %zu more step%s running",
					st->ascii ? "..." : "\xe2\x80\xa6", k - show,
					k - show == 1 ? "" : "s");
		}
		tty_free(run);
	}
	bar_line(st, f, j, now);
}

static void compose(struct tty *st, struct frame *f, int64_t now)
{
	int max_rows = st->rows - 2;
	if (max_rows < 1)
		max_rows = 1;
	struct fit fit = { st->log_lines, 3, 1 << 20 };
	for (;;) {
		for (size_t i = 0; i < st->n_jobs; i++)
			if (st->jobs[i]->started && !st->jobs[i]->finished)
				job_section(st, f, st->jobs[i], &fit, now);
		if ((int)f->n <= max_rows)
			return;
		/* too tall: show less and compose again */
		int steps = 0;
		for (size_t i = 0; i < st->n_v; i++)
			steps += is_live(st->v[i]) && !st->v[i]->job->finished;
		if (fit.logs > 0)
			fit.logs--;
		else if (fit.items > 0)
			fit.items--;
		else if (fit.steps > 1 && fit.steps > steps)
			fit.steps = steps > 1 ? steps - 1 : 1;
		else if (fit.steps > 1)
			fit.steps--;
		else
			break;
		frame_release(f);
	}
	/* still too tall (many jobs): keep the last rows */
	size_t drop = f->n - (size_t)max_rows;
	for (size_t i = 0; i < drop; i++)
		tty_line_release(&f->lines[i]);
	memmove(f->lines, f->lines + drop, (size_t)max_rows * sizeof(*f->lines));
	f->n = (size_t)max_rows;
}

/* ---- the frame ------------------------------------------------------------------- */

void tty_flush(struct tty *st)
{
	const char *p = st->out.p;
	size_t n = st->out.len;
	while (n > 0 && !st->write_errno) {
		ssize_t w = write(st->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			st->write_errno = w < 0 ? errno : EIO;
			break;
		}
		p += w;
		n -= (size_t)w;
	}
	st->out.len = 0;
}

static void update_size(struct tty *st)
{
	struct winsize ws;
	if (st->is_tty && ioctl(st->fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 &&
	    ws.ws_row > 0) {
		st->cols = ws.ws_col;
		st->rows = ws.ws_row;
	}
}

/*
 * A frame: up over the previous live area, then each permanent line and
 * each live line over the rows there, and the rows of the old area that
 * are left over erased. No "erase to the end of the screen": tmux (with
 * scroll-on-clear) would push a screen erased from its top into the
 * scrollback, and the scrollback must hold each finished step once.
 */
void tty_draw(struct tty *st, bool final)
{
	st->out.len = 0;
	if (!st->live) {
		/* TERM=dumb: no cursor movement, permanent lines only */
		tty_buf_add(&st->out, st->perm.p, st->perm.len);
		st->perm.len = 0;
		st->n_perm = 0;
		tty_flush(st);
		return;
	}
	update_size(st);
	int old_rows = 0;
	if (st->live_rows > 0) {
		/* A narrower terminal may have rewrapped the old lines. */
		for (int i = 0; i < st->live_rows; i++) {
			int w = st->live_w[i];
			old_rows += (st->cols < st->live_cols && w > st->cols)
					    ? (w + st->cols - 1) / st->cols : 1;
		}
		tty_buf_addf(&st->out, "\r\x1b[%dA", old_rows);
	}
	if (!final && st->is_tty && !st->cursor_hidden) {
		tty_buf_adds(&st->out, "\x1b[?25l");
		st->cursor_hidden = true;
	}
	int new_rows = 0;
	const char *p = st->perm.p;
	for (size_t i = 0; i < st->n_perm; i++) {
		const char *nl = memchr(p, '\n', (size_t)(st->perm.p + st->perm.len - p));
		int w = st->perm_w[i];
		put_line(st, p, (size_t)(nl - p), w);
		new_rows += st->cols > 0 && w > st->cols ? (w + st->cols - 1) / st->cols : 1;
		p = nl + 1;
	}
	st->perm.len = 0;
	st->n_perm = 0;
	st->live_rows = 0;
	if (!final) {
		struct frame f = { 0 };
		compose(st, &f, tty_now(st));
		if ((int)f.n > st->live_cap) {
			st->live_cap = (int)f.n;
			st->live_w = tty_realloc(st->live_w, (size_t)st->live_cap * sizeof(int));
		}
		for (size_t i = 0; i < f.n; i++) {
			tty_line_finish(&f.lines[i]);
			put_line(st, f.lines[i].b.p, f.lines[i].b.len, f.lines[i].width);
			st->live_w[i] = f.lines[i].width;
		}
		new_rows += (int)f.n;
		st->live_rows = (int)f.n;
		st->live_cols = st->cols;
		frame_release(&f);
	}
	if (new_rows < old_rows) {
		/* erase what is left of the old area, and come back */
		for (int i = new_rows; i < old_rows; i++)
			tty_buf_adds(&st->out, "\x1b[2K\n");
		tty_buf_addf(&st->out, "\x1b[%dA", old_rows - new_rows);
	}
	if (final && st->cursor_hidden) {
		tty_buf_adds(&st->out, "\x1b[?25h");
		st->cursor_hidden = false;
	}
	if (st->out.len)
		st->frames++;
	tty_flush(st);
}
