/*
 * stream.c: the Engine API's /build response -> kiln events.
 *
 * The response is newline-delimited JSON, one message per line, split
 * anywhere by the transport:
 *   {"stream":"Step 2/5 : RUN make"}        builder text and RUN output
 *   {"aux":{"ID":"sha256:…"}}                an image (end of a stage)
 *   {"status":"Downloading","id":"a1b2…",    pull progress
 *    "progressDetail":{"current":1,"total":9}}
 *   {"error":"…","errorDetail":{"code":3,"message":"…"}}
 * Docker says "Step N/M : INSTR", Podman "STEP N/M: INSTR". Each step
 * becomes a vertex named "[N/M] INSTR", as BuildKit names Dockerfile steps;
 * its output becomes the vertex's log; the builder's own chatter
 * (" ---> Running in …", "Removing intermediate container …") is dropped;
 * "Successfully built/tagged" becomes an "exporting to image" vertex.
 * Pulls become statuses of the FROM step, as BuildKit reports them:
 * Docker's status/progress/id messages per layer, and Podman's text
 * ("Trying to pull R..." an item "pulling R"; "Copying blob sha256:…" a
 * layer item, done at "Writing manifest to image destination").
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "docker.h"

#define STATUS_INTERVAL_NS INT64_C(100000000) /* context progress: 10/s */
#define TEXT_MAX 65536 /* builder text longer than this is no builder line */

static int64_t now(const struct docker_stream *s)
{
	return s->host->now_ns();
}

static char *xstrndup(const struct kiln_host *host, const char *p, size_t n)
{
	char *s = host->alloc(n + 1);
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static bool starts(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);
	return len >= n && memcmp(s, prefix, n) == 0;
}

/* ---- emitting ------------------------------------------------------------ */

static void emit(struct docker_stream *s, struct kiln_event *ev)
{
	ev->struct_size = sizeof(*ev);
	ev->job = s->req->job;
	if (!ev->time_ns)
		ev->time_ns = now(s);
	s->host->emit(s->req->bus, ev);
}

static void emit_vertex(struct docker_stream *s, const struct docker_vertex *v,
			const char *error)
{
	const char *inputs[1] = { v->input };
	struct kiln_event ev = { .kind = KILN_EVENT_VERTEX };
	ev.u.vertex.digest = v->digest;
	ev.u.vertex.name = v->name;
	ev.u.vertex.inputs = v->input[0] ? inputs : NULL;
	ev.u.vertex.n_inputs = v->input[0] ? 1 : 0;
	ev.u.vertex.started_ns = v->started_ns;
	ev.u.vertex.completed_ns = v->completed_ns;
	ev.u.vertex.cached = v->cached;
	ev.u.vertex.error = error;
	emit(s, &ev);
}

/* The vertex output belongs to: the current step, else the context. */
static const char *owner(const struct docker_stream *s)
{
	if (s->cur.digest[0])
		return s->cur.digest;
	return s->ctx.digest[0] ? s->ctx.digest : NULL;
}

static void emit_log(struct docker_stream *s, int stream, const char *data, size_t len)
{
	const char *vertex = owner(s);
	if (!vertex || !len)
		return;
	struct kiln_event ev = { .kind = KILN_EVENT_VERTEX_LOG };
	ev.time_ns = now(s);
	ev.u.log.vertex = vertex;
	ev.u.log.stream = stream;
	ev.u.log.data = (const uint8_t *)data;
	ev.u.log.len = len;
	ev.u.log.timestamp_ns = ev.time_ns;
	emit(s, &ev);
}

static void emit_status(struct docker_stream *s, const char *vertex, const char *id,
			int64_t current, int64_t total, int64_t started_ns,
			int64_t completed_ns)
{
	if (!vertex)
		return;
	struct kiln_event ev = { .kind = KILN_EVENT_VERTEX_STATUS };
	ev.time_ns = now(s);
	ev.u.status.id = id;
	ev.u.status.vertex = vertex;
	ev.u.status.current = current;
	ev.u.status.total = total;
	ev.u.status.timestamp_ns = ev.time_ns;
	ev.u.status.started_ns = started_ns;
	ev.u.status.completed_ns = completed_ns;
	emit(s, &ev);
}

static void emit_warning(struct docker_stream *s, const char *msg)
{
	struct kiln_event ev = { .kind = KILN_EVENT_WARNING };
	ev.u.warning.vertex = owner(s);
	ev.u.warning.level = 1;
	ev.u.warning.message = msg;
	emit(s, &ev);
}

