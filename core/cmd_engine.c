/* cmd_engine.c: `kiln workers`, `kiln du`, `kiln prune`: the engine
 * management calls of BuildKit's Control API, printed as buildctl and
 * `docker buildx du` print them. */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "arena.h"
#include "cli.h"
#include "util.h"

/* Sizes as Docker's go-units HumanSize prints them: decimal units, four
 * significant digits ("1.234MB", "512B"). */
static void human_size(char *buf, size_t cap, int64_t bytes)
{
	static const char *const units[] = { "B", "kB", "MB", "GB", "TB", "PB", "EB" };
	double v = (double)bytes;
	size_t u = 0;
	while (v >= 1000.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1000.0;
		u++;
	}
	snprintf(buf, cap, "%.4g%s", v, units[u]);
}

/* "3 minutes ago"-style age, as buildctl du prints LAST ACCESSED. */
static void human_age(char *buf, size_t cap, int64_t then_ns)
{
	if (!then_ns) {
		buf[0] = '\0';
		return;
	}
	int64_t s = (kiln__now_ns() - then_ns) / 1000000000;
	if (s < 1)
		snprintf(buf, cap, "Less than a second ago");
	else if (s < 60)
		snprintf(buf, cap, "%lld seconds ago", (long long)s);
	else if (s < 3600)
		snprintf(buf, cap, "%lld minutes ago", (long long)(s / 60));
	else if (s < 48 * 3600)
		snprintf(buf, cap, "%lld hours ago", (long long)(s / 3600));
	else
		snprintf(buf, cap, "%lld days ago", (long long)(s / 86400));
}

static void rfc3339(char *buf, size_t cap, int64_t ns)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Go-style duration ("24h", "1h30m", "90s", "500ms") to ns; -1 if bad. */
static int64_t parse_duration(const char *s)
{
	int64_t total = 0;
	if (!*s)
		return -1;
	while (*s) {
		char *end;
		double v = strtod(s, &end);
		if (end == s || v < 0)
			return -1;
		s = end;
		double mul;
		if (!strncmp(s, "ms", 2)) { mul = 1e6; s += 2; }
		else if (*s == 'h') { mul = 3600e9; s++; }
		else if (*s == 'm') { mul = 60e9; s++; }
		else if (*s == 's') { mul = 1e9; s++; }
		else return -1;
		total += (int64_t)(v * mul);
	}
	return total;
}

/* Sizes as `docker buildx prune --keep-storage` takes them (go-units
 * RAMInBytes): a number with an optional k, m, g, t suffix (binary
 * multiples; "b" and "ib" endings allowed); a bare number is bytes. */
static int64_t parse_size(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || v < 0)
		return -1;
	double mul = 1;
	switch (tolower((unsigned char)*end)) {
	case '\0': break;
	case 'b': mul = 1; end++; break;
	case 'k': mul = 1024.0; end++; break;
	case 'm': mul = 1024.0 * 1024; end++; break;
	case 'g': mul = 1024.0 * 1024 * 1024; end++; break;
	case 't': mul = 1024.0 * 1024 * 1024 * 1024; end++; break;
	default: return -1;
	}
	if (mul > 1 && tolower((unsigned char)*end) == 'i')
		end++;
	if (mul > 1 && tolower((unsigned char)*end) == 'b')
		end++;
	return *end ? -1 : (int64_t)(v * mul);
}

/* Options every engine command takes. */
struct engine_cli {
	const char *addr;
	const char *format;
	bool verbose, all;
	struct kiln_strv filters;
	int64_t keep_duration, keep_storage;
	struct kiln_tls_cli tls;
};

static void engine_cli_release(struct engine_cli *c)
{
	kiln__strv_release(&c->filters);
	kiln__tls_cli_release(&c->tls);
}

enum { OPT_ADDR = 256, OPT_FORMAT, OPT_FILTER, OPT_ALL, OPT_KEEP_DURATION, OPT_KEEP_STORAGE };

