/*
 * json.c: the `--progress=json` renderer. Every event becomes one JSON
 * object on one line (schema 1, docs/events.md), written with one write(2)
 * so that lines from parallel jobs never interleave. The core's decoder
 * (core/eventjson.c) reads the same format back for `kiln replay`; the
 * golden tests check that replaying a stream through this renderer gives
 * the stream back byte for byte, so everything here is deterministic: keys
 * in a fixed order, compact separators, times in one format.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include <kiln/kiln.h>

#define SCHEMA_VERSION 1
#define NS_PER_SEC INT64_C(1000000000)

struct buf {
	char *p;
	size_t len, cap;
};

struct state {
	const struct kiln_host *host;
	int fd;
	int write_errno; /* first write error; later writes are skipped */
	struct buf line; /* reused for every event */
	struct buf tmp;  /* scratch for UTF-8 repair and base64 */
};

static void buf_reserve(const struct kiln_host *host, struct buf *b, size_t extra)
{
	if (b->len + extra <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra)
		cap *= 2;
	b->p = host->realloc(b->p, cap);
	b->cap = cap;
}

static void buf_add(const struct kiln_host *host, struct buf *b, const void *d,
		    size_t n)
{
	buf_reserve(host, b, n);
	if (n)
		memcpy(b->p + b->len, d, n);
	b->len += n;
}

/* ---- values ------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one
 * (overlong forms, surrogates and code points past U+10FFFF are invalid,
 * as in jansson). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

/* True when data is valid UTF-8 without NUL bytes: it can be a JSON string
 * that every consumer reads back unchanged. */
static bool plain_text(const uint8_t *data, size_t len)
{
	for (size_t i = 0; i < len;) {
		if (data[i] == 0)
			return false;
		size_t n = utf8_seq(data + i, len - i);
		if (!n)
			return false;
		i += n;
	}
	return true;
}

/* A JSON string of s. Strings in events are UTF-8 by contract; should one
 * not be, its invalid bytes become U+FFFD rather than losing the field. */
static json_t *jstr(struct state *st, const char *s)
{
	if (!s)
		s = "";
	size_t len = strlen(s);
	if (plain_text((const uint8_t *)s, len))
		return json_stringn(s, len);
	st->tmp.len = 0;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq((const unsigned char *)s + i, len - i);
		if (n) {
			buf_add(st->host, &st->tmp, s + i, n);
			i += n;
		} else {
			buf_add(st->host, &st->tmp, "\xef\xbf\xbd", 3);
			i++;
		}
	}
	return json_stringn(st->tmp.p, st->tmp.len);
}

/* ns since the epoch as RFC 3339 UTC with nanoseconds:
 * "2026-11-20T10:00:01.123456789Z". Covers every int64 (1677..2262). */
static void format_time(int64_t ns, char out[40])
{
	int64_t secs = ns / NS_PER_SEC, frac = ns % NS_PER_SEC;
	if (frac < 0) {
		frac += NS_PER_SEC;
		secs--;
	}
	int64_t days = secs / 86400, rem = secs % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	/* H. Hinnant's civil_from_days. */
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int64_t day = doy - (153 * mp + 2) / 5 + 1;
	int64_t mon = mp < 10 ? mp + 3 : mp - 9;
	int64_t year = yoe + era * 400 + (mon <= 2);
	snprintf(out, 40, "%04d-%02d-%02dT%02d:%02d:%02d.%09dZ", (int)year,
		 (int)mon, (int)day, (int)(rem / 3600), (int)(rem / 60 % 60),
		 (int)(rem % 60), (int)frac);
}

static void set(json_t *o, const char *key, json_t *v)
{
	/* json_object_set_new takes v even on failure; a NULL v (jansson out
	 * of memory) just leaves the key out. */
	json_object_set_new(o, key, v);
}

static void set_str(struct state *st, json_t *o, const char *key, const char *s)
{
	set(o, key, jstr(st, s));
}

static void set_opt_str(struct state *st, json_t *o, const char *key,
			const char *s)
{
	if (s)
		set_str(st, o, key, s);
}

static void set_int(json_t *o, const char *key, int64_t v)
{
	set(o, key, json_integer((json_int_t)v));
}

static void set_time(json_t *o, const char *key, int64_t ns)
{
	char t[40];
	format_time(ns, t);
	set(o, key, json_string(t));
}

static void set_opt_time(json_t *o, const char *key, int64_t ns)
{
	if (ns)
		set_time(o, key, ns);
}

static json_t *str_array(struct state *st, const char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; v && i < n; i++)
		json_array_append_new(a, jstr(st, v[i]));
	return a;
}

