/* eventjson.c: the decoder of the JSON event stream (docs/events.md), the
 * inverse of the json renderer plugin. Input is untrusted (recorded files,
 * pipes, fuzzers): every field is type- and range-checked, nothing is
 * assumed present unless the schema says so, and the only allocations are
 * jansson's (freed before returning) and the caller's arena. */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "arena.h"
#include "eventjson.h"
#include "util.h"

/* The newest schema this decoder understands. */
#define SCHEMA_VERSION 1

#define NS_PER_SEC INT64_C(1000000000)

/* Times and sizes are int64 nanoseconds/bytes: jansson's integers must
 * hold them. */
_Static_assert(sizeof(json_int_t) == sizeof(int64_t), "json_int_t is not 64-bit");
#define JINT_MIN ((json_int_t)INT64_MIN)
#define JINT_MAX ((json_int_t)INT64_MAX)

/* Decoding context: where to allocate, where to report, and the object
 * being decoded (for messages: `"vertex": field "name" …`). */
struct dec {
	struct kiln_arena *arena;
	struct kiln_err *err;
	const char *what; /* event type, or "job" inside the job object */
};

static int bad_field(struct dec *d, const char *key, const char *expect)
{
	return kiln__err(d->err, KILN_E_SYNTAX, "%s: field \"%s\" must be %s",
			 d->what, key, expect);
}

static int missing_field(struct dec *d, const char *key)
{
	return kiln__err(d->err, KILN_E_SYNTAX, "%s: missing field \"%s\"",
			 d->what, key);
}

/* A string field; *out is an arena copy, or NULL when absent and optional. */
static int get_str(struct dec *d, json_t *obj, const char *key, bool required,
		   const char **out)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (!v)
		return required ? missing_field(d, key) : 0;
	if (!json_is_string(v))
		return bad_field(d, key, "a string");
	*out = kiln__arena_strdup(d->arena, json_string_value(v));
	return 0;
}

/* An integer field within [min, max]; *out is 0 when absent and optional. */
static int get_int(struct dec *d, json_t *obj, const char *key, bool required,
		   json_int_t min, json_int_t max, json_int_t *out)
{
	json_t *v = json_object_get(obj, key);
	*out = 0;
	if (!v)
		return required ? missing_field(d, key) : 0;
	if (!json_is_integer(v))
		return bad_field(d, key, "an integer");
	json_int_t i = json_integer_value(v);
	if (i < min || i > max)
		return kiln__err(d->err, KILN_E_SYNTAX,
				 "%s: field \"%s\" out of range: %" JSON_INTEGER_FORMAT,
				 d->what, key, i);
	*out = i;
	return 0;
}

static int get_c_int(struct dec *d, json_t *obj, const char *key, bool required,
		     int min, int max, int *out)
{
	json_int_t i;
	int rc = get_int(d, obj, key, required, min, max, &i);
	*out = (int)i;
	return rc;
}

static int get_bool(struct dec *d, json_t *obj, const char *key, bool *out)
{
	json_t *v = json_object_get(obj, key);
	*out = false;
	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return bad_field(d, key, "true or false");
	*out = json_is_true(v);
	return 0;
}

/* An array of strings; absent means none (*out NULL, *n 0). */
static int get_strv(struct dec *d, json_t *obj, const char *key,
		    const char *const **out, size_t *n)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	*n = 0;
	if (!v)
		return 0;
	if (!json_is_array(v))
		return bad_field(d, key, "an array of strings");
	size_t len = json_array_size(v);
	if (len == 0)
		return 0;
	const char **sv = kiln__arena_alloc(d->arena, (len + 1) * sizeof(*sv));
	for (size_t i = 0; i < len; i++) {
		json_t *s = json_array_get(v, i);
		if (!json_is_string(s))
			return bad_field(d, key, "an array of strings");
		sv[i] = kiln__arena_strdup(d->arena, json_string_value(s));
	}
	sv[len] = NULL;
	*out = sv;
	*n = len;
	return 0;
}

