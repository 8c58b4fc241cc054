/* cmd_history.c: the build records under the state directory
 * (core/logstore.h; docs/history.md), read without an engine:
 *   kiln history ls|inspect|logs|rm|trace   (docker buildx history's verbs)
 *   kiln stats                              (totals over the records)
 *   kiln ps, kiln cancel ID                 (builds under way here)
 * A record is one job (one solve): STATE/logs/RUN/JOB/record.json. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "logstore.h"
#include "trace.h"
#include "util.h"

/* ---- loading ------------------------------------------------------------- */

struct rec {
	json_t *j;       /* the record, with "status" made effective */
	char *dir;       /* STATE/logs/RUN/JOB */
	char *run_dir;   /* STATE/logs/RUN */
	const char *id, *name, *status;
	int64_t started_ns;
	bool active;     /* under way: its run's lock is held */
	long pid;
};

struct recs {
	struct rec *v;
	size_t n;
	char *state;
};

static bool is_run_dir_name(const char *s)
{
	return strlen(s) >= 17 && s[8] == 'T' && s[15] == 'Z' && s[16] == '-';
}

static int64_t jint(json_t *o, const char *key)
{
	return (int64_t)json_integer_value(json_object_get(o, key));
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static int cmp_rec(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;
	if (x->started_ns != y->started_ns)
		return x->started_ns > y->started_ns ? -1 : 1; /* newest first */
	int c = strcmp(y->run_dir, x->run_dir);
	if (c)
		return c;
	return (int)(jint(json_object_get(y->j, "job"), "number") -
		     jint(json_object_get(x->j, "job"), "number"));
}

/* Every record under STATE/logs, newest first. Returns 0, or -1 when no
 * state directory is known (no HOME). */
static int recs_load(struct recs *r)
{
	memset(r, 0, sizeof(*r));
	r->state = kiln__state_dir();
	if (!r->state) {
		fprintf(stderr, "kiln: no state directory (set KILN_STATE_DIR or HOME)\n");
		return -1;
	}
	char *logs = kiln__xasprintf("%s/logs", r->state);
	DIR *d = opendir(logs);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (!is_run_dir_name(de->d_name))
			continue;
		char *run_dir = kiln__xasprintf("%s/%s", logs, de->d_name);
		long pid = 0;
		bool active = kiln__logstore_run_active(run_dir, &pid);
		DIR *jd = opendir(run_dir);
		struct dirent *je;
		while (jd && (je = readdir(jd))) {
			if (je->d_name[0] == '.')
				continue;
			char *path = kiln__xasprintf("%s/%s/record.json", run_dir, je->d_name);
			json_t *j = json_load_file(path, 0, NULL);
			free(path);
			if (!json_is_object(j) || !json_is_string(json_object_get(j, "id"))) {
				json_decref(j);
				continue;
			}
			/* a record still "running" whose builder is gone */
			if (strcmp(jstr(j, "status"), "running") == 0 && !active)
				json_object_set_new(j, "status", json_string("interrupted"));
			r->v = kiln__xrealloc(r->v, (r->n + 1) * sizeof(*r->v));
			struct rec *e = &r->v[r->n++];
			*e = (struct rec){
				.j = j, .dir = kiln__xasprintf("%s/%s", run_dir, je->d_name),
				.run_dir = kiln__xstrdup(run_dir), .id = jstr(j, "id"),
				.name = jstr(j, "name"), .status = jstr(j, "status"),
				.started_ns = jint(j, "started_ns"),
				.active = active && strcmp(jstr(j, "status"), "running") == 0,
				.pid = pid,
			};
		}
		if (jd)
			closedir(jd);
		free(run_dir);
	}
	if (d)
		closedir(d);
	free(logs);
	if (r->n)
		qsort(r->v, r->n, sizeof(*r->v), cmp_rec);
	return 0;
}

static void recs_release(struct recs *r)
{
	for (size_t i = 0; i < r->n; i++) {
		json_decref(r->v[i].j);
		free(r->v[i].dir);
		free(r->v[i].run_dir);
	}
	free(r->v);
	free(r->state);
}

/* The record REF names: an ID, a unique prefix of one, "^N" (the Nth
 * before the newest, as buildx) or NULL (the newest). Prints the error. */
static struct rec *recs_find(struct recs *r, const char *ref)
{
	if (!ref || !*ref || (ref[0] == '^' && ref[1])) {
		char *end = NULL;
		long n = ref && *ref ? strtol(ref + 1, &end, 10) : 0;
		if (ref && *ref && (*end || n < 0)) {
			fprintf(stderr, "kiln: invalid build reference '%s' (an ID, or ^N)\n", ref);
			return NULL;
		}
		if ((size_t)n >= r->n) {
			fprintf(stderr, "kiln: no build record%s%s in %s/logs\n",
				n ? " " : "", n ? ref : "", r->state);
			return NULL;
		}
		return &r->v[n];
	}
	struct rec *found = NULL;
	size_t len = strlen(ref);
	for (size_t i = 0; i < r->n; i++) {
		if (strcmp(r->v[i].id, ref) == 0)
			return &r->v[i];
		if (strncmp(r->v[i].id, ref, len) == 0) {
			if (found) {
				fprintf(stderr, "kiln: build reference '%s' is ambiguous (%s, %s, …)\n",
					ref, found->id, r->v[i].id);
				return NULL;
			}
			found = &r->v[i];
		}
	}
	if (!found)
		fprintf(stderr, "kiln: no build record '%s' (see 'kiln history ls')\n", ref);
	return found;
}

