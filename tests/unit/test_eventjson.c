/* Unit tests of the JSON event decoder (core/eventjson.c, docs/events.md):
 * every type decodes with its fields; malformed, hostile and newer input
 * is refused with the right code and never crashes. The encoder side (the
 * json renderer plugin) is checked by the golden round-trip tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "eventjson.h"
#include "util.h"

#define JOB "\"job\":{\"id\":\"app@linux/arm64\",\"target\":\"app\"," \
	    "\"platform\":\"linux/arm64\",\"builder\":\"kiln0\",\"number\":2}"
#define HEAD(type) "{\"schema\":1,\"type\":\"" type "\"," \
		   "\"time\":\"2026-11-20T10:00:01.123456789Z\"," JOB
/* 2026-11-20T10:00:01.123456789Z in ns since the epoch. */
#define T1 INT64_C(1795168801123456789)

struct fx {
	struct kiln_arena *arena;
	struct kiln_event ev;
	struct kiln_err err;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->arena = kiln__arena_new();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	kiln__arena_free(f->arena);
	free(f);
	return 0;
}

static int decode(struct fx *f, const char *line)
{
	memset(&f->err, 0, sizeof(f->err));
	return kiln__event_decode(line, f->arena, &f->ev, &f->err);
}

/* Decoding line fails with code, leaves the event untouched, and the
 * message mentions want (when not NULL). */
static void expect_fail(struct fx *f, const char *line, int code, const char *want)
{
	struct kiln_event before;
	memset(&f->ev, 0x5a, sizeof(f->ev));
	memcpy(&before, &f->ev, sizeof(before));
	int rc = decode(f, line);
	if (rc != code)
		fail_msg("decoding %s: got %d (%s), want %d", line, rc, f->err.msg, code);
	assert_int_equal(f->err.code, code);
	assert_true(f->err.msg[0] != '\0');
	assert_memory_equal(&f->ev, &before, sizeof(before));
	if (want && !strstr(f->err.msg, want))
		fail_msg("decoding %s: message \"%s\" lacks \"%s\"", line, f->err.msg, want);
}

static void decodes_job_started(void **state)
{
	struct fx *f = *state;
	f->err.code = 77; /* untouched on success */
	int rc = kiln__event_decode(HEAD("job.started") ",\"frontend\":\"dockerfile\","
				    "\"backend\":\"buildkit\",\"steps\":5}\n",
				    f->arena, &f->ev, &f->err);
	assert_int_equal(rc, 0);
	assert_int_equal(f->err.code, 77);
	assert_int_equal(f->ev.struct_size, sizeof(struct kiln_event));
	assert_int_equal(f->ev.kind, KILN_EVENT_JOB_STARTED);
	assert_true(f->ev.time_ns == T1);
	assert_string_equal(f->ev.job->id, "app@linux/arm64");
	assert_string_equal(f->ev.job->target, "app");
	assert_string_equal(f->ev.job->platform, "linux/arm64");
	assert_string_equal(f->ev.job->builder, "kiln0");
	assert_int_equal(f->ev.job->number, 2);
	assert_string_equal(f->ev.u.job_started.frontend, "dockerfile");
	assert_string_equal(f->ev.u.job_started.backend, "buildkit");
	assert_int_equal(f->ev.u.job_started.steps, 5);

	/* Optional fields absent: NULL / 0; job strings never NULL. */
	assert_int_equal(decode(f, "{\"schema\":1,\"type\":\"job.started\","
				"\"job\":{\"id\":\"x\"}}"), 0);
	assert_null(f->ev.u.job_started.frontend);
	assert_null(f->ev.u.job_started.backend);
	assert_int_equal(f->ev.u.job_started.steps, 0);
	assert_true(f->ev.time_ns == 0);
	assert_string_equal(f->ev.job->target, "");
	assert_string_equal(f->ev.job->platform, "");
	assert_string_equal(f->ev.job->builder, "");
	assert_int_equal(f->ev.job->number, 0);
}

