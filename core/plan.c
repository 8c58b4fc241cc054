/* plan.c: from a script's declarations to a plan (plan.h): targets
 * resolved as `docker buildx bake` resolves them, --set overrides, groups
 * and dependencies checked, and the jobs of the targets asked for. */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "plan.h"
#include "util.h"

#define F(name, type, merge, member) \
	{ name, KILN_FT_##type, KILN_FM_##merge, offsetof(struct kiln_plan_target, member) }
const struct kiln_target_field_desc kiln__target_fields[KILN_TF_COUNT] = {
	[KILN_TF_DESCRIPTION] = F("description", STRING, REPLACE, description),
	[KILN_TF_CONTEXT] = F("context", STRING, REPLACE, context),
	[KILN_TF_CONTEXTS] = F("contexts", MAP, MAP, contexts),
	[KILN_TF_DOCKERFILE] = F("dockerfile", STRING, REPLACE, dockerfile),
	[KILN_TF_DOCKERFILE_INLINE] = F("dockerfile_inline", STRING, REPLACE, dockerfile_inline),
	[KILN_TF_FRONTEND] = F("frontend", STRING, REPLACE, frontend),
	[KILN_TF_ARGS] = F("args", MAP, MAP, args),
	[KILN_TF_LABELS] = F("labels", MAP, MAP, labels),
	[KILN_TF_TAGS] = F("tags", LIST, REPLACE, tags),
	[KILN_TF_CACHE_FROM] = F("cache_from", LIST, UNION, cache_from),
	[KILN_TF_CACHE_TO] = F("cache_to", LIST, REPLACE, cache_to),
	[KILN_TF_TARGET] = F("target", STRING, REPLACE, target),
	[KILN_TF_SECRETS] = F("secrets", LIST, BY_ID, secrets),
	[KILN_TF_SSH] = F("ssh", LIST, BY_ID, ssh),
	[KILN_TF_PLATFORMS] = F("platforms", LIST, REPLACE, platforms),
	[KILN_TF_OUTPUT] = F("output", LIST, REPLACE, output),
	[KILN_TF_PULL] = F("pull", BOOL, REPLACE, pull),
	[KILN_TF_NO_CACHE] = F("no_cache", BOOL, REPLACE, no_cache),
	[KILN_TF_NETWORK] = F("network", STRING, REPLACE, network),
	[KILN_TF_DEPENDS] = F("depends", LIST, UNION, depends),
	[KILN_TF_INHERITS] = F("inherits", LIST, NONE, inherits),
};
#undef F

bool kiln__plan_name_ok(const char *name)
{
	if (!name || !*name)
		return false;
	for (const char *p = name; *p; p++) {
		bool alnum = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || *p == '_';
		if (!alnum && (p == name || (*p != '.' && *p != '-')))
			return false;
	}
	return true;
}

#define FIELD(t, f, type) ((type *)(void *)((char *)(t) + kiln__target_fields[f].offset))

/* ---- merging ---------------------------------------------------------------------------- */

static bool list_has(const struct kiln_plan_list *l, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(l->v[i], s) == 0)
			return true;
	return false;
}

/* The id a secret or ssh spec is merged by: "id=X" in a secret's CSV (else
 * the whole spec); an ssh spec's part before '='. */
static size_t spec_id(const char *spec, bool secret, const char **id)
{
	if (!secret) {
		const char *eq = strchr(spec, '=');
		*id = spec;
		return eq ? (size_t)(eq - spec) : strlen(spec);
	}
	for (const char *p = spec; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
		if (strncmp(p, "id=", 3) == 0) {
			*id = p + 3;
			const char *end = strchr(*id, ',');
			return end ? (size_t)(end - *id) : strlen(*id);
		}
	}
	*id = spec;
	return strlen(spec);
}

static void merge_list(struct kiln_arena *a, struct kiln_plan_list *dst,
		       const struct kiln_plan_list *src, enum kiln_field_merge how, bool secret)
{
	struct kiln_plan_list out;
	out.v = kiln__arena_alloc(a, (dst->n + src->n + 1) * sizeof(*out.v));
	if (dst->n)
		memcpy(out.v, dst->v, dst->n * sizeof(*out.v));
	out.n = dst->n;
	for (size_t i = 0; i < src->n; i++) {
		const char *s = src->v[i];
		if (how == KILN_FM_BY_ID) {
			const char *id;
			size_t len = spec_id(s, secret, &id);
			bool replaced = false;
			for (size_t j = 0; j < out.n && !replaced; j++) {
				const char *id2;
				size_t len2 = spec_id(out.v[j], secret, &id2);
				if (len == len2 && memcmp(id, id2, len) == 0) {
					out.v[j] = s;
					replaced = true;
				}
			}
			if (!replaced)
				out.v[out.n++] = s;
		} else if (!list_has(&out, out.n, s)) {
			out.v[out.n++] = s;
		}
	}
	*dst = out;
}