/* ---- formatting ---------------------------------------------------------- */

/* "1.23MB": decimal units, as BuildKit prints sizes. */
static void fmt_bytes(char *buf, size_t n, int64_t b)
{
	static const char *const units[] = { "B", "kB", "MB", "GB", "TB", "PB" };
	double v = (double)b;
	size_t i = 0;
	while (v >= 1000 && i + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1000;
		i++;
	}
	if (i == 0)
		snprintf(buf, n, "%lldB", (long long)b);
	else
		snprintf(buf, n, "%.2f%s", v, units[i]);
}

static void fmt_duration(char *buf, size_t n, int64_t ns)
{
	double s = (double)ns / 1e9;
	if (s < 60)
		snprintf(buf, n, "%.1fs", s);
	else if (s < 3600)
		snprintf(buf, n, "%dm %02ds", (int)(s / 60), (int)s % 60);
	else
		snprintf(buf, n, "%dh %02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

/* "3 minutes ago", as docker's tables say it. */
static void fmt_ago(char *buf, size_t n, int64_t ns)
{
	int64_t s = (kiln__now_ns() - ns) / 1000000000;
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(buf, n, "%lld second%s ago", (long long)s, s == 1 ? "" : "s");
	else if (s < 3600)
		snprintf(buf, n, "%lld minute%s ago", (long long)(s / 60), s / 60 == 1 ? "" : "s");
	else if (s < 172800)
		snprintf(buf, n, "%lld hour%s ago", (long long)(s / 3600), s / 3600 == 1 ? "" : "s");
	else
		snprintf(buf, n, "%lld days ago", (long long)(s / 86400));
}

static void fmt_when(char *buf, size_t n, int64_t ns)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, n, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* "Completed", "Error", … as buildx's table says. */
static const char *status_title(const char *s)
{
	if (!strcmp(s, "completed")) return "Completed";
	if (!strcmp(s, "error")) return "Error";
	if (!strcmp(s, "canceled")) return "Canceled";
	if (!strcmp(s, "running")) return "Running";
	if (!strcmp(s, "interrupted")) return "Interrupted";
	return s;
}

static int64_t rec_duration(const struct rec *e)
{
	if (json_object_get(e->j, "duration_ns"))
		return jint(e->j, "duration_ns");
	return e->started_ns ? kiln__now_ns() - e->started_ns : 0;
}

/* A table: rows of cells, columns padded to the widest cell. */
struct table {
	struct kiln_strv cells;
	size_t cols;
};

static void table_row(struct table *t, ...)
{
	va_list ap;
	va_start(ap, t);
	for (size_t c = 0; c < t->cols; c++)
		kiln__strv_push(&t->cells, va_arg(ap, const char *));
	va_end(ap);
}

static void table_print(struct table *t)
{
	size_t *w = kiln__xcalloc(t->cols, sizeof(*w));
	for (size_t i = 0; i < t->cells.n; i++)
		if (strlen(t->cells.v[i]) > w[i % t->cols])
			w[i % t->cols] = strlen(t->cells.v[i]);
	for (size_t i = 0; i < t->cells.n; i++) {
		size_t c = i % t->cols;
		if (c + 1 == t->cols)
			printf("%s\n", t->cells.v[i]);
		else
			printf("%-*s   ", (int)w[c], t->cells.v[i]);
	}
	free(w);
	kiln__strv_release(&t->cells);
}

static void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (s)
		printf("%s\n", s);
	free(s);
}

/* --format table|json (or pretty for inspect). */
static int check_format(const char *cmd, const char *f, const char *def)
{
	if (!strcmp(f, "json") || !strcmp(f, def))
		return 0;
	return kiln__usage_error(cmd, "--format takes %s or json, not '%s'", def, f);
}

/* ---- kiln history ls ------------------------------------------------------ */

/* --filter KEY=VALUE / KEY!=VALUE on status, name, target, platform. */
static bool filter_ok(const struct rec *e, const struct kiln_strv *filters)
{
	for (size_t i = 0; i < filters->n; i++) {
		const char *f = filters->v[i];
		const char *eq = strchr(f, '=');
		bool neg = eq > f && eq[-1] == '!';
		size_t klen = (size_t)(eq - f) - (neg ? 1 : 0);
		const char *want = eq + 1, *have;
		json_t *job = json_object_get(e->j, "job");
		if (!strncmp(f, "status", klen) && klen == 6)
			have = e->status;
		else if (!strncmp(f, "name", klen) && klen == 4)
			have = e->name;
		else if (!strncmp(f, "target", klen) && klen == 6)
			have = jstr(job, "target");
		else if (!strncmp(f, "platform", klen) && klen == 8)
			have = jstr(job, "platform");
		else
			have = "";
		/* buildx's status=error/success words too */
		bool match = !strcasecmp(have, want) ||
			     (!strcmp(have, "completed") && !strcmp(want, "success"));
		if (match == neg)
			return false;
	}
	return true;
}

static int history_ls(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'F' },
		{ "filter", required_argument, NULL, 'f' },
		{ "no-trunc", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const char *format = "table";
	struct kiln_strv filters = { 0 };
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case 'F': format = optarg; break;
		case 'n': break; /* IDs are never truncated */
		case 'f': {
			static const char *const keys[] = { "status", "name", "target", "platform" };
			const char *eq = strchr(optarg, '=');
			size_t klen = eq ? (size_t)(eq - optarg) - (eq > optarg && eq[-1] == '!') : 0;
			bool known = false;
			for (size_t k = 0; k < 4 && eq; k++)
				known = known || (strlen(keys[k]) == klen && !strncmp(keys[k], optarg, klen));
			if (!known) {
				kiln__strv_release(&filters);
				return kiln__usage_error("history", "--filter takes KEY=VALUE or "
							 "KEY!=VALUE with KEY status, name, target "
							 "or platform; not '%s'", optarg);
			}
			kiln__strv_push(&filters, optarg);
			break;
		}
		case ':':
			kiln__strv_release(&filters);
			return kiln__usage_error("history", "option '%s' needs a value",
						 argv[optind - 1]);
		default:
			kiln__strv_release(&filters);
			return kiln__usage_error("history", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc) {
		kiln__strv_release(&filters);
		return kiln__usage_error("history", "'kiln history ls' takes no arguments");
	}
	int rc = check_format("history", format, "table");
	struct recs r;
	if (rc || recs_load(&r) < 0) {
		kiln__strv_release(&filters);
		return rc ? rc : KILN_EXIT_FAILED;
	}
	if (!strcmp(format, "json")) {
		json_t *arr = json_array();
		for (size_t i = 0; i < r.n; i++) {
			if (!filter_ok(&r.v[i], &filters))
				continue;
			json_t *o = json_deep_copy(r.v[i].j);
			json_object_del(o, "vertices");
			json_array_append_new(arr, o);
		}
		print_json(arr);
		json_decref(arr);
	} else {
		struct table t = { .cols = 7 };
		table_row(&t, "BUILD ID", "NAME", "PLATFORM", "STATUS", "CREATED AT", "DURATION",
			  "CACHED");
		for (size_t i = 0; i < r.n; i++) {
			const struct rec *e = &r.v[i];
			if (!filter_ok(e, &filters))
				continue;
			char ago[64], dur[32], cached[64];
			fmt_ago(ago, sizeof(ago), e->started_ns);
			fmt_duration(dur, sizeof(dur) - 1, rec_duration(e));
			if (e->active) /* under way: so far */
				memcpy(dur + strlen(dur), "+", 2);
			json_t *cache = json_object_get(e->j, "cache");
			int64_t steps = jint(cache, "hits") + jint(cache, "misses");
			if (steps)
				snprintf(cached, sizeof(cached), "%lld/%lld (%lld%%)",
					 (long long)jint(cache, "hits"), (long long)steps,
					 (long long)(jint(cache, "hits") * 100 / steps));
			else
				snprintf(cached, sizeof(cached), "-");
			const char *pl = jstr(json_object_get(e->j, "job"), "platform");
			table_row(&t, e->id, e->name, *pl ? pl : "-", status_title(e->status), ago, dur,
				  cached);
		}
		table_print(&t);
	}
	recs_release(&r);
	kiln__strv_release(&filters);
	return KILN_EXIT_OK;
}

/* ---- kiln history inspect ---------------------------------------------------- */

/* Parse "[--format F] [REF]" for inspect/trace-like verbs: returns the
 * ref (or NULL) through *ref. */
static int one_ref(const char *verb, int argc, char **argv, const char **ref)
{
	*ref = NULL;
	if (optind < argc)
		*ref = argv[optind++];
	if (optind < argc)
		return kiln__usage_error("history", "'kiln history %s' takes one build reference",
					 verb);
	return 0;
}

/* Load the records into *r and find REF among them (the newest when
 * NULL). Returns the record, or NULL (r released, the error printed). */
static struct rec *load_ref(struct recs *r, const char *ref)
{
	if (recs_load(r) < 0)
		return NULL;
	struct rec *e = recs_find(r, ref);
	if (!e)
		recs_release(r);
	return e;
}

static int history_inspect(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 },
	};
	const char *format = "pretty", *ref;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		if (c == 'F')
			format = optarg;
		else if (c == ':')
			return kiln__usage_error("history", "option '%s' needs a value",
						 argv[optind - 1]);
		else
			return kiln__usage_error("history", "unknown option '%s'", argv[optind - 1]);
	}
	int rc = one_ref("inspect", argc, argv, &ref);
	if (!rc)
		rc = check_format("history", format, "pretty");
	if (rc)
		return rc;
	struct recs r;
	struct rec *e = load_ref(&r, ref);
	if (!e)
		return KILN_EXIT_FAILED;
	json_t *j = e->j;
	if (!strcmp(format, "json")) {
		print_json(j);
		recs_release(&r);
		return KILN_EXIT_OK;
	}
	json_t *job = json_object_get(j, "job");
	char buf[128];
	printf("ID:             %s\n", e->id);
	printf("Name:           %s\n", e->name);
	printf("Target:         %s\n", jstr(job, "target"));
	printf("Platform:       %s\n", *jstr(job, "platform") ? jstr(job, "platform") : "(engine's)");
	printf("Builder:        %s\n", jstr(job, "builder"));
	if (*jstr(j, "context"))
		printf("Context:        %s\n", jstr(j, "context"));
	if (*jstr(j, "file"))
		printf("File:           %s\n", jstr(j, "file"));
	printf("Frontend:       %s\n", *jstr(j, "frontend") ? jstr(j, "frontend") : "-");
	printf("Backend:        %s\n", *jstr(j, "backend") ? jstr(j, "backend") : "-");
	printf("\n");
	printf("Status:         %s", status_title(e->status));
	if (json_object_get(j, "exit_code"))
		printf(" (exit %lld)", (long long)jint(j, "exit_code"));
	printf("\n");
	if (e->active)
		printf("PID:            %ld\n", e->pid);
	if (*jstr(j, "error"))
		printf("Error:          %s\n", jstr(j, "error"));
	if (*jstr(j, "failed_step"))
		printf("Failed step:    %s\n", jstr(j, "failed_step"));
	fmt_when(buf, sizeof(buf), e->started_ns);
	printf("Started:        %s\n", buf);
	fmt_duration(buf, sizeof(buf), rec_duration(e));
	printf("Duration:       %s%s\n", buf, e->active ? " (so far)" : "");
	json_t *cache = json_object_get(j, "cache");
	int64_t hits = jint(cache, "hits"), misses = jint(cache, "misses");
	printf("Build Steps:    %lld", (long long)jint(cache, "steps"));
	if (hits + misses)
		printf(" (%lld cached, %lld run: %lld%% cache hits)", (long long)hits,
		       (long long)misses, (long long)(hits * 100 / (hits + misses)));
	printf("\n");
	if (json_object_get(j, "context_bytes")) {
		fmt_bytes(buf, sizeof(buf), jint(j, "context_bytes"));
		printf("Context sent:   %s\n", buf);
	}
	if (*jstr(j, "image_digest"))
		printf("Image:          %s\n", jstr(j, "image_digest"));
	if (*jstr(j, "config_digest") && strcmp(jstr(j, "config_digest"), jstr(j, "image_digest")))
		printf("Config:         %s\n", jstr(j, "config_digest"));
	if (json_object_get(j, "image_size")) {
		fmt_bytes(buf, sizeof(buf), jint(j, "image_size"));
		printf("Image size:     %s, %lld layer%s\n", buf, (long long)jint(j, "image_layers"),
		       jint(j, "image_layers") == 1 ? "" : "s");
	}
	printf("Logs:           %s\n", e->dir);
	printf("\n");
	struct table t = { .cols = 4 };
	table_row(&t, "#", "DURATION", "STATE", "NAME");
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(j, "vertices"), i, v) {
		char n[16], d[32];
		snprintf(n, sizeof(n), "%lld", (long long)jint(v, "n"));
		if (json_object_get(v, "duration_ns"))
			fmt_duration(d, sizeof(d), jint(v, "duration_ns"));
		else
			snprintf(d, sizeof(d), "-");
		const char *state = *jstr(v, "error") ? "ERROR"
				    : json_is_true(json_object_get(v, "cached")) ? "CACHED"
				    : json_object_get(v, "completed_ns") ? "DONE"
				    : json_object_get(v, "started_ns") ? "RUNNING" : "-";
		table_row(&t, n, d, state, jstr(v, "name"));
	}
	table_print(&t);
	recs_release(&r);
	return KILN_EXIT_OK;
}