static void decodes_job_finished(void **state)
{
	struct fx *f = *state;
	assert_int_equal(decode(f, HEAD("job.finished") ",\"status\":-11,"
				"\"error\":\"failed to solve: exit code: 3\","
				"\"image_digest\":\"sha256:aa\",\"config_digest\":\"sha256:bb\","
				"\"metrics\":{\"duration_ns\":1500000000,\"vertices\":7,"
				"\"completed\":6,\"cached\":2,\"failed\":1,\"warnings\":3,"
				"\"log_bytes\":9000000000}}"), 0);
	const struct kiln_event_job_finished *e = &f->ev.u.job_finished;
	assert_int_equal(f->ev.kind, KILN_EVENT_JOB_FINISHED);
	assert_int_equal(e->status, KILN_E_BUILD);
	assert_string_equal(e->error, "failed to solve: exit code: 3");
	assert_string_equal(e->image_digest, "sha256:aa");
	assert_string_equal(e->config_digest, "sha256:bb");
	assert_true(e->metrics.duration_ns == 1500000000);
	assert_int_equal(e->metrics.vertices, 7);
	assert_int_equal(e->metrics.completed, 6);
	assert_int_equal(e->metrics.cached, 2);
	assert_int_equal(e->metrics.failed, 1);
	assert_int_equal(e->metrics.warnings, 3);
	assert_true(e->metrics.log_bytes == UINT64_C(9000000000));

	assert_int_equal(decode(f, HEAD("job.finished") ",\"status\":0}"), 0);
	assert_int_equal(f->ev.u.job_finished.status, 0);
	assert_null(f->ev.u.job_finished.error);
	assert_null(f->ev.u.job_finished.image_digest);
	assert_int_equal(f->ev.u.job_finished.metrics.vertices, 0);
}

static void decodes_vertex(void **state)
{
	struct fx *f = *state;
	assert_int_equal(decode(f, HEAD("vertex") ",\"digest\":\"sha256:01\","
				"\"name\":\"[build 3/5] RUN exit 3\","
				"\"inputs\":[\"sha256:a\",\"sha256:b\"],"
				"\"started\":\"2026-11-20T10:00:01.123456789Z\","
				"\"completed\":\"2026-11-20T10:00:02Z\",\"cached\":false,"
				"\"error\":\"exit code: 3\"}"), 0);
	const struct kiln_event_vertex *v = &f->ev.u.vertex;
	assert_int_equal(f->ev.kind, KILN_EVENT_VERTEX);
	assert_string_equal(v->digest, "sha256:01");
	assert_string_equal(v->name, "[build 3/5] RUN exit 3");
	assert_int_equal(v->n_inputs, 2);
	assert_string_equal(v->inputs[0], "sha256:a");
	assert_string_equal(v->inputs[1], "sha256:b");
	assert_null(v->inputs[2]);
	assert_true(v->started_ns == T1);
	assert_true(v->completed_ns == INT64_C(1795168802000000000));
	assert_false(v->cached);
	assert_string_equal(v->error, "exit code: 3");

	assert_int_equal(decode(f, HEAD("vertex") ",\"digest\":\"sha256:02\","
				"\"inputs\":[],\"cached\":true}"), 0);
	v = &f->ev.u.vertex;
	assert_null(v->name);
	assert_int_equal(v->n_inputs, 0);
	assert_true(v->started_ns == 0 && v->completed_ns == 0);
	assert_true(v->cached);
	assert_null(v->error);
}