static void merge_map(struct kiln_arena *a, struct kiln_plan_map *dst,
		      const struct kiln_plan_map *src)
{
	struct kiln_plan_map out;
	out.v = kiln__arena_alloc(a, (dst->n + src->n + 1) * sizeof(*out.v));
	out.n = 0;
	size_t i = 0, j = 0;
	while (i < dst->n || j < src->n) {
		int c = i == dst->n ? 1 : j == src->n ? -1 : strcmp(dst->v[i].key, src->v[j].key);
		if (c < 0) {
			out.v[out.n++] = dst->v[i++];
		} else {
			out.v[out.n++] = src->v[j++];
			if (c == 0)
				i++;
		}
	}
	*dst = out;
}

/* dst = dst merged with src (src wins), field by field as bake merges. */
static void merge_target(struct kiln_arena *a, struct kiln_plan_target *dst,
			 const struct kiln_plan_target *src)
{
	for (int f = 0; f < KILN_TF_COUNT; f++) {
		if (!(src->set & (1u << f)))
			continue;
		const struct kiln_target_field_desc *fd = &kiln__target_fields[f];
		bool had = dst->set & (1u << f);
		switch (fd->merge) {
		case KILN_FM_NONE:
			continue;
		case KILN_FM_REPLACE:
			memcpy((char *)dst + fd->offset, (const char *)src + fd->offset,
			       fd->type == KILN_FT_STRING ? sizeof(char *)
			       : fd->type == KILN_FT_BOOL ? sizeof(bool)
			       : fd->type == KILN_FT_LIST ? sizeof(struct kiln_plan_list)
							  : sizeof(struct kiln_plan_map));
			break;
		case KILN_FM_MAP:
			merge_map(a, FIELD(dst, f, struct kiln_plan_map),
				  FIELD(src, f, const struct kiln_plan_map));
			break;
		case KILN_FM_UNION:
		case KILN_FM_BY_ID:
			if (!had)
				*FIELD(dst, f, struct kiln_plan_list) = (struct kiln_plan_list){ 0 };
			merge_list(a, FIELD(dst, f, struct kiln_plan_list),
				   FIELD(src, f, const struct kiln_plan_list), fd->merge,
				   f == KILN_TF_SECRETS);
			break;
		}
		dst->set |= 1u << f;
	}
}

/* Drop duplicates (and empty entries) from lists, empty contexts, as
 * bake's normalize does. */
static void normalize(struct kiln_plan_target *t)
{
	static const int lists[] = { KILN_TF_TAGS, KILN_TF_CACHE_FROM, KILN_TF_CACHE_TO,
				     KILN_TF_PLATFORMS, KILN_TF_OUTPUT, KILN_TF_DEPENDS };
	for (size_t k = 0; k < sizeof(lists) / sizeof(lists[0]); k++) {
		struct kiln_plan_list *l = FIELD(t, lists[k], struct kiln_plan_list);
		size_t n = 0;
		for (size_t i = 0; i < l->n; i++)
			if (*l->v[i] && !list_has(l, n, l->v[i]))
				l->v[n++] = l->v[i];
		l->n = n;
	}
	size_t n = 0;
	for (size_t i = 0; i < t->contexts.n; i++)
		if (*t->contexts.v[i].value)
			t->contexts.v[n++] = t->contexts.v[i];
	t->contexts.n = n;
}

/* ---- lookups ------------------------------------------------------------------------------ */

static int target_ptr_cmp(const void *a, const void *b)
{
	return strcmp((*(struct kiln_plan_target *const *)a)->name,
		      (*(struct kiln_plan_target *const *)b)->name);
}

static int group_ptr_cmp(const void *a, const void *b)
{
	return strcmp((*(struct kiln_plan_group *const *)a)->name,
		      (*(struct kiln_plan_group *const *)b)->name);
}

/* Position of name in a name-sorted array of targets, or -1. */
static long find_target(struct kiln_plan_target *const *v, size_t n, const char *name)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(name, v[mid]->name);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

static long find_group(struct kiln_plan_group *const *v, size_t n, const char *name)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(name, v[mid]->name);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

/* Work state of one load/select. */
struct resolver {
	struct kiln_plan *plan;
	struct kiln_plan_target **byname; /* decls sorted by name */
	struct kiln_plan_group **gbyname; /* groups sorted by name */
	size_t n, n_groups;
	struct kiln_plan_target **inner; /* by byname position: resolved, no defaults */
	unsigned char *state;            /* 0 new, 1 visiting, 2 done */
	size_t *path;                    /* the DFS path, for cycle messages */
	size_t n_path;
	struct override *ov;
	size_t n_ov;
};

static const char *closest(struct resolver *r, const char *name);

/* "a -> b -> a" from the path's tail starting at from. */
static char *cycle_text(struct resolver *r, size_t from, const char *last, bool groups)
{
	struct kiln_sb sb = KILN_SB_INIT;
	for (size_t i = from; i < r->n_path; i++)
		kiln__sb_addf(&sb, "%s -> ", groups ? r->gbyname[r->path[i]]->name
						    : r->byname[r->path[i]]->name);
	kiln__sb_adds(&sb, last);
	return kiln__sb_detach(&sb);
}

