/* trace.c: one build's timeline as HTML (inline SVG) or SVG (trace.h,
 * docs/trace.md).
 *
 * Layout. Times are made relative to the build's start (the job's start,
 * or the earliest vertex start when that is earlier or unknown) and mapped
 * linearly onto PLOT_W pixels. Every vertex that started gets a bar, at
 * least MIN_BAR_W wide, with a label (its name, cut at LABEL_MAX
 * characters) inside the bar when it fits, else just right of it (or left,
 * at the right edge). Lanes are a greedy interval colouring of what each
 * bar covers on screen, bar and label together, taken in order of start:
 * a bar goes into the first lane whose last occupant ends LANE_GAP pixels
 * before it begins. Two vertices that overlap in time therefore never
 * share a lane, and no label covers another bar.
 *
 * Vertices that never started (started_ns == 0) get no bar: they are
 * listed under the chart ("Not started"), and in the HTML table. A vertex
 * that started but has no completion time is drawn up to the end of the
 * build and marked "did not complete".
 *
 * The output depends only on the input: vertices are sorted by (start,
 * end, name, digest, input position) and nothing reads a clock. The whole
 * document is built in memory and written with one fwrite. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"
#include "util.h"

#define MARGIN_L 16.0
#define MARGIN_R 16.0
#define PLOT_W 960.0
#define LANE_H 22
#define BAR_H 16
#define MIN_BAR_W 3.0
#define LANE_GAP 4.0
#define CHAR_W 7.5     /* a 12px monospace cell, with room to spare */
#define LABEL_PAD 4.0
#define LABEL_MAX 48   /* code points of a name shown on the chart */
#define FONT "DejaVu Sans Mono, Menlo, Consolas, monospace"

#define NS_PER_US INT64_C(1000)
#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S INT64_C(1000000000)

enum state { ST_RAN, ST_CACHED, ST_FAILED, ST_CANCELED, ST_OPEN };

static const struct {
	const char *cls, *word, *fill, *stroke, *text;
} look[] = {
	[ST_RAN] = { "ran", "ran", "#3b7dd8", "#2a5ea8", "#ffffff" },
	[ST_CACHED] = { "cached", "cached", "url(#kiln-hatch)", "#8a9099", "#1f2328" },
	[ST_FAILED] = { "failed", "failed", "#d1242f", "#a40e26", "#ffffff" },
	[ST_CANCELED] = { "canceled", "canceled", "#d4a72c", "#9a6700", "#1f2328" },
	[ST_OPEN] = { "open", "did not complete", "#8fb8ee", "#3b7dd8", "#1f2328" },
};

struct item {
	const struct kiln_trace_vertex *v;
	size_t pos;          /* position in the input */
	int64_t s, e;        /* relative to the origin, ns; e >= s; s < 0:
			      * started before the build did */
	enum state st;
	int lane;
	double x, w;         /* the bar */
	double lx;           /* the label's start */
	bool label_in;       /* label inside the bar */
	double occ0, occ1;   /* what bar and label cover on screen */
	char *label;         /* cut name, not escaped */
};

/* ---- text ------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not
 * one; *cp gets the code point. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t v, min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		len = 2; v = c & 0x1f; min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3; v = c & 0x0f; min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4; v = c & 0x07; min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

/* Append s escaped for XML text (attr false) or a double- or
 * single-quoted attribute value (attr true). Bytes that are not UTF-8,
 * and characters XML 1.0 forbids (C0 controls but tab and newlines,
 * U+FFFE, U+FFFF), become U+FFFD, so the document stays well-formed
 * whatever the engine named a vertex. */