static void decodes_status(void **state)
{
	struct fx *f = *state;
	assert_int_equal(decode(f, HEAD("vertex.status") ",\"vertex\":\"sha256:01\","
				"\"id\":\"sha256:layer\",\"name\":\"layer 1\","
				"\"current\":1048576,\"total\":4200000,"
				"\"timestamp\":\"2026-11-20T10:00:01.123456789Z\","
				"\"started\":\"2026-11-20T10:00:00Z\"}"), 0);
	const struct kiln_event_vertex_status *s = &f->ev.u.status;
	assert_int_equal(f->ev.kind, KILN_EVENT_VERTEX_STATUS);
	assert_string_equal(s->vertex, "sha256:01");
	assert_string_equal(s->id, "sha256:layer");
	assert_string_equal(s->name, "layer 1");
	assert_true(s->current == 1048576 && s->total == 4200000);
	assert_true(s->timestamp_ns == T1);
	assert_true(s->started_ns == INT64_C(1795168800000000000));
	assert_true(s->completed_ns == 0);
}

static void decodes_log_text(void **state)
{
	struct fx *f = *state;
	assert_int_equal(decode(f, HEAD("vertex.log") ",\"vertex\":\"sha256:01\","
				"\"stream\":2,\"timestamp\":\"2026-11-20T10:00:01.123456789Z\","
				"\"data\":\"caf\\u00e9 \\u001b[1m\\n\"}\n"), 0);
	const struct kiln_event_vertex_log *l = &f->ev.u.log;
	assert_int_equal(f->ev.kind, KILN_EVENT_VERTEX_LOG);
	assert_string_equal(l->vertex, "sha256:01");
	assert_int_equal(l->stream, 2);
	assert_true(l->timestamp_ns == T1);
	assert_int_equal(l->len, 11);
	assert_memory_equal(l->data, "caf\xc3\xa9 \x1b[1m\n", 11);

	assert_int_equal(decode(f, HEAD("vertex.log") ",\"vertex\":\"v\",\"data\":\"\"}"), 0);
	assert_int_equal(f->ev.u.log.len, 0);
	assert_non_null(f->ev.u.log.data);
}

static void decodes_log_base64(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *b64;
		const char *bytes;
		size_t len;
	} cases[] = {
		{ "", "", 0 },
		{ "AA==", "\0", 1 },
		{ "/w==", "\xff", 1 },
		{ "/+4=", "\xff\xee", 2 },
		{ "AP8K", "\0\xff\n", 3 },
		{ "Y2Fm6SBiaW4AAQI=", "caf\xe9 bin\0\1\2", 11 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char line[512];
		snprintf(line, sizeof(line), HEAD("vertex.log") ",\"vertex\":\"v\","
			 "\"stream\":1,\"data_base64\":\"%s\"}", cases[i].b64);
		assert_int_equal(decode(f, line), 0);
		assert_int_equal(f->ev.u.log.len, cases[i].len);
		assert_memory_equal(f->ev.u.log.data, cases[i].bytes, cases[i].len);
	}
}

static void decodes_warning(void **state)
{
	struct fx *f = *state;
	assert_int_equal(decode(f, HEAD("warning") ",\"vertex\":\"sha256:01\",\"level\":1,"
				"\"message\":\"JSONArgsRecommended: use JSON\","
				"\"detail\":[\"line one\",\"line two\"],"
				"\"url\":\"https://docs.docker.com/go/x/\","
				"\"file\":\"Dockerfile\",\"line\":3}"), 0);
	const struct kiln_event_warning *w = &f->ev.u.warning;
	assert_int_equal(f->ev.kind, KILN_EVENT_WARNING);
	assert_string_equal(w->vertex, "sha256:01");
	assert_int_equal(w->level, 1);
	assert_string_equal(w->message, "JSONArgsRecommended: use JSON");
	assert_int_equal(w->n_detail, 2);
	assert_string_equal(w->detail[1], "line two");
	assert_string_equal(w->url, "https://docs.docker.com/go/x/");
	assert_string_equal(w->file, "Dockerfile");
	assert_int_equal(w->line, 3);

	assert_int_equal(decode(f, HEAD("warning") ",\"message\":\"m\"}"), 0);
	w = &f->ev.u.warning;
	assert_null(w->vertex);
	assert_null(w->detail);
	assert_int_equal(w->n_detail, 0);
	assert_null(w->url);
	assert_null(w->file);
	assert_int_equal(w->line, 0);
}