/* ---- RFC 3339 times ----------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool leap_year(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Read exactly n digits at *p into *out; advances *p. */
static bool digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool expect_char(const char **p, const char *set)
{
	if (**p && strchr(set, **p)) {
		(*p)++;
		return true;
	}
	return false;
}

/* Parse "YYYY-MM-DDTHH:MM:SS[.F{1,9}](Z|±HH:MM)" into ns since the epoch.
 * Returns false on any deviation or when the instant does not fit an
 * int64 of nanoseconds (years 1677..2262). */
static bool parse_rfc3339(const char *s, int64_t *out)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	const char *p = s;
	int year, mon, day, hour, min, sec, f = 0;
	if (!digits(&p, 4, &year) || !expect_char(&p, "-") ||
	    !digits(&p, 2, &mon) || !expect_char(&p, "-") ||
	    !digits(&p, 2, &day) || !expect_char(&p, "Tt") ||
	    !digits(&p, 2, &hour) || !expect_char(&p, ":") ||
	    !digits(&p, 2, &min) || !expect_char(&p, ":") ||
	    !digits(&p, 2, &sec))
		return false;
	if (mon < 1 || mon > 12 || day < 1 || hour > 23 || min > 59 || sec > 59)
		return false;
	if (day > mdays[mon - 1] + (mon == 2 && leap_year(year)))
		return false;
	if (*p == '.') {
		p++;
		int n = 0;
		while (p[n] >= '0' && p[n] <= '9')
			n++;
		if (n < 1 || n > 9)
			return false;
		if (!digits(&p, n, &f))
			return false;
		for (; n < 9; n++)
			f *= 10;
	}
	int64_t offset = 0;
	if (expect_char(&p, "Zz")) {
		/* UTC */
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, oh, om;
		if (!digits(&p, 2, &oh) || !expect_char(&p, ":") ||
		    !digits(&p, 2, &om) || oh > 23 || om > 59)
			return false;
		offset = sign * (oh * 3600 + om * 60);
	} else {
		return false;
	}
	if (*p)
		return false;
	int64_t secs = days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 +
		       hour * 3600 + min * 60 + sec - offset;
	int64_t frac = f, ns;
	if (secs < 0 && frac > 0) {
		/* Reach INT64_MIN without overflowing on the way. */
		secs++;
		frac -= NS_PER_SEC;
	}
	if (__builtin_mul_overflow(secs, NS_PER_SEC, &ns) ||
	    __builtin_add_overflow(ns, frac, &ns))
		return false;
	*out = ns;
	return true;
}

/* A time field; 0 when absent. */
static int get_time(struct dec *d, json_t *obj, const char *key, int64_t *out)
{
	json_t *v = json_object_get(obj, key);
	*out = 0;
	if (!v)
		return 0;
	if (!json_is_string(v))
		return bad_field(d, key, "an RFC 3339 time string");
	if (!parse_rfc3339(json_string_value(v), out))
		return kiln__err(d->err, KILN_E_SYNTAX,
				 "%s: field \"%s\": bad RFC 3339 time \"%.64s\"",
				 d->what, key, json_string_value(v));
	return 0;
}

/* ---- base64 (RFC 4648, standard alphabet, padded) --------------------- */

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decode src (len a multiple of 4, '=' only as the last one or two
 * characters, zero bits under the padding) into an arena buffer. */
static bool b64_decode(struct kiln_arena *arena, const char *src, size_t len,
		       uint8_t **out, size_t *out_len)
{
	if (len % 4 != 0)
		return false;
	size_t pad = 0;
	if (len >= 4 && src[len - 1] == '=')
		pad = src[len - 2] == '=' ? 2 : 1;
	size_t n = len / 4 * 3 - pad;
	uint8_t *buf = kiln__arena_alloc(arena, n ? n : 1);
	size_t o = 0;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		int v[4];
		for (int k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)src[i + (size_t)k];
			if (c == '=' && last && (size_t)k >= 4 - pad) {
				v[k] = 0;
				continue;
			}
			v[k] = b64_value(c);
			if (v[k] < 0)
				return false;
		}
		/* The bits under the padding must be zero (RFC 4648 3.5):
		 * one encoding per byte string. */
		if (last && ((pad == 1 && (v[2] & 3)) || (pad == 2 && (v[1] & 15))))
			return false;
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
			     (uint32_t)v[2] << 6 | (uint32_t)v[3];
		uint8_t b[3] = { (uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w };
		size_t take = last ? 3 - pad : 3;
		for (size_t k = 0; k < take; k++)
			buf[o++] = b[k];
	}
	*out = buf;
	*out_len = o;
	return true;
}