/* ---- kiln history logs ---------------------------------------------------- */

/* Copy the log file of vertex v: raw, or each line as "#N line". */
static int print_log(const struct rec *e, json_t *v, bool raw)
{
	const char *name = jstr(v, "log");
	if (!*name)
		return 0;
	char *path = kiln__xasprintf("%s/%s", e->dir, name);
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "kiln: %s: %s\n", path, strerror(errno));
		free(path);
		return -1;
	}
	free(path);
	long long n = (long long)jint(v, "n");
	char buf[65536];
	size_t got;
	bool bol = true;
	while ((got = fread(buf, 1, sizeof(buf), f)) > 0) {
		if (raw) {
			fwrite(buf, 1, got, stdout);
			continue;
		}
		for (size_t i = 0; i < got; i++) {
			if (bol)
				printf("#%lld ", n);
			putchar(buf[i]);
			bol = buf[i] == '\n';
		}
	}
	if (!raw && !bol)
		putchar('\n');
	fclose(f);
	return 0;
}

static int history_logs(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "step", required_argument, NULL, 's' },
		{ "progress", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	long step = 0;
	const char *ref;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 's':
			step = strtol(optarg, &end, 10);
			if (*end || step < 1)
				return kiln__usage_error("history", "--step takes a step number "
							 "(1, 2, … as 'kiln history inspect' "
							 "lists them), not '%s'", optarg);
			break;
		case 'p':
			if (strcmp(optarg, "plain") != 0)
				return kiln__usage_error("history", "--progress: only plain is "
							 "kept (the log files are raw bytes)");
			break;
		case ':':
			return kiln__usage_error("history", "option '%s' needs a value",
						 argv[optind - 1]);
		default:
			return kiln__usage_error("history", "unknown option '%s'", argv[optind - 1]);
		}
	}
	int rc = one_ref("logs", argc, argv, &ref);
	if (rc)
		return rc;
	struct recs r;
	struct rec *e = load_ref(&r, ref);
	if (!e)
		return KILN_EXIT_FAILED;
	json_t *vs = json_object_get(e->j, "vertices");
	rc = KILN_EXIT_OK;
	if (step) {
		json_t *v = json_array_get(vs, (size_t)step - 1);
		if (!v) {
			fprintf(stderr, "kiln: build %s has %zu steps; no step %ld\n", e->id,
				json_array_size(vs), step);
			rc = KILN_EXIT_FAILED;
		} else if (print_log(e, v, true) < 0) {
			rc = KILN_EXIT_FAILED;
		}
		recs_release(&r);
		return rc;
	}
	size_t i;
	json_t *v;
	json_array_foreach(vs, i, v) {
		long long n = (long long)jint(v, "n");
		printf("#%lld %s\n", n, jstr(v, "name"));
		if (print_log(e, v, false) < 0)
			rc = KILN_EXIT_FAILED;
		if (*jstr(v, "error"))
			printf("#%lld ERROR: %s\n", n, jstr(v, "error"));
		else if (json_is_true(json_object_get(v, "cached")))
			printf("#%lld CACHED\n", n);
		else if (json_object_get(v, "duration_ns"))
			printf("#%lld DONE %.1fs\n", n, (double)jint(v, "duration_ns") / 1e9);
		printf("\n");
	}
	if (*jstr(e->j, "error"))
		printf("ERROR: %s\n", jstr(e->j, "error"));
	recs_release(&r);
	return rc;
}