static void ignores_unknown_fields(void **state)
{
	struct fx *f = *state;
	assert_int_equal(decode(f, "{\"future\":[1,{\"a\":null}],\"schema\":1,"
				"\"type\":\"vertex\",\"job\":{\"id\":\"j\",\"new\":true},"
				"\"digest\":\"d\",\"progress_group\":{\"id\":\"g\"}}"), 0);
	assert_string_equal(f->ev.u.vertex.digest, "d");
}

static void parses_rfc3339_times(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *text;
		int64_t ns;
	} ok[] = {
		{ "1970-01-01T00:00:00Z", 0 },
		{ "1970-01-01T00:00:00.000000001Z", 1 },
		{ "1969-12-31T23:59:59.999999999Z", -1 },
		{ "2026-11-20T10:00:01.123456789Z", T1 },
		{ "2026-11-20t10:00:01.123456789z", T1 },
		{ "2026-11-20T12:00:01.123456789+02:00", T1 },
		{ "2026-11-20T05:30:01.123456789-04:30", T1 },
		{ "2026-11-20T10:00:01.1Z", INT64_C(1795168801100000000) },
		{ "2028-02-29T00:00:00Z", INT64_C(1835395200000000000) },
		{ "2000-02-29T00:00:00Z", INT64_C(951782400000000000) },
		{ "2262-04-11T23:47:16.854775807Z", INT64_MAX },
		{ "1677-09-21T00:12:43.145224192Z", INT64_MIN },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char line[256];
		snprintf(line, sizeof(line), "{\"schema\":1,\"type\":\"job.started\","
			 "\"time\":\"%s\",\"job\":{\"id\":\"j\"}}", ok[i].text);
		if (decode(f, line) != 0)
			fail_msg("%s: %s", ok[i].text, f->err.msg);
		if (f->ev.time_ns != ok[i].ns)
			fail_msg("%s: got %lld, want %lld", ok[i].text,
				 (long long)f->ev.time_ns, (long long)ok[i].ns);
	}
	static const char *const bad[] = {
		"", "2026-11-20", "2026-11-20T10:00:01", "2026-11-20 10:00:01Z",
		"2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-02-29T00:00:00Z",
		"1900-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-11-20T24:00:00Z",
		"2026-11-20T10:60:00Z", "2026-11-20T10:00:60Z", "2026-11-20T10:00:01.Z",
		"2026-11-20T10:00:01.1234567890Z", "2026-11-20T10:00:01+0200",
		"2026-11-20T10:00:01+24:00", "2026-11-20T10:00:01ZZ", "+2026-11-20T10:00:01Z",
		"2262-04-11T23:47:16.854775808Z", "1677-09-21T00:12:43.145224191Z",
		"9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z", "2026-1-20T10:00:01Z",
		"２０２６-11-20T10:00:01Z",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char line[256];
		snprintf(line, sizeof(line), "{\"schema\":1,\"type\":\"job.started\","
			 "\"time\":\"%s\",\"job\":{\"id\":\"j\"}}", bad[i]);
		expect_fail(f, line, KILN_E_SYNTAX, "time");
	}
	expect_fail(f, "{\"schema\":1,\"type\":\"job.started\",\"time\":1795168801,"
		    "\"job\":{\"id\":\"j\"}}", KILN_E_SYNTAX, "\"time\"");
}