/* The depth-first walks over groups, inherits and dependencies. */
enum walk { WALK_GROUPS, WALK_INHERITS, WALK_DEPS };

/* Enter node i of walk w: 0 when it is already done (skip it), 1 when it
 * is now on the path, or a negative code with the cycle it closes in
 * *err (at the file:line of the cycle's first node). */
static int walk_enter(struct resolver *r, size_t i, enum walk w, struct kiln_err *err)
{
	if (r->state[i] == 2)
		return 0;
	if (r->state[i] == 1) {
		size_t from = 0;
		while (r->path[from] != i)
			from++;
		size_t f = r->path[from];
		const char *name, *last, *file;
		int line;
		if (w == WALK_GROUPS) {
			name = r->gbyname[f]->name, file = r->gbyname[f]->file;
			line = r->gbyname[f]->line, last = r->gbyname[i]->name;
		} else {
			struct kiln_plan_target **v = w == WALK_DEPS ? r->inner : r->byname;
			name = v[f]->name, file = v[f]->file, line = v[f]->line;
			last = v[i]->name;
		}
		char *c = cycle_text(r, from, last, w == WALK_GROUPS);
		int rc = kiln__err_at(err, KILN_E_INVALID, file, line, 0, "%s \"%s\": %s: %s",
				      w == WALK_GROUPS ? "group" : "target", name,
				      w == WALK_GROUPS ? "groups form a cycle"
				      : w == WALK_INHERITS ? "inherits form a cycle"
							   : "dependency cycle",
				      c);
		free(c);
		return rc;
	}
	r->state[i] = 1;
	r->path[r->n_path++] = i;
	return 1;
}

/* ---- groups --------------------------------------------------------------------------------- */

static int check_group(struct resolver *r, size_t gi, struct kiln_err *err)
{
	int rc = walk_enter(r, gi, WALK_GROUPS, err);
	if (rc <= 0)
		return rc;
	const struct kiln_plan_group *g = r->gbyname[gi];
	for (size_t i = 0; i < g->members.n; i++) {
		const char *m = g->members.v[i];
		long sub = find_group(r->gbyname, r->n_groups, m);
		if (sub >= 0) {
			rc = check_group(r, (size_t)sub, err);
			if (rc < 0)
				return rc;
		} else if (find_target(r->byname, r->n, m) < 0) {
			const char *near = closest(r, m);
			return kiln__err_at(err, KILN_E_NOTFOUND, g->file, g->line, 0,
					    "group \"%s\": no target or group named '%s'%s%s%s",
					    g->name, m, near ? " (did you mean '" : "",
					    near ? near : "", near ? "'?)" : "");
		}
	}
	r->n_path--;
	r->state[gi] = 2;
	return 0;
}

/* ---- --set ------------------------------------------------------------------------------- */

struct override {
	const char *arg;     /* as given, for messages */
	int field;           /* enum kiln_target_field */
	const char *key;     /* args.KEY, labels.KEY, contexts.KEY; else NULL */
	const char *value;
	bool append;         /* += */
	bool *applies;       /* by byname position */
};

static bool parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "1", "t", "T", "TRUE", "true", "True" };
	static const char *const no[] = { "0", "f", "F", "FALSE", "false", "False" };
	for (int i = 0; i < 6; i++) {
		if (strcmp(s, yes[i]) == 0)
			return *out = true, true;
		if (strcmp(s, no[i]) == 0)
			return *out = false, true;
	}
	return false;
}

/* Mark the targets of group gi (nested) in applies. */
static void mark_group(struct resolver *r, size_t gi, bool *applies, unsigned depth)
{
	const struct kiln_plan_group *g = r->gbyname[gi];
	if (depth > r->n_groups)
		return; /* cycles were refused before; belt and braces */
	for (size_t i = 0; i < g->members.n; i++) {
		long t = find_target(r->byname, r->n, g->members.v[i]);
		if (t >= 0)
			applies[t] = true;
		long sub = find_group(r->gbyname, r->n_groups, g->members.v[i]);
		if (sub >= 0)
			mark_group(r, (size_t)sub, applies, depth + 1);
	}
}

