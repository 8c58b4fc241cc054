/* lua_script.c: runs kiln.lua in a sandboxed Lua 5.4 state and records what
 * it declares (targets, groups, builders) in the plan (plan.h).
 *
 * The script declares; it never builds. It sees Lua's base, string, table,
 * math, utf8 and coroutine libraries, a read-only os (getenv, time, clock,
 * date, difftime) and the kiln API: target, group, builder, matrix,
 * kiln.env, kiln.vars, kiln.read_file, kiln.exists and a require that
 * loads modules from the project directory. There is no io, no
 * os.execute, no io.popen, no debug library, no binary chunks and no
 * writes; files are read only below the project directory. pairs() visits
 * keys in sorted order and math.random has a fixed seed, so a script
 * gives the same plan every time.
 *
 * Every entry into Lua is a protected call; errors become struct kiln_err
 * with the script's file:line, and runtime errors keep a traceback
 * (plan->traceback). A Lua error unwinds with longjmp, so C memory made
 * while Lua runs comes from the plan's arena or the plan's own arrays,
 * never from a local that an error would leak. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "arena.h"
#include "plan.h"
#include "util.h"

/* The most memory a script may use. */
#define SCRIPT_MEM_MAX ((size_t)1 << 30)
/* The most combinations one matrix may make. */
#define MATRIX_MAX 100000
/* How long a script may run; checked every million instructions. */
#define SCRIPT_SECONDS_MAX 60
/* The limits in force: the defaults above, lowered by the fuzz target
 * (tests/fuzz/fuzz_lua.c) so that a script that loops or hoards stops
 * within its time and memory budget. */
size_t kiln__script_mem_max = SCRIPT_MEM_MAX;
int kiln__script_seconds_max = SCRIPT_SECONDS_MAX;
/* The largest file kiln.read_file reads. */
#define READ_FILE_MAX ((size_t)64 << 20)

/* Registry keys (their addresses). */
static const char names_key;   /* name -> "target declared at FILE:LINE" */
static const char pending_key; /* token -> line: `target "x"` awaiting its table */
static const char loaded_key;  /* module name -> value, for require */

/* One evaluation; the Lua state's allocator data, so every function can
 * reach it with lua_getallocf. */
struct script {
	struct kiln_plan *plan;
	const struct kiln_plan_opts *opts;
	char dir_real[PATH_MAX]; /* the project directory, resolved */
	size_t mem;
	int64_t deadline_ns;     /* kiln__mono_ns() past which the script stops */
};

static void *script_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct script *s = ud;
	if (!ptr)
		osize = 0; /* then osize is a type tag, not a size */
	if (nsize == 0) {
		free(ptr);
		s->mem -= osize;
		return NULL;
	}
	if (nsize > osize && s->mem + (nsize - osize) > kiln__script_mem_max)
		return NULL; /* Lua raises "not enough memory" */
	void *p = realloc(ptr, nsize);
	if (p)
		s->mem = s->mem - osize + nsize;
	return p;
}

static struct script *get_script(lua_State *L)
{
	void *ud = NULL;
	lua_getallocf(L, &ud);
	return ud;
}

/* A count hook: a script that loops for ever stops with its line. */
static void time_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	if (kiln__mono_ns() > get_script(L)->deadline_ns)
		luaL_error(L, "the script ran for more than %d seconds (a loop that never "
			   "ends?)", kiln__script_seconds_max);
}

/* A Lua string into the plan's arena. */
static const char *adup(lua_State *L, int idx, const char *what)
{
	size_t len;
	const char *s = lua_tolstring(L, idx, &len);
	if (strlen(s) != len)
		luaL_error(L, "%s contains a NUL byte", what);
	struct script *sc = get_script(L);
	char *p = kiln__arena_alloc(sc->plan->arena, len + 1);
	memcpy(p, s, len);
	return p;
}

/* The script position that called the running C function. */
static void caller_pos(lua_State *L, const char **file, int *line)
{
	struct script *s = get_script(L);
	lua_Debug ar;
	*file = s->plan->file;
	*line = 0;
	for (int level = 1; lua_getstack(L, level, &ar); level++) {
		lua_getinfo(L, "Sl", &ar);
		if (ar.currentline > 0) {
			/* Declarations of one file share one copy. */
			*file = strcmp(ar.short_src, s->plan->file) == 0
					? s->plan->file
					: kiln__arena_strdup(s->plan->arena, ar.short_src);
			*line = ar.currentline;
			return;
		}
	}
}

/* ---- field conversion ---------------------------------------------------------------- */

/* What is being declared, for messages: `target "app": …`. */
struct decl {
	lua_State *L;
	const char *kind; /* "target", "group", "builder" */
	const char *name;
};

static int decl_error(struct decl *d, const char *fmt, ...)
{
	lua_State *L = d->L;
	va_list ap;
	va_start(ap, fmt);
	luaL_where(L, 1);
	lua_pushfstring(L, "%s \"%s\": ", d->kind, d->name);
	lua_pushvfstring(L, fmt, ap);
	va_end(ap);
	lua_concat(L, 3);
	return lua_error(L);
}

static const char *type_phrase(lua_State *L, int idx)
{
	switch (lua_type(L, idx)) {
	case LUA_TNUMBER: return lua_isinteger(L, idx) ? "an integer" : "a number";
	case LUA_TSTRING: return "a string";
	case LUA_TBOOLEAN: return "a boolean";
	case LUA_TTABLE: return "a table";
	case LUA_TFUNCTION: return "a function";
	case LUA_TNIL: return "nil";
	default: return lua_typename(L, lua_type(L, idx));
	}
}

/* The string or number at idx as an arena string (numbers as Lua prints
 * them), or NULL for other types. */
static const char *scalar_str(lua_State *L, int idx, const char *what)
{
	if (lua_type(L, idx) == LUA_TSTRING)
		return adup(L, idx, what);
	if (lua_type(L, idx) == LUA_TNUMBER) {
		luaL_tolstring(L, idx, NULL);
		const char *s = adup(L, -1, what);
		lua_pop(L, 1);
		return s;
	}
	return NULL;
}