/* ---- the event types ---------------------------------------------------- */

static int dec_job(struct dec *d, json_t *root, struct kiln_event *ev)
{
	json_t *j = json_object_get(root, "job");
	if (!j)
		return missing_field(d, "job");
	if (!json_is_object(j))
		return bad_field(d, "job", "an object");
	struct dec jd = *d;
	jd.what = "job";
	struct kiln_job *job = kiln__arena_alloc(d->arena, sizeof(*job));
	int rc;
	if ((rc = get_str(&jd, j, "id", true, &job->id)) < 0 ||
	    (rc = get_str(&jd, j, "target", false, &job->target)) < 0 ||
	    (rc = get_str(&jd, j, "platform", false, &job->platform)) < 0 ||
	    (rc = get_str(&jd, j, "builder", false, &job->builder)) < 0 ||
	    (rc = get_c_int(&jd, j, "number", false, 0, INT_MAX, &job->number)) < 0)
		return rc;
	/* Receivers may print these unchecked: never NULL. */
	if (!job->target)
		job->target = "";
	if (!job->platform)
		job->platform = "";
	if (!job->builder)
		job->builder = "";
	ev->job = job;
	return 0;
}

static int dec_job_started(struct dec *d, json_t *o, struct kiln_event *ev)
{
	struct kiln_event_job_started *e = &ev->u.job_started;
	int rc;
	if ((rc = get_str(d, o, "frontend", false, &e->frontend)) < 0 ||
	    (rc = get_str(d, o, "backend", false, &e->backend)) < 0 ||
	    (rc = get_c_int(d, o, "steps", false, 0, INT_MAX, &e->steps)) < 0 ||
	    (rc = get_c_int(d, o, "jobs", false, 0, INT_MAX, &e->jobs)) < 0 ||
	    (rc = get_str(d, o, "log_dir", false, &e->log_dir)) < 0 ||
	    (rc = get_str(d, o, "backend_reason", false, &e->backend_reason)) < 0)
		return rc;
	json_int_t prev;
	if ((rc = get_int(d, o, "previous_duration_ns", false, 0, JINT_MAX, &prev)) < 0)
		return rc;
	e->previous_duration_ns = (int64_t)prev;
	return 0;
}

static int dec_metrics(struct dec *d, json_t *o, struct kiln_job_metrics *m)
{
	json_t *mo = json_object_get(o, "metrics");
	if (!mo)
		return 0;
	if (!json_is_object(mo))
		return bad_field(d, "metrics", "an object");
	struct dec md = *d;
	md.what = "metrics";
	json_int_t v[7];
	static const char *const keys[] = { "duration_ns", "vertices", "completed",
					    "cached", "failed", "warnings", "log_bytes" };
	for (size_t i = 0; i < 7; i++) {
		json_int_t max = i == 0 || i == 6 ? JINT_MAX : UINT32_MAX;
		int rc = get_int(&md, mo, keys[i], false, 0, max, &v[i]);
		if (rc < 0)
			return rc;
	}
	m->duration_ns = v[0];
	m->vertices = (uint32_t)v[1];
	m->completed = (uint32_t)v[2];
	m->cached = (uint32_t)v[3];
	m->failed = (uint32_t)v[4];
	m->warnings = (uint32_t)v[5];
	m->log_bytes = (uint64_t)v[6];
	return 0;
}