static int parse_override(struct resolver *r, const char *arg, struct override *o,
			  struct kiln_err *err)
{
	struct kiln_arena *a = r->plan->arena;
	const char *eq = strchr(arg, '=');
	const char *dot = strchr(arg, '.');
	o->arg = arg;
	if (!eq || !dot || dot > eq)
		return kiln__err(err, KILN_E_INVALID, "--set '%s': expected TARGET.FIELD=VALUE "
				 "(TARGET may be a pattern such as '*')", arg);
	o->append = eq > arg && eq[-1] == '+';
	const char *fend = o->append ? eq - 1 : eq;
	char *pattern = kiln__xasprintf("%.*s", (int)(dot - arg), arg);
	char *field = kiln__xasprintf("%.*s", (int)(fend - dot - 1), dot + 1);
	o->value = eq + 1;
	char *key = strchr(field, '.');
	if (key)
		*key++ = '\0';
	for (char *p = field; *p; p++)
		if (*p == '-')
			*p = '_'; /* bake spells cache-from, no-cache, … */
	const char *fname = strcmp(field, "platform") == 0 ? "platforms" : field;
	o->field = -1;
	for (int f = 0; f < KILN_TF_COUNT; f++)
		if (strcmp(fname, kiln__target_fields[f].name) == 0)
			o->field = f;
	int rc = 0;
	if (o->field < 0) {
		rc = kiln__err(err, KILN_E_INVALID, "--set '%s': unknown field '%s'", arg, field);
	} else if (o->field == KILN_TF_INHERITS || o->field == KILN_TF_DEPENDS) {
		rc = kiln__err(err, KILN_E_INVALID, "--set '%s': %s cannot be overridden", arg,
			       fname);
	} else if ((kiln__target_fields[o->field].type == KILN_FT_MAP) != (key != NULL) ||
		   (key && !*key)) {
		rc = kiln__err(err, KILN_E_INVALID, key || kiln__target_fields[o->field].type !=
			       KILN_FT_MAP ? "--set '%s': %s takes no key" :
			       "--set '%s': %s needs a key (%s.NAME=VALUE)", arg, fname, fname);
	} else if (o->append && kiln__target_fields[o->field].type != KILN_FT_LIST) {
		rc = kiln__err(err, KILN_E_INVALID, "--set '%s': += is for lists; %s is not one",
			       arg, fname);
	} else if (kiln__target_fields[o->field].type == KILN_FT_BOOL) {
		bool b;
		if (!parse_bool(o->value, &b))
			rc = kiln__err(err, KILN_E_INVALID, "--set '%s': %s takes true or false",
				       arg, fname);
	}
	if (rc == 0) {
		o->key = key ? kiln__arena_strdup(a, key) : NULL;
		o->applies = kiln__arena_alloc(a, (r->n ? r->n : 1) * sizeof(bool));
		bool any = false;
		for (size_t i = 0; i < r->n; i++)
			if (fnmatch(pattern, r->byname[i]->name, 0) == 0)
				o->applies[i] = any = true;
		for (size_t g = 0; g < r->n_groups; g++) {
			if (fnmatch(pattern, r->gbyname[g]->name, 0) == 0) {
				mark_group(r, g, o->applies, 0);
				any = true;
			}
		}
		if (!any)
			rc = kiln__err(err, KILN_E_NOTFOUND, "--set '%s': no target or group "
				       "matches '%s'", arg, pattern);
	}
	free(pattern);
	free(field);
	return rc;
}

/* Apply the --set overrides to target t (byname position i), in order. */
static void apply_overrides(struct resolver *r, size_t i, struct kiln_plan_target *t)
{
	struct kiln_arena *a = r->plan->arena;
	unsigned replaced = 0; /* list fields a plain '=' has replaced */
	for (size_t k = 0; k < r->n_ov; k++) {
		const struct override *o = &r->ov[k];
		if (!o->applies[i])
			continue;
		const struct kiln_target_field_desc *fd = &kiln__target_fields[o->field];
		unsigned bit = 1u << o->field;
		switch (fd->type) {
		case KILN_FT_STRING:
			*FIELD(t, o->field, const char *) = o->value;
			break;
		case KILN_FT_BOOL:
			parse_bool(o->value, FIELD(t, o->field, bool));
			break;
		case KILN_FT_MAP: {
			struct kiln_plan_map one = { kiln__arena_alloc(a, sizeof(struct kiln_kv)), 1 };
			one.v[0] = (struct kiln_kv){ o->key, o->value };
			if (!(t->set & bit))
				*FIELD(t, o->field, struct kiln_plan_map) = (struct kiln_plan_map){ 0 };
			merge_map(a, FIELD(t, o->field, struct kiln_plan_map), &one);
			break;
		}
		case KILN_FT_LIST: {
			struct kiln_plan_list *l = FIELD(t, o->field, struct kiln_plan_list);
			if (!(t->set & bit) || (!o->append && !(replaced & bit)))
				*l = (struct kiln_plan_list){ 0 };
			if (!o->append)
				replaced |= bit;
			/* platforms may be given comma separated, as --platform */
			size_t extra = 1;
			if (o->field == KILN_TF_PLATFORMS)
				for (const char *p = o->value; *p; p++)
					extra += *p == ',';
			const char **v = kiln__arena_alloc(a, (l->n + extra) * sizeof(*v));
			if (l->n)
				memcpy(v, l->v, l->n * sizeof(*v));
			if (o->field == KILN_TF_PLATFORMS) {
				const char *p = o->value;
				for (;;) {
					const char *c = strchr(p, ',');
					size_t len = c ? (size_t)(c - p) : strlen(p);
					char *s = kiln__arena_alloc(a, len + 1);
					memcpy(s, p, len);
					v[l->n++] = s;
					if (!c)
						break;
					p = c + 1;
				}
			} else {
				v[l->n++] = o->value;
			}
			l->v = v;
			break;
		}
		}
		t->set |= bit;
	}
}