/* ---- kiln history rm ------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

/* Remove a record and its logs; its run directory goes with its last job. */
static void rm_record(const struct rec *e)
{
	nftw(e->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	DIR *d = opendir(e->run_dir);
	bool empty = true;
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.' && strcmp(de->d_name, "lock") != 0)
			empty = false;
	if (d)
		closedir(d);
	if (empty && !kiln__logstore_run_active(e->run_dir, NULL))
		nftw(e->run_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int history_rm(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	bool all = false;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		if (c == 'a')
			all = true;
		else
			return kiln__usage_error("history", "unknown option '%s'", argv[optind - 1]);
	}
	if (all == (optind < argc))
		return kiln__usage_error("history", "'kiln history rm' takes build references, "
					 "or --all");
	struct recs r;
	if (recs_load(&r) < 0)
		return KILN_EXIT_FAILED;
	int rc = KILN_EXIT_OK;
	/* resolve every reference first: ^N means the same before and after */
	size_t n = all ? r.n : (size_t)(argc - optind);
	struct rec **sel = kiln__xcalloc(n + 1, sizeof(*sel));
	for (size_t i = 0; i < n; i++) {
		sel[i] = all ? &r.v[i] : recs_find(&r, argv[optind + (int)i]);
		if (!sel[i])
			rc = KILN_EXIT_FAILED;
	}
	for (size_t i = 0; i < n; i++) {
		if (!sel[i])
			continue;
		if (sel[i]->active) {
			if (!all) {
				fprintf(stderr, "kiln: build %s is under way (pid %ld); 'kiln cancel "
					"%s' first\n", sel[i]->id, sel[i]->pid, sel[i]->id);
				rc = KILN_EXIT_FAILED;
			}
			continue;
		}
		bool dup = false;
		for (size_t k = 0; k < i; k++)
			dup = dup || sel[k] == sel[i];
		if (dup)
			continue;
		rm_record(sel[i]);
		printf("%s\n", sel[i]->id);
	}
	free(sel);
	recs_release(&r);
	return rc;
}

/* ---- kiln history trace --------------------------------------------------- */

static int history_trace(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 },
	};
	const char *out = NULL, *format = "html", *ref;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:", longopts, NULL)) != -1) {
		if (c == 'o')
			out = optarg;
		else if (c == 'F')
			format = optarg;
		else if (c == ':')
			return kiln__usage_error("history", "option '%s' needs a value",
						 argv[optind - 1]);
		else
			return kiln__usage_error("history", "unknown option '%s'", argv[optind - 1]);
	}
	if (strcmp(format, "html") && strcmp(format, "svg"))
		return kiln__usage_error("history", "--format takes html or svg, not '%s'", format);
	int rc = one_ref("trace", argc, argv, &ref);
	if (rc)
		return rc;
	struct recs r;
	struct rec *e = load_ref(&r, ref);
	if (!e)
		return KILN_EXIT_FAILED;
	json_t *vs = json_object_get(e->j, "vertices");
	size_t n = json_array_size(vs);
	struct kiln_trace_vertex *tv = kiln__xcalloc(n + 1, sizeof(*tv));
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_array_get(vs, i);
		tv[i] = (struct kiln_trace_vertex){
			.digest = jstr(v, "digest"), .name = jstr(v, "name"),
			.started_ns = jint(v, "started_ns"), .completed_ns = jint(v, "completed_ns"),
			.cached = json_is_true(json_object_get(v, "cached")),
			.error = json_string_value(json_object_get(v, "error")),
		};
	}
	struct kiln_trace t = {
		.id = e->id, .title = e->name, .started_ns = e->started_ns,
		.finished_ns = jint(e->j, "finished_ns"),
		.status = strcmp(e->status, "completed") == 0 ? 0 : 1,
		.vertices = tv, .n_vertices = n,
	};
	enum kiln_trace_format tf = strcmp(format, "svg") ? KILN_TRACE_HTML : KILN_TRACE_SVG;
	rc = KILN_EXIT_OK;
	if (!out || !strcmp(out, "-")) {
		if (kiln__trace_write(stdout, &t, tf) < 0 || fflush(stdout) != 0) {
			fprintf(stderr, "kiln: writing the trace: %s\n", strerror(errno));
			rc = KILN_EXIT_FAILED;
		}
	} else {
		/* a temporary sibling, renamed: never half a file */
		char *tmp = kiln__xasprintf("%s.tmp.%ld", out, (long)getpid());
		FILE *f = fopen(tmp, "wb");
		bool ok = f && kiln__trace_write(f, &t, tf) == 0;
		int e1 = errno;
		if (f && fclose(f) != 0 && ok) {
			ok = false;
			e1 = errno;
		}
		if (ok && rename(tmp, out) < 0) {
			ok = false;
			e1 = errno;
		}
		if (!ok) {
			unlink(tmp);
			fprintf(stderr, "kiln: cannot write %s: %s\n", out, strerror(e1));
			rc = KILN_EXIT_FAILED;
		}
		free(tmp);
	}
	free(tv);
	recs_release(&r);
	return rc;
}