static int parse_engine_args(const char *cmd, struct engine_cli *c, int argc, char **argv,
			     bool prune_opts)
{
	static const struct option longopts[] = {
		{ "addr", required_argument, NULL, OPT_ADDR },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "filter", required_argument, NULL, OPT_FILTER },
		{ "verbose", no_argument, NULL, 'v' },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "keep-duration", required_argument, NULL, OPT_KEEP_DURATION },
		{ "keep-storage", required_argument, NULL, OPT_KEEP_STORAGE },
		KILN_TLS_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	int o;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":v", longopts, NULL)) != -1) {
		bool prune_only = o == OPT_ALL || o == OPT_KEEP_DURATION || o == OPT_KEEP_STORAGE;
		if (prune_only && !prune_opts)
			return kiln__usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		if (kiln__tls_cli_take(&c->tls, o, optarg))
			continue;
		switch (o) {
		case OPT_ADDR: c->addr = optarg; break;
		case OPT_FORMAT: c->format = optarg; break;
		case OPT_FILTER: kiln__strv_push(&c->filters, optarg); break;
		case 'v': c->verbose = true; break;
		case OPT_ALL: c->all = true; break;
		case OPT_KEEP_DURATION:
			if ((c->keep_duration = parse_duration(optarg)) < 0)
				return kiln__usage_error(cmd, "--keep-duration: bad duration '%s' "
							 "(e.g. 24h, 90m)", optarg);
			break;
		case OPT_KEEP_STORAGE:
			if ((c->keep_storage = parse_size(optarg)) < 0)
				return kiln__usage_error(cmd, "--keep-storage: bad size '%s' "
							 "(e.g. 10gb, 512m)", optarg);
			break;
		case ':':
			return kiln__usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default:
			return kiln__usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return kiln__usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	if (c->format && strcmp(c->format, "table") && strcmp(c->format, "json"))
		return kiln__usage_error(cmd, "unknown format '%s' (table or json)", c->format);
	return 0;
}

/* Connect to the engine through the best backend providing `need`. */
static int engine_connect(struct kiln_ctx *ctx, const char *cmd, struct engine_cli *c,
			  enum kiln_need need, const struct kiln_backend **be, void **conn)
{
	struct kiln_connect_opts opts;
	struct kiln_err err = { 0 };
	struct kiln_engine_choice ch;
	if (kiln__engine_choose(ctx, c->addr, NULL, need, false, &ch, &err) < 0) {
		kiln__err_print(&err);
		return err.code == KILN_E_NOTFOUND ? KILN_EXIT_USAGE : kiln__exit_code(err.code);
	}
	if (kiln__tls_cli_resolve(&c->tls, ch.addr, &opts, &err) < 0)
		return kiln__usage_error(cmd, "%s", err.msg);
	*be = ch.backend;
	int rc = kiln__backend_connect(*be, &opts, conn, &err);
	if (rc < 0) {
		kiln__err_print(&err);
		return kiln__exit_code(rc);
	}
	return 0;
}

int kiln__cmd_workers(struct kiln_ctx *ctx, int argc, char **argv)
{
	struct engine_cli c = { 0 };
	const struct kiln_backend *be;
	void *conn;
	int rc = parse_engine_args("workers", &c, argc, argv, false);
	if (rc || (rc = engine_connect(ctx, "workers", &c, KILN_NEED_WORKERS, &be, &conn))) {
		engine_cli_release(&c);
		return rc;
	}
	struct kiln_arena *arena = kiln__arena_new();
	struct kiln_worker *w = NULL;
	size_t n = 0;
	struct kiln_err err = { 0 };
	rc = be->workers(conn, arena, &w, &n, &err);
	be->disconnect(conn);
	if (rc < 0) {
		kiln__err_print(&err);
	} else if (c.format && !strcmp(c.format, "json")) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++) {
			json_t *o = json_object(), *p = json_array(), *l = json_object();
			for (size_t k = 0; k < w[i].n_platforms; k++)
				json_array_append_new(p, json_string(w[i].platforms[k]));
			for (size_t k = 0; k < w[i].n_labels; k++)
				json_object_set_new(l, w[i].labels[k].key,
						    json_string(w[i].labels[k].value));
			json_object_set_new(o, "id", json_string(w[i].id));
			json_object_set_new(o, "platforms", p);
			json_object_set_new(o, "labels", l);
			json_array_append_new(arr, o);
		}
		json_dumpf(arr, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(arr);
	} else {
		printf("%-28s %s\n", "ID", "PLATFORMS");
		for (size_t i = 0; i < n; i++) {
			printf("%-28s ", w[i].id);
			for (size_t k = 0; k < w[i].n_platforms; k++)
				printf("%s%s", k ? "," : "", w[i].platforms[k]);
			putchar('\n');
			for (size_t k = 0; c.verbose && k < w[i].n_labels; k++)
				printf("  %s=%s\n", w[i].labels[k].key, w[i].labels[k].value);
		}
	}
	kiln__arena_free(arena);
	engine_cli_release(&c);
	return rc < 0 ? kiln__exit_code(rc) : KILN_EXIT_OK;
}

