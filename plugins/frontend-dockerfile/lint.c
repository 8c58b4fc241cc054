/*
 * lint.c: BuildKit's Dockerfile build checks over a parsed df_file.
 *
 * The walk follows where BuildKit raises each rule (moby/buildkit
 * frontend/dockerfile/instructions/parse.go, dockerfile2llb/convert.go and
 * validations.go, with the lint subrequest's "all stages" mode):
 *   1. parser warnings (NoEmptyContinuation);
 *   2. per instruction, at parse time: MaintainerDeprecated,
 *      StageNameCasing, FromAsCasing;
 *   3. over all stages: ReservedStageName, DuplicateStageName, then
 *      ConsistentInstructionCasing, then InvalidDefaultArgInFrom (meta ARGs
 *      with their defaults only);
 *   4. per stage, its FROM: UndefinedArgInFrom, RedundantTargetPlatform,
 *      FromPlatformFlagConstDisallowed;
 *   5. per stage, each instruction as the dispatcher meets it, with the
 *      stage's environment as BuildKit builds it (ENV, ARG values, what a
 *      parent stage left, PATH): UndefinedVar, LegacyKeyValueFormat,
 *      SecretsUsedInArgOrEnv, WorkdirRelativePath, JSONArgsRecommended,
 *      MultipleInstructionsDisallowed, ExposeProtoCasing,
 *      ExposeInvalidFormat.
 * A base image's config is unknown here: its ENV, WORKDIR and SHELL count
 * as empty (see docs/lint.md for what that changes).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lint.h"

/* ---- the rule set -------------------------------------------------------- */

#if defined(__GNUC__) || defined(__clang__)
#define KILN_DF_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define KILN_DF_PRINTF(fmt, args)
#endif

#define URL(kebab) "https://docs.docker.com/go/dockerfile/rule/" kebab "/"

enum rule_id {
	R_CONSISTENT_INSTRUCTION_CASING,
	R_COPY_IGNORED_FILE,
	R_DUPLICATE_STAGE_NAME,
	R_EXPOSE_INVALID_FORMAT,
	R_EXPOSE_PROTO_CASING,
	R_FROM_AS_CASING,
	R_FROM_PLATFORM_FLAG_CONST_DISALLOWED,
	R_INVALID_BASE_IMAGE_PLATFORM,
	R_INVALID_DEFAULT_ARG_IN_FROM,
	R_INVALID_DEFINITION_DESCRIPTION,
	R_JSON_ARGS_RECOMMENDED,
	R_LEGACY_KEY_VALUE_FORMAT,
	R_MAINTAINER_DEPRECATED,
	R_MULTIPLE_INSTRUCTIONS_DISALLOWED,
	R_NO_EMPTY_CONTINUATION,
	R_REDUNDANT_TARGET_PLATFORM,
	R_RESERVED_STAGE_NAME,
	R_SECRETS_USED_IN_ARG_OR_ENV,
	R_STAGE_NAME_CASING,
	R_UNDEFINED_ARG_IN_FROM,
	R_UNDEFINED_VAR,
	R_WORKDIR_RELATIVE_PATH,
	R_COUNT
};

static const struct df_lint_rule rules[R_COUNT] = {
	[R_CONSISTENT_INSTRUCTION_CASING] = { "ConsistentInstructionCasing",
		"All commands within the Dockerfile should use the same casing (either upper or lower)",
		URL("consistent-instruction-casing"), false, true },
	[R_COPY_IGNORED_FILE] = { "CopyIgnoredFile",
		"Attempting to Copy file that is excluded by .dockerignore",
		URL("copy-ignored-file"), false, false },
	[R_DUPLICATE_STAGE_NAME] = { "DuplicateStageName",
		"Stage names should be unique",
		URL("duplicate-stage-name"), false, true },
	[R_EXPOSE_INVALID_FORMAT] = { "ExposeInvalidFormat",
		"IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release",
		URL("expose-invalid-format"), false, true },
	[R_EXPOSE_PROTO_CASING] = { "ExposeProtoCasing",
		"Protocol in EXPOSE instruction should be lowercase",
		URL("expose-proto-casing"), false, true },
	[R_FROM_AS_CASING] = { "FromAsCasing",
		"The 'as' keyword should match the case of the 'from' keyword",
		URL("from-as-casing"), false, true },
	[R_FROM_PLATFORM_FLAG_CONST_DISALLOWED] = { "FromPlatformFlagConstDisallowed",
		"FROM --platform flag should not use a constant value",
		URL("from-platform-flag-const-disallowed"), false, true },
	[R_INVALID_BASE_IMAGE_PLATFORM] = { "InvalidBaseImagePlatform",
		"Base image platform does not match expected target platform",
		NULL, false, false },
	[R_INVALID_DEFAULT_ARG_IN_FROM] = { "InvalidDefaultArgInFrom",
		"Default value for global ARG results in an empty or invalid base image name",
		URL("invalid-default-arg-in-from"), false, true },
	[R_INVALID_DEFINITION_DESCRIPTION] = { "InvalidDefinitionDescription",
		"Comment for build stage or argument should follow the format: `# <arg/stage name> <description>`. If this is not intended to be a description comment, add an empty line or comment between the instruction and the comment.",
		URL("invalid-definition-description"), true, false },
	[R_JSON_ARGS_RECOMMENDED] = { "JSONArgsRecommended",
		"JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals",
		URL("json-args-recommended"), false, true },
	[R_LEGACY_KEY_VALUE_FORMAT] = { "LegacyKeyValueFormat",
		"Legacy key/value format with whitespace separator should not be used",
		URL("legacy-key-value-format"), false, true },
	[R_MAINTAINER_DEPRECATED] = { "MaintainerDeprecated",
		"The MAINTAINER instruction is deprecated, use a label instead to define an image author",
		URL("maintainer-deprecated"), false, true },
	[R_MULTIPLE_INSTRUCTIONS_DISALLOWED] = { "MultipleInstructionsDisallowed",
		"Multiple instructions of the same type should not be used in the same stage",
		URL("multiple-instructions-disallowed"), false, true },
	[R_NO_EMPTY_CONTINUATION] = { "NoEmptyContinuation",
		"Empty continuation lines will become errors in a future release",
		URL("no-empty-continuation"), false, true },
	[R_REDUNDANT_TARGET_PLATFORM] = { "RedundantTargetPlatform",
		"Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior",
		URL("redundant-target-platform"), false, true },
	[R_RESERVED_STAGE_NAME] = { "ReservedStageName",
		"Reserved words should not be used as stage names",
		URL("reserved-stage-name"), false, true },
	[R_SECRETS_USED_IN_ARG_OR_ENV] = { "SecretsUsedInArgOrEnv",
		"Sensitive data should not be used in the ARG or ENV commands",
		URL("secrets-used-in-arg-or-env"), false, true },
	[R_STAGE_NAME_CASING] = { "StageNameCasing",
		"Stage names should be lowercase",
		URL("stage-name-casing"), false, true },
	[R_UNDEFINED_ARG_IN_FROM] = { "UndefinedArgInFrom",
		"FROM command must use declared ARGs",
		URL("undefined-arg-in-from"), false, true },
	[R_UNDEFINED_VAR] = { "UndefinedVar",
		"Variables should be defined before their use",
		URL("undefined-var"), false, true },
	[R_WORKDIR_RELATIVE_PATH] = { "WorkdirRelativePath",
		"Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes",
		URL("workdir-relative-path"), false, true },
};

const struct df_lint_rule *df_lint_rules(size_t *n)
{
	*n = R_COUNT;
	return rules;
}

/* ---- small helpers ------------------------------------------------------- */

/* Environment values are capped so that ENV A=$A$A chains stay bounded;
 * only names and short values matter to the rules. */
#define VALUE_CAP ((size_t)64 << 10)

/* Work allowed for "did you mean" suggestions over a whole file (cells of
 * the edit-distance table): a file with tens of thousands of variables
 * gets no more suggestions once it is spent, instead of quadratic time. */
#define SUGGEST_BUDGET ((size_t)20 << 20)

/* BuildKit's default PATH for Linux (system.DefaultPathEnv). */
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* The platform the checks assume for BUILDPLATFORM and TARGETPLATFORM: the
 * machine kiln runs on, as a local build would default to. */
#if defined(__x86_64__)
#define HOST_ARCH "amd64"
#elif defined(__aarch64__)
#define HOST_ARCH "arm64"
#elif defined(__arm__)
#define HOST_ARCH "arm"
#elif defined(__i386__)
#define HOST_ARCH "386"
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
#define HOST_ARCH "ppc64le"
#elif defined(__s390x__)
#define HOST_ARCH "s390x"
#elif defined(__riscv) && __riscv_xlen == 64
#define HOST_ARCH "riscv64"
#else
#define HOST_ARCH "amd64"
#endif