static void esc(struct kiln_sb *sb, const char *s, bool attr)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p);
	while (n > 0) {
		uint32_t cp;
		size_t len = utf8_seq(p, n, &cp);
		if (len == 0) {
			kiln__sb_adds(sb, "\xef\xbf\xbd");
			p++, n--;
			continue;
		}
		switch (cp) {
		case '&': kiln__sb_adds(sb, "&amp;"); break;
		case '<': kiln__sb_adds(sb, "&lt;"); break;
		case '>': kiln__sb_adds(sb, "&gt;"); break;
		case '"': kiln__sb_adds(sb, "&quot;"); break;
		case '\'': kiln__sb_adds(sb, "&#39;"); break;
		case '\t': kiln__sb_adds(sb, attr ? "&#9;" : "\t"); break;
		case '\n': kiln__sb_adds(sb, attr ? "&#10;" : "\n"); break;
		case '\r': kiln__sb_adds(sb, "&#13;"); break;
		default:
			if (cp < 0x20 || cp == 0xfffe || cp == 0xffff)
				kiln__sb_adds(sb, "\xef\xbf\xbd");
			else
				kiln__sb_add(sb, p, len);
		}
		p += len, n -= len;
	}
}

/* The name as a one-line chart label of at most LABEL_MAX code points
 * ("…" marks a cut); *cells gets its width in character cells. Invalid
 * UTF-8 is left for esc() to replace (one cell a byte). */
static char *make_label(const char *name, size_t *cells)
{
	struct kiln_sb sb = KILN_SB_INIT;
	const unsigned char *p = (const unsigned char *)name;
	size_t n = strlen(name), count = 0;
	while (n > 0) {
		uint32_t cp;
		size_t len = utf8_seq(p, n, &cp);
		if (len == 0)
			len = 1;
		if (count == LABEL_MAX - 1 && n > len) {
			kiln__sb_adds(&sb, "\xe2\x80\xa6");
			count++;
			break;
		}
		if (len == 1 && (*p == '\n' || *p == '\t' || *p == '\r'))
			kiln__sb_adds(&sb, " ");
		else
			kiln__sb_add(&sb, p, len);
		count++;
		p += len, n -= len;
	}
	*cells = count;
	return kiln__sb_detach(&sb);
}

/* Fixed-point v/unit with dec decimals (dec <= 3), v >= 0. */
static void add_fixed(struct kiln_sb *sb, int64_t v, int64_t unit, int dec)
{
	int64_t ip = v / unit, frac = v % unit;
	kiln__sb_addf(sb, "%lld", (long long)ip);
	if (dec > 0) {
		int64_t div = unit;
		for (int i = 0; i < dec; i++)
			div /= 10;
		kiln__sb_addf(sb, ".%0*lld", dec, (long long)(frac / (div ? div : 1)));
	}
}

/* Milliseconds with three decimals, cut toward zero, for data-*-ms. */
static void add_ms(struct kiln_sb *sb, int64_t ns)
{
	if (ns < 0) {
		kiln__sb_adds(sb, "-");
		ns = ns == INT64_MIN ? INT64_MAX : -ns;
	}
	add_fixed(sb, ns, NS_PER_MS, 3);
}

/* A duration as people read it: 3.19s, 42ms, 0.4ms. */
static void add_dur(struct kiln_sb *sb, int64_t ns)
{
	if (ns < 0) {
		kiln__sb_adds(sb, "-");
		ns = ns == INT64_MIN ? INT64_MAX : -ns;
	}
	if (ns >= NS_PER_S) {
		add_fixed(sb, ns, NS_PER_S, 2);
		kiln__sb_adds(sb, "s");
	} else if (ns >= 10 * NS_PER_MS) {
		add_fixed(sb, ns, NS_PER_MS, 0);
		kiln__sb_adds(sb, "ms");
	} else {
		add_fixed(sb, ns, NS_PER_MS, 1);
		kiln__sb_adds(sb, "ms");
	}
}

static const char *vname(const struct kiln_trace_vertex *v)
{
	return v->name && v->name[0] ? v->name : v->digest && v->digest[0] ? v->digest : "(unnamed)";
}

static bool ends_with(const char *s, const char *tail)
{
	size_t a = strlen(s), b = strlen(tail);
	return a >= b && memcmp(s + a - b, tail, b) == 0;
}