static const char *field_string(struct decl *d, int idx, const char *field)
{
	if (lua_type(d->L, idx) != LUA_TSTRING)
		decl_error(d, "field '%s' must be a string, not %s", field, type_phrase(d->L, idx));
	return adup(d->L, idx, field);
}

/* Count the keys of table t and check they are 1..n; returns n. */
static lua_Integer sequence_len(lua_State *L, int t, bool *ok)
{
	lua_Integer n = (lua_Integer)lua_rawlen(L, t), count = 0;
	*ok = true;
	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n)
			*ok = false;
		count++;
	}
	if (count != n)
		*ok = false;
	return n;
}

/* A list: a string (one item) or a sequence of strings and numbers. */
static void field_list(struct decl *d, int idx, const char *field, struct kiln_plan_list *out)
{
	lua_State *L = d->L;
	struct script *s = get_script(L);
	idx = lua_absindex(L, idx);
	if (lua_type(L, idx) == LUA_TSTRING) {
		out->v = kiln__arena_alloc(s->plan->arena, sizeof(*out->v));
		out->v[0] = adup(L, idx, field);
		out->n = 1;
		return;
	}
	if (lua_type(L, idx) != LUA_TTABLE)
		decl_error(d, "field '%s' must be a list of strings, not %s", field,
			   type_phrase(L, idx));
	bool ok;
	lua_Integer n = sequence_len(L, idx, &ok);
	if (!ok)
		decl_error(d, "field '%s' must be a list of strings (a table with keys 1..n)",
			   field);
	out->v = kiln__arena_alloc(s->plan->arena, (size_t)(n ? n : 1) * sizeof(*out->v));
	out->n = (size_t)n;
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, idx, i);
		const char *v = scalar_str(L, -1, field);
		if (!v)
			decl_error(d, "field '%s' must be a list of strings, but item %d is %s",
				   field, (int)i, type_phrase(L, -1));
		out->v[i - 1] = v;
		lua_pop(L, 1);
	}
}

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct kiln_kv *)a)->key, ((const struct kiln_kv *)b)->key);
}

/* A map: string keys to strings, numbers or booleans; sorted by key. */
static void field_map(struct decl *d, int idx, const char *field, struct kiln_plan_map *out)
{
	lua_State *L = d->L;
	struct script *s = get_script(L);
	idx = lua_absindex(L, idx);
	if (lua_type(L, idx) != LUA_TTABLE)
		decl_error(d, "field '%s' must be a table of NAME = value, not %s", field,
			   type_phrase(L, idx));
	size_t n = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		n++;
	}
	out->v = kiln__arena_alloc(s->plan->arena, (n ? n : 1) * sizeof(*out->v));
	out->n = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		if (lua_type(L, -2) != LUA_TSTRING)
			decl_error(d, "field '%s' must be a table of NAME = value, but it has %s key",
				   field, type_phrase(L, -2));
		const char *key = adup(L, -2, field);
		const char *value = scalar_str(L, -1, field);
		if (!value && lua_type(L, -1) == LUA_TBOOLEAN)
			value = lua_toboolean(L, -1) ? "true" : "false";
		if (!value)
			decl_error(d, "field '%s': '%s' must be a string, number or boolean, not %s",
				   field, key, type_phrase(L, -1));
		out->v[out->n++] = (struct kiln_kv){ key, value };
		lua_pop(L, 1);
	}
	qsort(out->v, out->n, sizeof(*out->v), kv_cmp);
}

static bool field_bool(struct decl *d, int idx, const char *field)
{
	if (lua_type(d->L, idx) != LUA_TBOOLEAN)
		decl_error(d, "field '%s' must be true or false, not %s", field,
			   type_phrase(d->L, idx));
	return lua_toboolean(d->L, idx);
}

/* Refuse keys of table t that are not in known[] (the first in byte order,
 * so the message is the same every run). Integer keys 1..#t are allowed
 * when items names what they are ("targets"), else refused. */
static void check_fields(struct decl *d, int t, const char *const *known, size_t n_known,
			 const char *items)
{
	lua_State *L = d->L;
	t = lua_absindex(L, t);
	lua_Integer len = (lua_Integer)lua_rawlen(L, t);
	const char *unknown = NULL;
	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) == LUA_TSTRING) {
			const char *k = lua_tostring(L, -1);
			bool found = false;
			for (size_t i = 0; i < n_known && !found; i++)
				found = strcmp(k, known[i]) == 0;
			if (!found && (!unknown || strcmp(k, unknown) < 0))
				unknown = k; /* still a key of t: stays alive */
		} else if (!(items && lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1 &&
			     lua_tointeger(L, -1) <= len)) {
			if (items)
				decl_error(d, "unexpected %s key; list the %s first, then NAME = value "
					   "fields", type_phrase(L, -1), items);
			decl_error(d, "fields are written NAME = value; found %s key%s",
				   type_phrase(L, -1),
				   lua_isinteger(L, -1) ? " (a list item where a field belongs)" : "");
		}
	}
	if (!unknown)
		return;
	const char *best = NULL;
	size_t best_d = 3;
	for (size_t i = 0; i < n_known; i++) {
		size_t dd = kiln__plan_distance(unknown, known[i]);
		if (dd < best_d) {
			best_d = dd;
			best = known[i];
		}
	}
	if (best)
		decl_error(d, "unknown field '%s' (did you mean '%s'?)", unknown, best);
	decl_error(d, "unknown field '%s'", unknown);
}

/* ---- declarations ---------------------------------------------------------------------- */

/* Reserve name (targets and groups share one namespace; builders have
 * their own, under "builder:NAME"). */
static void claim_name(struct decl *d, const char *key, const char *file, int line)
{
	lua_State *L = d->L;
	lua_rawgetp(L, LUA_REGISTRYINDEX, &names_key);
	lua_getfield(L, -1, key);
	if (!lua_isnil(L, -1))
		decl_error(d, "the name is already taken by the %s", lua_tostring(L, -1));
	lua_pop(L, 1);
	lua_pushfstring(L, "%s declared at %s:%d", d->kind, file, line);
	lua_setfield(L, -2, key);
	lua_pop(L, 1);
}