/* ---- kiln history ---------------------------------------------------------- */

int kiln__cmd_history(struct kiln_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	if (argc < 2)
		return kiln__usage_error("history", "'kiln history' needs a command: ls, inspect, "
					 "logs, rm or trace");
	const char *verb = argv[1];
	argc--, argv++;
	if (!strcmp(verb, "ls"))
		return history_ls(argc, argv);
	if (!strcmp(verb, "inspect"))
		return history_inspect(argc, argv);
	if (!strcmp(verb, "logs"))
		return history_logs(argc, argv);
	if (!strcmp(verb, "rm"))
		return history_rm(argc, argv);
	if (!strcmp(verb, "trace"))
		return history_trace(argc, argv);
	return kiln__usage_error("history", "unknown history command '%s' (ls, inspect, logs, "
				 "rm, trace)", verb);
}

/* ---- kiln stats ------------------------------------------------------------ */

struct tstats {
	const char *name;
	int64_t builds, succeeded, failed, canceled, interrupted;
	int64_t hits, misses;
	int64_t *durations;
	size_t n_durations;
};

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static void tstats_add(struct tstats *t, const struct rec *e)
{
	t->builds++;
	if (!strcmp(e->status, "completed"))
		t->succeeded++;
	else if (!strcmp(e->status, "canceled"))
		t->canceled++;
	else if (!strcmp(e->status, "interrupted"))
		t->interrupted++;
	else
		t->failed++;
	json_t *cache = json_object_get(e->j, "cache");
	t->hits += jint(cache, "hits");
	t->misses += jint(cache, "misses");
	if (json_object_get(e->j, "duration_ns")) {
		t->durations = kiln__xrealloc(t->durations,
					      (t->n_durations + 1) * sizeof(*t->durations));
		t->durations[t->n_durations++] = jint(e->j, "duration_ns");
	}
}