/* ---- vertices ---------------------------------------------------------- */

static void vertex_begin(struct docker_stream *s, struct docker_vertex *v,
			 const char *name, const char *const *key, size_t n_key,
			 const char *input)
{
	s->host->free(v->name);
	*v = (struct docker_vertex){ 0 };
	v->name = xstrndup(s->host, name, strlen(name));
	docker_digest(v->digest, key, n_key);
	if (input)
		snprintf(v->input, sizeof(v->input), "%s", input);
	v->started_ns = now(s);
	emit_vertex(s, v, NULL);
}

static void vertex_complete(struct docker_stream *s, struct docker_vertex *v,
			    const char *error)
{
	if (!v->digest[0] || v->completed_ns)
		return;
	v->completed_ns = now(s);
	emit_vertex(s, v, error);
}

static void items_clear(struct docker_stream *s)
{
	for (size_t i = 0; i < s->n_items; i++)
		s->host->free(s->items[i].id);
	s->n_items = 0;
}

static void pull_items_done(struct docker_stream *s);

/* The stage's name for vertex names, as BuildKit writes it: the FROM's
 * "AS name", else "stage-<index from 0>". */
static void stage_name(struct docker_stream *s, int stage, const char *from)
{
	const char *p = from + 4;
	snprintf(s->stage_name, sizeof(s->stage_name), "stage-%d", stage - 1);
	/* FROM [--platform=…] image [AS name] */
	while (*p) {
		while (*p == ' ' || *p == '\t')
			p++;
		const char *w = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		if (p - w == 2 && strncasecmp(w, "AS", 2) == 0) {
			while (*p == ' ' || *p == '\t')
				p++;
			size_t nl = strcspn(p, " \t");
			if (nl && nl < sizeof(s->stage_name)) {
				memcpy(s->stage_name, p, nl);
				s->stage_name[nl] = '\0';
			}
			return;
		}
	}
}

static void step_begin(struct docker_stream *s, int stage, int n, int m, const char *instr)
{
	if (s->pulling)
		pull_items_done(s);
	vertex_complete(s, &s->cur, NULL);
	items_clear(s);
	/* Steps of a stage form a chain; FROM starts a new one. */
	bool from = strncasecmp(instr, "FROM", 4) == 0 &&
		    (instr[4] == ' ' || instr[4] == '\t' || instr[4] == '\0');
	char input[DOCKER_DIGEST_SIZE] = "";
	if (!from && s->cur.digest[0])
		memcpy(input, s->cur.digest, sizeof(input));

	struct docker_buf name = { 0 };
	char num[48];
	if (stage && from)
		stage_name(s, stage, instr);
	if (stage) { /* "[build 2/3] COPY …", as BuildKit names multi-stage steps */
		docker_buf_adds(s->host, &name, "[");
		docker_buf_adds(s->host, &name, s->stage_name);
		docker_buf_adds(s->host, &name, " ");
	}
	if (m > 0)
		snprintf(num, sizeof(num), stage ? "%d/%d] " : "[%d/%d] ", n, m);
	else
		snprintf(num, sizeof(num), stage ? "%d] " : "[%d] ", n);
	docker_buf_adds(s->host, &name, num);
	docker_buf_adds(s->host, &name, instr);
	if (stage)
		snprintf(num, sizeof(num), "%d.%d", stage, n);
	else
		snprintf(num, sizeof(num), "%d", n);
	const char *key[] = { "kiln docker step", s->req->job->id, num, instr };
	vertex_begin(s, &s->cur, name.p, key, 4, input);
	docker_buf_release(s->host, &name);
	s->step = n;
	s->steps = m;
	s->stage = stage;
	s->pulling = from;
}

static void export_begin(struct docker_stream *s)
{
	if (s->exporting)
		return;
	if (s->pulling)
		pull_items_done(s);
	s->pulling = false;
	vertex_complete(s, &s->cur, NULL);
	items_clear(s);
	char input[DOCKER_DIGEST_SIZE] = "";
	if (s->cur.digest[0])
		memcpy(input, s->cur.digest, sizeof(input));
	const char *key[] = { "kiln docker export", s->req->job->id };
	vertex_begin(s, &s->cur, "exporting to image", key, 2, input);
	s->exporting = true;
}

/* A finished sub-task of the export ("naming to x:1"), shown like
 * BuildKit's exporter statuses. */