/* ---- layout ---------------------------------------------------------- */

static int cmp_str(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "");
}

static int cmp_item(const void *pa, const void *pb)
{
	const struct item *a = pa, *b = pb;
	if (a->s != b->s)
		return a->s < b->s ? -1 : 1;
	if (a->e != b->e)
		return a->e < b->e ? -1 : 1;
	int c = cmp_str(a->v->name, b->v->name);
	if (c == 0)
		c = cmp_str(a->v->digest, b->v->digest);
	if (c == 0 && a->pos != b->pos)
		c = a->pos < b->pos ? -1 : 1;
	return c;
}

static int cmp_notrun(const void *pa, const void *pb)
{
	const struct item *a = pa, *b = pb;
	int c = cmp_str(vname(a->v), vname(b->v));
	if (c == 0)
		c = cmp_str(a->v->digest, b->v->digest);
	if (c == 0 && a->pos != b->pos)
		c = a->pos < b->pos ? -1 : 1;
	return c;
}

struct layout {
	struct item *ran;      /* bars, sorted, with lanes */
	size_t n_ran;
	struct item *notrun;   /* never started, sorted by name */
	size_t n_notrun;
	int64_t origin;        /* absolute ns of x = 0 */
	int64_t span;          /* ns covered by the axis (> 0) */
	int64_t wall;          /* the build's duration, ns */
	int lanes;
	size_t n_run, n_cached, n_failed, n_idle; /* ran uncached, cached, error, neither */
};

static enum state state_of(const struct kiln_trace_vertex *v)
{
	if (v->error)
		return ends_with(v->error, "context canceled") ? ST_CANCELED : ST_FAILED;
	if (v->cached)
		return ST_CACHED;
	return v->completed_ns <= 0 ? ST_OPEN : ST_RAN;
}

static double xpos(const struct layout *L, int64_t rel)
{
	return MARGIN_L + (double)rel * PLOT_W / (double)L->span;
}