static void check_name(lua_State *L, const char *kind, int idx)
{
	if (lua_type(L, idx) != LUA_TSTRING)
		luaL_error(L, "%s: the name must be a string, not %s", kind, type_phrase(L, idx));
	const char *name = lua_tostring(L, idx);
	if (!kiln__plan_name_ok(name) || strlen(name) != lua_rawlen(L, idx))
		luaL_error(L, "%s \"%s\": invalid name (use letters, digits, '_', '.' and '-'; "
			   "start with a letter, digit or '_')", kind, name);
}

static void declare_target(lua_State *L, int t, const char *file, int line)
{
	struct script *s = get_script(L);
	struct decl d = { L, "target", lua_tostring(L, lua_upvalueindex(1)) };
	if (lua_type(L, t) != LUA_TTABLE)
		decl_error(&d, "expects a table of fields, not %s (write target \"%s\" { … })",
			   type_phrase(L, t), d.name);
	const char *known[KILN_TF_COUNT];
	for (int f = 0; f < KILN_TF_COUNT; f++)
		known[f] = kiln__target_fields[f].name;
	check_fields(&d, t, known, KILN_TF_COUNT, NULL);
	claim_name(&d, d.name, file, line);

	struct kiln_plan_target *tg = kiln__arena_alloc(s->plan->arena, sizeof(*tg));
	tg->name = adup(L, lua_upvalueindex(1), "name");
	tg->file = file;
	tg->line = line;
	for (int f = 0; f < KILN_TF_COUNT; f++) {
		const struct kiln_target_field_desc *fd = &kiln__target_fields[f];
		if (lua_getfield(L, t, fd->name) == LUA_TNIL) {
			lua_pop(L, 1);
			continue;
		}
		char *slot = (char *)tg + fd->offset;
		switch (fd->type) {
		case KILN_FT_STRING:
			*(const char **)(void *)slot = field_string(&d, -1, fd->name);
			break;
		case KILN_FT_BOOL:
			*(bool *)(void *)slot = field_bool(&d, -1, fd->name);
			break;
		case KILN_FT_LIST:
			field_list(&d, -1, fd->name, (struct kiln_plan_list *)(void *)slot);
			break;
		case KILN_FT_MAP:
			field_map(&d, -1, fd->name, (struct kiln_plan_map *)(void *)slot);
			break;
		}
		tg->set |= 1u << f;
		lua_pop(L, 1);
	}
	KILN_PLAN_PUSH(s->plan->decls, s->plan->n_decls, s->plan->cap_decls, tg);
}

static void declare_group(lua_State *L, int t, const char *file, int line)
{
	struct script *s = get_script(L);
	struct decl d = { L, "group", lua_tostring(L, lua_upvalueindex(1)) };
	if (lua_type(L, t) != LUA_TTABLE)
		decl_error(&d, "expects a list of targets and groups, not %s (write group \"%s\" "
			   "{ \"a\", \"b\" })", type_phrase(L, t), d.name);
	static const char *const known[] = { "description" };
	check_fields(&d, t, known, 1, "targets");
	claim_name(&d, d.name, file, line);

	struct kiln_plan_group *g = kiln__arena_alloc(s->plan->arena, sizeof(*g));
	g->name = adup(L, lua_upvalueindex(1), "name");
	g->file = file;
	g->line = line;
	if (lua_getfield(L, t, "description") != LUA_TNIL)
		g->description = field_string(&d, -1, "description");
	lua_pop(L, 1);
	lua_Integer n = (lua_Integer)lua_rawlen(L, t);
	g->members.v = kiln__arena_alloc(s->plan->arena, (size_t)(n ? n : 1) * sizeof(char *));
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, t, i);
		if (lua_type(L, -1) != LUA_TSTRING)
			decl_error(&d, "item %d must be a target or group name, not %s", (int)i,
				   type_phrase(L, -1));
		g->members.v[g->members.n++] = adup(L, -1, "a group member");
		lua_pop(L, 1);
	}
	KILN_PLAN_PUSH(s->plan->groups, s->plan->n_groups, s->plan->cap_groups, g);
}

static void declare_builder(lua_State *L, int t, const char *file, int line)
{
	struct script *s = get_script(L);
	struct decl d = { L, "builder", lua_tostring(L, lua_upvalueindex(1)) };
	if (lua_type(L, t) != LUA_TTABLE)
		decl_error(&d, "expects a table of fields, not %s", type_phrase(L, t));
	static const char *const known[] = { "addr", "platforms", "tls", "max_jobs" };
	check_fields(&d, t, known, 4, NULL);
	lua_pushfstring(L, "builder:%s", d.name);
	claim_name(&d, lua_tostring(L, -1), file, line);
	lua_pop(L, 1);

	struct kiln_plan_builder *b = kiln__arena_alloc(s->plan->arena, sizeof(*b));
	b->name = adup(L, lua_upvalueindex(1), "name");
	b->file = file;
	b->line = line;
	if (lua_getfield(L, t, "addr") != LUA_TNIL)
		b->addr = field_string(&d, -1, "addr");
	lua_pop(L, 1);
	if (lua_getfield(L, t, "platforms") != LUA_TNIL)
		field_list(&d, -1, "platforms", &b->platforms);
	lua_pop(L, 1);
	if (lua_getfield(L, t, "max_jobs") != LUA_TNIL) {
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > 1024)
			decl_error(&d, "field 'max_jobs' must be an integer from 1 to 1024");
		b->max_jobs = (int)lua_tointeger(L, -1);
	}
	lua_pop(L, 1);
	if (lua_getfield(L, t, "tls") != LUA_TNIL) {
		if (lua_type(L, -1) != LUA_TTABLE)
			decl_error(&d, "field 'tls' must be a table, not %s", type_phrase(L, -1));
		static const char *const tls_known[] = { "ca_cert", "cert", "key", "server_name" };
		struct decl dt = { L, "builder", d.name };
		check_fields(&dt, -1, tls_known, 4, NULL);
		const char **slots[] = { &b->tls_ca_cert, &b->tls_cert, &b->tls_key,
					 &b->tls_server_name };
		for (int i = 0; i < 4; i++) {
			if (lua_getfield(L, -1, tls_known[i]) != LUA_TNIL)
				*slots[i] = field_string(&dt, -1, tls_known[i]);
			lua_pop(L, 1);
		}
	}
	lua_pop(L, 1);
	KILN_PLAN_PUSH(s->plan->builders, s->plan->n_builders, s->plan->cap_builders, b);
}