static void export_status(struct docker_stream *s, const char *what, const char *arg)
{
	export_begin(s);
	struct docker_buf id = { 0 };
	docker_buf_adds(s->host, &id, what);
	docker_buf_adds(s->host, &id, arg);
	int64_t t = now(s);
	emit_status(s, s->cur.digest, id.p, 0, 0, t, t);
	docker_buf_release(s->host, &id);
}

/* ---- Podman's pull text ------------------------------------------------------ */

/* A progress item of the current step, started now or updated. */
static void pull_item(struct docker_stream *s, const char *id, bool done);

/* Finish every item of the current step that is still open. */
static void pull_items_done(struct docker_stream *s)
{
	for (size_t i = 0; i < s->n_items; i++)
		if (!s->items[i].completed_ns)
			pull_item(s, s->items[i].id, true);
}

/* "Trying to pull R...", "Copying blob sha256:… [done]", …; false when
 * line is not one of them (then it is the step's output). */
static bool podman_pull_line(struct docker_stream *s, const char *line, size_t len)
{
	if (!s->pulling || !s->cur.digest[0])
		return false;
	if (starts(line, len, "Trying to pull ")) {
		const char *ref = line + 15;
		size_t n = len - 15;
		while (n && ref[n - 1] == '.')
			n--;
		struct docker_buf id = { 0 };
		docker_buf_adds(s->host, &id, "pulling ");
		docker_buf_add(s->host, &id, ref, n);
		pull_item(s, id.p, false);
		docker_buf_release(s->host, &id);
		return true;
	}
	if (starts(line, len, "Copying blob ") || starts(line, len, "Copying config ")) {
		bool blob = line[8] == 'b';
		const char *d = line + (blob ? 13 : 15);
		size_t n = strcspn(d, " ");
		bool done = strstr(d + n, "done") || strstr(d + n, "skipped");
		struct docker_buf id = { 0 };
		if (!blob)
			docker_buf_adds(s->host, &id, "config ");
		docker_buf_add(s->host, &id, d, n);
		pull_item(s, id.p, done || !blob);
		docker_buf_release(s->host, &id);
		return true;
	}
	if (starts(line, len, "Getting image source signatures") ||
	    starts(line, len, "Storing signatures"))
		return true;
	if (starts(line, len, "Writing manifest to image destination")) {
		pull_items_done(s);
		return true;
	}
	return false;
}

/* ---- builder text -------------------------------------------------------- */

/* Podman's stage prefix "[S/T] " (a multi-stage build) at the start of
 * line: S and T, and the length of the prefix; 0 when there is none. */
static size_t stage_prefix(const char *line, int *stage, int *stages)
{
	if (line[0] != '[')
		return 0;
	char *end;
	long a = strtol(line + 1, &end, 10), b;
	if (end == line + 1 || *end != '/' || a <= 0 || a > 100000)
		return 0;
	const char *p = end + 1;
	b = strtol(p, &end, 10);
	if (end == p || b < a || b > 100000 || strncmp(end, "] ", 2) != 0)
		return 0;
	*stage = (int)a;
	*stages = (int)b;
	return (size_t)(end + 2 - line);
}

/* "Step 3/7 : RUN make" (Docker), "STEP 3/7: RUN make" (Podman; older
 * Podman omits "/7"), "[2/3] STEP 1/4: FROM x" (Podman, a multi-stage
 * build: stage 2 of 3, step 1 of its 4). Only the next step in order
 * counts, so that RUN output that looks like a step line stays output. */
static bool parse_step(struct docker_stream *s, const char *line, int *stage, int *n,
		       int *m, const char **instr)
{
	const char *p;
	bool podman;
	int st = 0, sts = 0;
	line += stage_prefix(line, &st, &sts);
	if (strncmp(line, "Step ", 5) == 0 && !st)
		p = line + 5, podman = false;
	else if (strncmp(line, "STEP ", 5) == 0)
		p = line + 5, podman = true;
	else
		return false;
	char *end;
	long a = strtol(p, &end, 10), b = 0;
	if (end == p || a <= 0 || a > 1000000)
		return false;
	p = end;
	if (*p == '/') {
		b = strtol(p + 1, &end, 10);
		if (end == p + 1 || b < a || b > 1000000)
			return false;
		p = end;
	}
	if (podman ? strncmp(p, ": ", 2) != 0 : strncmp(p, " : ", 3) != 0)
		return false;
	p += podman ? 2 : 3;
	if (st && st == s->stage + 1 && a == 1 && (!s->stages || sts == s->stages)) {
		/* the first step of the next stage */
	} else if (st != s->stage || a != s->step + 1 || (s->steps && b != s->steps)) {
		return false;
	}
	*stage = st;
	if (st)
		s->stages = sts;
	*n = (int)a;
	*m = (int)b;
	*instr = p;
	return true;
}