static void layout(struct layout *L, const struct kiln_trace *t)
{
	memset(L, 0, sizeof(*L));
	size_t n = t->vertices ? t->n_vertices : 0;
	L->ran = kiln__xcalloc(n, sizeof(struct item));
	L->notrun = kiln__xcalloc(n, sizeof(struct item));

	/* origin: the job's start. A vertex may have started before it:
	 * BuildKit runs an op two builds share once and reports it to both
	 * with the first one's times. Such bars are cut at the left edge.
	 * When every vertex started before the job, the engine's clock is
	 * behind kiln's: then (or without a job start) the earliest vertex
	 * start is the origin. */
	int64_t first = INT64_MAX;
	for (size_t i = 0; i < n; i++)
		if (t->vertices[i].started_ns > 0 && t->vertices[i].started_ns < first)
			first = t->vertices[i].started_ns;
	int64_t origin = t->started_ns;
	if (origin <= 0) {
		origin = first == INT64_MAX ? 0 : first;
	} else {
		bool any_after = false;
		for (size_t i = 0; i < n; i++)
			if (t->vertices[i].started_ns >= origin)
				any_after = true;
		if (!any_after && first != INT64_MAX)
			origin = first;
	}
	int64_t end = t->finished_ns > origin ? t->finished_ns - origin : 0;
	for (size_t i = 0; i < n; i++) {
		const struct kiln_trace_vertex *v = &t->vertices[i];
		if (v->started_ns <= 0)
			continue;
		if (v->started_ns - origin > end)
			end = v->started_ns - origin;
		if (v->completed_ns > 0 && v->completed_ns - origin > end)
			end = v->completed_ns - origin;
	}
	L->origin = origin;
	L->span = end >= NS_PER_MS ? end : NS_PER_MS;
	/* the job's own duration when it is known: a vertex another build
	 * shares (BuildKit runs an identical op once for all) may have
	 * started before this job did */
	if (t->started_ns > 0 && t->finished_ns >= t->started_ns)
		L->wall = t->finished_ns - t->started_ns;
	else
		L->wall = end;

	for (size_t i = 0; i < n; i++) {
		const struct kiln_trace_vertex *v = &t->vertices[i];
		struct item *it;
		if (v->started_ns <= 0) {
			it = &L->notrun[L->n_notrun++];
		} else {
			it = &L->ran[L->n_ran++];
			it->s = v->started_ns - origin;
			if (v->completed_ns <= 0)
				it->e = end;  /* still running when the record ends */
			else
				it->e = v->completed_ns - origin;
			if (it->e < it->s)
				it->e = it->s;
		}
		it->v = v;
		it->pos = i;
		it->st = state_of(v);
		if (v->cached)
			L->n_cached++;
		else if (v->started_ns > 0)
			L->n_run++;
		else
			L->n_idle++;
		if (v->error)
			L->n_failed++;
	}
	qsort(L->ran, L->n_ran, sizeof(struct item), cmp_item);
	qsort(L->notrun, L->n_notrun, sizeof(struct item), cmp_notrun);

	/* bars, labels and lanes */
	double *lane_end = kiln__xcalloc(L->n_ran, sizeof(double));
	const double right = MARGIN_L + PLOT_W;
	for (size_t i = 0; i < L->n_ran; i++) {
		struct item *it = &L->ran[i];
		size_t cells;
		it->label = make_label(vname(it->v), &cells);
		if (it->s < 0)
			cells += 2;  /* "« " */
		if (it->st == ST_CACHED)
			cells += 7;  /* "CACHED " */
		else if (it->st == ST_FAILED)
			cells += 6;  /* "ERROR " */
		double lw = (double)cells * CHAR_W + 2 * LABEL_PAD;
		it->x = xpos(L, it->s > 0 ? it->s : 0);
		it->w = xpos(L, it->e > 0 ? it->e : 0) - it->x;
		if (it->w < MIN_BAR_W)
			it->w = MIN_BAR_W;
		if (it->x + it->w > right)  /* a minimal bar at the very end */
			it->x = right - it->w;
		if (lw <= it->w) {
			it->label_in = true;
			it->lx = it->x + LABEL_PAD;
			it->occ0 = it->x;
			it->occ1 = it->x + it->w;
		} else if (it->x + it->w + lw <= right) {
			it->lx = it->x + it->w + LABEL_PAD;
			it->occ0 = it->x;
			it->occ1 = it->x + it->w + lw;
		} else {  /* no room on the right: label left of the bar */
			it->lx = it->x - lw + LABEL_PAD;
			it->occ0 = it->x - lw;
			it->occ1 = it->x + it->w;
		}
		int lane = 0;
		while (lane < L->lanes && lane_end[lane] + LANE_GAP > it->occ0)
			lane++;
		if (lane == L->lanes)
			L->lanes++;
		lane_end[lane] = it->occ1;
		it->lane = lane;
	}
	free(lane_end);
}

static void layout_release(struct layout *L)
{
	for (size_t i = 0; i < L->n_ran; i++)
		free(L->ran[i].label);
	free(L->ran);
	free(L->notrun);
}

/* ---- SVG ------------------------------------------------------------- */

/* The axis's tick step: 1, 2 or 5 times a power of ten ns, about ten
 * ticks over span. */
static int64_t tick_step(int64_t span)
{
	static const int64_t mant[] = { 1, 2, 5 };
	int64_t need = span / 10 + (span % 10 != 0);
	for (int64_t p = 1; p <= INT64_MAX / 50; p *= 10)
		for (int i = 0; i < 3; i++)
			if (mant[i] * p >= need)
				return mant[i] * p;
	return need;  /* a span of centuries: a damaged record */
}

/* A tick label: seconds for a build of a second or more, else ms, with
 * the decimals the step needs. */