typedef void declare_fn(lua_State *L, int t, const char *file, int line);
/* A function pointer cannot travel as a light userdata; its box can. */
struct declare_fn_box {
	declare_fn *fn;
};

/* The function `target "x"` returns: takes the table. Upvalues: name,
 * file (an arena string, as light userdata), line, the pending token, the
 * kind's declare function. */
static int l_decl_body(lua_State *L)
{
	struct declare_fn_box *box = lua_touserdata(L, lua_upvalueindex(5));
	lua_rawgetp(L, LUA_REGISTRYINDEX, &pending_key);
	lua_pushvalue(L, lua_upvalueindex(4));
	lua_pushnil(L);
	lua_rawset(L, -3);
	lua_pop(L, 1);
	box->fn(L, 1, lua_touserdata(L, lua_upvalueindex(2)),
		(int)lua_tointeger(L, lua_upvalueindex(3)));
	return 0;
}

/* target "x" { … }, target("x", { … }); likewise group and builder. */
static int declare(lua_State *L, const char *kind, const struct declare_fn_box *box)
{
	check_name(L, kind, 1);
	const char *file;
	int line;
	caller_pos(L, &file, &line);
	bool now = lua_gettop(L) >= 2;
	lua_settop(L, 2);
	lua_pushvalue(L, 1);                     /* 3, upvalue 1: name */
	lua_pushlightuserdata(L, (void *)file);  /* 4, upvalue 2 */
	lua_pushinteger(L, line);                /* 5, upvalue 3 */
	lua_newtable(L);                         /* 6, upvalue 4: pending token */
	lua_pushlightuserdata(L, (void *)box);   /* 7, upvalue 5 */
	if (now) {
		/* Run the body right here, with the same upvalues. */
		lua_pushcclosure(L, l_decl_body, 5);
		lua_pushvalue(L, 2);
		lua_call(L, 1, 0);
		return 0;
	}
	/* Remember `target "x"` until its table comes. */
	lua_rawgetp(L, LUA_REGISTRYINDEX, &pending_key);
	lua_pushvalue(L, 6);
	lua_pushfstring(L, "%s:%d: %s \"%s\" is declared without a table (write %s \"%s\" "
			"{ … })", file, line, kind, lua_tostring(L, 1), kind,
			lua_tostring(L, 1));
	lua_rawset(L, -3);
	lua_pop(L, 1);
	lua_pushcclosure(L, l_decl_body, 5);
	return 1;
}

static const struct declare_fn_box target_box = { declare_target };
static const struct declare_fn_box group_box = { declare_group };
static const struct declare_fn_box builder_box = { declare_builder };

static int l_target(lua_State *L) { return declare(L, "target", &target_box); }
static int l_group(lua_State *L) { return declare(L, "group", &group_box); }
static int l_builder(lua_State *L) { return declare(L, "builder", &builder_box); }

/* ---- matrix ------------------------------------------------------------------------------ */

static int str_ptr_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Does the combination at idx have every axis pair of entry e? Keys of e
 * that are not axes are skipped when only_axes, else they must match too. */
static bool combo_matches(lua_State *L, int combo, int e, int axes_set, bool only_axes)
{
	combo = lua_absindex(L, combo);
	e = lua_absindex(L, e);
	bool ok = true;
	lua_pushnil(L);
	while (lua_next(L, e)) {
		lua_pushvalue(L, -2);
		lua_rawget(L, axes_set);
		bool is_axis = !lua_isnil(L, -1);
		lua_pop(L, 1);
		if (is_axis || !only_axes) {
			lua_pushvalue(L, -2);
			lua_rawget(L, combo);
			if (!lua_rawequal(L, -1, -2))
				ok = false;
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
	}
	return ok;
}

/* A list of tables with string keys (include / exclude). */
static lua_Integer entry_list(lua_State *L, int idx, const char *what)
{
	if (lua_type(L, idx) != LUA_TTABLE)
		luaL_error(L, "matrix: '%s' must be a list of tables, not %s", what,
			   type_phrase(L, idx));
	bool ok;
	lua_Integer n = sequence_len(L, idx, &ok);
	if (!ok)
		luaL_error(L, "matrix: '%s' must be a list of tables (keys 1..n)", what);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, idx, i);
		if (lua_type(L, -1) != LUA_TTABLE)
			luaL_error(L, "matrix: %s entry %d must be a table, not %s", what, (int)i,
				   type_phrase(L, -1));
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			lua_pop(L, 1);
			if (lua_type(L, -1) != LUA_TSTRING)
				luaL_error(L, "matrix: %s entry %d has %s key; keys are axis names",
					   what, (int)i, type_phrase(L, -1));
		}
		lua_pop(L, 1);
	}
	return n;
}

/*
 * matrix { axis = {…}, …, exclude = {…}, include = {…} }: every
 * combination of the axes (axes in name order, the last varying fastest),
 * without those matching an exclude entry, then the include entries as
 * GitHub Actions treats them: an entry whose axis values match existing
 * combinations adds its other keys to them; one that matches none is
 * added as a combination of its own.
 */