/* ---- targets ------------------------------------------------------------------------------ */

static long decl_pos(struct resolver *r, const struct kiln_plan_target *d)
{
	return find_target(r->byname, r->n, d->name);
}

/* Resolve byname[i]: inherits in order, then its own fields, then --set;
 * as bake's Config.target (defaults come later, in load). */
static int resolve(struct resolver *r, size_t i, struct kiln_err *err)
{
	int rc = walk_enter(r, i, WALK_INHERITS, err);
	if (rc <= 0)
		return rc;
	const struct kiln_plan_target *d = r->byname[i];
	struct kiln_plan_target *t = kiln__arena_alloc(r->plan->arena, sizeof(*t));
	for (size_t k = 0; k < d->inherits.n; k++) {
		const char *pn = d->inherits.v[k];
		long p = find_target(r->byname, r->n, pn);
		if (p < 0) {
			bool grp = find_group(r->gbyname, r->n_groups, pn) >= 0;
			const char *near = grp ? NULL : closest(r, pn);
			return kiln__err_at(err, KILN_E_NOTFOUND, d->file, d->line, 0,
					    "target \"%s\": inherits %s '%s'%s%s%s", d->name,
					    grp ? "the group" : "an unknown target", pn,
					    near ? " (did you mean '" : grp ? "; only targets can be "
					    "inherited" : "", near ? near : "", near ? "'?)" : "");
		}
		rc = resolve(r, (size_t)p, err);
		if (rc < 0)
			return rc;
		merge_target(r->plan->arena, t, r->inner[p]);
	}
	merge_target(r->plan->arena, t, d);
	t->name = d->name;
	t->file = d->file;
	t->line = d->line;
	apply_overrides(r, i, t);
	normalize(t);
	t->set &= ~(1u << KILN_TF_INHERITS);
	t->inherits = (struct kiln_plan_list){ 0 };
	r->inner[i] = t;
	r->n_path--;
	r->state[i] = 2;
	return 0;
}

/* What a target needs built first, by byname position, in the order
 * written; ctx when only a context "target:" asks for it (then the same
 * platform is enough). Short lists: linear dedup. */
struct dep {
	size_t pos;
	bool ctx;
};
struct deps {
	struct dep *v;
	size_t n, cap;
};

static void deps_add(struct deps *d, size_t pos, bool ctx)
{
	for (size_t i = 0; i < d->n; i++) {
		if (d->v[i].pos == pos) {
			d->v[i].ctx &= ctx;
			return;
		}
	}
	KILN_PLAN_PUSH(d->v, d->n, d->cap, ((struct dep){ pos, ctx }));
}

static void deps_add_group(struct resolver *r, size_t gi, struct deps *d, unsigned depth)
{
	const struct kiln_plan_group *g = r->gbyname[gi];
	if (depth > r->n_groups)
		return; /* cycles were refused before */
	for (size_t i = 0; i < g->members.n; i++) {
		long t = find_target(r->byname, r->n, g->members.v[i]);
		if (t >= 0)
			deps_add(d, (size_t)t, false);
		long sub = find_group(r->gbyname, r->n_groups, g->members.v[i]);
		if (sub >= 0)
			deps_add_group(r, (size_t)sub, d, depth + 1);
	}
}

/* The targets a dependency name stands for: a target, or a group's. */
static int dep_targets(struct resolver *r, const struct kiln_plan_target *t, const char *what,
		       const char *name, bool ctx, struct deps *d, struct kiln_err *err)
{
	long p = find_target(r->byname, r->n, name);
	if (p >= 0) {
		deps_add(d, (size_t)p, ctx);
		return 0;
	}
	long g = ctx ? -1 : find_group(r->gbyname, r->n_groups, name);
	if (g >= 0) {
		deps_add_group(r, (size_t)g, d, 0);
		return 0;
	}
	const char *near = closest(r, name);
	return kiln__err_at(err, KILN_E_NOTFOUND, t->file, t->line, 0,
			    "target \"%s\": %s '%s', which is not a target%s%s%s", t->name, what,
			    name, near ? " (did you mean '" : "", near ? near : "",
			    near ? "'?)" : "");
}

/* The targets t needs built first: depends (targets or groups) and
 * contexts "target:NAME", appended to *d. */