static void refuses_malformed_json(void **state)
{
	struct fx *f = *state;
	expect_fail(f, "", KILN_E_SYNTAX, "invalid JSON");
	expect_fail(f, "\n", KILN_E_SYNTAX, "invalid JSON");
	expect_fail(f, "not json", KILN_E_SYNTAX, "invalid JSON");
	expect_fail(f, "{\"schema\":1,", KILN_E_SYNTAX, "invalid JSON");
	expect_fail(f, HEAD("vertex") ",\"digest\":\"d\"} trailing", KILN_E_SYNTAX, NULL);
	expect_fail(f, HEAD("vertex") ",\"digest\":\"d\"}{}", KILN_E_SYNTAX, NULL);
	expect_fail(f, "[1,2]", KILN_E_SYNTAX, "object");
	expect_fail(f, "\"vertex\"", KILN_E_SYNTAX, NULL);
	expect_fail(f, "null", KILN_E_SYNTAX, NULL);
	/* Duplicate keys are ambiguous: refused. */
	expect_fail(f, HEAD("vertex") ",\"digest\":\"a\",\"digest\":\"b\"}", KILN_E_SYNTAX, NULL);
	/* U+0000 in a string (binary data goes as base64). */
	expect_fail(f, HEAD("vertex") ",\"digest\":\"a\\u0000b\"}", KILN_E_SYNTAX, NULL);
	/* Invalid UTF-8 in the input. */
	expect_fail(f, HEAD("vertex") ",\"digest\":\"\xff\xfe\"}", KILN_E_SYNTAX, NULL);
	/* A lone surrogate escape. */
	expect_fail(f, HEAD("vertex") ",\"digest\":\"\\ud800\"}", KILN_E_SYNTAX, NULL);
	expect_fail(f, NULL, KILN_E_SYNTAX, NULL);

	/* The column of a JSON error is reported. */
	decode(f, "{\"schema\":1,\"type\":}");
	assert_int_equal(f->err.code, KILN_E_SYNTAX);
	assert_true(f->err.column > 0);
}