static void set_base64(struct state *st, json_t *o, const char *key,
		       const uint8_t *d, size_t len)
{
	static const char tbl[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	st->tmp.len = 0;
	buf_reserve(st->host, &st->tmp, (len + 2) / 3 * 4);
	char *p = st->tmp.p;
	size_t i = 0;
	for (; i + 3 <= len; i += 3) {
		uint32_t w = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
		*p++ = tbl[w >> 18 & 63];
		*p++ = tbl[w >> 12 & 63];
		*p++ = tbl[w >> 6 & 63];
		*p++ = tbl[w & 63];
	}
	if (i < len) {
		uint32_t w = (uint32_t)d[i] << 16;
		if (i + 1 < len)
			w |= (uint32_t)d[i + 1] << 8;
		*p++ = tbl[w >> 18 & 63];
		*p++ = tbl[w >> 12 & 63];
		*p++ = i + 1 < len ? tbl[w >> 6 & 63] : '=';
		*p++ = '=';
	}
	st->tmp.len = (size_t)(p - st->tmp.p);
	set(o, key, json_stringn(st->tmp.p, st->tmp.len));
}

/* ---- events -------------------------------------------------------------- */

/* True when the sender's struct kiln_event holds union member m. */
#define EVENT_HAS(ev, m)                                                      \
	((ev)->struct_size >=                                                 \
	 offsetof(struct kiln_event, u) + sizeof(((struct kiln_event *)0)->u.m))

static json_t *job_object(struct state *st, const struct kiln_job *j)
{
	static const struct kiln_job none = { 0 };
	if (!j)
		j = &none;
	json_t *o = json_object();
	set_str(st, o, "id", j->id);
	set_str(st, o, "target", j->target);
	set_str(st, o, "platform", j->platform);
	set_str(st, o, "builder", j->builder);
	set_int(o, "number", j->number);
	return o;
}

static void add_job_started(struct state *st, json_t *o, const struct kiln_event *ev)
{
	const struct kiln_event_job_started *e = &ev->u.job_started;
	set_opt_str(st, o, "frontend", e->frontend);
	set_opt_str(st, o, "backend", e->backend);
	if (e->steps)
		set_int(o, "steps", e->steps);
	if (e->jobs)
		set_int(o, "jobs", e->jobs);
	if (KILN_HAS_FIELD(ev, struct kiln_event, u.job_started.previous_duration_ns)) {
		set_opt_str(st, o, "log_dir", e->log_dir);
		if (e->previous_duration_ns > 0)
			set_int(o, "previous_duration_ns", e->previous_duration_ns);
	}
	if (KILN_HAS_FIELD(ev, struct kiln_event, u.job_started.backend_reason))
		set_opt_str(st, o, "backend_reason", e->backend_reason);
}

static void add_job_finished(struct state *st, json_t *o, const struct kiln_event *ev)
{
	const struct kiln_event_job_finished *e = &ev->u.job_finished;
	const struct kiln_job_metrics *m = &e->metrics;
	set_int(o, "status", e->status);
	set_opt_str(st, o, "error", e->error);
	set_opt_str(st, o, "image_digest", e->image_digest);
	set_opt_str(st, o, "config_digest", e->config_digest);
	json_t *mo = json_object();
	set_int(mo, "duration_ns", m->duration_ns);
	set_int(mo, "vertices", m->vertices);
	set_int(mo, "completed", m->completed);
	set_int(mo, "cached", m->cached);
	set_int(mo, "failed", m->failed);
	set_int(mo, "warnings", m->warnings);
	set_int(mo, "log_bytes",
		m->log_bytes > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)m->log_bytes);
	set(o, "metrics", mo);
	if (KILN_HAS_FIELD(ev, struct kiln_event, u.job_finished.image_layers)) {
		if (e->context_bytes)
			set_int(o, "context_bytes", e->context_bytes > (uint64_t)INT64_MAX
							    ? INT64_MAX : (int64_t)e->context_bytes);
		if (e->image_size > 0)
			set_int(o, "image_size", e->image_size);
		if (e->image_layers)
			set_int(o, "image_layers", e->image_layers);
	}
}

static void add_vertex(struct state *st, json_t *o, const struct kiln_event *ev)
{
	const struct kiln_event_vertex *e = &ev->u.vertex;
	set_str(st, o, "digest", e->digest);
	set_opt_str(st, o, "name", e->name);
	set(o, "inputs", str_array(st, e->inputs, e->n_inputs));
	set_opt_time(o, "started", e->started_ns);
	set_opt_time(o, "completed", e->completed_ns);
	set(o, "cached", json_boolean(e->cached));
	set_opt_str(st, o, "error", e->error);
}

static void add_status(struct state *st, json_t *o, const struct kiln_event *ev)
{
	const struct kiln_event_vertex_status *e = &ev->u.status;
	set_str(st, o, "vertex", e->vertex);
	set_str(st, o, "id", e->id);
	set_opt_str(st, o, "name", e->name);
	set_int(o, "current", e->current);
	set_int(o, "total", e->total);
	set_opt_time(o, "timestamp", e->timestamp_ns);
	set_opt_time(o, "started", e->started_ns);
	set_opt_time(o, "completed", e->completed_ns);
}