static void add_tick(struct kiln_sb *sb, int64_t v, int64_t span, int64_t step)
{
	int64_t unit = span >= NS_PER_S ? NS_PER_S : span >= NS_PER_MS ? NS_PER_MS : NS_PER_US;
	const char *word = unit == NS_PER_S ? "s" : unit == NS_PER_MS ? "ms" : "\xc2\xb5s";
	int dec = 0;
	for (int64_t d = unit; d > step && dec < 3; d /= 10)
		dec++;
	add_fixed(sb, v, unit, dec);
	kiln__sb_adds(sb, word);
}

static void svg_title(struct kiln_sb *sb, const struct item *it)
{
	const struct kiln_trace_vertex *v = it->v;
	kiln__sb_adds(sb, "<title>");
	esc(sb, vname(v), false);
	kiln__sb_adds(sb, "\n");
	add_dur(sb, it->e - it->s);
	kiln__sb_addf(sb, ", %s", look[it->st].word);
	if (v->cached && it->st != ST_CACHED)
		kiln__sb_adds(sb, " (cached)");
	kiln__sb_adds(sb, ", from ");
	add_dur(sb, it->s);
	kiln__sb_adds(sb, " to ");
	add_dur(sb, it->e);
	if (it->s < 0)
		kiln__sb_adds(sb, "\nstarted before this build: shared with another build on the "
			      "engine, or the engine's clock is behind");
	if (v->error) {
		kiln__sb_adds(sb, "\nerror: ");
		esc(sb, v->error, false);
	}
	if (v->digest) {
		kiln__sb_adds(sb, "\n");
		esc(sb, v->digest, false);
	}
	kiln__sb_adds(sb, "</title>");
}

static void svg_bar(struct kiln_sb *sb, const struct item *it, int top)
{
	const struct kiln_trace_vertex *v = it->v;
	int y = top + it->lane * LANE_H;
	kiln__sb_addf(sb, "<g class=\"bar %s%s\" data-digest=\"", look[it->st].cls,
		      it->s < 0 ? " early" : "");
	esc(sb, v->digest, true);
	kiln__sb_adds(sb, "\" data-name=\"");
	esc(sb, v->name, true);
	kiln__sb_adds(sb, "\" data-start-ms=\"");
	add_ms(sb, it->s);
	kiln__sb_adds(sb, "\" data-end-ms=\"");
	add_ms(sb, it->e);
	kiln__sb_addf(sb, "\" data-cached=\"%s\" data-lane=\"%d\" data-error=\"",
		      v->cached ? "true" : "false", it->lane);
	esc(sb, v->error, true);
	kiln__sb_adds(sb, "\">");
	svg_title(sb, it);
	kiln__sb_addf(sb, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" rx=\"2\" "
		      "fill=\"%s\" stroke=\"%s\"%s/>",
		      it->x, y + (LANE_H - BAR_H) / 2, it->w, BAR_H, look[it->st].fill,
		      look[it->st].stroke, it->st == ST_OPEN ? " stroke-dasharray=\"3 2\"" : "");
	kiln__sb_addf(sb, "<text x=\"%.1f\" y=\"%d\" fill=\"%s\">", it->lx,
		      y + LANE_H / 2 + 4, it->label_in ? look[it->st].text : "#1f2328");
	if (it->s < 0)
		kiln__sb_adds(sb, "\xc2\xab ");
	if (it->st == ST_CACHED)
		kiln__sb_adds(sb, "<tspan font-weight=\"bold\">CACHED</tspan> ");
	else if (it->st == ST_FAILED)
		kiln__sb_addf(sb, "<tspan font-weight=\"bold\"%s>ERROR</tspan> ",
			      it->label_in ? "" : " fill=\"#d1242f\"");
	esc(sb, it->label, false);
	kiln__sb_adds(sb, "</text></g>\n");
}