static void refuses_missing_and_mistyped_fields(void **state)
{
	struct fx *f = *state;
	expect_fail(f, "{\"type\":\"vertex\"," JOB ",\"digest\":\"d\"}", KILN_E_SYNTAX, "\"schema\"");
	expect_fail(f, "{\"schema\":\"1\",\"type\":\"vertex\"," JOB "}", KILN_E_SYNTAX, "\"schema\"");
	expect_fail(f, "{\"schema\":1.0,\"type\":\"vertex\"," JOB "}", KILN_E_SYNTAX, "\"schema\"");
	expect_fail(f, "{\"schema\":0,\"type\":\"vertex\"," JOB "}", KILN_E_SYNTAX, "schema");
	expect_fail(f, "{\"schema\":-1,\"type\":\"vertex\"," JOB "}", KILN_E_SYNTAX, "schema");
	expect_fail(f, "{\"schema\":1," JOB ",\"digest\":\"d\"}", KILN_E_SYNTAX, "\"type\"");
	expect_fail(f, "{\"schema\":1,\"type\":5," JOB "}", KILN_E_SYNTAX, "\"type\"");
	expect_fail(f, "{\"schema\":1,\"type\":null," JOB "}", KILN_E_SYNTAX, "\"type\"");
	expect_fail(f, "{\"schema\":1,\"type\":\"vertex\",\"digest\":\"d\"}", KILN_E_SYNTAX, "\"job\"");
	expect_fail(f, "{\"schema\":1,\"type\":\"vertex\",\"job\":\"j\",\"digest\":\"d\"}",
		    KILN_E_SYNTAX, "\"job\"");
	expect_fail(f, "{\"schema\":1,\"type\":\"vertex\",\"job\":{},\"digest\":\"d\"}",
		    KILN_E_SYNTAX, "\"id\"");
	expect_fail(f, "{\"schema\":1,\"type\":\"vertex\",\"job\":{\"id\":1},\"digest\":\"d\"}",
		    KILN_E_SYNTAX, "\"id\"");
	expect_fail(f, "{\"schema\":1,\"type\":\"vertex\",\"job\":{\"id\":\"j\",\"number\":\"2\"},"
		    "\"digest\":\"d\"}", KILN_E_SYNTAX, "\"number\"");
	expect_fail(f, "{\"schema\":1,\"type\":\"vertex\",\"job\":{\"id\":\"j\",\"number\":-1},"
		    "\"digest\":\"d\"}", KILN_E_SYNTAX, "\"number\"");

	expect_fail(f, HEAD("vertex") "}", KILN_E_SYNTAX, "\"digest\"");
	expect_fail(f, HEAD("vertex") ",\"digest\":7}", KILN_E_SYNTAX, "\"digest\"");
	expect_fail(f, HEAD("vertex") ",\"digest\":\"d\",\"name\":[]}", KILN_E_SYNTAX, "\"name\"");
	expect_fail(f, HEAD("vertex") ",\"digest\":\"d\",\"cached\":\"yes\"}", KILN_E_SYNTAX, "\"cached\"");
	expect_fail(f, HEAD("vertex") ",\"digest\":\"d\",\"cached\":1}", KILN_E_SYNTAX, "\"cached\"");
	expect_fail(f, HEAD("vertex") ",\"digest\":\"d\",\"inputs\":\"a\"}", KILN_E_SYNTAX, "\"inputs\"");
	expect_fail(f, HEAD("vertex") ",\"digest\":\"d\",\"inputs\":[\"a\",2]}", KILN_E_SYNTAX, "\"inputs\"");
	expect_fail(f, HEAD("vertex") ",\"digest\":\"d\",\"started\":17}", KILN_E_SYNTAX, "\"started\"");
	expect_fail(f, HEAD("vertex") ",\"digest\":\"d\",\"error\":false}", KILN_E_SYNTAX, "\"error\"");

	expect_fail(f, HEAD("job.finished") "}", KILN_E_SYNTAX, "\"status\"");
	expect_fail(f, HEAD("job.finished") ",\"status\":\"-11\"}", KILN_E_SYNTAX, "\"status\"");
	expect_fail(f, HEAD("job.finished") ",\"status\":0,\"metrics\":[]}", KILN_E_SYNTAX, "\"metrics\"");
	expect_fail(f, HEAD("job.finished") ",\"status\":0,\"metrics\":{\"cached\":true}}",
		    KILN_E_SYNTAX, "\"cached\"");

	expect_fail(f, HEAD("vertex.status") ",\"id\":\"x\"}", KILN_E_SYNTAX, "\"vertex\"");
	expect_fail(f, HEAD("vertex.status") ",\"vertex\":\"v\"}", KILN_E_SYNTAX, "\"id\"");
	expect_fail(f, HEAD("vertex.status") ",\"vertex\":\"v\",\"id\":\"x\",\"current\":1.5}",
		    KILN_E_SYNTAX, "\"current\"");

	expect_fail(f, HEAD("vertex.log") ",\"vertex\":\"v\"}", KILN_E_SYNTAX, "\"data\"");
	expect_fail(f, HEAD("vertex.log") ",\"data\":\"x\"}", KILN_E_SYNTAX, "\"vertex\"");
	expect_fail(f, HEAD("vertex.log") ",\"vertex\":\"v\",\"data\":[104]}", KILN_E_SYNTAX, "\"data\"");
	expect_fail(f, HEAD("vertex.log") ",\"vertex\":\"v\",\"data\":\"x\",\"data_base64\":\"eA==\"}",
		    KILN_E_SYNTAX, "both");
	expect_fail(f, HEAD("vertex.log") ",\"vertex\":\"v\",\"stream\":\"1\",\"data\":\"\"}",
		    KILN_E_SYNTAX, "\"stream\"");

	expect_fail(f, HEAD("warning") "}", KILN_E_SYNTAX, "\"message\"");
	expect_fail(f, HEAD("warning") ",\"message\":\"m\",\"detail\":\"d\"}", KILN_E_SYNTAX, "\"detail\"");
	expect_fail(f, HEAD("warning") ",\"message\":\"m\",\"line\":\"3\"}", KILN_E_SYNTAX, "\"line\"");
}