static int target_deps(struct resolver *r, const struct kiln_plan_target *t, struct deps *d,
		       struct kiln_err *err)
{
	for (size_t k = 0; k < t->depends.n; k++) {
		int rc = dep_targets(r, t, "depends on", t->depends.v[k], false, d, err);
		if (rc < 0)
			return rc;
	}
	for (size_t k = 0; k < t->contexts.n; k++) {
		const char *v = t->contexts.v[k].value;
		if (strncmp(v, "target:", 7) != 0)
			continue;
		int rc = dep_targets(r, t, "has a context from", v + 7, true, d, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int check_deps(struct resolver *r, size_t i, struct kiln_err *err)
{
	int rc = walk_enter(r, i, WALK_DEPS, err);
	if (rc <= 0)
		return rc;
	const struct kiln_plan_target *t = r->inner[i];
	struct deps d = { 0 };
	rc = target_deps(r, t, &d, err);
	/* visit in the order written, so the cycle reported is the first */
	for (size_t n = 0; rc == 0 && n < d.n; n++) {
		size_t k = d.v[n].pos;
		if (k == i) {
			rc = kiln__err_at(err, KILN_E_INVALID, t->file, t->line, 0,
					  "target \"%s\": dependency cycle: %s -> %s", t->name,
					  t->name, t->name);
			break;
		}
		rc = check_deps(r, k, err);
	}
	free(d.v);
	if (rc < 0)
		return rc;
	r->n_path--;
	r->state[i] = 2;
	return 0;
}

size_t kiln__plan_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return 99;
	size_t row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t prev = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cur = row[j];
			size_t best = prev + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			prev = cur;
		}
	}
	return row[lb];
}

/* A declared name close to name, for "did you mean". */
static const char *closest(struct resolver *r, const char *name)
{
	/* close enough to be a typo: one edit in a short name, two in a
	 * longer one; none for names of one or two characters */
	size_t len = strlen(name);
	size_t best_d = len < 3 ? 1 : len < 6 ? 2 : 3;
	const char *best = NULL;
	for (size_t i = 0; i < r->n; i++) {
		size_t d = kiln__plan_distance(name, r->byname[i]->name);
		if (d < best_d) {
			best_d = d;
			best = r->byname[i]->name;
		}
	}
	for (size_t i = 0; i < r->n_groups; i++) {
		size_t d = kiln__plan_distance(name, r->gbyname[i]->name);
		if (d < best_d) {
			best_d = d;
			best = r->gbyname[i]->name;
		}
	}
	return best;
}

static void resolver_init(struct resolver *r, struct kiln_plan *plan)
{
	memset(r, 0, sizeof(*r));
	r->plan = plan;
	r->n = plan->n_decls;
	r->n_groups = plan->n_groups;
	size_t cap = r->n + r->n_groups + 1;
	r->byname = kiln__xmalloc((r->n + 1) * sizeof(*r->byname));
	if (r->n)
		memcpy(r->byname, plan->decls, r->n * sizeof(*r->byname));
	qsort(r->byname, r->n, sizeof(*r->byname), target_ptr_cmp);
	r->gbyname = kiln__xmalloc((r->n_groups + 1) * sizeof(*r->gbyname));
	if (r->n_groups)
		memcpy(r->gbyname, plan->groups, r->n_groups * sizeof(*r->gbyname));
	qsort(r->gbyname, r->n_groups, sizeof(*r->gbyname), group_ptr_cmp);
	r->inner = kiln__xcalloc(r->n + 1, sizeof(*r->inner));
	r->state = kiln__xcalloc(cap, 1);
	r->path = kiln__xcalloc(cap, sizeof(*r->path));
}

static void resolver_release(struct resolver *r)
{
	free(r->byname);
	free(r->gbyname);
	free(r->inner);
	free(r->state);
	free(r->path);
	free(r->ov);
}

static void reset_state(struct resolver *r)
{
	memset(r->state, 0, r->n + r->n_groups + 1);
	r->n_path = 0;
}

int kiln__plan_load(struct kiln_plan *plan, const struct kiln_plan_opts *opts,
		    struct kiln_err *err)
{
	memset(plan, 0, sizeof(*plan));
	plan->arena = kiln__arena_new();
	const char *file = opts->file && *opts->file ? opts->file : "kiln.lua";
	plan->file = kiln__arena_strdup(plan->arena, file);
	const char *slash = strrchr(file, '/');
	if (!slash)
		plan->dir = ".";
	else if (slash == file)
		plan->dir = "/";
	else {
		char *d = kiln__arena_alloc(plan->arena, (size_t)(slash - file) + 1);
		memcpy(d, file, (size_t)(slash - file));
		plan->dir = d;
	}
	int rc = kiln__script_eval(plan, opts, err);
	if (rc < 0)
		return rc;