static bool is_hex(const char *s, size_t len)
{
	if (!len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* One complete line of builder text (NUL-terminated, no newline). */
static void builder_line(struct docker_stream *s, char *line, size_t len)
{
	int n, m;
	const char *instr, *rest;
	int stage, st, sts;
	if (parse_step(s, line, &stage, &n, &m, &instr)) {
		step_begin(s, stage, n, m, instr);
	} else if (starts(line, len, " ---> Using cache") ||
		   starts(line, len, "--> Using cache")) {
		s->cur.cached = true;
		vertex_complete(s, &s->cur, NULL);
	} else if (starts(line, len, " ---> Running in ")) {
		/* the step's container started: nothing to show */
	} else if (starts(line, len, " ---> ") || starts(line, len, "--> ")) {
		/* " ---> 59c90a04…": the step's image, so the step is done */
		rest = line + (line[0] == ' ' ? 6 : 4);
		if (is_hex(rest, strlen(rest)) && !s->exporting)
			vertex_complete(s, &s->cur, NULL);
	} else if (starts(line, len, "Removing intermediate container ")) {
		/* housekeeping */
	} else if (starts(line, len, "Successfully built ")) {
		rest = line + 19;
		s->host->free(s->short_id);
		s->short_id = xstrndup(s->host, rest, strlen(rest));
		export_status(s, "writing image ", s->image_id ? s->image_id : rest);
		s->wrote_image = true;
	} else if (starts(line, len, "Successfully tagged ")) {
		export_status(s, "naming to ", line + 20);
	} else if (starts(line, len, "COMMIT") ||
		   (stage_prefix(line, &st, &sts) &&
		    starts(line + stage_prefix(line, &st, &sts),
			   len - stage_prefix(line, &st, &sts), "COMMIT"))) {
		export_begin(s); /* Podman: committing the final image */
	} else if (starts(line, len, "[Warning] ")) {
		emit_warning(s, line + 10);
	} else if (starts(line, len, "[WARNING]: ")) {
		emit_warning(s, line + 11);
	} else if (podman_pull_line(s, line, len)) {
		/* a pull status of the FROM step */
	} else {
		line[len] = '\n';
		emit_log(s, 1, line, len + 1);
		line[len] = '\0';
	}
}

/* Lines that the builder itself writes, as opposed to RUN output. Each
 * comes as a message of its own. */
static bool builder_text(const char *m, size_t len)
{
	static const char *const prefixes[] = {
		"Step ", "STEP ", " ---> ", "--> ", "Removing intermediate container ",
		"Successfully built ", "Successfully tagged ", "COMMIT", "[Warning] ",
		"[WARNING]: ", "Trying to pull ", "Getting image source signatures",
		"Copying blob ", "Copying config ", "Writing manifest to image destination",
		"Storing signatures",
	};
	int st, sts;
	size_t skip = 0;
	if (len > 0 && m[0] == '[' && memchr(m, '\n', len)) {
		/* "[2/3] STEP …", "[3/3] COMMIT …" (Podman, multi-stage) */
		char head[32];
		size_t hl = len < sizeof(head) - 1 ? len : sizeof(head) - 1;
		memcpy(head, m, hl);
		head[hl] = '\0';
		skip = stage_prefix(head, &st, &sts);
		if (skip)
			return starts(m + skip, len - skip, "STEP ") ||
			       starts(m + skip, len - skip, "COMMIT");
	}
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (starts(m, len, prefixes[i]))
			return true;
	return false;
}

static void builder_lines(struct docker_stream *s)
{
	char *nl;
	while (s->text.len && (nl = memchr(s->text.p, '\n', s->text.len))) {
		size_t n = (size_t)(nl - s->text.p);
		if (n && s->text.p[n - 1] == '\r')
			n--;
		char *line = xstrndup(s->host, s->text.p, n);
		docker_buf_consume(&s->text, (size_t)(nl - s->text.p) + 1);
		builder_line(s, line, n);
		s->host->free(line);
	}
	if (s->text.len > TEXT_MAX) { /* no line end in sight: plain output */
		emit_log(s, 1, s->text.p, s->text.len);
		docker_buf_consume(&s->text, s->text.len);
	}
}

static void on_stream(struct docker_stream *s, const char *m, size_t len)
{
	int fd = 1;
	/* The classic builder paints RUN's stderr red: ESC[91m … ESC[0m. */
	if (starts(m, len, "\x1b[91m")) {
		fd = 2;
		m += 5, len -= 5;
		if (len >= 4 && memcmp(m + len - 4, "\x1b[0m", 4) == 0)
			len -= 4;
	}
	if (fd == 1 && (s->text.len || builder_text(m, len))) {
		docker_buf_add(s->host, &s->text, m, len);
		builder_lines(s);
		return;
	}
	/* Podman ends with the bare image ID. */
	if (s->exporting && len == 65 && m[64] == '\n' && is_hex(m, 64))
		return;
	emit_log(s, fd, m, len);
}

/* ---- pulls --------------------------------------------------------------- */

static struct docker_item *item_get(struct docker_stream *s, const char *id)
{
	for (size_t i = 0; i < s->n_items; i++)
		if (strcmp(s->items[i].id, id) == 0)
			return &s->items[i];
	if (s->n_items == s->cap_items) {
		s->cap_items = s->cap_items ? s->cap_items * 2 : 8;
		s->items = s->host->realloc(s->items, s->cap_items * sizeof(*s->items));
	}
	struct docker_item *it = &s->items[s->n_items++];
	*it = (struct docker_item){ xstrndup(s->host, id, strlen(id)), now(s), 0 };
	return it;
}

static void pull_item(struct docker_stream *s, const char *id, bool done)
{
	struct docker_item *it = item_get(s, id);
	if (done && !it->completed_ns)
		it->completed_ns = now(s);
	emit_status(s, owner(s), it->id, 0, 0, it->started_ns, it->completed_ns);
}

static void on_status(struct docker_stream *s, const char *status, const char *id,
		      json_t *detail)
{
	static const char *const download[] = {
		"Pulling fs layer", "Waiting", "Downloading", "Verifying Checksum",
		"Download complete", "Already exists",
	};
	static const char *const extract[] = { "Extracting", "Pull complete" };
	bool is_download = false, is_extract = false;
	if (id && *id) {
		for (size_t i = 0; i < sizeof(download) / sizeof(download[0]); i++)
			is_download |= strcmp(status, download[i]) == 0;
		for (size_t i = 0; i < sizeof(extract) / sizeof(extract[0]); i++)
			is_extract |= strcmp(status, extract[i]) == 0;
	}
	if (!is_download && !is_extract) {
		/* "latest: Pulling from library/busybox", "Digest: sha256:…" */
		struct docker_buf line = { 0 };
		if (id && *id) {
			docker_buf_adds(s->host, &line, id);
			docker_buf_adds(s->host, &line, ": ");
		}
		docker_buf_adds(s->host, &line, status);
		docker_buf_adds(s->host, &line, "\n");
		emit_log(s, 1, line.p, line.len);
		docker_buf_release(s->host, &line);
		return;
	}
	/* A layer: its download and its extraction are two items, as
	 * BuildKit shows "sha256:…" and "extracting sha256:…". */
	struct docker_buf key = { 0 };
	if (is_extract)
		docker_buf_adds(s->host, &key, "extracting ");
	docker_buf_adds(s->host, &key, id);
	struct docker_item *it = item_get(s, key.p);
	docker_buf_release(s->host, &key);
	json_int_t cur = 0, total = 0;
	if (json_is_object(detail)) {
		cur = json_integer_value(json_object_get(detail, "current"));
		total = json_integer_value(json_object_get(detail, "total"));
	}
	bool done = strcmp(status, "Download complete") == 0 ||
		    strcmp(status, "Already exists") == 0 ||
		    strcmp(status, "Pull complete") == 0;
	if (done && !it->completed_ns)
		it->completed_ns = now(s);
	emit_status(s, owner(s), it->id, cur, total, it->started_ns, it->completed_ns);
}

/* ---- messages -------------------------------------------------------------- */

static void on_error(struct docker_stream *s, const char *msg)
{
	if (s->text.len) { /* an unfinished builder line: show it */
		docker_buf_adds(s->host, &s->text, "\n");
		builder_lines(s);
	}
	if (!s->error) {
		s->error = xstrndup(s->host, msg, strlen(msg));
		if (s->cur.digest[0] && !s->cur.completed_ns)
			s->error_vertex = xstrndup(s->host, s->cur.name, strlen(s->cur.name));
	}
	vertex_complete(s, &s->cur, msg);
}

static void on_message(struct docker_stream *s, json_t *o)
{
	json_t *v;
	s->messages++;
	if ((v = json_object_get(o, "stream")) && json_is_string(v))
		on_stream(s, json_string_value(v), json_string_length(v));
	if ((v = json_object_get(o, "aux")) && json_is_object(v)) {
		const char *id = json_string_value(json_object_get(v, "ID"));
		if (id && *id) {
			s->host->free(s->image_id);
			s->image_id = xstrndup(s->host, id, strlen(id));
		}
	}
	const char *status = json_string_value(json_object_get(o, "status"));
	if (status)
		on_status(s, status, json_string_value(json_object_get(o, "id")),
			  json_object_get(o, "progressDetail"));
	json_t *detail = json_object_get(o, "errorDetail");
	const char *err = json_string_value(json_object_get(detail, "message"));
	if (!err || !*err)
		err = json_string_value(json_object_get(o, "error"));
	if (err && *err)
		on_error(s, err);
}

static void on_line(struct docker_stream *s, const char *line, size_t len)
{
	while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
		len--;
	if (!len)
		return;
	json_error_t jerr;
	json_t *o = json_loadb(line, len, JSON_DISABLE_EOF_CHECK, &jerr);
	if (!json_is_object(o)) {
		s->host->log(KILN_LOG_DEBUG, "docker: ignoring a message that is not a "
			     "JSON object: %.*s", (int)(len > 120 ? 120 : len), line);
		json_decref(o);
		return;
	}
	on_message(s, o);
	json_decref(o);
}

/* ---- interface --------------------------------------------------------------- */

void docker_stream_init(struct docker_stream *s, const struct kiln_host *host,
			const struct kiln_solve *req)
{
	*s = (struct docker_stream){ .host = host, .req = req };
}

void docker_stream_feed(struct docker_stream *s, const char *data, size_t len)
{
	const char *nl;
	while (len && (nl = memchr(data, '\n', len))) {
		size_t n = (size_t)(nl - data);
		if (s->json.len) {
			docker_buf_add(s->host, &s->json, data, n);
			on_line(s, s->json.p, s->json.len);
			docker_buf_consume(&s->json, s->json.len);
		} else {
			on_line(s, data, n);
		}
		data += n + 1;
		len -= n + 1;
	}
	if (len)
		docker_buf_add(s->host, &s->json, data, len);
}

void docker_stream_context_begin(struct docker_stream *s)
{
	const char *key[] = { "kiln docker context", s->req->job->id };
	vertex_begin(s, &s->ctx, "[internal] load build context", key, 2, NULL);
}

void docker_stream_warning(struct docker_stream *s, const char *msg)
{
	emit_warning(s, msg);
}

void docker_stream_context_progress(struct docker_stream *s, uint64_t bytes, bool done)
{
	if (!s->ctx.digest[0] || s->ctx.completed_ns)
		return;
	int64_t t = now(s);
	if (!done && (!bytes || t - s->ctx_status_ns < STATUS_INTERVAL_NS))
		return;
	s->ctx_status_ns = t;
	emit_status(s, s->ctx.digest, "transferring context", (int64_t)bytes, 0,
		    s->ctx.started_ns, done ? t : 0);
	if (done)
		vertex_complete(s, &s->ctx, NULL);
}

void docker_stream_finish(struct docker_stream *s, const char *error)
{
	if (s->json.len) { /* a last message without its newline */
		on_line(s, s->json.p, s->json.len);
		docker_buf_consume(&s->json, s->json.len);
	}
	if (s->text.len) {
		docker_buf_adds(s->host, &s->text, "\n");
		builder_lines(s);
	}
	/* Podman names the image only in aux, after "COMMIT". */
	if (!error && !s->error && s->exporting && !s->wrote_image && s->image_id) {
		export_status(s, "writing image ", s->image_id);
		s->wrote_image = true;
	}
	vertex_complete(s, &s->ctx, error);
	vertex_complete(s, &s->cur, error);
}

void docker_stream_release(struct docker_stream *s)
{
	const struct kiln_host *host = s->host;
	items_clear(s);
	host->free(s->items);
	host->free(s->cur.name);
	host->free(s->ctx.name);
	host->free(s->image_id);
	host->free(s->short_id);
	host->free(s->error);
	host->free(s->error_vertex);
	docker_buf_release(host, &s->json);
	docker_buf_release(host, &s->text);
	*s = (struct docker_stream){ 0 };
}
