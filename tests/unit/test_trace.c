// PKGS: libxml-2.0
/* Unit tests of the timeline writer (core/trace.c, docs/trace.md): the
 * SVG is well-formed XML (libxml2 parses it) whatever the vertex names
 * hold; one bar per started vertex, with data-* values that match the
 * input; bars that overlap in time never share a lane; cached, failed,
 * canceled and unfinished vertices get their classes; vertices that never
 * started are listed, not drawn; an empty trace is a valid page; the HTML
 * page fetches nothing; the output does not depend on the input order;
 * write errors are reported. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "trace.h"

#define MS INT64_C(1000000)
#define S INT64_C(1000000000)
/* 2026-11-20T10:00:00Z */
#define T0 INT64_C(1795168800000000000)

#define SVGNS "http://www.w3.org/2000/svg"
#define BARS "//s:g[contains(concat(' ', @class, ' '), ' bar ')]"

/* The writer's output as a malloc'd string. */
static char *render(const struct kiln_trace *t, enum kiln_trace_format f, size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *m = open_memstream(&buf, &n);
	assert_non_null(m);
	assert_int_equal(kiln__trace_write(m, t, f), 0);
	assert_int_equal(fclose(m), 0);
	if (len)
		*len = n;
	return buf;
}

/* Parse as XML (SVG) or HTML; fails the test when not well-formed. */
static xmlDocPtr parse(const char *buf, bool html)
{
	xmlDocPtr doc;
	if (html)
		doc = htmlReadMemory(buf, (int)strlen(buf), "trace.html", "UTF-8",
				     HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
	else
		doc = xmlReadMemory(buf, (int)strlen(buf), "trace.svg", NULL,
				    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc)
		fail_msg("not well-formed:\n%s", buf);
	return doc;
}

struct q {
	xmlXPathContextPtr ctx;
	xmlXPathObjectPtr res;
};

/* Evaluate an XPath in doc (prefix s: is SVG); nodes in q->res. In HTML
 * documents libxml2 puts no namespace on the svg elements, so "s:" is
 * dropped there. */
static int query(struct q *q, xmlDocPtr doc, const char *path, bool html)
{
	char buf[512];
	if (html) {
		size_t j = 0;
		for (size_t i = 0; path[i] && j + 1 < sizeof(buf); i++) {
			if (path[i] == 's' && path[i + 1] == ':' && (i == 0 || path[i - 1] == '/'))
				i++;
			else
				buf[j++] = path[i];
		}
		buf[j] = '\0';
		path = buf;
	}
	q->ctx = xmlXPathNewContext(doc);
	xmlXPathRegisterNs(q->ctx, BAD_CAST "s", BAD_CAST SVGNS);
	q->res = xmlXPathEvalExpression(BAD_CAST path, q->ctx);
	assert_non_null(q->res);
	return q->res->nodesetval ? q->res->nodesetval->nodeNr : 0;
}

static void query_free(struct q *q)
{
	xmlXPathFreeObject(q->res);
	xmlXPathFreeContext(q->ctx);
}

static xmlNodePtr node(const struct q *q, int i)
{
	return q->res->nodesetval->nodeTab[i];
}

/* Attribute name of n as a malloc'd string ("" when absent). */
static char *attr(xmlNodePtr n, const char *name)
{
	xmlChar *v = xmlGetProp(n, BAD_CAST name);
	char *s = strdup(v ? (const char *)v : "");
	xmlFree(v);
	return s;
}

static double attr_num(xmlNodePtr n, const char *name)
{
	char *s = attr(n, name);
	double d = strtod(s, NULL);
	free(s);
	return d;
}

static void expect_attr(xmlNodePtr n, const char *name, const char *want)
{
	char *s = attr(n, name);
	if (strcmp(s, want) != 0)
		fail_msg("%s=\"%s\", want \"%s\"", name, s, want);
	free(s);
}

/* The bar of the vertex with this digest. */
static xmlNodePtr bar_of_in(xmlDocPtr doc, struct q *q, const char *digest, bool html)
{
	char path[256];
	snprintf(path, sizeof(path), BARS "[@data-digest='%s']", digest);
	if (query(q, doc, path, html) != 1)
		fail_msg("no single bar for %s", digest);
	return node(q, 0);
}

static xmlNodePtr bar_of(xmlDocPtr doc, struct q *q, const char *digest)
{
	return bar_of_in(doc, q, digest, false);
}

static bool has_class(xmlNodePtr n, const char *cls)
{
	char *c = attr(n, "class");
	char want[64], have[256];
	snprintf(want, sizeof(want), " %s ", cls);
	snprintf(have, sizeof(have), " %s ", c);
	free(c);
	return strstr(have, want) != NULL;
}

/* A 5-stage parallel build as BuildKit reports it: load steps, a cached
 * FROM, four RUNs side by side, then the COPYs of the last stage. */
static const struct kiln_trace_vertex parallel[] = {
	{ "sha256:01", "[internal] load build definition from Dockerfile", T0 + 10 * MS, T0 + 20 * MS, false, NULL },
	{ "sha256:02", "[a 1/2] FROM docker.io/library/busybox", T0 + 30 * MS, T0 + 30 * MS, true, NULL },
	{ "sha256:a2", "[a 2/2] RUN sleep 2", T0 + 40 * MS, T0 + 2100 * MS, false, NULL },
	{ "sha256:b2", "[b 2/2] RUN sleep 2", T0 + 41 * MS, T0 + 2200 * MS, false, NULL },
	{ "sha256:c2", "[c 2/2] RUN sleep 2", T0 + 42 * MS, T0 + 2050 * MS, false, NULL },
	{ "sha256:d2", "[d 2/2] RUN sleep 2", T0 + 43 * MS, T0 + 2300 * MS, false, NULL },
	{ "sha256:e2", "[stage-4 2/5] COPY --from=a /a /a", T0 + 2310 * MS, T0 + 2320 * MS, false, NULL },
	{ "sha256:e3", "[stage-4 3/5] COPY --from=b /b /b", T0 + 2330 * MS, T0 + 2340 * MS, false, NULL },
	{ "sha256:e4", "[stage-4 4/5] COPY --from=c /c /c", T0 + 2350 * MS, T0 + 2360 * MS, false, NULL },
	{ "sha256:e5", "[stage-4 5/5] COPY --from=d /d /d", T0 + 2370 * MS, T0 + 2380 * MS, false, NULL },
	{ "sha256:ff", "exporting to image", T0 + 2390 * MS, T0 + 2500 * MS, false, NULL },
};

static const struct kiln_trace parallel_trace = {
	.id = "default@native", .title = "default", .started_ns = T0, .finished_ns = T0 + 2600 * MS,
	.status = 0, .vertices = parallel, .n_vertices = sizeof(parallel) / sizeof(parallel[0]),
};

static void one_bar_per_vertex_with_its_values(void **state)
{
	(void)state;
	char *svg = render(&parallel_trace, KILN_TRACE_SVG, NULL);
	xmlDocPtr doc = parse(svg, false);
	struct q q;
	assert_int_equal(query(&q, doc, BARS, false), 11);
	query_free(&q);
	for (size_t i = 0; i < parallel_trace.n_vertices; i++) {
		const struct kiln_trace_vertex *v = &parallel[i];
		xmlNodePtr b = bar_of(doc, &q, v->digest);
		char want[64];
		expect_attr(b, "data-name", v->name);
		snprintf(want, sizeof(want), "%lld.000", (long long)((v->started_ns - T0) / MS));
		expect_attr(b, "data-start-ms", want);
		snprintf(want, sizeof(want), "%lld.000", (long long)((v->completed_ns - T0) / MS));
		expect_attr(b, "data-end-ms", want);
		expect_attr(b, "data-cached", v->cached ? "true" : "false");
		expect_attr(b, "data-error", "");
		/* hover: a <title> naming the vertex */
		xmlNodePtr t = xmlFirstElementChild(b);
		assert_string_equal((const char *)t->name, "title");
		xmlChar *text = xmlNodeGetContent(t);
		assert_non_null(strstr((const char *)text, v->name));
		xmlFree(text);
		query_free(&q);
	}
	/* the RUN of b: 2.159 s, "2.15s" as shown (cut, not rounded) */
	xmlNodePtr b = bar_of(doc, &q, "sha256:b2");
	xmlChar *text = xmlNodeGetContent(xmlFirstElementChild(b));
	assert_non_null(strstr((const char *)text, "2.15s, ran"));
	xmlFree(text);
	query_free(&q);
	xmlFreeDoc(doc);
	free(svg);
}

static void parallel_runs_get_their_own_lanes(void **state)
{
	(void)state;
	char *svg = render(&parallel_trace, KILN_TRACE_SVG, NULL);
	xmlDocPtr doc = parse(svg, false);
	struct q q;
	double lane[4], x[4], w[4];
	const char *runs[] = { "sha256:a2", "sha256:b2", "sha256:c2", "sha256:d2" };
	for (int i = 0; i < 4; i++) {
		xmlNodePtr b = bar_of(doc, &q, runs[i]);
		lane[i] = attr_num(b, "data-lane");
		xmlNodePtr r = xmlFirstElementChild(b)->next;
		assert_string_equal((const char *)r->name, "rect");
		x[i] = attr_num(r, "x");
		w[i] = attr_num(r, "width");
		query_free(&q);
	}
	for (int i = 0; i < 4; i++)
		for (int j = i + 1; j < 4; j++) {
			assert_true(lane[i] != lane[j]);
			/* the rectangles overlap horizontally */
			assert_true(x[i] < x[j] + w[j] && x[j] < x[i] + w[i]);
		}
	xmlFreeDoc(doc);
	free(svg);
}

/* Many random intervals: any two that overlap in time are in different
 * lanes, and no two bars in one lane overlap on screen. */
static void overlapping_intervals_never_share_a_lane(void **state)
{
	(void)state;
	enum { N = 300 };
	static struct kiln_trace_vertex vs[N];
	static char digests[N][24], names[N][40];
	uint32_t r = 12345;
	for (int i = 0; i < N; i++) {
		r = r * 1103515245u + 12345u;
		int64_t s = (int64_t)(r % 60000) * MS;
		r = r * 1103515245u + 12345u;
		int64_t d = (int64_t)(r % (i % 7 == 0 ? 20000 : 800)) * MS;
		snprintf(digests[i], sizeof(digests[i]), "sha256:%04d", i);
		snprintf(names[i], sizeof(names[i]), "[s %d/%d] RUN x", i, N);
		vs[i] = (struct kiln_trace_vertex){ digests[i], names[i], T0 + s, T0 + s + d, i % 5 == 0, NULL };
	}
	struct kiln_trace t = { .id = "many", .started_ns = T0, .vertices = vs, .n_vertices = N };
	char *svg = render(&t, KILN_TRACE_SVG, NULL);
	xmlDocPtr doc = parse(svg, false);
	struct q q;
	assert_int_equal(query(&q, doc, BARS, false), N);
	static double s[N], e[N], lane[N], x0[N], x1[N];
	for (int i = 0; i < N; i++) {
		xmlNodePtr b = node(&q, i);
		s[i] = attr_num(b, "data-start-ms");
		e[i] = attr_num(b, "data-end-ms");
		lane[i] = attr_num(b, "data-lane");
		xmlNodePtr rect = xmlFirstElementChild(b)->next;
		x0[i] = attr_num(rect, "x");
		x1[i] = x0[i] + attr_num(rect, "width");
	}
	for (int i = 0; i < N; i++)
		for (int j = i + 1; j < N; j++) {
			if (lane[i] != lane[j])
				continue;
			if (s[i] < e[j] && s[j] < e[i])
				fail_msg("bars %d and %d overlap in time and share lane %g", i, j, lane[i]);
			if (x0[i] < x1[j] && x0[j] < x1[i])
				fail_msg("bars %d and %d overlap on screen in lane %g", i, j, lane[i]);
		}
	query_free(&q);
	xmlFreeDoc(doc);
	free(svg);
}

static void states_get_their_classes(void **state)
{
	(void)state;
	const struct kiln_trace_vertex vs[] = {
		{ "sha256:ok", "[1/4] RUN true", T0, T0 + S, false, NULL },
		{ "sha256:ca", "[2/4] COPY . .", T0 + S, T0 + S, true, NULL },
		{ "sha256:bad", "[3/4] RUN false", T0 + S, T0 + 2 * S, false,
		  "process \"/bin/sh -c false\" did not complete successfully: exit code: 1" },
		{ "sha256:cx", "[x 2/2] RUN sleep 9", T0 + S, T0 + 2 * S, false, "context canceled" },
		{ "sha256:op", "[y 2/2] RUN sleep 99", T0 + S, 0, false, NULL },
		{ "sha256:nr", "[4/4] RUN never", 0, 0, false, NULL },
	};
	struct kiln_trace t = { .id = "states", .started_ns = T0, .finished_ns = T0 + 3 * S,
				.status = -11, .vertices = vs, .n_vertices = 6 };
	char *svg = render(&t, KILN_TRACE_SVG, NULL);
	xmlDocPtr doc = parse(svg, false);
	struct q q;
	assert_int_equal(query(&q, doc, BARS, false), 5);
	query_free(&q);
	assert_true(has_class(bar_of(doc, &q, "sha256:ok"), "ran"));
	query_free(&q);
	xmlNodePtr b = bar_of(doc, &q, "sha256:ca");
	assert_true(has_class(b, "cached"));
	expect_attr(b, "data-cached", "true");
	assert_non_null(strstr(svg, ">CACHED</tspan>"));
	query_free(&q);
	b = bar_of(doc, &q, "sha256:bad");
	assert_true(has_class(b, "failed"));
	expect_attr(b, "data-error", vs[2].error);
	expect_attr(xmlFirstElementChild(b)->next, "fill", "#d1242f"); /* red */
	query_free(&q);
	assert_true(has_class(bar_of(doc, &q, "sha256:cx"), "canceled"));
	query_free(&q);
	/* started, never completed: drawn to the end of the build */
	b = bar_of(doc, &q, "sha256:op");
	assert_true(has_class(b, "open"));
	expect_attr(b, "data-end-ms", "3000.000");
	query_free(&q);
	/* never started: no bar, but listed */
	assert_int_equal(query(&q, doc, BARS "[@data-digest='sha256:nr']", false), 0);
	query_free(&q);
	assert_int_equal(query(&q, doc, "//s:text[@class='notrun'][@data-digest='sha256:nr']", false), 1);
	query_free(&q);
	assert_non_null(strstr(svg, "failed (status -11)"));
	xmlFreeDoc(doc);
	free(svg);
}

static void names_are_escaped(void **state)
{
	(void)state;
	const char *evil = "[a&b 1/1] RUN echo \"<script>alert('x')</script>\" > /x && echo ]]> --> <!--";
	const char *bytes = "RUN printf 'tab\there\nnew line\x01\x1b[31m red' \xff\xfe caf\xc3\xa9 \xed\xa0\x80";
	const struct kiln_trace_vertex vs[] = {
		{ "sha256:e1", evil, T0, T0 + S, false, "exit \"1\" & <more>" },
		{ "sha256:e2", bytes, T0, T0 + S, false, NULL },
		{ "sha256:e3\"><x", NULL, T0 + S, T0 + S, true, NULL },
		{ "sha256:e4", "never & <started>", 0, 0, false, "'quoted' & \"double\"" },
	};
	struct kiln_trace t = { .id = "id<&>\"'", .title = "t<i>t&le", .started_ns = T0,
				.vertices = vs, .n_vertices = 4 };
	for (int f = 0; f < 2; f++) {
		bool html = f == 1;
		char *out = render(&t, html ? KILN_TRACE_HTML : KILN_TRACE_SVG, NULL);
		assert_null(strstr(out, "<script"));
		assert_null(strstr(out, "<x"));
		assert_null(strstr(out, "<started>"));
		assert_null(strstr(out, "\x01"));
		assert_null(strstr(out, "\xff"));
		if (!html) /* the XML parser is the strict one */
			xmlFreeDoc(parse(out, false));
		xmlDocPtr doc = parse(out, html);
		struct q q;
		assert_int_equal(query(&q, doc, BARS, html), 3);
		query_free(&q);
		xmlNodePtr b = bar_of_in(doc, &q, "sha256:e1", html);
		expect_attr(b, "data-name", evil);
		expect_attr(b, "data-error", vs[0].error);
		query_free(&q);
		/* control characters and bad bytes become U+FFFD; the rest stays */
		char *name = attr(bar_of_in(doc, &q, "sha256:e2", html), "data-name");
		assert_non_null(strstr(name, "tab\there\nnew line\xef\xbf\xbd\xef\xbf\xbd[31m red"));
		assert_non_null(strstr(name, "caf\xc3\xa9"));
		assert_null(strstr(name, "\xed\xa0\x80"));
		free(name);
		query_free(&q);
		assert_int_equal(query(&q, doc, BARS "[@data-cached='true']", html), 1);
		expect_attr(node(&q, 0), "data-digest", "sha256:e3\"><x");
		query_free(&q);
		assert_int_equal(query(&q, doc, "//s:text[@class='notrun']", html), 1);
		expect_attr(node(&q, 0), "data-name", "never & <started>");
		expect_attr(node(&q, 0), "data-error", vs[3].error);
		query_free(&q);
		xmlFreeDoc(doc);
		free(out);
	}
}

static void empty_trace(void **state)
{
	(void)state;
	struct kiln_trace t = { .id = "empty" };
	for (int f = 0; f < 2; f++) {
		bool html = f == 1;
		char *out = render(&t, html ? KILN_TRACE_HTML : KILN_TRACE_SVG, NULL);
		xmlDocPtr doc = parse(out, html);
		struct q q;
		assert_int_equal(query(&q, doc, BARS, html), 0);
		query_free(&q);
		assert_int_equal(query(&q, doc, "//s:svg", html), 1);
		query_free(&q);
		assert_non_null(strstr(out, "no vertex ran"));
		assert_non_null(strstr(out, "0 vertices"));
		xmlFreeDoc(doc);
		free(out);
	}
	/* only vertices that never started: no bar, both listed */
	const struct kiln_trace_vertex vs[] = {
		{ "sha256:1", "b", 0, 0, false, NULL }, { "sha256:2", "a", 0, 0, false, NULL },
	};
	t.vertices = vs;
	t.n_vertices = 2;
	char *out = render(&t, KILN_TRACE_SVG, NULL);
	xmlDocPtr doc = parse(out, false);
	struct q q;
	assert_int_equal(query(&q, doc, BARS, false), 0);
	query_free(&q);
	assert_int_equal(query(&q, doc, "//s:text[@class='notrun']", false), 2);
	expect_attr(node(&q, 0), "data-name", "a"); /* sorted by name */
	query_free(&q);
	xmlFreeDoc(doc);
	free(out);
}

/* The SVG is a document of its own; the HTML page a complete one that
 * loads nothing: no script, no URL but the SVG namespace, and a
 * Content-Security-Policy that forbids fetching anything. */
static void documents_stand_alone(void **state)
{
	(void)state;
	char *svg = render(&parallel_trace, KILN_TRACE_SVG, NULL);
	const char *head = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"" SVGNS "\"";
	assert_int_equal(strncmp(svg, head, strlen(head)), 0);
	assert_non_null(strstr(svg, "succeeded in 2.60s; 11 vertices: 10 ran, 1 cached, 0 failed, 0 not started"));
	xmlDocPtr doc = parse(svg, false);
	xmlNodePtr root = xmlDocGetRootElement(doc);
	assert_string_equal((const char *)root->name, "svg");
	assert_string_equal((const char *)root->ns->href, SVGNS);
	xmlFreeDoc(doc);

	char *html = render(&parallel_trace, KILN_TRACE_HTML, NULL);
	assert_int_equal(strncmp(html, "<!doctype html>\n", 16), 0);
	assert_non_null(strstr(html, "default-src 'none'"));
	assert_null(strstr(html, "<script"));
	assert_null(strstr(html, "<link"));
	assert_null(strstr(html, "@import"));
	assert_null(strstr(html, "@font-face"));
	for (const char *p = html; (p = strstr(p, "://")) != NULL; p++)
		if (p - html < 4 || strncmp(p - 4, SVGNS, strlen(SVGNS)) != 0)
			fail_msg("a URL in the page: %.60s", p);
	assert_null(strstr(html, "src="));
	assert_null(strstr(html, "href="));
	doc = parse(html, true);
	struct q q;
	assert_int_equal(query(&q, doc, BARS, true), 11);
	query_free(&q);
	assert_int_equal(query(&q, doc, "//table[@class='vertices']/tbody/tr", true), 11);
	query_free(&q);
	xmlFreeDoc(doc);
	free(html);
	free(svg);
}

static void output_does_not_depend_on_input_order(void **state)
{
	(void)state;
	enum { N = sizeof(parallel) / sizeof(parallel[0]) };
	struct kiln_trace_vertex rev[N];
	for (size_t i = 0; i < N; i++)
		rev[i] = parallel[N - 1 - i];
	struct kiln_trace t = parallel_trace;
	t.vertices = rev;
	for (int f = 0; f < 2; f++) {
		size_t la, lb;
		char *a = render(&parallel_trace, f ? KILN_TRACE_HTML : KILN_TRACE_SVG, &la);
		char *b = render(&t, f ? KILN_TRACE_HTML : KILN_TRACE_SVG, &lb);
		assert_int_equal(la, lb);
		assert_memory_equal(a, b, la);
		free(a);
		free(b);
	}
}

/* The origin: the job's start; without one, or when every vertex
 * started before it, the first vertex start. */
static void origin(void **state)
{
	(void)state;
	const struct kiln_trace_vertex vs[] = {
		{ "sha256:1", "late", T0 + 5 * S + 1500 * 1000, T0 + 6 * S, false, NULL },
		{ "sha256:2", "early", T0 + 5 * S, T0 + 5 * S + 250 * MS, false, NULL },
	};
	struct kiln_trace t = { .id = "o", .vertices = vs, .n_vertices = 2 };
	char *svg = render(&t, KILN_TRACE_SVG, NULL);
	xmlDocPtr doc = parse(svg, false);
	struct q q;
	expect_attr(bar_of(doc, &q, "sha256:2"), "data-start-ms", "0.000");
	query_free(&q);
	expect_attr(bar_of(doc, &q, "sha256:1"), "data-start-ms", "1.500");
	expect_attr(node(&q, 0), "data-end-ms", "1000.000");
	query_free(&q);
	xmlFreeDoc(doc);
	free(svg);

	/* every vertex before the job's start: the engine's clock is behind */
	t.started_ns = T0 + 5 * S + 100 * MS;
	svg = render(&t, KILN_TRACE_SVG, NULL);
	doc = parse(svg, false);
	expect_attr(bar_of(doc, &q, "sha256:2"), "data-start-ms", "0.000");
	query_free(&q);
	xmlFreeDoc(doc);
	free(svg);

	/* one vertex before the job's start (shared with another build):
	 * negative start, cut at the left edge, said so on hover */
	t.started_ns = T0 + 5 * S + 1 * MS;
	svg = render(&t, KILN_TRACE_SVG, NULL);
	doc = parse(svg, false);
	xmlNodePtr b = bar_of(doc, &q, "sha256:2");
	expect_attr(b, "data-start-ms", "-1.000");
	expect_attr(b, "data-end-ms", "249.000");
	assert_true(has_class(b, "early"));
	expect_attr(xmlFirstElementChild(b)->next, "x", "16.0");
	xmlChar *text = xmlNodeGetContent(xmlFirstElementChild(b));
	assert_non_null(strstr((const char *)text, "from -1.0ms to 249ms"));
	assert_non_null(strstr((const char *)text, "started before this build"));
	xmlFree(text);
	query_free(&q);
	b = bar_of(doc, &q, "sha256:1");
	expect_attr(b, "data-start-ms", "0.500");
	assert_false(has_class(b, "early"));
	query_free(&q);
	xmlFreeDoc(doc);
	free(svg);

	/* the header gives the job's duration, not the axis's */
	t.finished_ns = t.started_ns + 3 * S;
	svg = render(&t, KILN_TRACE_SVG, NULL);
	assert_non_null(strstr(svg, "succeeded in 3.00s"));
	assert_non_null(strstr(svg, "data-span-ms=\"3000.000\""));
	free(svg);
}

/* Nonsense times (a damaged record) give a valid page, not a crash or
 * an overflow (the ASan+UBSan build runs this too). */
static void extreme_times(void **state)
{
	(void)state;
	const struct kiln_trace_vertex vs[] = {
		{ NULL, NULL, 1, INT64_MAX, false, NULL },
		{ "sha256:neg", "negative end", T0, -5, false, NULL },
		{ "sha256:back", "ends before it starts", T0 + S, T0, true, NULL },
		{ "sha256:min", "min", INT64_MIN, INT64_MIN, false, "" },
		{ "sha256:max", "max", INT64_MAX, INT64_MAX, false, NULL },
	};
	int64_t starts[] = { 0, 1, T0, INT64_MAX, INT64_MIN };
	for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
		struct kiln_trace t = { .id = "x", .started_ns = starts[i], .finished_ns = starts[4 - i],
					.status = INT32_MIN, .vertices = vs, .n_vertices = 5 };
		char *svg = render(&t, KILN_TRACE_SVG, NULL);
		xmlDocPtr doc = parse(svg, false);
		struct q q;
		assert_int_equal(query(&q, doc, BARS, false), 4);
		query_free(&q);
		xmlFreeDoc(doc);
		free(svg);
	}
}