static void print_record_verbose(const struct kiln_usage_record *r)
{
	char size[32], created[40], used[40];
	human_size(size, sizeof(size), r->size);
	rfc3339(created, sizeof(created), r->created_ns);
	printf("ID:\t\t%s\n", r->id);
	for (size_t k = 0; k < r->n_parents; k++)
		printf("Parent:\t\t%s\n", r->parents[k]);
	printf("Created at:\t%s\n", created);
	printf("Mutable:\t%s\n", r->mutable_ ? "true" : "false");
	printf("Reclaimable:\t%s\n", r->in_use ? "false" : "true");
	printf("Shared:\t\t%s\n", r->shared ? "true" : "false");
	printf("Size:\t\t%s\n", size);
	if (r->description && *r->description)
		printf("Description:\t%s\n", r->description);
	printf("Usage count:\t%lld\n", (long long)r->usage_count);
	if (r->last_used_ns) {
		rfc3339(used, sizeof(used), r->last_used_ns);
		printf("Last used:\t%s\n", used);
	}
	if (r->record_type && *r->record_type)
		printf("Type:\t\t%s\n", r->record_type);
	putchar('\n');
}

static void print_record_header(void)
{
	printf("%-29s%-12s %-10s %s\n", "ID", "RECLAIMABLE", "SIZE", "LAST ACCESSED");
}

static void print_record_row(const struct kiln_usage_record *r)
{
	char size[32], age[48];
	human_size(size, sizeof(size), r->size);
	human_age(age, sizeof(age), r->last_used_ns);
	printf("%-28s%s %-12s %-10s %s\n", r->id, r->mutable_ ? "*" : " ",
	       r->in_use ? "false" : "true", size, age);
}

static void print_totals(int64_t shared, int64_t priv, int64_t reclaim, int64_t total,
			 bool full)
{
	char b[32];
	if (full) {
		human_size(b, sizeof(b), shared);
		printf("Shared:\t\t%s\n", b);
		human_size(b, sizeof(b), priv);
		printf("Private:\t%s\n", b);
		human_size(b, sizeof(b), reclaim);
		printf("Reclaimable:\t%s\n", b);
	}
	human_size(b, sizeof(b), total);
	printf("Total:\t\t%s\n", b);
}

static json_t *record_json(const struct kiln_usage_record *r)
{
	json_t *o = json_object(), *p = json_array();
	for (size_t k = 0; k < r->n_parents; k++)
		json_array_append_new(p, json_string(r->parents[k]));
	json_object_set_new(o, "id", json_string(r->id));
	json_object_set_new(o, "parents", p);
	json_object_set_new(o, "size", json_integer(r->size));
	json_object_set_new(o, "mutable", json_boolean(r->mutable_));
	json_object_set_new(o, "in_use", json_boolean(r->in_use));
	json_object_set_new(o, "shared", json_boolean(r->shared));
	json_object_set_new(o, "reclaimable", json_boolean(!r->in_use));
	if (r->description)
		json_object_set_new(o, "description", json_string(r->description));
	if (r->record_type)
		json_object_set_new(o, "type", json_string(r->record_type));
	json_object_set_new(o, "usage_count", json_integer(r->usage_count));
	json_object_set_new(o, "created_ns", json_integer(r->created_ns));
	json_object_set_new(o, "last_used_ns", json_integer(r->last_used_ns));
	return o;
}