static void add_log(struct state *st, json_t *o, const struct kiln_event *ev)
{
	const struct kiln_event_vertex_log *e = &ev->u.log;
	const uint8_t *data = e->data ? e->data : (const uint8_t *)"";
	size_t len = e->data ? e->len : 0;
	set_str(st, o, "vertex", e->vertex);
	set_int(o, "stream", e->stream);
	set_opt_time(o, "timestamp", e->timestamp_ns);
	if (plain_text(data, len))
		set(o, "data", json_stringn((const char *)data, len));
	else
		set_base64(st, o, "data_base64", data, len);
}

static void add_warning(struct state *st, json_t *o, const struct kiln_event *ev)
{
	const struct kiln_event_warning *e = &ev->u.warning;
	set_opt_str(st, o, "vertex", e->vertex);
	set_int(o, "level", e->level);
	set_str(st, o, "message", e->message);
	if (e->detail && e->n_detail)
		set(o, "detail", str_array(st, e->detail, e->n_detail));
	set_opt_str(st, o, "url", e->url);
	set_opt_str(st, o, "file", e->file);
	if (e->line)
		set_int(o, "line", e->line);
}

static int dump_cb(const char *buffer, size_t size, void *data)
{
	struct state *st = data;
	buf_add(st->host, &st->line, buffer, size);
	return 0;
}

static void write_line(struct state *st)
{
	const char *p = st->line.p;
	size_t n = st->line.len;
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
}

static void json_event(void *state, const struct kiln_event *ev)
{
	struct state *st = state;
	const char *type = kiln_event_kind_name(ev->kind);
	void (*add)(struct state *, json_t *, const struct kiln_event *) = NULL;
	bool has = false;
	switch (ev->kind) {
	case KILN_EVENT_JOB_STARTED:
		add = add_job_started, has = EVENT_HAS(ev, job_started);
		break;
	case KILN_EVENT_JOB_FINISHED:
		add = add_job_finished, has = EVENT_HAS(ev, job_finished);
		break;
	case KILN_EVENT_VERTEX:
		add = add_vertex, has = EVENT_HAS(ev, vertex);
		break;
	case KILN_EVENT_VERTEX_STATUS:
		add = add_status, has = EVENT_HAS(ev, status);
		break;
	case KILN_EVENT_VERTEX_LOG:
		add = add_log, has = EVENT_HAS(ev, log);
		break;
	case KILN_EVENT_WARNING:
		add = add_warning, has = EVENT_HAS(ev, warning);
		break;
	}
	if (!type || !add || !has || st->write_errno)
		return; /* a kind this schema does not know: skip it */

	json_t *o = json_object();
	if (!o)
		return;
	set_int(o, "schema", SCHEMA_VERSION);
	set(o, "type", json_string(type));
	set_time(o, "time", ev->time_ns);
	set(o, "job", job_object(st, ev->job));
	add(st, o, ev);

	st->line.len = 0;
	int rc = json_dump_callback(o, dump_cb, st, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (rc != 0)
		return;
	buf_add(st->host, &st->line, "\n", 1);
	write_line(st);
}

static int json_open(const struct kiln_host *host,
		     const struct kiln_renderer_opts *opts, void **statep,
		     struct kiln_err *err)
{
	if (!opts || !KILN_HAS_FIELD(opts, struct kiln_renderer_opts, fd) || opts->fd < 0)
		return host->error(err, KILN_E_INVALID, "json progress: no output");
	struct state *st = host->alloc(sizeof(*st));
	memset(st, 0, sizeof(*st));
	st->host = host;
	st->fd = opts->fd;
	*statep = st;
	return 0;
}

static int json_close(void *state, struct kiln_err *err)
{
	struct state *st = state;
	const struct kiln_host *host = st->host;
	int e = st->write_errno;
	host->free(st->line.p);
	host->free(st->tmp.p);
	host->free(st);
	if (e)
		return host->error(err, KILN_E_IO, "json progress: write: %s",
				   strerror(e));
	return 0;
}

static const struct kiln_renderer json_renderer = {
	.abi_version = KILN_ABI_VERSION,
	.struct_size = sizeof(struct kiln_renderer),
	.name = "json",
	.version = "1.0.0",
	.description = "one JSON object per event and line (schema 1, docs/events.md)",
	.open = json_open,
	.event = json_event,
	.close = json_close,
};

KILN_EXPORT int kiln_plugin_init(const struct kiln_host *host, uint32_t host_abi,
				 struct kiln_plugin *plugin, struct kiln_err *err)
{
	int rc = kiln_check_host_abi(host, host_abi, err);
	return rc < 0 ? rc : host->register_renderer(plugin, &json_renderer);
}