static void write_errors(void **state)
{
	(void)state;
	FILE *full = fopen("/dev/full", "w");
	if (!full)
		skip();
	errno = 0;
	assert_int_equal(kiln__trace_write(full, &parallel_trace, KILN_TRACE_HTML), -1);
	assert_int_equal(errno, ENOSPC);
	fclose(full);
	FILE *null = fopen("/dev/null", "w");
	assert_non_null(null);
	errno = 0;
	assert_int_equal(kiln__trace_write(null, &parallel_trace, (enum kiln_trace_format)7), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(kiln__trace_write(null, NULL, KILN_TRACE_SVG), -1);
	fclose(null);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(one_bar_per_vertex_with_its_values),
		cmocka_unit_test(parallel_runs_get_their_own_lanes),
		cmocka_unit_test(overlapping_intervals_never_share_a_lane),
		cmocka_unit_test(states_get_their_classes),
		cmocka_unit_test(names_are_escaped),
		cmocka_unit_test(empty_trace),
		cmocka_unit_test(documents_stand_alone),
		cmocka_unit_test(output_does_not_depend_on_input_order),
		cmocka_unit_test(origin),
		cmocka_unit_test(extreme_times),
		cmocka_unit_test(write_errors),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	xmlCleanupParser();
	return rc;
}
