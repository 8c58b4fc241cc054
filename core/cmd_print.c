/* cmd_print.c: `kiln print [TARGET|GROUP…]` (the resolved plan as JSON, as
 * `docker buildx bake --print` shows it) and `kiln ls` (targets and groups
 * with their descriptions, as `docker buildx bake --list=targets`); the
 * -f/--set/--var options every plan command takes. Neither command loads
 * plugins or contacts an engine. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "plan.h"
#include "util.h"

/* ---- -f, --set, --var ---------------------------------------------------------------------- */

int kiln__plan_cli_take(struct kiln_plan_cli *c, const char *cmd, int o, const char *arg)
{
	switch (o) {
	case 'f':
		c->file = arg;
		return 1;
	case KILN_OPT_SET:
		kiln__strv_push(&c->sets, arg);
		return 1;
	case KILN_OPT_VAR: {
		const char *eq = strchr(arg, '=');
		if (!eq || eq == arg)
			return kiln__usage_error(cmd, "--var expects KEY=VALUE, got '%s'", arg);
		char *key = kiln__xasprintf("%.*s", (int)(eq - arg), arg);
		char *value = kiln__xstrdup(eq + 1);
		kiln__strv_push_owned(&c->var_store, key);
		kiln__strv_push_owned(&c->var_store, value);
		/* a repeated key: the last one wins */
		for (size_t i = 0; i < c->n_vars; i++) {
			if (strcmp(c->vars[i].key, key) == 0) {
				c->vars[i].value = value;
				return 1;
			}
		}
		c->vars = kiln__xrealloc(c->vars, (c->n_vars + 1) * sizeof(*c->vars));
		c->vars[c->n_vars++] = (struct kiln_kv){ key, value };
		return 1;
	}
	}
	return 0;
}

int kiln__plan_cli_load(struct kiln_plan_cli *c, struct kiln_plan *plan)
{
	struct kiln_plan_opts opts = {
		.file = c->file,
		.sets = (const char *const *)c->sets.v,
		.n_sets = c->sets.n,
		.vars = c->vars,
		.n_vars = c->n_vars,
	};
	struct kiln_err err = { 0 };
	int rc = kiln__plan_load(plan, &opts, &err);
	if (rc < 0) {
		kiln__plan_err_print(plan, &err);
		return kiln__exit_code(rc);
	}
	return 0;
}

int kiln__plan_cli_open(struct kiln_plan_cli *c, struct kiln_plan *plan,
			const char *const *names, size_t n)
{
	int rc = kiln__plan_cli_load(c, plan);
	if (rc)
		return rc;
	struct kiln_err err = { 0 };
	if (kiln__plan_select(plan, names, n, &err) < 0) {
		kiln__err_print(&err);
		return KILN_EXIT_USAGE;
	}
	return 0;
}

void kiln__plan_cli_release(struct kiln_plan_cli *c)
{
	kiln__strv_release(&c->sets);
	kiln__strv_release(&c->var_store);
	free(c->vars);
}

/* Options of either kind of `kiln build` that take a value, so their
 * values are not mistaken for targets or paths. */
static bool takes_value(const char *opt, size_t len)
{
	static const char *const long_opts[] = {
		"file", "tag", "output", "build-arg", "label", "target", "platform",
		"cache-from", "cache-to", "secret", "ssh", "add-host", "allow", "network",
		"addr", "progress", "no-cache-filter", "build-context", "shm-size", "ulimit",
		"tlscacert", "tlscert", "tlskey", "tlsservername", "tlsdir", "set", "var",
		"jobs", "publish", "opt", "build-image", "source-dir", "arch", NULL,
	};
	for (const char *const *p = long_opts; *p; p++)
		if (strlen(*p) == len && strncmp(*p, opt, len) == 0)
			return true;
	return false;
}

/* A path: "-", ".", "..", anything with a '/', or an existing regular
 * file (`kiln build pkg.yaml` names the input file itself). */
static bool looks_like_path(const char *a)
{
	struct stat st;
	return strcmp(a, "-") == 0 || strcmp(a, ".") == 0 || strcmp(a, "..") == 0 ||
	       strchr(a, '/') != NULL || (stat(a, &st) == 0 && S_ISREG(st.st_mode));
}

bool kiln__build_wants_script(int argc, char **argv)
{
	const char *file = NULL;
	bool path_arg = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			for (i++; i < argc; i++)
				path_arg |= looks_like_path(argv[i]);
			break;
		}
		if (a[0] == '-' && a[1] == '-') {
			const char *eq = strchr(a + 2, '=');
			size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
			const char *value = eq ? eq + 1 : NULL;
			if (!eq && takes_value(a + 2, len) && i + 1 < argc)
				value = argv[++i];
			if (len == 4 && strncmp(a + 2, "file", 4) == 0)
				file = value;
		} else if (a[0] == '-' && a[1]) {
			for (const char *c = a + 1; *c; c++) {
				if (strchr("ftoj", *c)) {
					const char *value = c[1] ? c + 1 : i + 1 < argc ? argv[++i] : NULL;
					if (*c == 'f')
						file = value;
					break;
				}
			}
		} else {
			path_arg |= looks_like_path(a);
		}
	}
	if (file) {
		size_t n = strlen(file);
		return n > 4 && strcmp(file + n - 4, ".lua") == 0;
	}
	return !path_arg && access("kiln.lua", F_OK) == 0;
}