static void svg_legend_item(struct kiln_sb *sb, double *x, int y, enum state st)
{
	kiln__sb_addf(sb, "<rect x=\"%.1f\" y=\"%d\" width=\"14\" height=\"10\" rx=\"2\" "
		      "fill=\"%s\" stroke=\"%s\"%s/><text x=\"%.1f\" y=\"%d\">%s</text>",
		      *x, y - 9, look[st].fill, look[st].stroke,
		      st == ST_OPEN ? " stroke-dasharray=\"3 2\"" : "", *x + 19, y, look[st].word);
	*x += 19 + (double)strlen(look[st].word) * CHAR_W + 18;
}

static void summary_text(struct kiln_sb *sb, const struct kiln_trace *t, const struct layout *L)
{
	if (t->status == 0)
		kiln__sb_adds(sb, "succeeded");
	else
		kiln__sb_addf(sb, "failed (status %d)", t->status);
	kiln__sb_adds(sb, " in ");
	add_dur(sb, L->wall);
	kiln__sb_addf(sb, "; %zu vertices: %zu ran, %zu cached, %zu failed, %zu not started",
		      L->n_ran + L->n_notrun, L->n_run, L->n_cached, L->n_failed, L->n_idle);
}

/* The chart as one <svg> element; standalone adds the XML declaration's
 * namespace and the build's header lines. */
static void svg(struct kiln_sb *sb, const struct kiln_trace *t, const struct layout *L,
		bool standalone)
{
	int head = standalone ? 46 : 0;
	int axis_y = head + 18;          /* tick labels' baseline */
	int top = axis_y + 10;           /* first lane */
	int lanes_h = (L->lanes ? L->lanes : 1) * LANE_H;
	int y = top + lanes_h + 24;      /* legend baseline */
	int notrun_y = y + 26;
	int height = notrun_y + (L->n_notrun ? 18 + (int)L->n_notrun * 16 : 0);
	double width = MARGIN_L + PLOT_W + MARGIN_R;

	kiln__sb_addf(sb, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"kiln-trace\" "
		      "width=\"%.0f\" height=\"%d\" viewBox=\"0 0 %.0f %d\" "
		      "font-family=\"%s\" font-size=\"12\" fill=\"#1f2328\" "
		      "data-lanes=\"%d\" data-span-ms=\"",
		      width, height, width, height, FONT, L->lanes);
	add_ms(sb, L->span);
	kiln__sb_adds(sb, "\" role=\"img\">\n<title>kiln build ");
	esc(sb, t->id, false);
	kiln__sb_adds(sb, "</title>\n");
	kiln__sb_adds(sb, "<defs><pattern id=\"kiln-hatch\" width=\"6\" height=\"6\" "
		      "patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">"
		      "<rect width=\"6\" height=\"6\" fill=\"#e4e7eb\"/>"
		      "<rect width=\"3\" height=\"6\" fill=\"#c4c9d0\"/></pattern></defs>\n");
	kiln__sb_addf(sb, "<rect class=\"background\" width=\"%.0f\" height=\"%d\" fill=\"#ffffff\"/>\n",
		      width, height);
	if (standalone) {
		kiln__sb_addf(sb, "<text x=\"%.0f\" y=\"20\" font-size=\"15\" font-weight=\"bold\">"
			      "kiln build ", MARGIN_L);
		esc(sb, t->id, false);
		if (t->title && t->title[0]) {
			kiln__sb_adds(sb, " \xe2\x80\x94 ");
			esc(sb, t->title, false);
		}
		kiln__sb_addf(sb, "</text>\n<text x=\"%.0f\" y=\"38\">", MARGIN_L);
		summary_text(sb, t, L);
		kiln__sb_adds(sb, "</text>\n");
	}

	/* axis: ticks and grid lines */
	int64_t step = tick_step(L->span);
	kiln__sb_addf(sb, "<g class=\"axis\" stroke=\"#d0d7de\">"
		      "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#8c959f\"/>\n",
		      MARGIN_L, top - 2, MARGIN_L + PLOT_W, top - 2);
	for (int64_t v = 0; v <= L->span; v += step) {
		double x = xpos(L, v);
		kiln__sb_addf(sb, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>"
			      "<text x=\"%.1f\" y=\"%d\" stroke=\"none\" fill=\"#57606a\" "
			      "text-anchor=\"%s\">",
			      x, top - 6, x, top + lanes_h, x, axis_y,
			      v == 0 ? "start" : x > MARGIN_L + PLOT_W - 30 ? "end" : "middle");
		add_tick(sb, v, L->span, step);
		kiln__sb_adds(sb, "</text>\n");
		if (v > INT64_MAX - step)
			break;
	}
	kiln__sb_adds(sb, "</g>\n<g class=\"bars\">\n");
	for (size_t i = 0; i < L->n_ran; i++)
		svg_bar(sb, &L->ran[i], top);
	if (L->n_ran == 0)
		kiln__sb_addf(sb, "<text x=\"%.1f\" y=\"%d\" fill=\"#57606a\">no vertex ran</text>\n",
			      MARGIN_L + 4, top + LANE_H / 2 + 4);
	kiln__sb_adds(sb, "</g>\n<g class=\"legend\">");
	double lx = MARGIN_L;
	for (enum state st = ST_RAN; st <= ST_OPEN; st++)
		svg_legend_item(sb, &lx, y, st);
	kiln__sb_adds(sb, "</g>\n");

	if (L->n_notrun) {
		kiln__sb_addf(sb, "<g class=\"notrun-list\"><text x=\"%.0f\" y=\"%d\" "
			      "font-weight=\"bold\">Not started (%zu)</text>\n",
			      MARGIN_L, notrun_y, L->n_notrun);
		for (size_t i = 0; i < L->n_notrun; i++) {
			const struct kiln_trace_vertex *v = L->notrun[i].v;
			kiln__sb_addf(sb, "<text class=\"notrun\" x=\"%.0f\" y=\"%d\" data-digest=\"",
				      MARGIN_L + 8, notrun_y + 18 + (int)i * 16);
			esc(sb, v->digest, true);
			kiln__sb_adds(sb, "\" data-name=\"");
			esc(sb, v->name, true);
			kiln__sb_addf(sb, "\" data-cached=\"%s\" data-error=\"", v->cached ? "true" : "false");
			esc(sb, v->error, true);
			kiln__sb_adds(sb, "\">");
			esc(sb, vname(v), false);
			if (v->error) {
				kiln__sb_adds(sb, " \xe2\x80\x94 ");
				esc(sb, v->error, false);
			}
			kiln__sb_adds(sb, "</text>\n");
		}
		kiln__sb_adds(sb, "</g>\n");
	}
	kiln__sb_adds(sb, "</svg>\n");
}