static void refuses_huge_numbers(void **state)
{
	struct fx *f = *state;
	/* Past int64: jansson refuses the literal. */
	expect_fail(f, HEAD("vertex.status") ",\"vertex\":\"v\",\"id\":\"x\","
		    "\"current\":99999999999999999999}", KILN_E_SYNTAX, NULL);
	expect_fail(f, HEAD("job.finished") ",\"status\":1e300}", KILN_E_SYNTAX, "\"status\"");
	/* Past the C field's range. */
	expect_fail(f, HEAD("job.finished") ",\"status\":2147483648}", KILN_E_SYNTAX, "range");
	expect_fail(f, HEAD("job.finished") ",\"status\":-2147483649}", KILN_E_SYNTAX, "range");
	expect_fail(f, HEAD("job.finished") ",\"status\":0,\"metrics\":{\"vertices\":4294967296}}",
		    KILN_E_SYNTAX, "\"vertices\"");
	expect_fail(f, HEAD("job.finished") ",\"status\":0,\"metrics\":{\"log_bytes\":-1}}",
		    KILN_E_SYNTAX, "\"log_bytes\"");
	expect_fail(f, HEAD("job.started") ",\"steps\":-3}", KILN_E_SYNTAX, "\"steps\"");
	expect_fail(f, HEAD("warning") ",\"message\":\"m\",\"line\":4294967296}", KILN_E_SYNTAX, "\"line\"");
	expect_fail(f, "{\"schema\":1,\"type\":\"vertex\",\"job\":{\"id\":\"j\","
		    "\"number\":9223372036854775807},\"digest\":\"d\"}", KILN_E_SYNTAX, "\"number\"");

	/* The extremes of int64 fields are fine. */
	assert_int_equal(decode(f, HEAD("vertex.status") ",\"vertex\":\"v\",\"id\":\"x\","
				"\"current\":9223372036854775807,\"total\":-9223372036854775808}"), 0);
	assert_true(f->ev.u.status.current == INT64_MAX);
	assert_true(f->ev.u.status.total == INT64_MIN);
	assert_int_equal(decode(f, HEAD("job.finished") ",\"status\":-2147483648,"
				"\"metrics\":{\"vertices\":4294967295}}"), 0);
	assert_int_equal(f->ev.u.job_finished.metrics.vertices, UINT32_MAX);
}

static void refuses_invalid_base64(void **state)
{
	struct fx *f = *state;
	static const char *const bad[] = {
		"a", "ab", "abc", "abcde", "a===", "====", "=abc", "ab=c", "ab!d",
		"ab d", "YQ==YQ==", "YQ=\\n", "Y\\u00e9==", "YQ==\\n", "YR==", "YWJ=",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char line[256];
		snprintf(line, sizeof(line), HEAD("vertex.log") ",\"vertex\":\"v\","
			 "\"data_base64\":\"%s\"}", bad[i]);
		expect_fail(f, line, KILN_E_SYNTAX, "base64");
	}
	expect_fail(f, HEAD("vertex.log") ",\"vertex\":\"v\",\"data_base64\":4}",
		    KILN_E_SYNTAX, "\"data_base64\"");
}

static void unsupported_types_and_schemas(void **state)
{
	struct fx *f = *state;
	expect_fail(f, HEAD("vertex.progress-group") ",\"id\":\"g\"}", KILN_E_UNSUPPORTED, "vertex.progress-group");
	expect_fail(f, HEAD("") "}", KILN_E_UNSUPPORTED, NULL);
	expect_fail(f, "{\"schema\":2,\"type\":\"vertex\"," JOB ",\"digest\":\"d\"}",
		    KILN_E_UNSUPPORTED, "schema 2");
	/* A newer schema may change anything: unsupported, not malformed. */
	expect_fail(f, "{\"schema\":2,\"type\":[],\"job\":7}", KILN_E_UNSUPPORTED, NULL);
	expect_fail(f, "{\"schema\":9223372036854775807}", KILN_E_UNSUPPORTED, NULL);
}