static int dec_job_finished(struct dec *d, json_t *o, struct kiln_event *ev)
{
	struct kiln_event_job_finished *e = &ev->u.job_finished;
	int rc;
	if ((rc = get_c_int(d, o, "status", true, INT_MIN, INT_MAX, &e->status)) < 0 ||
	    (rc = get_str(d, o, "error", false, &e->error)) < 0 ||
	    (rc = dec_metrics(d, o, &e->metrics)) < 0 ||
	    (rc = get_str(d, o, "image_digest", false, &e->image_digest)) < 0 ||
	    (rc = get_str(d, o, "config_digest", false, &e->config_digest)) < 0)
		return rc;
	/* context_bytes is recomputed by the collector, as the metrics are */
	json_int_t v;
	if ((rc = get_int(d, o, "context_bytes", false, 0, JINT_MAX, &v)) < 0)
		return rc;
	e->context_bytes = (uint64_t)v;
	if ((rc = get_int(d, o, "image_size", false, 0, JINT_MAX, &v)) < 0)
		return rc;
	e->image_size = (int64_t)v;
	if ((rc = get_int(d, o, "image_layers", false, 0, UINT32_MAX, &v)) < 0)
		return rc;
	e->image_layers = (uint32_t)v;
	return 0;
}

static int dec_vertex(struct dec *d, json_t *o, struct kiln_event *ev)
{
	struct kiln_event_vertex *e = &ev->u.vertex;
	int rc;
	if ((rc = get_str(d, o, "digest", true, &e->digest)) < 0 ||
	    (rc = get_str(d, o, "name", false, &e->name)) < 0 ||
	    (rc = get_strv(d, o, "inputs", &e->inputs, &e->n_inputs)) < 0 ||
	    (rc = get_time(d, o, "started", &e->started_ns)) < 0 ||
	    (rc = get_time(d, o, "completed", &e->completed_ns)) < 0 ||
	    (rc = get_bool(d, o, "cached", &e->cached)) < 0 ||
	    (rc = get_str(d, o, "error", false, &e->error)) < 0)
		return rc;
	return 0;
}

static int dec_status(struct dec *d, json_t *o, struct kiln_event *ev)
{
	struct kiln_event_vertex_status *e = &ev->u.status;
	json_int_t cur, tot;
	int rc;
	if ((rc = get_str(d, o, "vertex", true, &e->vertex)) < 0 ||
	    (rc = get_str(d, o, "id", true, &e->id)) < 0 ||
	    (rc = get_str(d, o, "name", false, &e->name)) < 0 ||
	    (rc = get_int(d, o, "current", false, JINT_MIN, JINT_MAX, &cur)) < 0 ||
	    (rc = get_int(d, o, "total", false, JINT_MIN, JINT_MAX, &tot)) < 0 ||
	    (rc = get_time(d, o, "timestamp", &e->timestamp_ns)) < 0 ||
	    (rc = get_time(d, o, "started", &e->started_ns)) < 0 ||
	    (rc = get_time(d, o, "completed", &e->completed_ns)) < 0)
		return rc;
	e->current = cur;
	e->total = tot;
	return 0;
}

static int dec_log(struct dec *d, json_t *o, struct kiln_event *ev)
{
	struct kiln_event_vertex_log *e = &ev->u.log;
	int rc;
	if ((rc = get_str(d, o, "vertex", true, &e->vertex)) < 0 ||
	    (rc = get_c_int(d, o, "stream", false, 0, INT_MAX, &e->stream)) < 0 ||
	    (rc = get_time(d, o, "timestamp", &e->timestamp_ns)) < 0)
		return rc;
	json_t *text = json_object_get(o, "data");
	json_t *b64 = json_object_get(o, "data_base64");
	if (text && b64)
		return kiln__err(d->err, KILN_E_SYNTAX,
				 "%s: both \"data\" and \"data_base64\"", d->what);
	if (text) {
		if (!json_is_string(text))
			return bad_field(d, "data", "a string");
		size_t len = json_string_length(text);
		uint8_t *buf = kiln__arena_alloc(d->arena, len ? len : 1);
		memcpy(buf, json_string_value(text), len);
		e->data = buf;
		e->len = len;
		return 0;
	}
	if (b64) {
		if (!json_is_string(b64))
			return bad_field(d, "data_base64", "a string");
		uint8_t *buf;
		if (!b64_decode(d->arena, json_string_value(b64),
				json_string_length(b64), &buf, &e->len))
			return kiln__err(d->err, KILN_E_SYNTAX,
					 "%s: field \"data_base64\" is not valid base64",
					 d->what);
		e->data = buf;
		return 0;
	}
	return missing_field(d, "data");
}