/* ---- HTML ------------------------------------------------------------ */

static const char css[] =
	"body{margin:16px;font:14px/1.4 system-ui,-apple-system,\"Segoe UI\",sans-serif;"
	"color:#1f2328;background:#fff}\n"
	"h1{font-size:18px;margin:0 0 4px}\n"
	"p.summary{margin:0 0 12px;color:#57606a}\n"
	"figure{margin:0 0 16px;overflow-x:auto}\n"
	".kiln-trace .bar:hover rect{stroke:#1f2328;stroke-width:2}\n"
	"table{border-collapse:collapse;font-size:13px}\n"
	"th,td{text-align:left;padding:2px 10px 2px 0;vertical-align:top}\n"
	"th{border-bottom:1px solid #d0d7de}\n"
	"td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
	"td.name{font-family:" FONT ";white-space:pre-wrap;word-break:break-all}\n"
	"tr.failed td.state{color:#d1242f;font-weight:bold}\n"
	"tr.canceled td.state{color:#9a6700}\n"
	"tr.cached td.state{color:#57606a}\n";

static void html_row(struct kiln_sb *sb, const struct item *it, bool ran)
{
	const struct kiln_trace_vertex *v = it->v;
	kiln__sb_addf(sb, "<tr class=\"%s\"><td class=\"num\">", ran ? look[it->st].cls : "notrun");
	if (ran) {
		add_dur(sb, it->s);
		kiln__sb_adds(sb, "</td><td class=\"num\">");
		add_dur(sb, it->e - it->s);
		kiln__sb_addf(sb, "</td><td class=\"num\">%d", it->lane);
	} else {
		kiln__sb_adds(sb, "</td><td class=\"num\"></td><td class=\"num\">");
	}
	kiln__sb_addf(sb, "</td><td class=\"state\">%s", ran ? look[it->st].word :
		      v->error ? "failed" : "not started");
	if (v->cached && (!ran || it->st != ST_CACHED))
		kiln__sb_adds(sb, " (cached)");
	kiln__sb_adds(sb, "</td><td class=\"name\">");
	esc(sb, vname(v), false);
	if (v->error) {
		kiln__sb_adds(sb, "\n");
		esc(sb, v->error, false);
	}
	kiln__sb_adds(sb, "</td><td><code>");
	if (v->digest && strncmp(v->digest, "sha256:", 7) == 0 && strlen(v->digest) > 19) {
		struct kiln_sb d = KILN_SB_INIT;
		kiln__sb_add(&d, v->digest + 7, 12);
		esc(sb, kiln__sb_str(&d), false);
		kiln__sb_release(&d);
	} else {
		esc(sb, v->digest, false);
	}
	kiln__sb_adds(sb, "</code></td></tr>\n");
}