	struct resolver r;
	resolver_init(&r, plan);
	/* Groups first: --set patterns may name them. */
	for (size_t k = 0; rc == 0 && k < plan->n_groups; k++) {
		reset_state(&r);
		rc = check_group(&r, (size_t)find_group(r.gbyname, r.n_groups,
							plan->groups[k]->name), err);
	}
	if (rc == 0 && opts->n_sets) {
		r.ov = kiln__xcalloc(opts->n_sets, sizeof(*r.ov));
		for (size_t k = 0; rc == 0 && k < opts->n_sets; k++)
			rc = parse_override(&r, opts->sets[k], &r.ov[r.n_ov++], err);
	}
	/* Targets in the order written: the first problem is reported. */
	reset_state(&r);
	for (size_t k = 0; rc == 0 && k < plan->n_decls; k++)
		rc = resolve(&r, (size_t)decl_pos(&r, plan->decls[k]), err);
	reset_state(&r);
	for (size_t k = 0; rc == 0 && k < plan->n_decls; k++)
		rc = check_deps(&r, (size_t)decl_pos(&r, plan->decls[k]), err);
	if (rc == 0) {
		plan->n_targets = r.n;
		plan->targets = kiln__xmalloc((r.n + 1) * sizeof(*plan->targets));
		for (size_t i = 0; i < r.n; i++) {
			struct kiln_plan_target *t = r.inner[i];
			/* bake's defaults: context ".", dockerfile "Dockerfile" */
			if (!(t->set & (1u << KILN_TF_CONTEXT)))
				t->context = ".";
			if (!(t->set & (1u << KILN_TF_DOCKERFILE)) || !*t->dockerfile)
				t->dockerfile = "Dockerfile";
			t->set |= 1u << KILN_TF_CONTEXT | 1u << KILN_TF_DOCKERFILE;
			plan->targets[i] = t;
		}
		/* groups sorted by name, for lookups */
		if (r.n_groups)
			memcpy(plan->groups, r.gbyname, r.n_groups * sizeof(*plan->groups));
	}
	resolver_release(&r);
	return rc;
}

const struct kiln_plan_target *kiln__plan_target(const struct kiln_plan *plan,
						 const char *name)
{
	long i = find_target(plan->targets, plan->n_targets, name);
	return i < 0 ? NULL : plan->targets[i];
}

const struct kiln_plan_group *kiln__plan_group(const struct kiln_plan *plan, const char *name)
{
	long i = find_group(plan->groups, plan->n_groups, name);
	return i < 0 ? NULL : plan->groups[i];
}

/* ---- selection and jobs ----------------------------------------------------------------- */

struct selector {
	struct kiln_plan *plan;
	struct resolver r;         /* lookups only (byname = plan->targets) */
	bool *want;                /* by target position */
	bool *group_seen;
	size_t *order;             /* targets in build order */
	size_t n_order;
	unsigned char *state;
};

static void select_group(struct selector *s, size_t gi, bool *mark, unsigned depth)
{
	if (depth > s->plan->n_groups)
		return;
	s->group_seen[gi] = true;
	const struct kiln_plan_group *g = s->plan->groups[gi];
	for (size_t i = 0; i < g->members.n; i++) {
		long t = find_target(s->plan->targets, s->plan->n_targets, g->members.v[i]);
		if (t >= 0)
			mark[t] = true;
		long sub = find_group(s->plan->groups, s->plan->n_groups, g->members.v[i]);
		if (sub >= 0)
			select_group(s, (size_t)sub, mark, depth + 1);
	}
}

/* Post-order walk: dependencies before their dependents. Cycles were
 * refused at load. */
static void visit(struct selector *s, size_t i)
{
	if (s->state[i])
		return;
	s->state[i] = 1;
	const struct kiln_plan_target *t = s->plan->targets[i];
	struct deps d = { 0 };
	struct kiln_err ignored;
	target_deps(&s->r, t, &d, &ignored);
	for (size_t k = 0; k < d.n; k++) /* in the order the target names them */
		visit(s, d.v[k].pos);
	free(d.v);
	s->order[s->n_order++] = i;
}

/* Jobs of target position ti: [first, first + count). */
struct span {
	size_t first, count;
};