static int l_matrix(lua_State *L)
{
	if (lua_type(L, 1) != LUA_TTABLE)
		return luaL_error(L, "matrix: expects a table of axes, not %s", type_phrase(L, 1));
	lua_settop(L, 1);
	/* 2: sorted axis names; 3: set of axis names */
	size_t n_axes = 0;
	lua_pushnil(L);
	while (lua_next(L, 1)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			return luaL_error(L, "matrix: keys are axis names, found %s key",
					  type_phrase(L, -1));
		n_axes++;
	}
	const char **names = lua_newuserdatauv(L, (n_axes ? n_axes : 1) * sizeof(char *), 0);
	/* 2 */
	size_t k = 0;
	lua_pushnil(L);
	while (lua_next(L, 1)) {
		lua_pop(L, 1);
		const char *name = lua_tostring(L, -1);
		if (strcmp(name, "include") && strcmp(name, "exclude"))
			names[k++] = name; /* keys of the argument: stay alive */
	}
	n_axes = k;
	qsort(names, n_axes, sizeof(*names), str_ptr_cmp);
	lua_newtable(L); /* 3: axis set */
	lua_Integer *lens = lua_newuserdatauv(L, (n_axes ? n_axes : 1) * sizeof(lua_Integer), 0);
	/* 4 */
	double total = n_axes ? 1 : 0;
	for (size_t a = 0; a < n_axes; a++) {
		lua_pushboolean(L, 1);
		lua_setfield(L, 3, names[a]);
		lua_getfield(L, 1, names[a]);
		bool ok = lua_type(L, -1) == LUA_TTABLE;
		lens[a] = ok ? sequence_len(L, lua_gettop(L), &ok) : 0;
		if (!ok || lens[a] == 0)
			return luaL_error(L, "matrix: axis '%s' must be a non-empty list, not %s",
					  names[a], lua_type(L, -1) == LUA_TTABLE ? "an empty or "
					  "keyed table" : type_phrase(L, -1));
		lua_pop(L, 1);
		total *= (double)lens[a];
	}
	if (total > MATRIX_MAX)
		return luaL_error(L, "matrix: %.0f combinations; at most %d", total, MATRIX_MAX);
	lua_Integer n_exclude = 0, n_include = 0;
	if (lua_getfield(L, 1, "exclude") != LUA_TNIL) /* 5 */
		n_exclude = entry_list(L, 5, "exclude");
	if (lua_getfield(L, 1, "include") != LUA_TNIL) /* 6 */
		n_include = entry_list(L, 6, "include");
	for (lua_Integer i = 1; i <= n_exclude; i++) {
		lua_rawgeti(L, 5, i);
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			lua_pop(L, 1);
			lua_pushvalue(L, -1);
			if (lua_rawget(L, 3) == LUA_TNIL)
				return luaL_error(L, "matrix: exclude entry %d names '%s', which is not "
						  "an axis", (int)i, lua_tostring(L, -2));
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
	}

	lua_newtable(L); /* 7: the result */
	lua_Integer n_out = 0;
	lua_Integer *digit = lua_newuserdatauv(L, (n_axes ? n_axes : 1) * sizeof(lua_Integer), 0);
	/* 8 */
	for (long c = 0; c < (long)total; c++) {
		long rest = c;
		for (size_t a = n_axes; a-- > 0;) {
			digit[a] = rest % lens[a];
			rest /= lens[a];
		}
		lua_createtable(L, 0, (int)n_axes);
		for (size_t a = 0; a < n_axes; a++) {
			lua_getfield(L, 1, names[a]);
			lua_rawgeti(L, -1, digit[a] + 1);
			lua_setfield(L, -3, names[a]);
			lua_pop(L, 1);
		}
		bool excluded = false;
		for (lua_Integer i = 1; i <= n_exclude && !excluded; i++) {
			lua_rawgeti(L, 5, i);
			excluded = combo_matches(L, -2, -1, 3, false);
			lua_pop(L, 1);
		}
		if (excluded)
			lua_pop(L, 1);
		else
			lua_rawseti(L, 7, ++n_out);
	}
	lua_Integer n_product = n_out;
	for (lua_Integer i = 1; i <= n_include; i++) {
		lua_rawgeti(L, 6, i); /* the entry */
		bool matched = false;
		for (lua_Integer c = 1; c <= n_product; c++) {
			lua_rawgeti(L, 7, c);
			if (combo_matches(L, -1, -2, 3, true)) {
				matched = true;
				lua_pushnil(L);
				while (lua_next(L, -3)) {
					lua_pushvalue(L, -2);
					if (lua_rawget(L, 3) == LUA_TNIL) { /* not an axis */
						lua_pop(L, 1);
						lua_pushvalue(L, -2);
						lua_insert(L, -2);
						lua_rawset(L, -4);
					} else {
						lua_pop(L, 2);
					}
				}
			}
			lua_pop(L, 1);
		}
		if (!matched) {
			lua_newtable(L);
			lua_pushnil(L);
			while (lua_next(L, -3)) {
				lua_pushvalue(L, -2);
				lua_insert(L, -2);
				lua_rawset(L, -4);
			}
			lua_rawseti(L, 7, ++n_out);
		}
		lua_pop(L, 1);
	}
	lua_pushvalue(L, 7);
	return 1;
}

/* ---- kiln.*, require, print, pairs, load ---------------------------------------------- */

static int l_env(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	const char *v = getenv(name);
	if (v)
		lua_pushstring(L, v);
	else
		lua_settop(L, 2); /* the default, or nil */
	return 1;
}

/* Resolve path (relative to the project directory) into out, refusing
 * anything outside it. Returns 0, or ENOENT when it does not exist;
 * raises an error when it is outside. */
static int sandbox_path(lua_State *L, const char *fn, const char *path, char *out)
{
	struct script *s = get_script(L);
	char *full = path[0] == '/' ? kiln__xstrdup(path)
				    : kiln__xasprintf("%s/%s", s->dir_real, path);
	char *r = realpath(full, out);
	int e = errno;
	free(full);
	if (!r) {
		if (e == ENOENT || e == ENOTDIR)
			return ENOENT;
		return luaL_error(L, "%s: cannot resolve '%s': %s", fn, path, strerror(e));
	}
	size_t dl = strlen(s->dir_real);
	bool inside = strcmp(s->dir_real, "/") == 0 ||
		      (strncmp(out, s->dir_real, dl) == 0 && (out[dl] == '/' || out[dl] == '\0'));
	if (!inside)
		return luaL_error(L, "%s: '%s' is outside the project directory %s", fn, path,
				  s->dir_real);
	return 0;
}