struct sb {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_add(struct sb *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_adds(struct sb *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void sb_addc(struct sb *b, char c)
{
	sb_add(b, &c, 1);
}

KILN_DF_PRINTF(2, 3)
static void sb_addf(struct sb *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (w < 0) {
		b->oom = true;
		return;
	}
	if ((size_t)w < sizeof(small)) {
		sb_add(b, small, (size_t)w);
		return;
	}
	char *big = malloc((size_t)w + 1);
	if (!big) {
		b->oom = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)w + 1, fmt, ap);
	va_end(ap);
	sb_add(b, big, (size_t)w);
	free(big);
}

/* Hands the string over ("" when empty); NULL after an allocation failure. */
static char *sb_detach(struct sb *b)
{
	if (b->oom) {
		free(b->p);
		*b = (struct sb){ 0 };
		return NULL;
	}
	char *p = b->p ? b->p : strdup("");
	*b = (struct sb){ 0 };
	return p;
}

static void sb_release(struct sb *b)
{
	free(b->p);
	*b = (struct sb){ 0 };
}

static bool is_lower_str(const char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			return false;
	return true;
}

static bool is_upper_str(const char *s)
{
	for (; *s; s++)
		if (*s >= 'a' && *s <= 'z')
			return false;
	return true;
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool ieq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (lower(*a) != lower(*b))
			return false;
	return *a == *b;
}

static bool ieqn(const char *a, size_t n, const char *b)
{
	size_t i = 0;
	for (; i < n && b[i]; i++)
		if (lower(a[i]) != lower(b[i]))
			return false;
	return i == n && b[i] == '\0';
}

/* One UTF-8 sequence as Go decodes it; invalid bytes are U+FFFD, width 1. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *r)
{
	unsigned char c = s[0];
	size_t w;
	uint32_t v, min;
	if (c < 0x80) {
		*r = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		w = 2, v = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		w = 3, v = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		w = 4, v = c & 0x07, min = 0x10000;
	} else {
		*r = 0xfffd;
		return 1;
	}
	if (n < w) {
		*r = 0xfffd;
		return 1;
	}
	for (size_t i = 1; i < w; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			*r = 0xfffd;
			return 1;
		}
		v = (v << 6) | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
		*r = 0xfffd;
		return 1;
	}
	*r = v;
	return w;
}

/* Appends s quoted as Go's %q does (strconv.Quote). Non-ASCII runes are
 * taken as printable except the C1 controls and U+00AD, which Go escapes. */
static void goquote(struct sb *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	sb_addc(b, '"');
	while (n > 0) {
		uint32_t r;
		size_t w = utf8_decode(p, n, &r);
		if (r == 0xfffd && w == 1 && p[0] >= 0x80) {
			char e[4] = { '\\', 'x', hex[p[0] >> 4], hex[p[0] & 15] };
			sb_add(b, e, 4);
		} else if (r == '"' || r == '\\') {
			sb_addc(b, '\\');
			sb_addc(b, (char)r);
		} else if (r >= 0x20 && r < 0x7f) {
			sb_addc(b, (char)r);
		} else if (r < 0x80) {
			const char *esc = NULL;
			switch (r) {
			case '\a': esc = "\\a"; break;
			case '\b': esc = "\\b"; break;
			case '\f': esc = "\\f"; break;
			case '\n': esc = "\\n"; break;
			case '\r': esc = "\\r"; break;
			case '\t': esc = "\\t"; break;
			case '\v': esc = "\\v"; break;
			default: break;
			}
			if (esc) {
				sb_adds(b, esc);
			} else {
				char e[4] = { '\\', 'x', hex[r >> 4], hex[r & 15] };
				sb_add(b, e, 4);
			}
		} else if ((r >= 0x80 && r < 0xa0) || r == 0xad) {
			sb_addf(b, "\\u%04x", (unsigned)r);
		} else {
			sb_add(b, (const char *)p, w);
		}
		p += w;
		n -= w;
	}
	sb_addc(b, '"');
}

/* Levenshtein distance over runes (as github.com/agext/levenshtein with
 * unit costs), computed only up to limit: returns limit when the distance
 * is limit or more. *work is charged with the cells computed. */
static size_t distance_upto(const char *a, const char *b, size_t limit, size_t *work)
{
	enum { SMALL = 64 };
	uint32_t sa[SMALL], sb_[SMALL];
	size_t sp[SMALL + 1], sc[SMALL + 1];
	size_t na = strlen(a), nb = strlen(b);
	*work += na + nb;
	/* A rune takes 1 to 4 bytes: no need to decode when the lengths alone
	 * keep the distance at limit or more. */
	size_t mina = (na + 3) / 4, minb = (nb + 3) / 4;
	if (mina >= nb + limit || minb >= na + limit)
		return limit;
	bool heap = na > SMALL || nb > SMALL;
	uint32_t *ra = heap ? malloc((na + 1) * sizeof(*ra)) : sa;
	uint32_t *rb = heap ? malloc((nb + 1) * sizeof(*rb)) : sb_;
	size_t *prev = heap ? malloc((nb + 1) * sizeof(*prev)) : sp;
	size_t *cur = heap ? malloc((nb + 1) * sizeof(*cur)) : sc;
	size_t result = limit;
	if (!ra || !rb || !prev || !cur)
		goto out;
	size_t la = 0, lb = 0;
	for (size_t i = 0; i < na;)
		i += utf8_decode((const unsigned char *)a + i, na - i, &ra[la++]);
	for (size_t i = 0; i < nb;)
		i += utf8_decode((const unsigned char *)b + i, nb - i, &rb[lb++]);
	if ((la > lb ? la - lb : lb - la) >= limit)
		goto out;
	/* Only a band of width limit around the diagonal can stay under
	 * limit; cells outside it count as limit. */
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j < limit ? j : limit;
	for (size_t i = 1; i <= la; i++) {
		size_t lo = i > limit ? i - limit : 0;
		size_t hi = i + limit < lb ? i + limit : lb;
		size_t rowmin = limit;
		if (lo > 0)
			cur[lo - 1] = limit;
		if (hi < lb)
			cur[hi + 1] = limit;
		if (lo == 0)
			cur[0] = i < limit ? i : limit;
		for (size_t j = lo > 0 ? lo : 1; j <= hi; j++) {
			size_t sub = prev[j - 1] + (ra[i - 1] != rb[j - 1]);
			size_t del = (j <= i + limit - 1 ? prev[j] : limit) + 1;
			size_t ins = cur[j - 1] + 1;
			size_t m = sub < del ? sub : del;
			m = m < ins ? m : ins;
			cur[j] = m < limit ? m : limit;
		}
		*work += hi - lo + 1;
		for (size_t j = lo; j <= hi; j++)
			if (cur[j] < rowmin)
				rowmin = cur[j];
		size_t *t = prev;
		prev = cur;
		cur = t;
		if (rowmin >= limit)
			goto out;
	}
	result = prev[lb];
out:
	if (heap) {
		free(ra);
		free(rb);
		free(prev);
		free(cur);
	}
	return result;
}

/* ---- string lists and environments --------------------------------------- */

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

/* An open-addressing index from a string to its position in an array
 * (slots hold position + 1; 0 is empty). Strings are only ever added. */
struct sindex {
	size_t *slot;
	size_t cap; /* a power of two, or 0 */
};

/* The slot of key: where it is, or the empty slot where it would go. name
 * returns the string at a position. */
static size_t *sindex_find(const struct sindex *ix, const char *key,
			   const char *(*name)(const void *arr, size_t i), const void *arr)
{
	size_t mask = ix->cap - 1;
	for (size_t h = (size_t)str_hash(key) & mask;; h = (h + 1) & mask) {
		size_t *sl = &ix->slot[h];
		if (*sl == 0 || strcmp(name(arr, *sl - 1), key) == 0)
			return sl;
	}
}

/* Rebuilds ix for n strings at positions 0..n-1 (skip says which to
 * leave out); false on allocation failure. */
static bool sindex_build(struct sindex *ix, size_t n,
			 const char *(*name)(const void *arr, size_t i),
			 bool (*skip)(const void *arr, size_t i), const void *arr)
{
	size_t cap = 16;
	while (cap < 2 * n + 2)
		cap *= 2;
	size_t *slot = calloc(cap, sizeof(*slot));
	if (!slot)
		return false;
	free(ix->slot);
	ix->slot = slot;
	ix->cap = cap;
	for (size_t i = 0; i < n; i++)
		if (!skip || !skip(arr, i))
			*sindex_find(ix, name(arr, i), name, arr) = i + 1;
	return true;
}

static void sindex_release(struct sindex *ix)
{
	free(ix->slot);
	*ix = (struct sindex){ 0 };
}

/* A set of strings in insertion order; indexed once it grows. */
struct strs {
	char **v;
	size_t n, cap;
	struct sindex ix;
};

#define STRS_INDEX_AT 32

static const char *strs_name(const void *arr, size_t i)
{
	return ((const struct strs *)arr)->v[i];
}

static bool strs_has(const struct strs *l, const char *s)
{
	if (l->ix.cap)
		return *sindex_find(&l->ix, s, strs_name, l) != 0;
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return true;
	return false;
}

/* Adds s unless present; false on allocation failure. */
static bool strs_add(struct strs *l, const char *s)
{
	if (strs_has(l, s))
		return true;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		char **v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return false;
		l->v = v;
		l->cap = cap;
	}
	char *d = strdup(s);
	if (!d)
		return false;
	l->v[l->n++] = d;
	if (l->ix.cap && 2 * l->n + 2 <= l->ix.cap)
		*sindex_find(&l->ix, d, strs_name, l) = l->n;
	else if (l->n >= STRS_INDEX_AT && !sindex_build(&l->ix, l->n, strs_name, NULL, l))
		return false;
	return true;
}

static void strs_clear(struct strs *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
	sindex_release(&l->ix);
}

static void strs_release(struct strs *l)
{
	strs_clear(l);
	free(l->v);
	*l = (struct strs){ 0 };
}

/* A shared, reference-counted string: a child stage's environment shares
 * its parent's keys and values. */
struct rstr {
	size_t refs;
	char s[];
};

static struct rstr *rstr_new(const char *s, size_t n)
{
	struct rstr *r = malloc(sizeof(*r) + n + 1);
	if (!r)
		return NULL;
	r->refs = 1;
	memcpy(r->s, s, n);
	r->s[n] = '\0';
	return r;
}

static void rstr_put(struct rstr *r)
{
	if (r && --r->refs == 0)
		free(r);
}

/* An environment as BuildKit's llb.EnvList: keys in the order they were
 * last set (a replaced key moves to the end, leaving a dead entry). */
struct env_entry {
	struct rstr *key, *value;
	bool dead;
};

struct env {
	struct env_entry *e;
	size_t n, cap, dead;
	struct sindex ix; /* key -> its live entry */
};

static const char *env_name(const void *arr, size_t i)
{
	return ((const struct env *)arr)->e[i].key->s;
}

static bool env_dead(const void *arr, size_t i)
{
	return ((const struct env *)arr)->e[i].dead;
}

static const char *env_get(const struct env *env, const char *key)
{
	if (!env->ix.cap)
		return NULL;
	size_t *sl = sindex_find(&env->ix, key, env_name, env);
	return *sl ? env->e[*sl - 1].value->s : NULL;
}

/* Appends an entry sharing key and value (references taken). */
static bool env_put(struct env *env, struct rstr *key, struct rstr *value)
{
	if (env->n == env->cap) {
		/* Drop dead entries first when they are most of the array. */
		if (env->dead > 16 && env->dead * 2 > env->n) {
			size_t o = 0;
			for (size_t i = 0; i < env->n; i++)
				if (!env->e[i].dead)
					env->e[o++] = env->e[i];
			env->n = o;
			env->dead = 0;
			if (!sindex_build(&env->ix, env->n, env_name, env_dead, env))
				return false;
		}
	}
	if (env->n == env->cap) {
		size_t cap = env->cap ? env->cap * 2 : 16;
		struct env_entry *e = realloc(env->e, cap * sizeof(*e));
		if (!e)
			return false;
		env->e = e;
		env->cap = cap;
	}
	if (2 * (env->n + 1) + 2 > env->ix.cap) {
		/* grow the index (it covers the entry appended below too) */
		env->e[env->n] = (struct env_entry){ key, value, true };
		if (!sindex_build(&env->ix, env->n + 1, env_name, env_dead, env))
			return false;
	}
	size_t *sl = sindex_find(&env->ix, key->s, env_name, env);
	if (*sl) {
		struct env_entry *old = &env->e[*sl - 1];
		old->dead = true;
		env->dead++;
	}
	key->refs++;
	value->refs++;
	env->e[env->n] = (struct env_entry){ key, value, false };
	*sl = ++env->n;
	return true;
}

static bool env_set(struct env *env, const char *key, const char *value)
{
	size_t vl = strlen(value);
	struct rstr *k = rstr_new(key, strlen(key));
	struct rstr *v = rstr_new(value, vl > VALUE_CAP ? VALUE_CAP : vl);
	bool ok = k && v && env_put(env, k, v);
	rstr_put(k);
	rstr_put(v);
	return ok;
}

static void env_release(struct env *env)
{
	for (size_t i = 0; i < env->n; i++) {
		rstr_put(env->e[i].key);
		rstr_put(env->e[i].value);
	}
	free(env->e);
	sindex_release(&env->ix);
	*env = (struct env){ 0 };
}

/* dst (empty) becomes a copy of src sharing its strings. */
static bool env_copy(struct env *dst, const struct env *src)
{
	for (size_t i = 0; i < src->n; i++)
		if (!src->e[i].dead && !env_put(dst, src->e[i].key, src->e[i].value))
			return false;
	return true;
}

/* The live keys, in order, into a malloc'd array (*n of them). */
static const char **env_keys(const struct env *env, size_t extra, size_t *n)
{
	const char **keys = malloc((env->n + extra + 1) * sizeof(*keys));
	size_t k = 0;
	if (keys)
		for (size_t i = 0; i < env->n; i++)
			if (!env->e[i].dead)
				keys[k++] = env->e[i].key->s;
	*n = k;
	return keys;
}

/* ---- the check configuration --------------------------------------------- */

struct check_cfg {
	bool skip_all;
	bool error;
	struct strs skip;
};

static void trim(const char **s, size_t *n)
{
	while (*n > 0 && (**s == ' ' || **s == '\t' || **s == '\n' || **s == '\r' ||
			  **s == '\v' || **s == '\f')) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' ||
			  (*s)[*n - 1] == '\n' || (*s)[*n - 1] == '\r' ||
			  (*s)[*n - 1] == '\v' || (*s)[*n - 1] == '\f'))
		(*n)--;
}