int kiln__plan_select(struct kiln_plan *plan, const char *const *names, size_t n,
		      struct kiln_err *err)
{
	static const char *const default_group[] = { "default" };
	if (n == 0) {
		if (kiln__plan_group(plan, "default")) {
			names = default_group;
			n = 1;
		} else if (plan->n_targets == 1) {
			names = (const char *const *)&plan->targets[0]->name;
			n = 1;
		} else if (plan->n_targets == 0) {
			return kiln__err_at(err, KILN_E_NOTFOUND, plan->file, 0, 0,
					    "the script declares no targets");
		} else {
			return kiln__err_at(err, KILN_E_NOTFOUND, plan->file, 0, 0,
					    "no group \"default\" and %zu targets: name the targets "
					    "or groups to use ('kiln ls' lists them)", plan->n_targets);
		}
	}
	struct selector s = { .plan = plan };
	size_t nt = plan->n_targets;
	s.r.plan = plan;
	s.r.byname = plan->targets;
	s.r.n = nt;
	s.r.gbyname = plan->groups;
	s.r.n_groups = plan->n_groups;
	s.want = kiln__xcalloc(nt + 1, sizeof(bool));
	s.group_seen = kiln__xcalloc(plan->n_groups + 1, sizeof(bool));
	s.order = kiln__xcalloc(nt + 1, sizeof(size_t));
	s.state = kiln__xcalloc(nt + 1, 1);
	int rc = 0;
	/* The names asked for, in order. */
	size_t *asked = kiln__xcalloc(nt + 1, sizeof(size_t));
	size_t n_asked = 0;
	for (size_t k = 0; k < n && rc == 0; k++) {
		bool *mark = kiln__xcalloc(nt + 1, sizeof(bool));
		long t = find_target(plan->targets, nt, names[k]);
		long g = find_group(plan->groups, plan->n_groups, names[k]);
		if (t >= 0) {
			mark[t] = true;
		} else if (g >= 0) {
			select_group(&s, (size_t)g, mark, 0);
		} else {
			const char *near = closest(&s.r, names[k]);
			rc = kiln__err_at(err, KILN_E_NOTFOUND, plan->file, 0, 0,
					  "no target or group named '%s'%s%s%s", names[k],
					  near ? " (did you mean '" : "", near ? near : "",
					  near ? "'?)" : "");
		}
		/* a group's targets in the order the group lists them */
		if (g >= 0 && t < 0) {
			const struct kiln_plan_group *gr = plan->groups[g];
			for (size_t m = 0; m < gr->members.n; m++) {
				long p = find_target(plan->targets, nt, gr->members.v[m]);
				if (p >= 0 && mark[p] && !s.want[p]) {
					s.want[p] = true;
					asked[n_asked++] = (size_t)p;
				}
			}
		}
		for (size_t i = 0; i < nt; i++) {
			if (mark[i] && !s.want[i]) {
				s.want[i] = true;
				asked[n_asked++] = i;
			}
		}
		free(mark);
	}
	if (rc == 0) {
		for (size_t k = 0; k < n_asked; k++)
			visit(&s, asked[k]);

		plan->n_selected = s.n_order;
		plan->selected = kiln__xmalloc((s.n_order + 1) * sizeof(*plan->selected));
		size_t m = 0;
		for (size_t i = 0; i < nt; i++) /* by name */
			if (s.state[i])
				plan->selected[m++] = plan->targets[i];
		plan->selected_groups = kiln__xmalloc((plan->n_groups + 1) * sizeof(void *));
		for (size_t g = 0; g < plan->n_groups; g++)
			if (s.group_seen[g])
				plan->selected_groups[plan->n_selected_groups++] = plan->groups[g];

		/* Jobs: target × platform, in build order. */
		struct span *span = kiln__xcalloc(nt + 1, sizeof(*span));
		size_t n_jobs = 0;
		for (size_t k = 0; k < s.n_order; k++) {
			const struct kiln_plan_target *t = plan->targets[s.order[k]];
			span[s.order[k]] = (struct span){ n_jobs, t->platforms.n ? t->platforms.n : 1 };
			n_jobs += span[s.order[k]].count;
		}
		plan->jobs = kiln__arena_alloc(plan->arena, (n_jobs + 1) * sizeof(*plan->jobs));
		plan->n_jobs = n_jobs;
		struct deps dl = { 0 };
		for (size_t k = 0; k < s.n_order; k++) {
			size_t ti = s.order[k];
			const struct kiln_plan_target *t = plan->targets[ti];
			struct kiln_err ignored;
			dl.n = 0;
			target_deps(&s.r, t, &dl, &ignored);
			for (size_t p = 0; p < span[ti].count; p++) {
				struct kiln_plan_job *j = &plan->jobs[span[ti].first + p];
				j->target = t;
				j->platform = t->platforms.n ? t->platforms.v[p] : NULL;
				j->id = t->name;
				if (j->platform) {
					size_t len = strlen(t->name) + strlen(j->platform) + 2;
					char *id = kiln__arena_alloc(plan->arena, len);
					snprintf(id, len, "%s@%s", t->name, j->platform);
					j->id = id;
				}
				size_t cap = 0;
				for (size_t di = 0; di < dl.n; di++)
					cap += span[dl.v[di].pos].count;
				j->deps = kiln__arena_alloc(plan->arena, (cap + 1) * sizeof(size_t));
				for (size_t di = 0; di < dl.n; di++) {
					size_t d = dl.v[di].pos;
					const struct kiln_plan_target *dt = plan->targets[d];
					/* a context needs the same platform when the
					 * other target builds it; depends needs all */
					long same = -1;
					if (dl.v[di].ctx && j->platform)
						for (size_t q = 0; q < dt->platforms.n; q++)
							if (strcmp(dt->platforms.v[q], j->platform) == 0)
								same = (long)q;
					if (same >= 0) {
						j->deps[j->n_deps++] = span[d].first + (size_t)same;
						continue;
					}
					for (size_t q = 0; q < span[d].count; q++)
						j->deps[j->n_deps++] = span[d].first + q;
				}
			}
		}
		free(dl.v);
		free(span);
	}
	free(asked);
	free(s.want);
	free(s.group_seen);
	free(s.order);
	free(s.state);
	return rc;
}

void kiln__plan_err_print(const struct kiln_plan *plan, const struct kiln_err *err)
{
	kiln__err_print(err);
	if (plan && plan->traceback)
		fprintf(stderr, "%s\n", plan->traceback);
}

void kiln__plan_release(struct kiln_plan *plan)
{
	free(plan->decls);
	free(plan->groups);
	free(plan->builders);
	free(plan->targets);
	free(plan->selected);
	free(plan->selected_groups);
	free(plan->traceback);
	kiln__arena_free(plan->arena);
	memset(plan, 0, sizeof(*plan));
}