static int l_exists(lua_State *L)
{
	char real[PATH_MAX];
	int rc = sandbox_path(L, "kiln.exists", luaL_checkstring(L, 1), real);
	lua_pushboolean(L, rc == 0);
	return 1;
}

/* Read a whole file into a Lua string; the FILE is closed before any Lua
 * error can be raised. */
static int push_file(lua_State *L, const char *fn, const char *shown, const char *real)
{
	FILE *f = fopen(real, "rb");
	if (!f)
		return luaL_error(L, "%s: cannot read '%s': %s", fn, shown, strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > READ_FILE_MAX) {
		bool dir = S_ISDIR(st.st_mode);
		fclose(f);
		return luaL_error(L, "%s: cannot read '%s': %s", fn, shown,
				  dir ? "it is a directory" : "not a regular file under 64 MiB");
	}
	luaL_Buffer b;
	char *p = luaL_buffinitsize(L, &b, (size_t)st.st_size + 1);
	size_t got = fread(p, 1, (size_t)st.st_size + 1, f);
	bool bad = ferror(f);
	fclose(f);
	if (bad)
		return luaL_error(L, "%s: cannot read '%s'", fn, shown);
	luaL_pushresultsize(&b, got);
	return 1;
}

static int l_read_file(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	char real[PATH_MAX];
	if (sandbox_path(L, "kiln.read_file", path, real) == ENOENT)
		return luaL_error(L, "kiln.read_file: cannot read '%s': %s", path, strerror(ENOENT));
	return push_file(L, "kiln.read_file", path, real);
}

/* require "lib.name": <project>/lib/name.lua or <project>/lib/name/init.lua,
 * run once, in the same sandbox. */
static int l_require(lua_State *L)
{
	struct script *s = get_script(L);
	const char *name = luaL_checkstring(L, 1);
	lua_settop(L, 1);
	lua_rawgetp(L, LUA_REGISTRYINDEX, &loaded_key); /* 2 */
	if (lua_getfield(L, 2, name) != LUA_TNIL)
		return 1;
	lua_pop(L, 1);
	bool ok = *name && *name != '.';
	for (const char *p = name; *p && ok; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		     (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' ||
		     (*p == '.' && p[1] != '.' && p[1] != '\0');
	if (!ok)
		return luaL_error(L, "require: '%s' is not a module name (like \"lib.common\")", name);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	for (const char *p = name; *p; p++)
		luaL_addchar(&b, *p == '.' ? '/' : *p);
	luaL_pushresult(&b); /* 3: relative path without extension */
	const char *rel = lua_tostring(L, 3);
	const char *tries[2] = { "%s.lua", "%s/init.lua" };
	char real[PATH_MAX];
	for (int i = 0; i < 2; i++) {
		lua_pushfstring(L, tries[i], rel);
		const char *cand = lua_tostring(L, -1);
		if (sandbox_path(L, "require", cand, real) == 0) {
			/* Named as the script is: "lib/x.lua" or "sub/lib/x.lua". */
			const char *dir = s->plan->dir;
			if (strcmp(dir, ".") == 0)
				lua_pushfstring(L, "@%s", cand);
			else
				lua_pushfstring(L, "@%s/%s", dir, cand);
			push_file(L, "require", cand, real);
			size_t len;
			const char *code = lua_tolstring(L, -1, &len);
			if (luaL_loadbufferx(L, code, len, lua_tostring(L, -2), "t") != LUA_OK)
				return lua_error(L);
			lua_pushvalue(L, 1);
			lua_call(L, 1, 1);
			if (lua_isnil(L, -1)) {
				lua_pop(L, 1);
				lua_pushboolean(L, 1);
			}
			lua_pushvalue(L, -1);
			lua_setfield(L, 2, name);
			return 1;
		}
		lua_pop(L, 1);
	}
	return luaL_error(L, "require: module '%s' not found (looked for %s.lua and %s/init.lua "
			  "in the project directory)", name, rel, rel);
}

/* print goes to stderr: stdout belongs to kiln (kiln print's JSON). */
static int l_print(lua_State *L)
{
	int n = lua_gettop(L);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		size_t len;
		const char *s = luaL_tolstring(L, i, &len);
		if (i > 1)
			luaL_addchar(&b, '\t');
		luaL_addvalue(&b);
		(void)s;
	}
	luaL_addchar(&b, '\n');
	luaL_pushresult(&b);
	size_t len;
	const char *out = lua_tolstring(L, -1, &len);
	fwrite(out, 1, len, stderr);
	return 0;
}

/* Keys for sorted pairs: numbers first (by value), then strings (by
 * bytes), then false, true, then anything else in table order. */
struct pkey {
	int rank; /* 0 number, 1 string, 2 boolean, 3 other */
	lua_Number num;
	lua_Integer ival;
	bool is_int;
	const char *str;
	size_t len;
	int pos;  /* index in the key list, for ties among "other" */
};

static int pkey_cmp(const void *pa, const void *pb)
{
	const struct pkey *a = pa, *b = pb;
	if (a->rank != b->rank)
		return a->rank < b->rank ? -1 : 1;
	switch (a->rank) {
	case 0:
		if (a->is_int && b->is_int)
			return a->ival < b->ival ? -1 : a->ival > b->ival;
		return a->num < b->num ? -1 : a->num > b->num;
	case 1: {
		size_t n = a->len < b->len ? a->len : b->len;
		int c = memcmp(a->str, b->str, n);
		if (c)
			return c;
		return a->len < b->len ? -1 : a->len > b->len;
	}
	case 2:
		return (int)a->ival - (int)b->ival;
	default:
		return a->pos - b->pos;
	}
}

/* The iterator of sorted pairs. Upvalues: the table, the sorted keys, the
 * position. Keys removed during the walk are skipped. */
static int l_sorted_next(lua_State *L)
{
	lua_Integer i = lua_tointeger(L, lua_upvalueindex(3));
	for (;;) {
		i++;
		if (lua_rawgeti(L, lua_upvalueindex(2), i) == LUA_TNIL)
			return 0;
		lua_pushvalue(L, -1);
		lua_rawget(L, lua_upvalueindex(1));
		if (!lua_isnil(L, -1))
			break;
		lua_pop(L, 2);
	}
	lua_pushinteger(L, i);
	lua_replace(L, lua_upvalueindex(3));
	return 2;
}

static int l_pairs(lua_State *L)
{
	luaL_checkany(L, 1);
	if (luaL_getmetafield(L, 1, "__pairs") != LUA_TNIL) {
		lua_pushvalue(L, 1);
		lua_call(L, 1, 3);
		return 3;
	}
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	lua_newtable(L); /* 2: keys in table order, anchored */
	int n = 0;
	lua_pushnil(L);
	while (lua_next(L, 1)) {
		lua_pop(L, 1);
		lua_pushvalue(L, -1);
		lua_rawseti(L, 2, ++n);
	}
	struct pkey *keys = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof(*keys), 0); /* 3 */
	for (int i = 0; i < n; i++) {
		lua_rawgeti(L, 2, i + 1);
		struct pkey *k = &keys[i];
		memset(k, 0, sizeof(*k));
		k->pos = i + 1;
		switch (lua_type(L, -1)) {
		case LUA_TNUMBER:
			k->rank = 0;
			k->is_int = lua_isinteger(L, -1);
			k->ival = lua_tointeger(L, -1);
			k->num = lua_tonumber(L, -1);
			break;
		case LUA_TSTRING:
			k->rank = 1;
			k->str = lua_tolstring(L, -1, &k->len); /* anchored in table 2 */
			break;
		case LUA_TBOOLEAN:
			k->rank = 2;
			k->ival = lua_toboolean(L, -1);
			break;
		default:
			k->rank = 3;
		}
		lua_pop(L, 1);
	}
	qsort(keys, (size_t)n, sizeof(*keys), pkey_cmp);
	lua_createtable(L, n, 0); /* 4: sorted keys */
	for (int i = 0; i < n; i++) {
		lua_rawgeti(L, 2, keys[i].pos);
		lua_rawseti(L, 4, i + 1);
	}
	lua_pushvalue(L, 1);
	lua_pushvalue(L, 4);
	lua_pushinteger(L, 0);
	lua_pushcclosure(L, l_sorted_next, 3);
	lua_pushvalue(L, 1);
	lua_pushnil(L);
	return 3;
}