static void html(struct kiln_sb *sb, const struct kiln_trace *t, const struct layout *L)
{
	kiln__sb_adds(sb, "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		      /* nothing of this page comes from anywhere else */
		      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
		      "style-src 'unsafe-inline'\">\n"
		      "<meta name=\"generator\" content=\"kiln history trace\">\n<title>kiln build ");
	esc(sb, t->id, false);
	if (t->title && t->title[0]) {
		kiln__sb_adds(sb, " \xe2\x80\x94 ");
		esc(sb, t->title, false);
	}
	kiln__sb_addf(sb, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<header><h1>kiln build ", css);
	esc(sb, t->id, false);
	if (t->title && t->title[0]) {
		kiln__sb_adds(sb, " \xe2\x80\x94 ");
		esc(sb, t->title, false);
	}
	kiln__sb_adds(sb, "</h1>\n<p class=\"summary\">");
	summary_text(sb, t, L);
	kiln__sb_adds(sb, "</p></header>\n<figure>\n");
	svg(sb, t, L, false);
	kiln__sb_adds(sb, "</figure>\n<table class=\"vertices\">\n<thead><tr><th>start</th>"
		      "<th>duration</th><th>lane</th><th>state</th><th>vertex</th><th>digest</th>"
		      "</tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < L->n_ran; i++)
		html_row(sb, &L->ran[i], true);
	for (size_t i = 0; i < L->n_notrun; i++)
		html_row(sb, &L->notrun[i], false);
	kiln__sb_adds(sb, "</tbody>\n</table>\n</body>\n</html>\n");
}

int kiln__trace_write(FILE *out, const struct kiln_trace *t, enum kiln_trace_format format)
{
	if (!out || !t || (format != KILN_TRACE_HTML && format != KILN_TRACE_SVG)) {
		errno = EINVAL;
		return -1;
	}
	struct layout L;
	struct kiln_sb sb = KILN_SB_INIT;
	layout(&L, t);
	if (format == KILN_TRACE_SVG) {
		kiln__sb_adds(&sb, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
		svg(&sb, t, &L, true);
	} else {
		html(&sb, t, &L);
	}
	layout_release(&L);
	errno = 0;
	size_t n = fwrite(sb.buf, 1, sb.len, out);
	int rc = 0;
	if (n != sb.len || fflush(out) != 0) {
		if (errno == 0)
			errno = EIO;
		rc = -1;
	}
	kiln__sb_release(&sb);
	return rc;
}