static json_t *tstats_json(struct tstats *t, bool with_name)
{
	json_t *o = json_object();
	if (with_name)
		json_object_set_new(o, "name", json_string(t->name));
	json_object_set_new(o, "builds", json_integer(t->builds));
	json_object_set_new(o, "succeeded", json_integer(t->succeeded));
	json_object_set_new(o, "failed", json_integer(t->failed));
	json_object_set_new(o, "canceled", json_integer(t->canceled));
	json_object_set_new(o, "interrupted", json_integer(t->interrupted));
	json_object_set_new(o, "success_rate",
			    t->builds ? json_real((double)t->succeeded / (double)t->builds)
				      : json_null());
	json_object_set_new(o, "cache_hits", json_integer(t->hits));
	json_object_set_new(o, "cache_misses", json_integer(t->misses));
	json_object_set_new(o, "cache_hit_rate",
			    t->hits + t->misses
				    ? json_real((double)t->hits / (double)(t->hits + t->misses))
				    : json_null());
	if (t->n_durations) {
		qsort(t->durations, t->n_durations, sizeof(*t->durations), cmp_i64);
		int64_t sum = 0;
		for (size_t i = 0; i < t->n_durations; i++)
			sum += t->durations[i];
		/* nearest rank: the smallest duration >= 95% of them */
		size_t rank = (95 * t->n_durations + 99) / 100;
		json_object_set_new(o, "average_duration_ns",
				    json_integer(sum / (int64_t)t->n_durations));
		json_object_set_new(o, "p95_duration_ns", json_integer(t->durations[rank - 1]));
	} else {
		json_object_set_new(o, "average_duration_ns", json_null());
		json_object_set_new(o, "p95_duration_ns", json_null());
	}
	return o;
}