/* load, text chunks only. Upvalue: Lua's own load. */
static int l_load(lua_State *L)
{
	int n = lua_gettop(L);
	lua_settop(L, 4);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_pushvalue(L, 1);
	lua_pushvalue(L, 2);
	lua_pushliteral(L, "t");
	if (n >= 4)
		lua_pushvalue(L, 4); /* an explicit nil env stays nil */
	lua_call(L, n >= 4 ? 4 : 3, LUA_MULTRET);
	return lua_gettop(L) - 4;
}

static void open_sandbox(lua_State *L, const struct kiln_plan_opts *opts)
{
	luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
	luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
	luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
	luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
	luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
	luaL_requiref(L, LUA_COLIBNAME, luaopen_coroutine, 1);
	luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
	lua_settop(L, 0);

	lua_pushglobaltable(L); /* 1 */
	/* os: reading the clock and the environment only */
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE); /* 2 */
	lua_getfield(L, 2, LUA_OSLIBNAME); /* 3: the whole os library */
	lua_newtable(L);                   /* 4: what scripts get */
	static const char *const os_keep[] = { "getenv", "time", "clock", "date", "difftime" };
	for (size_t i = 0; i < sizeof(os_keep) / sizeof(os_keep[0]); i++) {
		lua_getfield(L, 3, os_keep[i]);
		lua_setfield(L, 4, os_keep[i]);
	}
	lua_setfield(L, 1, "os");
	lua_pop(L, 1);
	lua_pushnil(L);
	lua_setfield(L, 2, LUA_OSLIBNAME);
	lua_pop(L, 1);

	static const char *const drop[] = { "dofile", "loadfile" };
	for (size_t i = 0; i < 2; i++) {
		lua_pushnil(L);
		lua_setfield(L, 1, drop[i]);
	}
	lua_getfield(L, 1, "string");
	lua_pushnil(L);
	lua_setfield(L, -2, "dump");
	lua_pop(L, 1);
	lua_getfield(L, 1, "load");
	lua_pushcclosure(L, l_load, 1);
	lua_setfield(L, 1, "load");
	/* the same pseudo-random numbers every run */
	lua_getfield(L, 1, "math");
	lua_getfield(L, -1, "randomseed");
	lua_pushinteger(L, 0);
	lua_call(L, 1, 0);
	lua_pop(L, 1);

	static const luaL_Reg globals[] = {
		{ "target", l_target }, { "group", l_group }, { "builder", l_builder },
		{ "matrix", l_matrix }, { "require", l_require }, { "print", l_print },
		{ "pairs", l_pairs }, { NULL, NULL },
	};
	lua_pushvalue(L, 1);
	luaL_setfuncs(L, globals, 0);
	lua_pop(L, 1);

	static const luaL_Reg kiln_fns[] = {
		{ "env", l_env }, { "read_file", l_read_file }, { "exists", l_exists },
		{ NULL, NULL },
	};
	luaL_newlib(L, kiln_fns);
	lua_pushliteral(L, KILN_VERSION);
	lua_setfield(L, -2, "version");
	lua_newtable(L);
	for (size_t i = 0; i < opts->n_vars; i++) {
		lua_pushstring(L, opts->vars[i].value);
		lua_setfield(L, -2, opts->vars[i].key);
	}
	lua_setfield(L, -2, "vars");
	lua_setfield(L, 1, "kiln");

	lua_newtable(L);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &names_key);
	lua_newtable(L);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &pending_key);
	lua_newtable(L);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &loaded_key);
	lua_settop(L, 0);
}