static int dec_warning(struct dec *d, json_t *o, struct kiln_event *ev)
{
	struct kiln_event_warning *e = &ev->u.warning;
	int rc;
	if ((rc = get_str(d, o, "vertex", false, &e->vertex)) < 0 ||
	    (rc = get_c_int(d, o, "level", false, INT_MIN, INT_MAX, &e->level)) < 0 ||
	    (rc = get_str(d, o, "message", true, &e->message)) < 0 ||
	    (rc = get_strv(d, o, "detail", &e->detail, &e->n_detail)) < 0 ||
	    (rc = get_str(d, o, "url", false, &e->url)) < 0 ||
	    (rc = get_str(d, o, "file", false, &e->file)) < 0 ||
	    (rc = get_c_int(d, o, "line", false, 0, INT_MAX, &e->line)) < 0)
		return rc;
	return 0;
}

static const struct {
	enum kiln_event_kind kind;
	int (*decode)(struct dec *d, json_t *o, struct kiln_event *ev);
} types[] = {
	{ KILN_EVENT_JOB_STARTED, dec_job_started },
	{ KILN_EVENT_JOB_FINISHED, dec_job_finished },
	{ KILN_EVENT_VERTEX, dec_vertex },
	{ KILN_EVENT_VERTEX_STATUS, dec_status },
	{ KILN_EVENT_VERTEX_LOG, dec_log },
	{ KILN_EVENT_WARNING, dec_warning },
};

static int decode_root(json_t *root, struct kiln_arena *arena,
		       struct kiln_event *ev, struct kiln_err *err)
{
	struct dec d = { .arena = arena, .err = err, .what = "event" };
	if (!json_is_object(root))
		return kiln__err(err, KILN_E_SYNTAX, "event is not a JSON object");

	json_int_t schema;
	int rc = get_int(&d, root, "schema", true, JINT_MIN,
			 JINT_MAX, &schema);
	if (rc < 0)
		return rc;
	if (schema > SCHEMA_VERSION)
		return kiln__err(err, KILN_E_UNSUPPORTED,
				 "event schema %" JSON_INTEGER_FORMAT
				 " is newer than this kiln's (%d)",
				 schema, SCHEMA_VERSION);
	if (schema < 1)
		return kiln__err(err, KILN_E_SYNTAX,
				 "bad event schema %" JSON_INTEGER_FORMAT, schema);

	const char *type;
	if ((rc = get_str(&d, root, "type", true, &type)) < 0)
		return rc;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (strcmp(type, kiln_event_kind_name(types[i].kind)) != 0)
			continue;
		d.what = type;
		memset(ev, 0, sizeof(*ev));
		ev->struct_size = sizeof(*ev);
		ev->kind = types[i].kind;
		if ((rc = get_time(&d, root, "time", &ev->time_ns)) < 0 ||
		    (rc = dec_job(&d, root, ev)) < 0)
			return rc;
		return types[i].decode(&d, root, ev);
	}
	return kiln__err(err, KILN_E_UNSUPPORTED, "unknown event type \"%.64s\"",
			 type);
}

int kiln__event_decode(const char *line, struct kiln_arena *arena,
		       struct kiln_event *ev, struct kiln_err *err)
{
	if (!line)
		return kiln__err(err, KILN_E_SYNTAX, "no input");
	json_error_t jerr;
	/* No JSON_ALLOW_NUL: strings never hold U+0000 (binary log data
	 * travels as base64), so every string is a C string. */
	json_t *root = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return kiln__err_at(err, KILN_E_SYNTAX, NULL, 0,
				    jerr.column > 0 ? jerr.column : 0,
				    "invalid JSON: %s", jerr.text);
	/* Decode into a scratch event so *ev is untouched on failure. */
	struct kiln_event tmp;
	int rc = decode_root(root, arena, &tmp, err);
	json_decref(root);
	if (rc == 0)
		*ev = tmp;
	return rc;
}