/* --since: a duration back from now ("24h", "7d", "90m", "30s") or a
 * UTC date ("2026-12-01", "2026-12-01T10:00:00Z"). */
static int parse_since(const char *s, int64_t *ns)
{
	char *end;
	double d = strtod(s, &end);
	if (end != s && *end && !end[1] && d >= 0) {
		double mult = *end == 's' ? 1 : *end == 'm' ? 60 : *end == 'h' ? 3600
			    : *end == 'd' ? 86400 : *end == 'w' ? 604800 : -1;
		if (mult > 0) {
			*ns = kiln__now_ns() - (int64_t)(d * mult * 1e9);
			return 0;
		}
	}
	struct tm tm = { 0 };
	const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!rest) {
		memset(&tm, 0, sizeof(tm));
		rest = strptime(s, "%Y-%m-%d", &tm);
	}
	if (!rest || (*rest && strcmp(rest, "Z") != 0))
		return -1;
	*ns = (int64_t)timegm(&tm) * 1000000000;
	return 0;
}

int kiln__cmd_stats(struct kiln_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'F' },
		{ "since", required_argument, NULL, 's' },
		{ "target", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	const char *format = "table", *target = NULL, *since_s = NULL;
	int64_t since = 0;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case 'F': format = optarg; break;
		case 't': target = optarg; break;
		case 's':
			since_s = optarg;
			if (parse_since(optarg, &since) < 0)
				return kiln__usage_error("stats", "--since takes a duration (24h, 7d, "
							 "90m) or a date (2026-12-01, "
							 "2026-12-01T10:00:00Z), not '%s'", optarg);
			break;
		case ':':
			return kiln__usage_error("stats", "option '%s' needs a value",
						 argv[optind - 1]);
		default:
			return kiln__usage_error("stats", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return kiln__usage_error("stats", "'kiln stats' takes no arguments");
	int rc = check_format("stats", format, "table");
	if (rc)
		return rc;
	struct recs r;
	if (recs_load(&r) < 0)
		return KILN_EXIT_FAILED;
	struct tstats all = { .name = "" };
	struct tstats *ts = NULL;
	size_t n_ts = 0;
	/* oldest first, so that nothing depends on the listing's order */
	for (size_t i = r.n; i-- > 0;) {
		const struct rec *e = &r.v[i];
		if (!strcmp(e->status, "running") || e->started_ns < since)
			continue;
		const char *tg = jstr(json_object_get(e->j, "job"), "target");
		if (target && strcmp(target, e->name) != 0 && strcmp(target, tg) != 0)
			continue;
		tstats_add(&all, e);
		size_t k = 0;
		while (k < n_ts && strcmp(ts[k].name, e->name) != 0)
			k++;
		if (k == n_ts) {
			ts = kiln__xrealloc(ts, (n_ts + 1) * sizeof(*ts));
			ts[n_ts++] = (struct tstats){ .name = e->name };
		}
		tstats_add(&ts[k], e);
	}
	/* by name */
	for (size_t a = 1; a < n_ts; a++)
		for (size_t b = a; b > 0 && strcmp(ts[b - 1].name, ts[b].name) > 0; b--) {
			struct tstats x = ts[b];
			ts[b] = ts[b - 1];
			ts[b - 1] = x;
		}
	json_t *o = tstats_json(&all, false);
	if (since_s)
		json_object_set_new(o, "since_ns", json_integer(since));
	json_t *arr = json_array();
	for (size_t k = 0; k < n_ts; k++)
		json_array_append_new(arr, tstats_json(&ts[k], true));
	json_object_set_new(o, "targets", arr);
	if (!strcmp(format, "json")) {
		print_json(o);
	} else {
		struct table t = { .cols = 7 };
		table_row(&t, "TARGET", "BUILDS", "SUCCESS", "CACHE HITS", "AVERAGE", "P95",
			  "FAILED");
		for (size_t k = 0; k <= n_ts; k++) {
			json_t *s = k < n_ts ? json_array_get(arr, k) : o;
			char b[32], sr[32], ch[32], avg[32], p95[32], f[32];
			snprintf(b, sizeof(b), "%lld", (long long)jint(s, "builds"));
			snprintf(f, sizeof(f), "%lld", (long long)(jint(s, "failed") +
								 jint(s, "canceled") +
								 jint(s, "interrupted")));
			json_t *x = json_object_get(s, "success_rate");
			snprintf(sr, sizeof(sr), x && json_is_real(x) ? "%.1f%%" : "-",
				 json_real_value(x) * 100);
			x = json_object_get(s, "cache_hit_rate");
			snprintf(ch, sizeof(ch), x && json_is_real(x) ? "%.1f%%" : "-",
				 json_real_value(x) * 100);
			x = json_object_get(s, "average_duration_ns");
			if (json_is_integer(x))
				fmt_duration(avg, sizeof(avg), json_integer_value(x));
			else
				snprintf(avg, sizeof(avg), "-");
			x = json_object_get(s, "p95_duration_ns");
			if (json_is_integer(x))
				fmt_duration(p95, sizeof(p95), json_integer_value(x));
			else
				snprintf(p95, sizeof(p95), "-");
			table_row(&t, k < n_ts ? ts[k].name : "(all)", b, sr, ch, avg, p95, f);
		}
		table_print(&t);
	}
	json_decref(o);
	for (size_t k = 0; k < n_ts; k++)
		free(ts[k].durations);
	free(ts);
	free(all.durations);
	recs_release(&r);
	return KILN_EXIT_OK;
}

/* ---- kiln ps, kiln cancel ---------------------------------------------------- */

int kiln__cmd_ps(struct kiln_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 },
	};
	const char *format = "table";
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		if (c == 'F')
			format = optarg;
		else if (c == ':')
			return kiln__usage_error("ps", "option '%s' needs a value", argv[optind - 1]);
		else
			return kiln__usage_error("ps", "unknown option '%s'", argv[optind - 1]);
	}
	if (optind < argc)
		return kiln__usage_error("ps", "'kiln ps' takes no arguments");
	int rc = check_format("ps", format, "table");
	if (rc)
		return rc;
	struct recs r;
	if (recs_load(&r) < 0)
		return KILN_EXIT_FAILED;
	json_t *arr = json_array();
	struct table t = { .cols = 6 };
	table_row(&t, "BUILD ID", "NAME", "PLATFORM", "PID", "STARTED", "ELAPSED");
	for (size_t i = 0; i < r.n; i++) {
		const struct rec *e = &r.v[i];
		if (!e->active)
			continue;
		const char *pl = jstr(json_object_get(e->j, "job"), "platform");
		char pid[32], ago[64], el[32];
		snprintf(pid, sizeof(pid), "%ld", e->pid);
		fmt_ago(ago, sizeof(ago), e->started_ns);
		fmt_duration(el, sizeof(el), rec_duration(e));
		table_row(&t, e->id, e->name, *pl ? pl : "-", pid, ago, el);
		json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:s}", "id", e->id,
						     "name", e->name, "platform", pl, "pid",
						     (json_int_t)e->pid, "started_ns",
						     (json_int_t)e->started_ns, "elapsed_ns",
						     (json_int_t)rec_duration(e), "log_dir", e->dir));
	}
	if (!strcmp(format, "json"))
		print_json(arr);
	else
		table_print(&t);
	kiln__strv_release(&t.cells);
	json_decref(arr);
	recs_release(&r);
	return KILN_EXIT_OK;
}