static int l_setup(lua_State *L)
{
	open_sandbox(L, lua_touserdata(L, 1));
	return 0;
}

/* After the script: a `target "x"` that never got its table. Reports the
 * first by line. */
static int l_finish(lua_State *L)
{
	lua_rawgetp(L, LUA_REGISTRYINDEX, &pending_key);
	const char *msg = NULL;
	lua_Integer best = 0;
	lua_pushnil(L);
	while (lua_next(L, 1)) {
		/* the message starts "FILE:LINE:" */
		const char *m = lua_tostring(L, -1);
		const char *colon = strchr(m, ':');
		lua_Integer line = colon ? strtol(colon + 1, NULL, 10) : 0;
		if (!msg || line < best) {
			msg = m;
			best = line;
		}
		lua_pop(L, 1);
	}
	if (msg) {
		lua_pushstring(L, msg);
		return lua_error(L);
	}
	return 0;
}

/* Message handler: add the script position if the message has none, and
 * the traceback. */
static int l_msgh(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	if (!msg) {
		if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
			msg = lua_tostring(L, -1);
		else
			msg = lua_pushfstring(L, "(error object is %s)", type_phrase(L, 1));
	}
	const char *p = strchr(msg, ':');
	bool has_pos = p && p[1] >= '0' && p[1] <= '9';
	if (has_pos) {
		p++;
		while (*p >= '0' && *p <= '9')
			p++;
		has_pos = *p == ':';
	}
	if (!has_pos) {
		lua_Debug ar;
		for (int level = 1; lua_getstack(L, level, &ar); level++) {
			lua_getinfo(L, "Sl", &ar);
			if (ar.currentline > 0) {
				msg = lua_pushfstring(L, "%s:%d: %s", ar.short_src, ar.currentline, msg);
				break;
			}
		}
	}
	luaL_traceback(L, L, msg, 1);
	return 1;
}

/* "FILE:LINE: text[\nstack traceback:…]" into err and the plan. */
static int lua_failure(struct kiln_plan *plan, const char *msg, bool keep_traceback,
		       struct kiln_err *err)
{
	const char *tb = strstr(msg, "\nstack traceback:");
	size_t mlen = tb ? (size_t)(tb - msg) : strlen(msg);
	char *m = kiln__xasprintf("%.*s", (int)mlen, msg);
	if (tb && keep_traceback) {
		free(plan->traceback);
		plan->traceback = kiln__xstrdup(tb + 1);
	}
	/* the position: the first ":DIGITS: " */
	int rc = -1;
	for (char *c = strchr(m, ':'); c; c = strchr(c + 1, ':')) {
		char *end;
		long line = strtol(c + 1, &end, 10);
		if (end > c + 1 && c[1] >= '0' && c[1] <= '9' && *end == ':' && line > 0) {
			*c = '\0';
			const char *text = end + 1;
			while (*text == ' ')
				text++;
			rc = kiln__err_at(err, KILN_E_SYNTAX, m, (int)line, 0, "%s", text);
			break;
		}
	}
	if (rc == -1)
		rc = kiln__err_at(err, KILN_E_SYNTAX, plan->file, 0, 0, "%s", m);
	free(m);
	return rc;
}

int kiln__script_eval(struct kiln_plan *plan, const struct kiln_plan_opts *opts,
		      struct kiln_err *err)
{
	struct script *s = kiln__xcalloc(1, sizeof(*s));
	s->plan = plan;
	s->opts = opts;
	if (!realpath(plan->dir, s->dir_real)) {
		int e = errno;
		free(s);
		return kiln__err_at(err, KILN_E_IO, plan->file, 0, 0,
				    "cannot resolve the project directory '%s': %s", plan->dir,
				    strerror(e));
	}
	lua_State *L = lua_newstate(script_alloc, s);
	if (!L) {
		free(s);
		return kiln__err(err, KILN_E_NOMEM, "cannot create a Lua state");
	}
	int rc = 0;
	lua_pushcfunction(L, l_setup);
	lua_pushlightuserdata(L, (void *)opts);
	if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
		rc = kiln__err(err, KILN_E_NOMEM, "cannot set up Lua: %s", lua_tostring(L, -1));
		goto out;
	}
	lua_pushcfunction(L, l_msgh);
	int status = luaL_loadfilex(L, plan->file, "t");
	if (status == LUA_ERRFILE) {
		struct stat st;
		bool missing = stat(plan->file, &st) != 0;
		rc = kiln__err_at(err, missing ? KILN_E_NOTFOUND : KILN_E_IO, plan->file, 0, 0,
				  "%s", missing ? "no such file (kiln looks for kiln.lua in the "
				  "current directory; -f names another)" : "cannot read the script");
		goto out;
	}
	if (status != LUA_OK) {
		rc = lua_failure(plan, lua_tostring(L, -1), false, err);
		goto out;
	}
	s->deadline_ns = kiln__mono_ns() + (int64_t)kiln__script_seconds_max * 1000000000;
	lua_sethook(L, time_hook, LUA_MASKCOUNT, 1000000);
	status = lua_pcall(L, 0, 0, 1);
	if (status == LUA_OK) {
		lua_pushcfunction(L, l_finish);
		status = lua_pcall(L, 0, 0, 0);
		if (status != LUA_OK) {
			rc = lua_failure(plan, lua_tostring(L, -1), false, err);
			goto out;
		}
	}
	if (status == LUA_ERRMEM)
		rc = kiln__err_at(err, KILN_E_NOMEM, plan->file, 0, 0,
				  "not enough memory (a script may use %zu MiB)",
				  kiln__script_mem_max >> 20);
	else if (status != LUA_OK)
		rc = lua_failure(plan, lua_tostring(L, -1) ? lua_tostring(L, -1) : "error",
				 true, err);
out:
	lua_close(L);
	free(s);
	return rc;
}