int kiln__cmd_du(struct kiln_ctx *ctx, int argc, char **argv)
{
	struct engine_cli c = { 0 };
	const struct kiln_backend *be;
	void *conn;
	int rc = parse_engine_args("du", &c, argc, argv, false);
	if (rc || (rc = engine_connect(ctx, "du", &c, KILN_NEED_DISK_USAGE, &be, &conn))) {
		engine_cli_release(&c);
		return rc;
	}
	struct kiln_arena *arena = kiln__arena_new();
	struct kiln_usage_record *r = NULL;
	size_t n = 0;
	struct kiln_err err = { 0 };
	rc = be->disk_usage(conn, (const char *const *)c.filters.v, c.filters.n, arena, &r, &n,
			    &err);
	be->disconnect(conn);
	if (rc < 0) {
		kiln__err_print(&err);
	} else if (c.format && !strcmp(c.format, "json")) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, record_json(&r[i]));
		json_dumpf(arr, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(arr);
	} else {
		int64_t shared = 0, priv = 0, reclaim = 0, total = 0;
		if (!c.verbose && n)
			print_record_header();
		for (size_t i = 0; i < n; i++) {
			if (c.verbose)
				print_record_verbose(&r[i]);
			else
				print_record_row(&r[i]);
			total += r[i].size;
			if (r[i].shared)
				shared += r[i].size;
			else
				priv += r[i].size;
			if (!r[i].in_use)
				reclaim += r[i].size;
		}
		if (n && !c.verbose)
			putchar('\n');
		print_totals(shared, priv, reclaim, total, true);
	}
	kiln__arena_free(arena);
	engine_cli_release(&c);
	return rc < 0 ? kiln__exit_code(rc) : KILN_EXIT_OK;
}

struct prune_out {
	const struct engine_cli *c;
	int64_t total;
	size_t n;
	json_t *json;
};

static void on_pruned(void *ctx, const struct kiln_usage_record *r)
{
	struct prune_out *o = ctx;
	if (o->json) {
		json_array_append_new(o->json, record_json(r));
	} else {
		if (o->n == 0 && !o->c->verbose)
			print_record_header();
		if (o->c->verbose)
			print_record_verbose(r);
		else
			print_record_row(r);
		fflush(stdout);
	}
	o->n++;
	o->total += r->size;
}

int kiln__cmd_prune(struct kiln_ctx *ctx, int argc, char **argv)
{
	struct engine_cli c = { 0 };
	const struct kiln_backend *be;
	void *conn;
	int rc = parse_engine_args("prune", &c, argc, argv, true);
	if (rc || (rc = engine_connect(ctx, "prune", &c, KILN_NEED_PRUNE, &be, &conn))) {
		engine_cli_release(&c);
		return rc;
	}
	struct kiln_prune_opts po = {
		.struct_size = sizeof(po),
		.all = c.all,
		.keep_duration_ns = c.keep_duration,
		.keep_storage_bytes = c.keep_storage,
		.filters = (const char *const *)c.filters.v,
		.n_filters = c.filters.n,
	};
	struct prune_out out = { .c = &c };
	if (c.format && !strcmp(c.format, "json"))
		out.json = json_array();
	struct kiln_err err = { 0 };
	rc = be->prune(conn, &po, on_pruned, &out, &err);
	be->disconnect(conn);
	if (out.json) {
		json_dumpf(out.json, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(out.json);
	} else {
		if (out.n && !c.verbose)
			putchar('\n');
		print_totals(0, 0, 0, out.total, false);
	}
	if (rc < 0)
		kiln__err_print(&err);
	engine_cli_release(&c);
	return rc < 0 ? kiln__exit_code(rc) : KILN_EXIT_OK;
}