static void deep_nesting_is_refused(void **state)
{
	struct fx *f = *state;
	size_t depth = 100000;
	char *s = malloc(2 * depth + 64);
	size_t n = 0;
	n += (size_t)snprintf(s, 64, "{\"schema\":1,\"type\":\"vertex\",\"x\":");
	for (size_t i = 0; i < depth; i++)
		s[n++] = '[';
	for (size_t i = 0; i < depth; i++)
		s[n++] = ']';
	s[n++] = '}';
	s[n] = '\0';
	expect_fail(f, s, KILN_E_SYNTAX, NULL);
	free(s);
}

/* A tiny deterministic fuzzer: mutate valid lines byte by byte and by
 * truncation; the decoder must only ever return 0, SYNTAX or UNSUPPORTED
 * (and, under ASan, never touch memory it should not). */
static void mutations_never_crash(void **state)
{
	struct fx *f = *state;
	static const char *const seeds[] = {
		HEAD("job.started") ",\"frontend\":\"dockerfile\",\"backend\":\"buildkit\",\"steps\":5}",
		HEAD("job.finished") ",\"status\":-11,\"error\":\"e\",\"metrics\":{\"duration_ns\":1,"
			"\"vertices\":2,\"completed\":1,\"cached\":0,\"failed\":1,\"warnings\":0,"
			"\"log_bytes\":3}}",
		HEAD("vertex") ",\"digest\":\"sha256:01\",\"name\":\"n\",\"inputs\":[\"a\"],"
			"\"started\":\"2026-11-20T10:00:01.123456789Z\",\"cached\":false}",
		HEAD("vertex.status") ",\"vertex\":\"v\",\"id\":\"x\",\"current\":1,\"total\":2,"
			"\"timestamp\":\"2026-11-20T10:00:01.1Z\"}",
		HEAD("vertex.log") ",\"vertex\":\"v\",\"stream\":1,\"data_base64\":\"AP8KYQ==\"}",
		HEAD("warning") ",\"message\":\"m\",\"detail\":[\"d\"],\"line\":3}",
	};
	static const char alphabet[] = "{}[]\":,0123456789-+.eEZT\\u=/ abtnrf\x80\xff\0";
	uint32_t rng = 12345;
	char buf[1024];
	for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
		size_t len = strlen(seeds[s]);
		assert_true(len < sizeof(buf));
		assert_int_equal(decode(f, seeds[s]), 0);
		for (size_t cut = 0; cut <= len; cut++) {
			memcpy(buf, seeds[s], cut);
			buf[cut] = '\0';
			int rc = decode(f, buf);
			assert_true(rc == 0 || rc == KILN_E_SYNTAX || rc == KILN_E_UNSUPPORTED);
		}
		for (int iter = 0; iter < 4000; iter++) {
			memcpy(buf, seeds[s], len + 1);
			int edits = 1 + (int)((rng = rng * 1103515245 + 12345) >> 16) % 4;
			for (int e = 0; e < edits; e++) {
				rng = rng * 1103515245 + 12345;
				size_t pos = (rng >> 8) % len;
				rng = rng * 1103515245 + 12345;
				buf[pos] = alphabet[(rng >> 8) % (sizeof(alphabet) - 1)];
			}
			int rc = decode(f, buf);
			assert_true(rc == 0 || rc == KILN_E_SYNTAX || rc == KILN_E_UNSUPPORTED);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(decodes_job_started),
		T(decodes_job_finished),
		T(decodes_vertex),
		T(decodes_status),
		T(decodes_log_text),
		T(decodes_log_base64),
		T(decodes_warning),
		T(ignores_unknown_fields),
		T(parses_rfc3339_times),
		T(refuses_malformed_json),
		T(refuses_missing_and_mistyped_fields),
		T(refuses_huge_numbers),
		T(refuses_invalid_base64),
		T(unsupported_types_and_schemas),
		T(deep_nesting_is_refused),
		T(mutations_never_crash),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