static void quote_n(struct sb *b, const char *s, size_t n)
{
	char *t = strndup(s, n);
	if (!t) {
		b->oom = true;
		return;
	}
	goquote(b, t);
	free(t);
}

/* Go's strconv.ParseBool. */
static int parse_bool(const char *s, size_t n, bool *out)
{
	static const char *const yes[] = { "1", "t", "T", "TRUE", "true", "True" };
	static const char *const no[] = { "0", "f", "F", "FALSE", "false", "False" };
	for (size_t i = 0; i < 6; i++) {
		if (strlen(yes[i]) == n && memcmp(yes[i], s, n) == 0) {
			*out = true;
			return 0;
		}
		if (strlen(no[i]) == n && memcmp(no[i], s, n) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

/*
 * BuildKit's linter.ParseLintOptions: "skip=A,B;error=true;experimental=C"
 * (at most three ';'-separated parts; skip and experimental also "all").
 * On error, appends BuildKit's message to msg and returns -1.
 */
static int parse_check(const char *str, struct check_cfg *cfg, struct sb *msg)
{
	size_t len = strlen(str);
	trim(&str, &len);
	if (len == 0)
		return 0;
	const char *p = str, *end = str + len;
	for (int part = 0; p <= end; part++) {
		const char *semi = part < 2 ? memchr(p, ';', (size_t)(end - p)) : NULL;
		const char *pe = semi ? semi : end;
		const char *eq = memchr(p, '=', (size_t)(pe - p));
		if (!eq) {
			sb_adds(msg, "invalid check option ");
			quote_n(msg, p, (size_t)(pe - p));
			return -1;
		}
		const char *k = p, *v = eq + 1;
		size_t kn = (size_t)(eq - p), vn = (size_t)(pe - v);
		trim(&k, &kn);
		if (kn == 4 && memcmp(k, "skip", 4) == 0) {
			trim(&v, &vn);
			if (vn == 3 && memcmp(v, "all", 3) == 0) {
				cfg->skip_all = true;
			} else {
				const char *q = v, *qe = v + vn;
				while (q <= qe) {
					const char *c = memchr(q, ',', (size_t)(qe - q));
					const char *ce = c ? c : qe;
					const char *r = q;
					size_t rn = (size_t)(ce - q);
					trim(&r, &rn);
					char *name = strndup(r, rn);
					if (!name || !strs_add(&cfg->skip, name)) {
						free(name);
						msg->oom = true;
						return -1;
					}
					free(name);
					q = ce + 1;
				}
			}
		} else if (kn == 12 && memcmp(k, "experimental", 12) == 0) {
			/* Accepted; no experimental rule is implemented. */
		} else if (kn == 5 && memcmp(k, "error", 5) == 0) {
			trim(&v, &vn);
			if (parse_bool(v, vn, &cfg->error) < 0) {
				sb_adds(msg, "failed to parse check option ");
				quote_n(msg, p, (size_t)(pe - p));
				sb_adds(msg, ": strconv.ParseBool: parsing ");
				quote_n(msg, v, vn);
				sb_adds(msg, ": invalid syntax");
				return -1;
			}
		} else {
			sb_adds(msg, "invalid check option ");
			quote_n(msg, k, kn);
			return -1;
		}
		if (!semi)
			break;
		p = semi + 1;
	}
	return 0;
}

/* ---- findings ------------------------------------------------------------ */

struct loc {
	int line, column, end_line;
};

struct item {
	struct df_finding f;
	size_t seq;
};

struct lint {
	const struct df_file *file;
	const struct df_lint_opts *opts;
	struct check_cfg cfg;
	const struct env *globals; /* the meta ARGs' values, for stage ARGs */
	struct item *items;
	size_t n, cap;
	size_t skipped;
	size_t suggest_work; /* see SUGGEST_BUDGET */
	bool oom;
};

static struct loc loc_of(const struct df_instruction *in)
{
	return (struct loc){ in->line, in->column > 0 ? in->column : 1,
			     in->end_line >= in->line ? in->end_line : in->line };
}

/* Records a finding of rule with the message in *msg (consumed). */
static void report_msg(struct lint *L, enum rule_id rule, struct loc at, struct sb *msg)
{
	if (L->cfg.skip_all || strs_has(&L->cfg.skip, rules[rule].name)) {
		L->skipped++;
		sb_release(msg);
		return;
	}
	char *m = sb_detach(msg);
	if (!m) {
		L->oom = true;
		return;
	}
	if (L->n == L->cap) {
		size_t cap = L->cap ? L->cap * 2 : 16;
		struct item *v = realloc(L->items, cap * sizeof(*v));
		if (!v) {
			free(m);
			L->oom = true;
			return;
		}
		L->items = v;
		L->cap = cap;
	}
	L->items[L->n] = (struct item){
		.f = { rules[rule].name, m, rules[rule].url, at.line, at.column,
		       at.end_line >= at.line ? at.end_line : at.line },
		.seq = L->n,
	};
	L->n++;
}

KILN_DF_PRINTF(4, 5)
static void report(struct lint *L, enum rule_id rule, struct loc at, const char *fmt, ...)
{
	struct sb msg = { 0 };
	char small[512];
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (w < 0) {
		L->oom = true;
		return;
	}
	if ((size_t)w < sizeof(small)) {
		sb_add(&msg, small, (size_t)w);
	} else {
		char *big = malloc((size_t)w + 1);
		if (!big) {
			L->oom = true;
			return;
		}
		va_start(ap, fmt);
		vsnprintf(big, (size_t)w + 1, fmt, ap);
		va_end(ap);
		sb_add(&msg, big, (size_t)w);
		free(big);
	}
	report_msg(L, rule, at, &msg);
}

static const char *build_arg(const struct lint *L, const char *key)
{
	const char *v = NULL;
	for (size_t i = 0; L->opts && i < L->opts->n_build_args; i++)
		if (L->opts->build_args[2 * i] && strcmp(L->opts->build_args[2 * i], key) == 0)
			v = L->opts->build_args[2 * i + 1] ? L->opts->build_args[2 * i + 1] : "";
	return v;
}

static bool has_build_arg(const struct lint *L, const char *key)
{
	for (size_t i = 0; L->opts && i < L->opts->n_build_args; i++)
		if (L->opts->build_args[2 * i] && strcmp(L->opts->build_args[2 * i], key) == 0)
			return true;
	return false;
}

/* ---- expansion ------------------------------------------------------------ */

/* What one word's expansion looked up: names found and names unset, in the
 * order the lexer asked for them. */
struct lookup_ctx {
	const struct env *env;
	struct strs matched, unmatched;
	bool oom;
};

static const char *lookup_fn(void *ctx, const char *name)
{
	struct lookup_ctx *c = ctx;
	const char *v = env_get(c->env, name);
	if (!strs_add(v ? &c->matched : &c->unmatched, name))
		c->oom = true;
	return v;
}

static void lookup_release(struct lookup_ctx *c)
{
	strs_release(&c->matched);
	strs_release(&c->unmatched);
}

/* Expands word against env as BuildKit's ProcessWordWithMatches; the
 * names it looked up are left in *c (reset first). Returns the malloc'd
 * result, or NULL when the word does not expand (BuildKit would fail the
 * build there; the parser reports that). */
static char *expand(struct lint *L, const char *word, char escape, const struct env *env,
		    struct lookup_ctx *c)
{
	strs_clear(&c->matched);
	strs_clear(&c->unmatched);
	c->env = env;
	c->oom = false;
	struct df_error err = { 0 };
	char *r = df_expand(word ? word : "", escape, lookup_fn, NULL, c, &err);
	if (c->oom)
		L->oom = true;
	return r;
}

/* The closest of options to name (distance under 3, first best wins), as
 * BuildKit's suggest.Search (case-sensitive); NULL when none, when name
 * itself is an option, or when the file's suggestion budget is spent. */
static const char *suggest(struct lint *L, const char *name, const char *const *options, size_t n)
{
	const char *match = NULL;
	size_t mindist = 3;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(options[i], name) == 0)
			return NULL;
		if (L->suggest_work > SUGGEST_BUDGET)
			return NULL;
		size_t d = distance_upto(name, options[i], mindist, &L->suggest_work);
		if (d < mindist) {
			match = options[i];
			mindist = d;
		}
	}
	return match;
}

/* ---- image references and platforms ------------------------------------- */

static bool is_alnum_lower(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_alnum_lower(c) || (c >= 'A' && c <= 'Z');
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_word(char c)
{
	return is_alnum(c) || c == '_';
}

/* path-component: [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)* */
static bool valid_path_component(const char *s, size_t n)
{
	size_t i = 0;
	if (n == 0)
		return false;
	for (;;) {
		size_t st = i;
		while (i < n && is_alnum_lower(s[i]))
			i++;
		if (i == st)
			return false;
		if (i == n)
			return true;
		if (s[i] == '.') {
			i++;
		} else if (s[i] == '_') {
			i++;
			if (i < n && s[i] == '_')
				i++;
		} else if (s[i] == '-') {
			while (i < n && s[i] == '-')
				i++;
		} else {
			return false;
		}
	}
}

/* host[:port], host = domain-name | [IPv6] */
static bool valid_domain(const char *s, size_t n)
{
	size_t i = 0;
	if (n > 0 && s[0] == '[') {
		size_t st = ++i;
		while (i < n && (is_hex(s[i]) || s[i] == ':'))
			i++;
		if (i == st || i >= n || s[i] != ']')
			return false;
		i++;
	} else {
		for (;;) {
			size_t st = i;
			while (i < n && (is_alnum(s[i]) || s[i] == '-'))
				i++;
			if (i == st || s[st] == '-' || s[i - 1] == '-')
				return false;
			if (i < n && s[i] == '.') {
				i++;
				continue;
			}
			break;
		}
	}
	if (i < n && s[i] == ':') {
		size_t st = ++i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == st)
			return false;
	}
	return i == n;
}

/*
 * Whether s is a reference docker/distribution's ParseNormalizedNamed
 * accepts: [domain/]path[:tag][@digest], lower-case repository, no bare
 * 64-hex identifier, name at most 255 characters.
 */
static bool valid_reference(const char *s)
{
	size_t n = strlen(s);
	if (n == 64) {
		size_t i = 0;
		while (i < 64 && ((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			i++;
		if (i == 64)
			return false;
	}
	const char *domain = "docker.io", *rest = s;
	size_t dn = 9;
	bool library = false;
	const char *slash = strchr(s, '/');
	if (!slash) {
		library = true;
	} else {
		size_t mn = (size_t)(slash - s);
		bool upper = false, dotcolon = false;
		for (size_t i = 0; i < mn; i++) {
			upper |= s[i] >= 'A' && s[i] <= 'Z';
			dotcolon |= s[i] == '.' || s[i] == ':';
		}
		if ((mn == 9 && memcmp(s, "localhost", 9) == 0) || dotcolon || upper) {
			domain = s;
			dn = mn;
			rest = slash + 1;
		}
	}
	/* The repository (up to a tag) must be lower case. */
	for (const char *q = rest; *q && *q != ':'; q++)
		if (*q >= 'A' && *q <= 'Z')
			return false;
	if (!valid_domain(domain, dn))
		return false;
	size_t rn = strlen(rest);
	const char *at = memchr(rest, '@', rn);
	size_t before = at ? (size_t)(at - rest) : rn;
	const char *colon = memchr(rest, ':', before);
	size_t pn = colon ? (size_t)(colon - rest) : before;
	/* path: components separated by '/' */
	size_t i = 0;
	for (;;) {
		const char *c = memchr(rest + i, '/', pn - i);
		size_t ce = c ? (size_t)(c - rest) : pn;
		if (!valid_path_component(rest + i, ce - i))
			return false;
		if (!c)
			break;
		i = ce + 1;
	}
	if (dn + 1 + (library ? 8 : 0) + pn > 255)
		return false;
	if (colon) {
		const char *t = colon + 1;
		size_t tn = before - pn - 1;
		if (tn == 0 || tn > 128 || !is_word(t[0]))
			return false;
		for (size_t k = 1; k < tn; k++)
			if (!is_word(t[k]) && t[k] != '.' && t[k] != '-')
				return false;
	}
	if (at) {
		/* algorithm: [A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)* ":" hex{32,} */
		const char *d = at + 1;
		size_t k = 0, dl = strlen(d);
		for (;;) {
			if (k >= dl || !((d[k] >= 'A' && d[k] <= 'Z') || (d[k] >= 'a' && d[k] <= 'z')))
				return false;
			while (k < dl && is_alnum(d[k]))
				k++;
			if (k < dl && (d[k] == '-' || d[k] == '_' || d[k] == '+' || d[k] == '.')) {
				k++;
				continue;
			}
			break;
		}
		if (k >= dl || d[k] != ':')
			return false;
		size_t hs = ++k;
		while (k < dl && is_hex(d[k]))
			k++;
		if (k != dl || k - hs < 32)
			return false;
	}
	return true;
}

static const char *const known_os[] = {
	"aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios",
	"js", "linux", "nacl", "netbsd", "openbsd", "plan9", "solaris", "wasip1",
	"windows", "zos", NULL,
};

static const char *const known_arch[] = {
	"386", "amd64", "amd64p32", "arm", "armbe", "arm64", "arm64be", "loong64",
	"mips", "mipsle", "mips64", "mips64le", "mips64p32", "mips64p32le", "ppc",
	"ppc64", "ppc64le", "riscv", "riscv64", "s390", "s390x", "sparc", "sparc64",
	"wasm", NULL,
};

static bool in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (strcmp(*list, s) == 0)
			return true;
	return false;
}

/* containerd's normalizeArch, for the architecture name only. */
static void normalize_arch(char *arch)
{
	static const char *const map[][2] = {
		{ "i386", "386" }, { "x86_64", "amd64" }, { "x86-64", "amd64" },
		{ "aarch64", "arm64" }, { "armhf", "arm" }, { "armel", "arm" },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (strcmp(arch, map[i][0]) == 0) {
			memcpy(arch, map[i][1], strlen(map[i][1]) + 1);
			return;
		}
	}
}

static bool specifier_chars(const char *s, size_t n, bool dot)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '-' && !(dot && s[i] == '.'))
			return false;
	return true;
}

/*
 * containerd's platforms.Parse, far enough to know the OS and the
 * architecture: "os[(osversion)][/arch[/variant]]" or a lone OS or
 * architecture. os and arch get at most 31 bytes. False when BuildKit
 * would not parse it.
 */
static bool parse_platform(const char *s, char os[32], char arch[32])
{
	if (strchr(s, '*'))
		return false;
	const char *parts[3];
	size_t lens[3], n = 0;
	const char *p = s;
	for (;;) {
		const char *sl = strchr(p, '/');
		if (n == 3)
			return false; /* a fourth part */
		parts[n] = p;
		lens[n] = sl ? (size_t)(sl - p) : strlen(p);
		n++;
		if (!sl)
			break;
		p = sl + 1;
	}
	/* first part: os[(version)] */
	size_t on = lens[0];
	const char *paren = memchr(parts[0], '(', lens[0]);
	if (paren) {
		on = (size_t)(paren - parts[0]);
		size_t vn = lens[0] - on;
		if (vn < 2 || parts[0][lens[0] - 1] != ')')
			return false;
		for (size_t i = on + 1; i < lens[0] - 1; i++)
			if (!is_alnum(parts[0][i]) && parts[0][i] != '_' &&
			    parts[0][i] != '-' && parts[0][i] != '.')
				return false;
	}
	if (!specifier_chars(parts[0], on, false) || on >= 32)
		return false;
	for (size_t i = 1; i < n; i++)
		if (!specifier_chars(parts[i], lens[i], true) || lens[i] >= 32)
			return false;
	for (size_t i = 0; i < on; i++)
		os[i] = lower(parts[0][i]);
	os[on] = '\0';
	if (strcmp(os, "macos") == 0)
		memcpy(os, "darwin", 7);
	if (n == 1) {
		if (in_list(known_os, os)) {
			memcpy(arch, HOST_ARCH, sizeof(HOST_ARCH));
			return true;
		}
		if (paren)
			return false;
		memcpy(arch, os, on + 1);
		normalize_arch(arch);
		if (!in_list(known_arch, arch))
			return false;
		memcpy(os, "linux", 6);
		return true;
	}
	for (size_t i = 0; i < lens[1]; i++)
		arch[i] = lower(parts[1][i]);
	arch[lens[1]] = '\0';
	normalize_arch(arch);
	return true;
}

/* ---- per-stage state ------------------------------------------------------ */

struct tracker {
	bool set;
	struct loc at;
};

struct stage_state {
	struct env env;          /* the stage's environment (llb state env) */
	struct strs build_args;  /* ARG names declared so far (d.buildArgs) */
	bool workdir_set;        /* an absolute or relative WORKDIR was set */
	bool shell_set;          /* a SHELL was set (image config Shell) */
	bool windows;            /* the stage's platform OS is windows */
	struct tracker cmd, entrypoint, healthcheck;
	bool dispatched;
};

/* BUILDKIT_SBOM_SCAN_*: ARGs BuildKit never puts into the environment. */
static bool non_env_arg(const char *key)
{
	return strcmp(key, "BUILDKIT_SBOM_SCAN_CONTEXT") == 0 ||
	       strcmp(key, "BUILDKIT_SBOM_SCAN_STAGE") == 0;
}

/* UndefinedVar for the names one word's expansion left unset
 * (reportUnmatchedVariables). */
static void report_unmatched(struct lint *L, struct stage_state *S,
			     const struct lookup_ctx *c, struct loc at)
{
	if (c->unmatched.n == 0)
		return;
	size_t nkeys;
	const char **keys = env_keys(&S->env, 0, &nkeys);
	if (!keys) {
		L->oom = true;
		return;
	}
	for (size_t i = 0; i < c->unmatched.n; i++) {
		const char *name = c->unmatched.v[i];
		if (strs_has(&S->build_args, name) || non_env_arg(name))
			continue;
		const char *m = suggest(L, name, keys, nkeys);
		if (m)
			report(L, R_UNDEFINED_VAR, at,
			       "Usage of undefined variable '$%s' (did you mean $%s?)", name, m);
		else
			report(L, R_UNDEFINED_VAR, at, "Usage of undefined variable '$%s'", name);
	}
	free(keys);
}

/* Expands word in the stage's environment and reports its unset names;
 * returns the result (malloc'd) or NULL. */
static char *expand_word(struct lint *L, struct stage_state *S, struct lookup_ctx *c,
			 const char *word, struct loc at)
{
	char *r = expand(L, word, L->file->escape ? L->file->escape : '\\', &S->env, c);
	if (r)
		report_unmatched(L, S, c, at);
	return r;
}

static void expand_report(struct lint *L, struct stage_state *S, struct lookup_ctx *c,
			  const char *word, struct loc at)
{
	free(expand_word(L, S, c, word, at));
}

/* A heredoc body as BuildKit expands COPY/ADD heredocs: '\\' escapes and
 * quotes kept as plain characters (SkipProcessQuotes). Quotes are turned
 * into blanks, which end a name as a quote does. */
static void expand_heredoc(struct lint *L, struct stage_state *S, struct lookup_ctx *c,
			   const char *body, struct loc at)
{
	char *t = strdup(body);
	if (!t) {
		L->oom = true;
		return;
	}
	for (char *p = t; *p; p++)
		if (*p == '\'' || *p == '"')
			*p = ' ';
	char *r = expand(L, t, '\\', &S->env, c);
	if (r)
		report_unmatched(L, S, c, at);
	free(r);
	free(t);
}

/* The secret-name test of SecretsUsedInArgOrEnv: some '_'-separated part of
 * key is a secret token, and none is an allowed one (case-insensitive). */
static bool secret_key(const char *key)
{
	static const char *const deny[] = {
		"apikey", "auth", "credential", "credentials", "key", "password",
		"pword", "passwd", "secret", "token", NULL,
	};
	static const char *const allow[] = { "public", "file", "version", NULL };
	bool denied = false;
	const char *p = key;
	for (;;) {
		const char *u = strchr(p, '_');
		size_t n = u ? (size_t)(u - p) : strlen(p);
		for (size_t i = 0; allow[i]; i++)
			if (ieqn(p, n, allow[i]))
				return false;
		for (size_t i = 0; deny[i]; i++)
			if (ieqn(p, n, deny[i]))
				denied = true;
		if (!u)
			break;
		p = u + 1;
	}
	return denied;
}

static void check_secret(struct lint *L, const char *instruction, const char *key, struct loc at)
{
	if (!secret_key(key))
		return;
	struct sb msg = { 0 };
	sb_addf(&msg, "Do not use ARG or ENV instructions for sensitive data (%s ", instruction);
	goquote(&msg, key);
	sb_addc(&msg, ')');
	report_msg(L, R_SECRETS_USED_IN_ARG_OR_ENV, at, &msg);
}

static void used_once(struct lint *L, struct tracker *t, const char *keyword, struct loc at)
{
	if (t->set)
		report(L, R_MULTIPLE_INSTRUCTIONS_DISALLOWED, t->at,
		       "Multiple %s instructions should not be used in the same stage because only the last one will be used",
		       keyword);
	t->set = true;
	t->at = at;
}

/* The shell-form words joined back (USER, WORKDIR, STOPSIGNAL take the
 * rest of the line as one word). */
static char *joined_args(const struct df_instruction *in)
{
	struct sb b = { 0 };
	for (size_t i = 0; i < in->n_args; i++) {
		if (i)
			sb_addc(&b, ' ');
		sb_adds(&b, in->args[i] ? in->args[i] : "");
	}
	return sb_detach(&b);
}

static const struct df_flag *flag(const struct df_instruction *in, const char *name)
{
	for (size_t i = 0; i < in->n_flags; i++)
		if (in->flags[i].name && strcmp(in->flags[i].name, name) == 0)
			return &in->flags[i];
	return NULL;
}

/* EXPOSE: the two format rules over one port spec (dispatchExpose). */
static void check_port(struct lint *L, const char *raw, struct loc at)
{
	/* splitParts: "[ip:]host:container", the IP being everything before
	 * the last two colons. */
	const char *last = strrchr(raw, ':');
	const char *container = last ? last + 1 : raw;
	bool ip_or_host = false;
	if (last) {
		const char *host = last;
		while (host > raw && host[-1] != ':')
			host--;
		bool has_ip = host > raw && host - 1 > raw; /* text before "ip:" colon */
		ip_or_host = last > host || has_ip;
	}
	const char *slash = strchr(container, '/');
	const char *proto = slash ? slash + 1 : "";
	size_t portlen = slash ? (size_t)(slash - container) : strlen(container);
	if (portlen == 0)
		return; /* BuildKit fails: no port specified */
	if (*proto && !ieq(proto, "tcp") && !ieq(proto, "udp") && !ieq(proto, "sctp"))
		return; /* BuildKit fails: invalid proto */
	if (!is_lower_str(proto))
		report(L, R_EXPOSE_PROTO_CASING, at,
		       "Defined protocol '%s' in EXPOSE instruction should be lowercase", raw);
	if (ip_or_host)
		report(L, R_EXPOSE_INVALID_FORMAT, at,
		       "EXPOSE instruction should not define an IP address or host-port mapping, found '%s'",
		       raw);
}

/* RUN --mount: every field's value is expanded (parseMount); fields are
 * CSV, double quotes allowed. */
static void expand_mount(struct lint *L, struct stage_state *S, struct lookup_ctx *c,
			 const char *spec, struct loc at)
{
	const char *p = spec;
	struct sb field = { 0 };
	for (;;) {
		sb_release(&field);
		sb_add(&field, "", 0);
		if (*p == '"') {
			p++;
			for (; *p; p++) {
				if (*p == '"') {
					if (p[1] == '"') {
						sb_addc(&field, '"');
						p++;
						continue;
					}
					p++;
					break;
				}
				sb_addc(&field, *p);
			}
			while (*p && *p != ',')
				sb_addc(&field, *p++);
		} else {
			while (*p && *p != ',')
				sb_addc(&field, *p++);
		}
		if (field.oom) {
			L->oom = true;
			break;
		}
		const char *eq = strchr(field.p, '=');
		if (eq)
			expand_report(L, S, c, eq + 1, at);
		if (*p != ',')
			break;
		p++;
	}
	sb_release(&field);
}

/* Dispatches one instruction of a stage (dispatch() and the dispatchX
 * functions of convert.go): the rules that need the stage's state. */
static void dispatch(struct lint *L, struct stage_state *S, struct lookup_ctx *c,
		     const struct df_instruction *in, struct loc at)
{
	const char *kw = in->keyword ? in->keyword : df_kind_name(in->kind);
	switch (in->kind) {
	case DF_ENV: {
		/* Every key and value is expanded before any is set. */
		char **keys = calloc(in->n_kvs ? in->n_kvs : 1, sizeof(*keys));
		char **vals = calloc(in->n_kvs ? in->n_kvs : 1, sizeof(*vals));
		if (!keys || !vals) {
			free(keys);
			free(vals);
			L->oom = true;
			return;
		}
		for (size_t i = 0; i < in->n_kvs; i++) {
			const struct df_kv *kv = &in->kvs[i];
			keys[i] = expand_word(L, S, c, kv->key, at);
			const char *raw = kv->raw_value ? kv->raw_value : kv->value;
			vals[i] = expand_word(L, S, c, raw ? raw : "", at);
		}
		for (size_t i = 0; i < in->n_kvs; i++) {
			const struct df_kv *kv = &in->kvs[i];
			const char *key = keys[i] ? keys[i] : kv->key ? kv->key : "";
			const char *val = vals[i] ? vals[i] : kv->value ? kv->value : "";
			if (kv->legacy)
				report(L, R_LEGACY_KEY_VALUE_FORMAT, at,
				       "\"%s key=value\" should be used instead of legacy \"%s key value\" format",
				       kw, kw);
			check_secret(L, "ENV", key, at);
			if (!env_set(&S->env, key, val))
				L->oom = true;
		}
		for (size_t i = 0; i < in->n_kvs; i++) {
			free(keys[i]);
			free(vals[i]);
		}
		free(keys);
		free(vals);
		break;
	}
	case DF_LABEL:
		for (size_t i = 0; i < in->n_kvs; i++) {
			const struct df_kv *kv = &in->kvs[i];
			expand_report(L, S, c, kv->key, at);
			const char *raw = kv->raw_value ? kv->raw_value : kv->value;
			expand_report(L, S, c, raw ? raw : "", at);
		}
		for (size_t i = 0; i < in->n_kvs; i++)
			if (in->kvs[i].legacy)
				report(L, R_LEGACY_KEY_VALUE_FORMAT, at,
				       "\"%s key=value\" should be used instead of legacy \"%s key value\" format",
				       kw, kw);
		break;
	case DF_ADD:
	case DF_COPY: {
		static const char *const add_flags[] = { "chown", "chmod", "checksum", NULL };
		static const char *const copy_flags[] = { "chown", "chmod", NULL };
		for (const char *const *f = in->kind == DF_ADD ? add_flags : copy_flags; *f; f++) {
			const struct df_flag *fl = flag(in, *f);
			if (fl && fl->value)
				expand_report(L, S, c, fl->value, at);
		}
		for (size_t i = 0; i < in->n_args; i++) {
			const char *a = in->args[i];
			if (!a || (!in->json && strncmp(a, "<<", 2) == 0 && in->n_heredocs))
				continue; /* a heredoc source, expanded below */
			expand_report(L, S, c, a, at);
		}
		for (size_t i = 0; i < in->n_heredocs; i++)
			if (in->heredocs[i].expand && in->heredocs[i].content)
				expand_heredoc(L, S, c, in->heredocs[i].content, at);
		break;
	}
	case DF_RUN:
		for (size_t i = 0; i < in->n_flags; i++)
			if (in->flags[i].name && strcmp(in->flags[i].name, "mount") == 0 &&
			    in->flags[i].value)
				expand_mount(L, S, c, in->flags[i].value, at);
		break;
	case DF_WORKDIR: {
		char *w = joined_args(in);
		char *path = w ? expand_word(L, S, c, w, at) : NULL;
		if (!w)
			L->oom = true;
		if (path && !S->workdir_set) {
			bool abs = path[0] == '/';
			if (S->windows)
				abs = abs || path[0] == '\\' ||
				      (((path[0] | 0x20) >= 'a' && (path[0] | 0x20) <= 'z') &&
				       path[1] == ':' && (path[2] == '\\' || path[2] == '/'));
			if (!abs) {
				struct sb msg = { 0 };
				sb_adds(&msg, "Relative workdir ");
				goquote(&msg, path);
				sb_adds(&msg, " can have unexpected results if the base image changes");
				report_msg(L, R_WORKDIR_RELATIVE_PATH, at, &msg);
			}
		}
		if (path)
			S->workdir_set = true;
		free(path);
		free(w);
		break;
	}
	case DF_USER:
	case DF_STOPSIGNAL: {
		char *w = joined_args(in);
		if (!w)
			L->oom = true;
		else
			expand_report(L, S, c, w, at);
		free(w);
		break;
	}
	case DF_VOLUME:
		for (size_t i = 0; i < in->n_args; i++)
			if (in->args[i])
				expand_report(L, S, c, in->args[i], at);
		break;
	case DF_EXPOSE:
		for (size_t i = 0; i < in->n_args; i++) {
			if (!in->args[i])
				continue;
			/* ProcessWords: expanded, split into words, no UndefinedVar. */
			char *e = expand(L, in->args[i], L->file->escape ? L->file->escape : '\\',
					 &S->env, c);
			if (!e)
				continue;
			char *save = NULL;
			for (char *w = strtok_r(e, " \t\r\n", &save); w;
			     w = strtok_r(NULL, " \t\r\n", &save))
				check_port(L, w, at);
			free(e);
		}
		break;
	case DF_CMD:
	case DF_ENTRYPOINT:
		used_once(L, in->kind == DF_CMD ? &S->cmd : &S->entrypoint, kw, at);
		if (!in->json && !S->shell_set)
			report(L, R_JSON_ARGS_RECOMMENDED, at,
			       "JSON arguments recommended for %s to prevent unintended behavior related to OS signals",
			       kw);
		break;
	case DF_HEALTHCHECK:
		used_once(L, &S->healthcheck, kw, at);
		break;
	case DF_SHELL:
		S->shell_set = true;
		break;
	case DF_ARG:
		for (size_t i = 0; i < in->n_kvs; i++) {
			const struct df_kv *kv = &in->kvs[i];
			const char *key = kv->key ? kv->key : "";
			check_secret(L, "ARG", key, at);
			const char *bval = build_arg(L, key);
			const char *raw = kv->raw_value; /* NULL: no default */
			char *value = NULL;
			bool has_value = false;
			if (bval) {
				value = strdup(bval);
				has_value = true;
			} else if (raw) {
				value = expand_word(L, S, c, raw, at);
				has_value = value != NULL;
				if (!value)
					continue; /* BuildKit fails the build here */
			} else {
				/* Declared without a default: a meta ARG's value. */
				const char *g = L->globals ? env_get(L->globals, key) : NULL;
				if (g) {
					value = strdup(g);
					has_value = true;
				}
			}
			if (has_value && !value) {
				L->oom = true;
				continue;
			}
			if (value && !non_env_arg(key) && !env_set(&S->env, key, value))
				L->oom = true;
			free(value);
			if (!strs_add(&S->build_args, key))
				L->oom = true;
		}
		break;
	default:
		break;
	}
}

/* ---- the walk ------------------------------------------------------------- */

struct walk {
	struct env globals;   /* defaults + meta ARG values, build args applied */
	struct strs declared; /* every meta ARG name (allArgs) */
	struct stage_state *st;
	struct lookup_ctx c;
};

/* buildMetaArgs: the meta ARGs' values over args; with_build_args false
 * takes the defaults only. Returns false when a default does not expand. */
static bool meta_args(struct lint *L, struct env *args, struct strs *declared,
		      bool with_build_args, struct lookup_ctx *c)
{
	const struct df_file *f = L->file;
	for (size_t i = 0; i < f->n_meta_args && i < f->n_instructions; i++) {
		const struct df_instruction *in = &f->instructions[i];
		if (in->kind != DF_ARG)
			continue;
		for (size_t k = 0; k < in->n_kvs; k++) {
			const struct df_kv *kv = &in->kvs[k];
			const char *key = kv->key ? kv->key : "";
			const char *raw = kv->raw_value; /* NULL: no default */
			const char *bval = with_build_args ? build_arg(L, key) : NULL;
			char *value = NULL;
			if (bval) {
				value = strdup(bval);
				if (!value)
					L->oom = true;
			} else if (raw) {
				value = expand(L, raw, f->escape ? f->escape : '\\', args, c);
				if (!value)
					return false;
			}
			if (value && !env_set(args, key, value))
				L->oom = true;
			free(value);
			if (declared && !strs_add(declared, key))
				L->oom = true;
		}
	}
	return true;
}

static void default_args(struct lint *L, struct env *env)
{
	const struct df_file *f = L->file;
	const char *target = "default";
	if (f->n_stages && f->stages[f->n_stages - 1].name)
		target = f->stages[f->n_stages - 1].name;
	static const char *const keys[] = {
		"BUILDPLATFORM", "BUILDOS", "BUILDOSVERSION", "BUILDARCH", "BUILDVARIANT",
		"TARGETPLATFORM", "TARGETOS", "TARGETOSVERSION", "TARGETARCH",
		"TARGETVARIANT", "TARGETSTAGE",
	};
	const char *vals[] = {
		"linux/" HOST_ARCH, "linux", "", HOST_ARCH, "",
		"linux/" HOST_ARCH, "linux", "", HOST_ARCH, "", target,
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *v = build_arg(L, keys[i]);
		if (!env_set(env, keys[i], v ? v : vals[i]))
			L->oom = true;
	}
}

/* UndefinedArgInFrom for the names a FROM word left unset. */
static void report_from_args(struct lint *L, struct walk *W, struct loc at)
{
	size_t k;
	const char **opts = env_keys(&W->globals, W->declared.n, &k);
	if (!opts) {
		L->oom = true;
		return;
	}
	for (size_t i = 0; i < W->declared.n; i++)
		if (!env_get(&W->globals, W->declared.v[i]))
			opts[k++] = W->declared.v[i];
	for (size_t i = 0; i < W->c.unmatched.n; i++) {
		const char *name = W->c.unmatched.v[i];
		if (strs_has(&W->declared, name) || env_get(&W->globals, name))
			continue;
		const char *m = suggest(L, name, opts, k);
		if (m)
			report(L, R_UNDEFINED_ARG_IN_FROM, at,
			       "FROM argument '%s' is not declared (did you mean %s?)", name, m);
		else
			report(L, R_UNDEFINED_ARG_IN_FROM, at, "FROM argument '%s' is not declared", name);
	}
	free(opts);
}

/* The instruction of stage s that is its FROM. */
static const struct df_instruction *stage_from(const struct df_file *f, const struct df_stage *s)
{
	if (s->first < f->n_instructions && f->instructions[s->first].kind == DF_FROM)
		return &f->instructions[s->first];
	return NULL;
}

/* Steps 4: each stage's FROM. Returns false where BuildKit stops the
 * build (an expansion error, an empty base name or platform). */
static bool check_froms(struct lint *L, struct walk *W)
{
	const struct df_file *f = L->file;
	char escape = f->escape ? f->escape : '\\';
	for (size_t i = 0; i < f->n_stages; i++) {
		const struct df_stage *s = &f->stages[i];
		const struct df_instruction *from = stage_from(f, s);
		struct loc at = from ? loc_of(from) : (struct loc){ s->line, 1, s->line };
		const char *base = s->base_raw ? s->base_raw : s->base ? s->base : "";
		char *r = expand(L, base, escape, &W->globals, &W->c);
		report_from_args(L, W, at);
		if (!r || !*r) {
			free(r);
			return false;
		}
		free(r);
		const struct df_flag *pf = from ? flag(from, "platform") : NULL;
		W->st[i].windows = false;
		if (pf && pf->value && *pf->value) {
			r = expand(L, pf->value, escape, &W->globals, &W->c);
			report_from_args(L, W, at);
			if (r && W->c.matched.n == 1 && W->c.unmatched.n == 0 &&
			    strcmp(W->c.matched.v[0], "TARGETPLATFORM") == 0) {
				const char *tp = env_get(&W->globals, "TARGETPLATFORM");
				if (tp && strcmp(r, tp) == 0)
					report(L, R_REDUNDANT_TARGET_PLATFORM, at,
					       "Setting platform to predefined %s in FROM is redundant as this is the default behavior",
					       pf->value);
			}
			char os[32], arch[32];
			bool parsed = r && parse_platform(r, os, arch);
			if (r && parsed && W->c.matched.n == 0 && W->c.unmatched.n == 0) {
				const char *name = s->name ? s->name : "";
				if (!strstr(name, os) && !strstr(name, arch)) {
					struct sb msg = { 0 };
					sb_adds(&msg, "FROM --platform flag should not use constant value ");
					goquote(&msg, r);
					report_msg(L, R_FROM_PLATFORM_FLAG_CONST_DISALLOWED, at, &msg);
				}
			}
			if (!r || !*r) {
				free(r);
				return false;
			}
			W->st[i].windows = parsed && strcmp(os, "windows") == 0;
			free(r);
		} else if (s->base_stage >= 0 && (size_t)s->base_stage < i) {
			W->st[i].windows = W->st[s->base_stage].windows;
		}
	}
	return true;
}

/* Step 5: dispatch every stage, in file order. */
static void dispatch_stages(struct lint *L, struct walk *W)
{
	const struct df_file *f = L->file;
	bool *reach = calloc(f->n_stages ? f->n_stages : 1, sizeof(*reach));
	if (!reach) {
		L->oom = true;
		return;
	}
	/* Iteratively, not recursively: a chain of stages can be long. */
	if (f->n_stages) {
		size_t *stack = malloc(f->n_stages * sizeof(*stack));
		size_t top = 0;
		if (!stack) {
			free(reach);
			L->oom = true;
			return;
		}
		stack[top++] = f->n_stages - 1;
		reach[f->n_stages - 1] = true;
		while (top) {
			const struct df_stage *s = &f->stages[stack[--top]];
			for (size_t k = 0; k <= s->n_deps; k++) {
				int d = k == 0 ? s->base_stage : s->deps[k - 1];
				if (d >= 0 && (size_t)d < f->n_stages && !reach[d]) {
					reach[d] = true;
					stack[top++] = (size_t)d;
				}
			}
		}
		free(stack);
	}
	/* The last stage built on each stage: after it, that stage's
	 * environment is not needed any more and is released, so that memory
	 * stays linear however stages chain. */
	size_t *last_child = calloc(f->n_stages ? f->n_stages : 1, sizeof(*last_child));
	if (!last_child) {
		free(reach);
		L->oom = true;
		return;
	}
	for (size_t i = 0; i < f->n_stages; i++)
		if (f->stages[i].base_stage >= 0 && (size_t)f->stages[i].base_stage < i)
			last_child[f->stages[i].base_stage] = i;

	for (size_t i = 0; i < f->n_stages && !L->oom; i++) {
		const struct df_stage *s = &f->stages[i];
		struct stage_state *S = &W->st[i];
		const struct stage_state *P = NULL;
		if (s->base_stage >= 0 && (size_t)s->base_stage < i)
			P = &W->st[s->base_stage];
		if (P) {
			if (!env_copy(&S->env, &P->env))
				L->oom = true;
			for (size_t k = 0; k < P->build_args.n; k++)
				if (!strs_add(&S->build_args, P->build_args.v[k]))
					L->oom = true;
			S->workdir_set = P->workdir_set;
			S->shell_set = P->shell_set;
		} else if (!S->windows && !env_set(&S->env, "PATH", DEFAULT_PATH)) {
			L->oom = true;
		}
		const struct df_instruction *from = stage_from(f, s);
		struct loc from_at = from ? loc_of(from) : (struct loc){ s->line, 1, s->line };
		/* The parent stage's ONBUILD triggers run first, located at
		 * this stage's FROM. */
		if (P && reach[i]) {
			const struct df_stage *ps = &f->stages[s->base_stage];
			for (size_t k = 0; k < ps->count; k++) {
				size_t idx = ps->first + k;
				if (idx >= f->n_instructions)
					break;
				const struct df_instruction *in = &f->instructions[idx];
				if (in->kind == DF_ONBUILD && in->onbuild)
					dispatch(L, S, &W->c, in->onbuild, from_at);
			}
		}
		for (size_t k = 1; k < s->count; k++) {
			size_t idx = s->first + k;
			if (idx >= f->n_instructions)
				break;
			const struct df_instruction *in = &f->instructions[idx];
			dispatch(L, S, &W->c, in, loc_of(in));
		}
		S->dispatched = true;
		if (P && last_child[s->base_stage] == i) {
			env_release(&W->st[s->base_stage].env);
			strs_release(&W->st[s->base_stage].build_args);
		}
		if (last_child[i] == 0) {
			env_release(&S->env);
			strs_release(&S->build_args);
		}
	}
	free(last_child);
	free(reach);
}

/* Steps 2 and 3. */
static void check_instructions(struct lint *L)
{
	const struct df_file *f = L->file;
	for (size_t i = 0; i < f->n_instructions; i++) {
		const struct df_instruction *in = &f->instructions[i];
		struct loc at = loc_of(in);
		const char *kw = in->keyword ? in->keyword : df_kind_name(in->kind);
		if (in->kind == DF_MAINTAINER)
			report(L, R_MAINTAINER_DEPRECATED, at,
			       "Maintainer instruction is deprecated in favor of using label");
		if (in->kind == DF_FROM && in->n_args == 3 && in->args[1] && in->args[2]) {
			if (!is_lower_str(in->args[2]))
				report(L, R_STAGE_NAME_CASING, at,
				       "Stage name '%s' should be lowercase", in->args[2]);
			bool from_lower = is_lower_str(kw), from_upper = is_upper_str(kw);
			if ((from_lower && !is_lower_str(in->args[1])) ||
			    (!from_lower && from_upper && !is_upper_str(in->args[1])))
				report(L, R_FROM_AS_CASING, at,
				       "'%s' and '%s' keywords' casing do not match", in->args[1], kw);
		}
	}
}

static void check_stage_names(struct lint *L)
{
	const struct df_file *f = L->file;
	for (size_t i = 0; i < f->n_stages; i++) {
		const struct df_stage *s = &f->stages[i];
		if (!s->name || !*s->name)
			continue;
		const struct df_instruction *from = stage_from(f, s);
		struct loc at = from ? loc_of(from) : (struct loc){ s->line, 1, s->line };
		if (strcmp(s->name, "context") == 0 || strcmp(s->name, "scratch") == 0) {
			struct sb msg = { 0 };
			sb_adds(&msg, "Stage name should not use the same name as reserved stage ");
			goquote(&msg, s->name);
			report_msg(L, R_RESERVED_STAGE_NAME, at, &msg);
		}
		for (size_t k = 0; k < i; k++) {
			if (f->stages[k].name && strcmp(f->stages[k].name, s->name) == 0) {
				struct sb msg = { 0 };
				sb_adds(&msg, "Duplicate stage name ");
				goquote(&msg, s->name);
				sb_adds(&msg, ", stage names should be unique");
				report_msg(L, R_DUPLICATE_STAGE_NAME, at, &msg);
				break;
			}
		}
	}
}

static void check_casing(struct lint *L)
{
	const struct df_file *f = L->file;
	size_t lowers = 0, uppers = 0;
	size_t first = f->n_meta_args < f->n_instructions ? f->n_meta_args : f->n_instructions;
	for (size_t i = first; i < f->n_instructions; i++) {
		const struct df_instruction *in = &f->instructions[i];
		const char *kw = in->keyword ? in->keyword : df_kind_name(in->kind);
		if (is_lower_str(kw))
			lowers++;
		else if (is_upper_str(kw))
			uppers++;
	}
	bool majority_lower = lowers > uppers;
	for (size_t i = first; i < f->n_instructions; i++) {
		const struct df_instruction *in = &f->instructions[i];
		const char *kw = in->keyword ? in->keyword : df_kind_name(in->kind);
		const char *want = NULL;
		if (majority_lower && !is_lower_str(kw))
			want = "lowercase";
		else if (!majority_lower && !is_upper_str(kw))
			want = "uppercase";
		if (want)
			report(L, R_CONSISTENT_INSTRUCTION_CASING, loc_of(in),
			       "Command '%s' should match the case of the command majority (%s)", kw, want);
	}
}

static void check_default_args(struct lint *L, struct walk *W)
{
	const struct df_file *f = L->file;
	struct env args = { 0 };
	default_args(L, &args);
	if (meta_args(L, &args, NULL, false, &W->c)) {
		for (size_t i = 0; i < f->n_stages; i++) {
			const struct df_stage *s = &f->stages[i];
			const char *base = s->base_raw ? s->base_raw : s->base ? s->base : "";
			char *r = expand(L, base, f->escape ? f->escape : '\\', &args, &W->c);
			if (!r)
				break;
			if (!valid_reference(r)) {
				const struct df_instruction *from = stage_from(f, s);
				report(L, R_INVALID_DEFAULT_ARG_IN_FROM,
				       from ? loc_of(from) : (struct loc){ s->line, 1, s->line },
				       "Default value for ARG %s results in empty or invalid base image name",
				       base);
			}
			free(r);
		}
	}
	env_release(&args);
}

static bool is_continuation_warning(const char *m)
{
	for (const char *p = m; p && *p; p++)
		if (lower(*p) == 'c' && ieqn(p, 12, "continuation"))
			return true;
	return false;
}

static int cmp_items(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	if (x->f.line != y->f.line)
		return x->f.line < y->f.line ? -1 : 1;
	if (x->f.column != y->f.column)
		return x->f.column < y->f.column ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void set_err(struct df_error *err, int line, const char *msg)
{
	if (!err)
		return;
	err->line = line;
	err->column = line ? 1 : 0;
	snprintf(err->message, sizeof(err->message), "%s", msg);
}

/* Reads the check configuration: BUILDKIT_DOCKERFILE_CHECK when given,
 * else the file's check directive (its value up to the first blank). */
static int load_config(struct lint *L, struct df_error *err)
{
	const char *barg = build_arg(L, "BUILDKIT_DOCKERFILE_CHECK");
	struct sb msg = { 0 };
	int line = 0;
	if (barg || has_build_arg(L, "BUILDKIT_DOCKERFILE_CHECK")) {
		sb_adds(&msg, "failed to parse BUILDKIT_DOCKERFILE_CHECK: ");
		if (parse_check(barg ? barg : "", &L->cfg, &msg) == 0) {
			sb_release(&msg);
			return 0;
		}
	} else {
		const struct df_directive *d = NULL;
		for (size_t i = 0; i < L->file->n_directives; i++)
			if (L->file->directives[i].name &&
			    strcmp(L->file->directives[i].name, "check") == 0) {
				d = &L->file->directives[i];
				break;
			}
		if (!d || !d->value) {
			sb_release(&msg);
			return 0;
		}
		line = d->line;
		const char *sp = strchr(d->value, ' ');
		char *v = sp ? strndup(d->value, (size_t)(sp - d->value)) : strdup(d->value);
		if (!v) {
			sb_release(&msg);
			set_err(err, 0, "out of memory");
			return -1;
		}
		sb_adds(&msg, "failed to parse check options: ");
		int rc = parse_check(v, &L->cfg, &msg);
		free(v);
		if (rc == 0) {
			sb_release(&msg);
			return 0;
		}
	}
	set_err(err, line, msg.oom || !msg.p ? "out of memory" : msg.p);
	sb_release(&msg);
	return -1;
}

int df_lint(const struct df_file *file, const struct df_lint_opts *opts,
	    struct df_lint_result *res, struct df_error *err)
{
	*res = (struct df_lint_result){ 0 };
	struct lint L = { .file = file, .opts = opts };
	if (load_config(&L, err) < 0) {
		strs_release(&L.cfg.skip);
		return -1;
	}

	/* 1. the parser's warnings */
	for (size_t i = 0; i < file->n_warnings; i++) {
		const struct df_warning *w = &file->warnings[i];
		if (is_continuation_warning(w->message))
			report(&L, R_NO_EMPTY_CONTINUATION, (struct loc){ w->line, 1, w->line },
			       "Empty continuation line");
	}
	/* 2, 3 */
	check_instructions(&L);
	check_stage_names(&L);
	check_casing(&L);

	struct walk W = { 0 };
	W.st = calloc(file->n_stages ? file->n_stages : 1, sizeof(*W.st));
	if (!W.st) {
		L.oom = true;
	} else {
		check_default_args(&L, &W);
		/* 4, 5 */
		default_args(&L, &W.globals);
		L.globals = &W.globals;
		if (meta_args(&L, &W.globals, &W.declared, true, &W.c) && check_froms(&L, &W))
			dispatch_stages(&L, &W);
		for (size_t i = 0; i < file->n_stages; i++) {
			env_release(&W.st[i].env);
			strs_release(&W.st[i].build_args);
		}
	}
	free(W.st);
	env_release(&W.globals);
	strs_release(&W.declared);
	lookup_release(&W.c);
	strs_release(&L.cfg.skip);

	if (L.oom) {
		for (size_t i = 0; i < L.n; i++)
			free(L.items[i].f.message);
		free(L.items);
		set_err(err, 0, "out of memory");
		return -1;
	}
	if (L.n)
		qsort(L.items, L.n, sizeof(L.items[0]), cmp_items);
	res->findings = malloc((L.n ? L.n : 1) * sizeof(*res->findings));
	if (!res->findings) {
		for (size_t i = 0; i < L.n; i++)
			free(L.items[i].f.message);
		free(L.items);
		set_err(err, 0, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < L.n; i++)
		res->findings[i] = L.items[i].f;
	res->n = L.n;
	res->error = L.cfg.error;
	res->skipped = L.skipped;
	free(L.items);
	return 0;
}

void df_lint_result_free(struct df_lint_result *res)
{
	if (!res)
		return;
	for (size_t i = 0; i < res->n; i++)
		free(res->findings[i].message);
	free(res->findings);
	*res = (struct df_lint_result){ 0 };
}