/* ---- JSON ------------------------------------------------------------------------------------ */

/* A JSON string; bytes that are not UTF-8 become \xNN text. */
static json_t *jstr(const char *s)
{
	json_t *j = json_string(s);
	if (j)
		return j;
	struct kiln_sb sb = KILN_SB_INIT;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x80)
			kiln__sb_add(&sb, p, 1);
		else
			kiln__sb_addf(&sb, "\\x%02x", *p);
	}
	j = json_string(kiln__sb_str(&sb));
	kiln__sb_release(&sb);
	return j;
}

static json_t *jlist(const struct kiln_plan_list *l)
{
	json_t *a = json_array();
	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(a, jstr(l->v[i]));
	return a;
}

/* One resolved target: the fields given, in the order of enum
 * kiln_target_field; map keys sorted. */
static json_t *target_json(const struct kiln_plan_target *t)
{
	json_t *o = json_object();
	for (int f = 0; f < KILN_TF_COUNT; f++) {
		if (!(t->set & (1u << f)))
			continue;
		const struct kiln_target_field_desc *fd = &kiln__target_fields[f];
		const void *slot = (const char *)t + fd->offset;
		json_t *v = NULL;
		switch (fd->type) {
		case KILN_FT_STRING:
			v = jstr(*(const char *const *)slot);
			break;
		case KILN_FT_BOOL:
			v = json_boolean(*(const bool *)slot);
			break;
		case KILN_FT_LIST:
			v = jlist(slot);
			break;
		case KILN_FT_MAP: {
			const struct kiln_plan_map *m = slot;
			v = json_object();
			for (size_t i = 0; i < m->n; i++)
				json_object_set_new(v, m->v[i].key, jstr(m->v[i].value));
			break;
		}
		}
		json_object_set_new(o, fd->name, v);
	}
	return o;
}

static json_t *plan_json(const struct kiln_plan *plan)
{
	json_t *root = json_object(), *groups = json_object(), *targets = json_object();
	for (size_t i = 0; i < plan->n_selected_groups; i++) {
		const struct kiln_plan_group *g = plan->selected_groups[i];
		json_t *o = json_object();
		if (g->description)
			json_object_set_new(o, "description", jstr(g->description));
		json_object_set_new(o, "targets", jlist(&g->members));
		json_object_set_new(groups, g->name, o);
	}
	for (size_t i = 0; i < plan->n_selected; i++)
		json_object_set_new(targets, plan->selected[i]->name,
				    target_json(plan->selected[i]));
	json_object_set_new(root, "group", groups);
	json_object_set_new(root, "target", targets);
	if (plan->n_builders) {
		json_t *builders = json_object();
		for (size_t i = 0; i < plan->n_builders; i++) {
			const struct kiln_plan_builder *b = plan->builders[i];
			json_t *o = json_object();
			if (b->addr)
				json_object_set_new(o, "addr", jstr(b->addr));
			if (b->platforms.n)
				json_object_set_new(o, "platforms", jlist(&b->platforms));
			if (b->max_jobs)
				json_object_set_new(o, "max_jobs", json_integer(b->max_jobs));
			if (b->tls_ca_cert || b->tls_cert || b->tls_key || b->tls_server_name) {
				json_t *tls = json_object();
				if (b->tls_ca_cert)
					json_object_set_new(tls, "ca_cert", jstr(b->tls_ca_cert));
				if (b->tls_cert)
					json_object_set_new(tls, "cert", jstr(b->tls_cert));
				if (b->tls_key)
					json_object_set_new(tls, "key", jstr(b->tls_key));
				if (b->tls_server_name)
					json_object_set_new(tls, "server_name",
							    jstr(b->tls_server_name));
				json_object_set_new(o, "tls", tls);
			}
			json_object_set_new(builders, b->name, o);
		}
		json_object_set_new(root, "builder", builders);
	}
	return root;
}

/* ---- commands ------------------------------------------------------------------------------ */

static const struct option plan_longopts[] = {
	{ "file", required_argument, NULL, 'f' },
	{ "set", required_argument, NULL, KILN_OPT_SET },
	{ "var", required_argument, NULL, KILN_OPT_VAR },
	{ "format", required_argument, NULL, 'F' },
	{ "quiet", no_argument, NULL, 'q' },
	{ NULL, 0, NULL, 0 },
};

/* Options of print and ls; format and quiet are NULL for print. Returns 0
 * or the exit code of a usage error. */