#define CANCEL_WAIT_MS 10000

int kiln__cmd_cancel(struct kiln_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	opterr = 0;
	int c;
	static const struct option longopts[] = { { NULL, 0, NULL, 0 } };
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1)
		return kiln__usage_error("cancel", "unknown option '%s'", argv[optind - 1]);
	if (optind >= argc)
		return kiln__usage_error("cancel", "'kiln cancel' needs the ID of a running build "
					 "(see 'kiln ps')");
	struct recs r;
	if (recs_load(&r) < 0)
		return KILN_EXIT_FAILED;
	int rc = KILN_EXIT_OK;
	for (int i = optind; i < argc; i++) {
		struct rec *e = recs_find(&r, argv[i]);
		if (!e) {
			rc = KILN_EXIT_FAILED;
			continue;
		}
		if (!e->active || e->pid <= 0) {
			fprintf(stderr, "kiln: build %s is not running (%s)\n", e->id,
				status_title(e->status));
			rc = KILN_EXIT_FAILED;
			continue;
		}
		if (e->pid == (long)getpid())
			continue;
		/* The builder's signal thread cancels its solves on the engine
		 * and exits 130, as on Ctrl-C. */
		if (kill((pid_t)e->pid, SIGINT) < 0) {
			fprintf(stderr, "kiln: cannot signal build %s (pid %ld): %s\n", e->id, e->pid,
				strerror(errno));
			rc = KILN_EXIT_FAILED;
			continue;
		}
		int waited = 0;
		while (kiln__logstore_run_active(e->run_dir, NULL) && waited < CANCEL_WAIT_MS) {
			struct timespec ts = { 0, 50 * 1000000 };
			nanosleep(&ts, NULL);
			waited += 50;
		}
		if (kiln__logstore_run_active(e->run_dir, NULL)) {
			fprintf(stderr, "kiln: build %s (pid %ld) still running %d s after the "
				"cancel\n", e->id, e->pid, CANCEL_WAIT_MS / 1000);
			rc = KILN_EXIT_FAILED;
			continue;
		}
		printf("%s\n", e->id);
	}
	recs_release(&r);
	return rc;
}