static int parse_plan_args(const char *cmd, struct kiln_plan_cli *c, const char **format,
			   bool *quiet, int argc, char **argv)
{
	int o, rc;
	opterr = 0;
	while ((o = getopt_long(argc, argv, quiet ? ":f:q" : ":f:", plan_longopts, NULL)) != -1) {
		if (o == 'q' && quiet) {
			*quiet = true;
			continue;
		}
		if ((rc = kiln__plan_cli_take(c, cmd, o, optarg)) == 1)
			continue;
		if (rc)
			return rc;
		if (o == 'F' && format) {
			if (strcmp(optarg, "table") && strcmp(optarg, "json"))
				return kiln__usage_error(cmd, "--format must be table or json, not "
							 "'%s'", optarg);
			*format = optarg;
			continue;
		}
		if (o == ':')
			return kiln__usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		return kiln__usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
	}
	return 0;
}

int kiln__cmd_print(struct kiln_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	struct kiln_plan_cli c = { 0 };
	struct kiln_plan plan = { 0 };
	int rc = parse_plan_args("print", &c, NULL, NULL, argc, argv);
	if (rc == 0)
		rc = kiln__plan_cli_open(&c, &plan, (const char *const *)argv + optind,
					 (size_t)(argc - optind));
	if (rc == 0) {
		json_t *root = plan_json(&plan);
		char *s = json_dumps(root, JSON_PRESERVE_ORDER | JSON_INDENT(2));
		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(root);
	}
	kiln__plan_release(&plan);
	kiln__plan_cli_release(&c);
	return rc;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int kiln__cmd_ls(struct kiln_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	struct kiln_plan_cli c = { 0 };
	struct kiln_plan plan = { 0 };
	const char *format = "table";
	bool quiet = false;
	int rc = parse_plan_args("ls", &c, &format, &quiet, argc, argv);
	if (rc == 0 && optind < argc)
		rc = kiln__usage_error("ls", "'kiln ls' takes no arguments");
	if (rc == 0)
		rc = kiln__plan_cli_load(&c, &plan);
	if (rc) {
		kiln__plan_release(&plan);
		kiln__plan_cli_release(&c);
		return rc;
	}
	/* Targets and groups together, by name; names starting with '_' are
	 * private (templates to inherit from), as with bake. */
	size_t n = plan.n_targets + plan.n_groups, m = 0;
	struct row {
		const char *name;
		char *description;
		bool group;
	} *rows = kiln__xcalloc(n + 1, sizeof(*rows));
	size_t ti = 0, gi = 0;
	while (ti < plan.n_targets || gi < plan.n_groups) {
		bool take_t = gi == plan.n_groups ||
			      (ti < plan.n_targets &&
			       strcmp(plan.targets[ti]->name, plan.groups[gi]->name) < 0);
		if (take_t) {
			const struct kiln_plan_target *t = plan.targets[ti++];
			if (t->name[0] != '_')
				rows[m++] = (struct row){ t->name, kiln__xstrdup(t->description
									 ? t->description : ""), false };
			continue;
		}
		const struct kiln_plan_group *g = plan.groups[gi++];
		if (g->name[0] == '_')
			continue;
		const char **members = kiln__xcalloc(g->members.n + 1, sizeof(char *));
		if (g->members.n)
			memcpy(members, g->members.v, g->members.n * sizeof(char *));
		qsort(members, g->members.n, sizeof(char *), str_cmp);
		struct kiln_sb sb = KILN_SB_INIT;
		if (g->description)
			kiln__sb_adds(&sb, g->description);
		if (g->members.n && g->description)
			kiln__sb_adds(&sb, " (");
		for (size_t k = 0; k < g->members.n; k++)
			kiln__sb_addf(&sb, "%s%s", k ? ", " : "", members[k]);
		if (g->members.n && g->description)
			kiln__sb_adds(&sb, ")");
		free(members);
		rows[m++] = (struct row){ g->name, kiln__sb_detach(&sb), true };
		if (!rows[m - 1].description)
			rows[m - 1].description = kiln__xstrdup("");
	}
	if (quiet) { /* names only, as docker ps -q: for scripts and completion */
		for (size_t i = 0; i < m; i++)
			printf("%s\n", rows[i].name);
	} else if (strcmp(format, "json") == 0) {
		json_t *a = json_array();
		for (size_t i = 0; i < m; i++) {
			json_t *o = json_object();
			json_object_set_new(o, "name", jstr(rows[i].name));
			if (*rows[i].description)
				json_object_set_new(o, "description", jstr(rows[i].description));
			if (rows[i].group)
				json_object_set_new(o, "group", json_true());
			json_array_append_new(a, o);
		}
		char *s = json_dumps(a, JSON_PRESERVE_ORDER | JSON_INDENT(2));
		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(a);
	} else {
		int w = 6; /* "TARGET" */
		for (size_t i = 0; i < m; i++)
			if ((int)strlen(rows[i].name) > w)
				w = (int)strlen(rows[i].name);
		printf("%-*s  %s\n", w, "TARGET", "DESCRIPTION");
		for (size_t i = 0; i < m; i++) {
			if (*rows[i].description)
				printf("%-*s  %s\n", w, rows[i].name, rows[i].description);
			else
				printf("%s\n", rows[i].name);
		}
	}
	for (size_t i = 0; i < m; i++)
		free(rows[i].description);
	free(rows);
	kiln__plan_release(&plan);
	kiln__plan_cli_release(&c);
	return 0;
}
