/*
 * graph.c: the LLB graph builder behind kiln_host.graph_* (contracts in
 * include/kiln/graph.h, wire facts in BUILDKIT-WIRE.md sections 3 and 4,
 * behaviour after BuildKit's client/llb v0.8).
 *
 * Each vertex is marshalled into its pb.Op bytes when it is added, so its
 * digest is known at once and an identical op collapses into the existing
 * vertex. A graph keeps only those bytes plus what marshalling the
 * Definition needs (input vertices, metadata, platform for inheritance),
 * all in its own arena. Building an op uses a scratch arena that is freed
 * before returning; nothing is committed to the graph until every check
 * has passed, so a failed call leaves the graph as it was.
 *
 * Determinism: op bytes depend only on the arguments (protobuf-c writes
 * fields in field-number order; map entries are sorted here, byte-wise by
 * key; no pointers, clocks or random IDs), and the Definition lists ops in
 * vertex order, which is the order of the calls.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ops.pb-c.h"

#include "arena.h"
#include "graph_internal.h"
#include "util.h"

/* Most caps one op can need (an exec using every feature needs 11). */
#define MAX_CAPS 24

/* Sizes of the first version of each option struct: a caller built
 * against this header passes at least this much. */
#define END_OF(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))
#define GRAPH_OPTS_V1 END_OF(struct kiln_graph_opts, session_id)
#define SOURCE_V1 END_OF(struct kiln_graph_source, ignore_cache)
#define MOUNT_V1 END_OF(struct kiln_graph_mount, optional)
#define EXEC_V1 END_OF(struct kiln_graph_exec, ignore_cache)
#define ACTION_V1 END_OF(struct kiln_graph_file_action, created_ns)
#define FILE_V1 END_OF(struct kiln_graph_file, ignore_cache)

/* Cap IDs (BuildKit solver/pb/caps.go; all exist in v0.8). */
#define CAP_SOURCE_IMAGE "source.image"
#define CAP_SOURCE_IMAGE_RESOLVEMODE "source.image.resolvemode"
#define CAP_SOURCE_LOCAL "source.local"
#define CAP_SOURCE_LOCAL_UNIQUE "source.local.unique"
#define CAP_SOURCE_LOCAL_SESSIONID "source.local.sessionid"
#define CAP_SOURCE_LOCAL_INCLUDE "source.local.includepatterns"
#define CAP_SOURCE_LOCAL_FOLLOW "source.local.followpaths"
#define CAP_SOURCE_LOCAL_EXCLUDE "source.local.excludepatterns"
#define CAP_SOURCE_LOCAL_SHAREDKEYHINT "source.local.sharedkeyhint"
#define CAP_SOURCE_GIT "source.git"
#define CAP_SOURCE_GIT_KEEPDIR "source.git.keepgitdir"
#define CAP_SOURCE_GIT_FULLURL "source.git.fullurl"
#define CAP_SOURCE_GIT_HTTPAUTH "source.git.httpauth"
#define CAP_SOURCE_GIT_KNOWNSSHHOSTS "source.git.knownsshhosts"
#define CAP_SOURCE_GIT_MOUNTSSHSOCK "source.git.mountsshsock"
#define CAP_SOURCE_HTTP "source.http"
#define CAP_SOURCE_HTTP_CHECKSUM "source.http.checksum"
#define CAP_SOURCE_HTTP_PERM "source.http.perm"
#define CAP_SOURCE_HTTP_UIDGID "soruce.http.uidgid" /* sic: BuildKit's spelling */
#define CAP_EXEC_META_BASE "exec.meta.base"
#define CAP_EXEC_META_PROXY "exec.meta.proxyenv"
#define CAP_EXEC_META_NETWORK "exec.meta.network"
#define CAP_EXEC_META_SECURITY "exec.meta.security"
#define CAP_EXEC_MOUNT_BIND "exec.mount.bind"
#define CAP_EXEC_MOUNT_CACHE "exec.mount.cache"
#define CAP_EXEC_MOUNT_CACHE_SHARING "exec.mount.cache.sharing"
#define CAP_EXEC_MOUNT_SELECTOR "exec.mount.selector"
#define CAP_EXEC_MOUNT_TMPFS "exec.mount.tmpfs"
#define CAP_EXEC_MOUNT_SECRET "exec.mount.secret"
#define CAP_EXEC_MOUNT_SSH "exec.mount.ssh"
#define CAP_FILE_BASE "file.base"
#define CAP_FILE_RM_WILDCARD "file.rm.wildcard"
#define CAP_CONSTRAINTS "constraints"
#define CAP_PLATFORM "platform"
#define CAP_META_IGNORECACHE "meta.ignorecache"
#define CAP_META_DESCRIPTION "meta.description"

#define DESC_CUSTOMNAME "llb.customname"

/* A parsed platform; os == NULL means none. Strings live in an arena. */
struct plat {
	const char *os, *arch, *variant;
};

/* Per-vertex metadata (pb.OpMetadata). */
struct meta {
	bool ignore_cache;
	struct kiln_kv *desc; /* sorted by key, keys unique */
	size_t n_desc;
	const char *caps[MAX_CAPS]; /* static strings, sorted, unique */
	size_t n_caps;
};

/* One vertex. Everything it points to is in the graph's arena. */
struct node {
	uint8_t *bytes; /* the marshalled pb.Op */
	size_t len;
	char digest[KILN_GRAPH_DIGEST_SIZE];
	uint32_t n_outputs;
	struct plat plat;
	uint32_t *inputs; /* vertex numbers this op reads, each < its own */
	size_t n_inputs;
	struct meta meta;
};

struct kiln_graph {
	struct kiln_arena *arena;
	struct node *nodes; /* vertex k is nodes[k - 1] */
	size_t n, cap;
	uint32_t *slots; /* open addressing: digest -> vertex number, 0 = empty */
	size_t n_slots;  /* a power of two, at least 2 * n */
	struct plat plat;
	const char *session_id;
};

/* An op under construction; all in tmp, which the caller frees. */
struct build {
	struct kiln_graph *g;
	struct kiln_arena *tmp;
	struct kiln_err *err;
	Pb__Op *op;
	Pb__Input **inputs;
	uint32_t *input_nodes;
	size_t n_inputs, cap_inputs;
	struct plat plat;
	struct meta meta;
};

/* ---- small helpers ---------------------------------------------------- */

static char *tdup(struct build *b, const char *s)
{
	return kiln__arena_strdup(b->tmp, s ? s : "");
}

static void *talloc(struct build *b, size_t n, size_t size)
{
	return kiln__arena_alloc(b->tmp, n * size);
}

static char *arena_printf(struct kiln_arena *a, const char *fmt, ...) KILN_PRINTF(2, 3);
static char *arena_printf(struct kiln_arena *a, const char *fmt, ...)
{
	struct kiln_sb sb = KILN_SB_INIT;
	va_list ap;
	va_start(ap, fmt);
	kiln__sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	char *s = kiln__arena_strdup(a, kiln__sb_str(&sb));
	kiln__sb_release(&sb);
	return s;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static void add_cap(struct meta *m, const char *cap)
{
	for (size_t i = 0; i < m->n_caps; i++)
		if (strcmp(m->caps[i], cap) == 0)
			return;
	if (m->n_caps < MAX_CAPS)
		m->caps[m->n_caps++] = cap;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_kv(const void *a, const void *b)
{
	return strcmp(((const struct kiln_kv *)a)->key, ((const struct kiln_kv *)b)->key);
}

/*
 * Copy a caller's option struct (first member uint32_t struct_size) into
 * *dst of size bytes: at least min bytes are required; a larger struct from
 * a newer caller is accepted when the fields this core does not know are
 * all zero (as Linux's copy_struct_from_user does).
 */
static int copy_opts(void *dst, size_t size, size_t min, const void *src,
		     const char *what, struct kiln_err *err)
{
	uint32_t have;
	if (!src)
		return kiln__err(err, KILN_E_INVALID, "%s: no options given", what);
	memcpy(&have, src, sizeof(have));
	if (have < min)
		return kiln__err(err, KILN_E_INVALID,
				 "%s: struct_size %u is less than %zu (not set?)", what,
				 (unsigned)have, min);
	if (have > size) {
		const unsigned char *tail = (const unsigned char *)src + size;
		for (size_t i = 0; i < have - size; i++)
			if (tail[i])
				return kiln__err(err, KILN_E_UNSUPPORTED,
						 "%s: sets options newer than this kiln (%s)",
						 what, KILN_VERSION);
	}
	memset(dst, 0, size);
	memcpy(dst, src, have < size ? have : size);
	return 0;
}

/* Copy element i of a caller's array of option structs whose stride is
 * the first element's struct_size. */
static int copy_elem(void *dst, size_t size, size_t min, const void *array,
		     size_t i, const char *what, struct kiln_err *err)
{
	uint32_t stride, mine;
	memcpy(&stride, array, sizeof(stride));
	if (stride < min)
		return copy_opts(dst, size, min, array, what, err);
	const unsigned char *p = (const unsigned char *)array + i * stride;
	memcpy(&mine, p, sizeof(mine));
	if (mine != stride)
		return kiln__err(err, KILN_E_INVALID,
				 "%s %zu: struct_size %u differs from the first element's %u",
				 what, i, (unsigned)mine, (unsigned)stride);
	return copy_opts(dst, size, min, p, what, err);
}

/*
 * Go's path.Clean of p, made absolute (client/llb normalizePath with the
 * parent "/"). keep_slash keeps a trailing "/" (or "/.") as BuildKit does
 * for copy destinations, where it means "into this directory".
 */
static char *clean_path(struct kiln_arena *a, const char *p, bool keep_slash)
{
	size_t o = 0;
	char *out = kiln__arena_alloc(a, strlen(p) + 4);
	out[o++] = '/';
	for (const char *s = p; *s;) {
		while (*s == '/')
			s++;
		if (!*s)
			break;
		const char *e = s;
		while (*e && *e != '/')
			e++;
		size_t len = (size_t)(e - s);
		if (len == 1 && s[0] == '.') {
			/* skip */
		} else if (len == 2 && s[0] == '.' && s[1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 1)
				o--;
		} else {
			if (o > 1)
				out[o++] = '/';
			memcpy(out + o, s, len);
			o += len;
		}
		s = e;
	}
	if (keep_slash) {
		if (has_suffix(p, "/")) {
			if (out[o - 1] != '/')
				out[o++] = '/';
		} else if (has_suffix(p, "/.")) {
			if (o > 1)
				out[o++] = '/';
			out[o++] = '.';
		}
	}
	out[o] = '\0';
	return out;
}

static bool platform_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

/* Parse "os/arch[/variant]" into *p, normalised as containerd's
 * platforms.Normalize does for the common cases. */
static int parse_platform(struct kiln_arena *a, const char *s, struct plat *p,
			  struct kiln_err *err)
{
	char part[3][64];
	size_t n = 0, len = 0;
	for (const char *c = s;; c++) {
		if (*c == '/' || *c == '\0') {
			if (len == 0 || n == 3)
				goto bad;
			part[n++][len] = '\0';
			len = 0;
			if (*c == '\0')
				break;
			continue;
		}
		if (!platform_char(*c) || len + 1 >= sizeof(part[0]))
			goto bad;
		char l = *c;
		if (l >= 'A' && l <= 'Z')
			l = (char)(l - 'A' + 'a');
		part[n][len++] = l;
	}
	if (n < 2)
		goto bad;
	const char *os = part[0], *arch = part[1], *variant = n == 3 ? part[2] : "";
	if (strcmp(os, "macos") == 0)
		os = "darwin";
	if (!strcmp(arch, "x86_64") || !strcmp(arch, "x86-64") || !strcmp(arch, "amd64")) {
		arch = "amd64";
		if (!strcmp(variant, "v1"))
			variant = "";
	} else if (!strcmp(arch, "i386") || !strcmp(arch, "i686") || !strcmp(arch, "x86")) {
		arch = "386";
	} else if (!strcmp(arch, "aarch64") || !strcmp(arch, "arm64")) {
		arch = "arm64";
		if (!strcmp(variant, "8") || !strcmp(variant, "v8"))
			variant = "";
	} else if (!strcmp(arch, "armhf")) {
		arch = "arm";
		variant = "v7";
	} else if (!strcmp(arch, "armel")) {
		arch = "arm";
		variant = "v6";
	} else if (!strcmp(arch, "arm")) {
		if (!*variant || !strcmp(variant, "7"))
			variant = "v7";
		else if (!strcmp(variant, "5") || !strcmp(variant, "6") || !strcmp(variant, "8"))
			variant = arena_printf(a, "v%s", variant);
	}
	p->os = kiln__arena_strdup(a, os);
	p->arch = kiln__arena_strdup(a, arch);
	p->variant = kiln__arena_strdup(a, variant);
	return 0;
bad:
	return kiln__err(err, KILN_E_INVALID,
			 "bad platform \"%s\" (want os/arch[/variant], e.g. linux/arm64)", s);
}

static bool is_lower_path_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
	       c == '_' || c == '-' || c == '/';
}

/* Normalise an image reference as docker's ParseNormalizedNamed +
 * TagNameOnly do: "alpine" -> "docker.io/library/alpine:latest". */
static int normalize_image(struct kiln_arena *a, const char *ref, const char **out,
			   struct kiln_err *err)
{
	size_t n = strlen(ref);
	if (n == 0 || n > 4096)
		goto bad;
	for (size_t i = 0; i < n; i++)
		if (ref[i] <= ' ' || ref[i] >= 127)
			goto bad;
	if (strstr(ref, "://"))
		goto bad;

	const char *at = strchr(ref, '@');
	const char *dig = at ? at + 1 : NULL;
	size_t name_len = at ? (size_t)(at - ref) : n;
	if (dig) {
		const char *colon = strchr(dig, ':');
		if (!colon || colon == dig || !colon[1] || strchr(dig, '@'))
			goto bad;
	}
	const char *tag = NULL;
	size_t tag_len = 0;
	for (size_t i = name_len; i > 0; i--) {
		if (ref[i - 1] == '/')
			break;
		if (ref[i - 1] == ':') {
			tag = ref + i;
			tag_len = name_len - i;
			name_len = i - 1;
			break;
		}
	}
	if (tag) {
		if (tag_len == 0 || tag_len > 128)
			goto bad;
		for (size_t i = 0; i < tag_len; i++)
			if (!platform_char(tag[i]))
				goto bad;
	}
	if (name_len == 0)
		goto bad;

	const char *domain = "docker.io", *path = ref;
	size_t domain_len = 9, path_len = name_len;
	const char *slash = memchr(ref, '/', name_len);
	if (slash) {
		size_t first = (size_t)(slash - ref);
		bool is_domain = (first == 9 && memcmp(ref, "localhost", 9) == 0);
		for (size_t i = 0; i < first; i++)
			if (ref[i] == '.' || ref[i] == ':' || (ref[i] >= 'A' && ref[i] <= 'Z'))
				is_domain = true;
		if (is_domain) {
			domain = ref;
			domain_len = first;
			path = slash + 1;
			path_len = name_len - first - 1;
		}
	}
	if (domain_len == 15 && memcmp(domain, "index.docker.io", 15) == 0) {
		domain = "docker.io";
		domain_len = 9;
	}
	if (path_len == 0 || path[0] == '/' || path[path_len - 1] == '/')
		goto bad;
	for (size_t i = 0; i < path_len; i++)
		if (!is_lower_path_char(path[i]) || (path[i] == '/' && path[i + 1] == '/'))
			goto bad;
	bool library = domain_len == 9 && memcmp(domain, "docker.io", 9) == 0 &&
		       !memchr(path, '/', path_len);
	if (!tag && !dig) {
		tag = "latest";
		tag_len = 6;
	}
	*out = arena_printf(a, "%.*s/%s%.*s%s%.*s%s%s", (int)domain_len, domain,
			    library ? "library/" : "", (int)path_len, path, tag ? ":" : "",
			    (int)tag_len, tag ? tag : "", dig ? "@" : "", dig ? dig : "");
	return 0;
bad:
	return kiln__err(err, KILN_E_INVALID, "bad image reference \"%s\"", ref);
}

/* ---- the graph -------------------------------------------------------- */

int kiln__graph_new(const struct kiln_graph_opts *opts_in, struct kiln_graph **out,
		    struct kiln_err *err)
{
	struct kiln_graph_opts opts = { 0 };
	if (!out)
		return kiln__err(err, KILN_E_INVALID, "graph_new: out is NULL");
	*out = NULL;
	if (opts_in) {
		int rc = copy_opts(&opts, sizeof(opts), GRAPH_OPTS_V1, opts_in,
				   "graph options", err);
		if (rc < 0)
			return rc;
	}
	if (opts.session_id && (!*opts.session_id || strchr(opts.session_id, ':')))
		return kiln__err(err, KILN_E_INVALID,
				 "session ID \"%s\" must be non-empty and have no ':'",
				 opts.session_id);
	struct kiln_graph *g = kiln__xcalloc(1, sizeof(*g));
	g->arena = kiln__arena_new();
	if (opts.platform) {
		int rc = parse_platform(g->arena, opts.platform, &g->plat, err);
		if (rc < 0) {
			kiln__graph_free(g);
			return rc;
		}
	}
	g->session_id = kiln__arena_strdup(g->arena, opts.session_id);
	*out = g;
	return 0;
}

void kiln__graph_free(struct kiln_graph *g)
{
	if (!g)
		return;
	kiln__arena_free(g->arena);
	free(g->nodes);
	free(g->slots);
	free(g);
}

static size_t digest_hash(const char *digest)
{
	size_t h = 0;
	for (const char *c = digest + 7; *c; c++) /* the hex is already uniform */
		h = h * 31 + (size_t)(unsigned char)*c;
	return h;
}

static uint32_t find_digest(const struct kiln_graph *g, const char *digest)
{
	if (!g->n_slots)
		return 0;
	for (size_t i = digest_hash(digest) & (g->n_slots - 1);; i = (i + 1) & (g->n_slots - 1)) {
		uint32_t k = g->slots[i];
		if (!k || strcmp(g->nodes[k - 1].digest, digest) == 0)
			return k;
	}
}

static void insert_slot(struct kiln_graph *g, uint32_t k)
{
	size_t i = digest_hash(g->nodes[k - 1].digest) & (g->n_slots - 1);
	while (g->slots[i])
		i = (i + 1) & (g->n_slots - 1);
	g->slots[i] = k;
}

static int check_ref(const struct kiln_graph *g, struct kiln_graph_ref ref,
		     const char *what, bool scratch_ok, struct kiln_err *err)
{
	if (ref.node == 0) {
		if (scratch_ok && ref.output == 0)
			return 0;
		return kiln__err(err, KILN_E_INVALID, "%s: %s", what,
				 scratch_ok ? "scratch has only output 0" : "is scratch");
	}
	if (ref.node > g->n)
		return kiln__err(err, KILN_E_INVALID, "%s: unknown vertex %u (the graph has %zu)",
				 what, (unsigned)ref.node, g->n);
	if (ref.output >= g->nodes[ref.node - 1].n_outputs)
		return kiln__err(err, KILN_E_INVALID, "%s: vertex %u has no output %u", what,
				 (unsigned)ref.node, (unsigned)ref.output);
	return 0;
}

/* ---- building one op -------------------------------------------------- */

static void build_init(struct build *b, struct kiln_graph *g, size_t max_inputs,
		       struct kiln_err *err)
{
	memset(b, 0, sizeof(*b));
	b->g = g;
	b->err = err;
	b->tmp = kiln__arena_new();
	b->op = talloc(b, 1, sizeof(*b->op));
	pb__op__init(b->op);
	b->cap_inputs = max_inputs;
	b->inputs = talloc(b, max_inputs ? max_inputs : 1, sizeof(*b->inputs));
	b->input_nodes = talloc(b, max_inputs ? max_inputs : 1, sizeof(*b->input_nodes));
}

/* The input index of ref in the op (-1 for scratch); an input used twice
 * is listed once, as client/llb does. ref must have been checked. */
static int64_t build_input(struct build *b, struct kiln_graph_ref ref)
{
	if (ref.node == 0)
		return -1;
	const struct node *nd = &b->g->nodes[ref.node - 1];
	for (size_t i = 0; i < b->n_inputs; i++)
		if (b->input_nodes[i] == ref.node && b->inputs[i]->index == (int64_t)ref.output)
			return (int64_t)i;
	Pb__Input *in = talloc(b, 1, sizeof(*in));
	pb__input__init(in);
	in->digest = tdup(b, nd->digest);
	in->index = ref.output;
	b->inputs[b->n_inputs] = in;
	b->input_nodes[b->n_inputs] = ref.node;
	return (int64_t)b->n_inputs++;
}

/* The platform of an op: explicit, else inherited from vertex `from`
 * (when it has one), else the graph's. */
static int build_platform(struct build *b, const char *explicit_, uint32_t from)
{
	if (explicit_)
		return parse_platform(b->tmp, explicit_, &b->plat, b->err);
	if (from && b->g->nodes[from - 1].plat.os)
		b->plat = b->g->nodes[from - 1].plat;
	else
		b->plat = b->g->plat;
	return 0;
}

/* Validate and take the metadata fields of an option struct. */
static int build_meta(struct build *b, const char *what, const char *name,
		      const struct kiln_kv *desc, size_t n_desc, bool ignore_cache)
{
	size_t n = n_desc + (name ? 1 : 0);
	if (n_desc && !desc)
		return kiln__err(b->err, KILN_E_INVALID, "%s: n_description without description", what);
	struct kiln_kv *kv = talloc(b, n ? n : 1, sizeof(*kv));
	for (size_t i = 0; i < n_desc; i++) {
		if (!desc[i].key || !*desc[i].key || !desc[i].value)
			return kiln__err(b->err, KILN_E_INVALID,
					 "%s: description %zu has no key or value", what, i);
		kv[i].key = tdup(b, desc[i].key);
		kv[i].value = tdup(b, desc[i].value);
	}
	if (name) {
		kv[n_desc].key = DESC_CUSTOMNAME;
		kv[n_desc].value = tdup(b, name);
	}
	qsort(kv, n, sizeof(*kv), cmp_kv);
	for (size_t i = 1; i < n; i++)
		if (strcmp(kv[i - 1].key, kv[i].key) == 0)
			return kiln__err(b->err, KILN_E_INVALID,
					 "%s: description key \"%s\" given twice", what, kv[i].key);
	b->meta.desc = kv;
	b->meta.n_desc = n;
	b->meta.ignore_cache = ignore_cache;
	return 0;
}

static struct kiln_kv *dup_kvs(struct kiln_arena *a, const struct kiln_kv *kv, size_t n)
{
	struct kiln_kv *out = kiln__arena_alloc(a, (n ? n : 1) * sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		out[i].key = kiln__arena_strdup(a, kv[i].key);
		out[i].value = kiln__arena_strdup(a, kv[i].value);
	}
	return out;
}

/* Merge the metadata of an identical op into an existing vertex: ignore
 * cache if either does, caps and description keys united (the existing
 * vertex's value wins), as client/llb's mergeMetadata. */
static void merge_meta(struct kiln_graph *g, struct meta *into, const struct meta *m)
{
	into->ignore_cache = into->ignore_cache || m->ignore_cache;
	for (size_t i = 0; i < m->n_caps; i++)
		add_cap(into, m->caps[i]);
	qsort(into->caps, into->n_caps, sizeof(into->caps[0]), cmp_str);
	size_t extra = 0;
	for (size_t i = 0; i < m->n_desc; i++) {
		bool found = false;
		for (size_t j = 0; j < into->n_desc && !found; j++)
			found = strcmp(into->desc[j].key, m->desc[i].key) == 0;
		extra += !found;
	}
	if (!extra)
		return;
	struct kiln_kv *kv = kiln__arena_alloc(g->arena, (into->n_desc + extra) * sizeof(*kv));
	memcpy(kv, into->desc, into->n_desc * sizeof(*kv));
	size_t n = into->n_desc;
	for (size_t i = 0; i < m->n_desc; i++) {
		bool found = false;
		for (size_t j = 0; j < into->n_desc && !found; j++)
			found = strcmp(into->desc[j].key, m->desc[i].key) == 0;
		if (!found) {
			kv[n].key = kiln__arena_strdup(g->arena, m->desc[i].key);
			kv[n].value = kiln__arena_strdup(g->arena, m->desc[i].value);
			n++;
		}
	}
	qsort(kv, n, sizeof(*kv), cmp_kv);
	into->desc = kv;
	into->n_desc = n;
}

/* Pack the op, digest it and commit it as a vertex (or find the identical
 * one); *out = its output 0. Frees b->tmp in every case. */
static int build_finish(struct build *b, uint32_t n_outputs, struct kiln_graph_ref *out)
{
	struct kiln_graph *g = b->g;
	int rc = 0;
	Pb__Op *op = b->op;
	op->n_inputs = b->n_inputs;
	op->inputs = b->n_inputs ? b->inputs : NULL;
	if (b->plat.os) {
		Pb__Platform *p = talloc(b, 1, sizeof(*p));
		pb__platform__init(p);
		p->os = tdup(b, b->plat.os);
		p->architecture = tdup(b, b->plat.arch);
		p->variant = tdup(b, b->plat.variant);
		op->platform = p;
	}
	size_t len = pb__op__get_packed_size(op);
	uint8_t *bytes = talloc(b, len ? len : 1, 1);
	pb__op__pack(op, bytes);
	char digest[KILN_GRAPH_DIGEST_SIZE];
	kiln__sha256_digest(bytes, len, digest);
	qsort(b->meta.caps, b->meta.n_caps, sizeof(b->meta.caps[0]), cmp_str);

	uint32_t k = find_digest(g, digest);
	if (k) {
		merge_meta(g, &g->nodes[k - 1].meta, &b->meta);
		*out = (struct kiln_graph_ref){ k, 0 };
		goto done;
	}
	if (g->n >= UINT32_MAX - 1) {
		rc = kiln__err(b->err, KILN_E_INVALID, "the graph is full");
		goto done;
	}
	if (g->n == g->cap) {
		g->cap = g->cap ? 2 * g->cap : 16;
		g->nodes = kiln__xrealloc(g->nodes, g->cap * sizeof(*g->nodes));
	}
	struct node *nd = &g->nodes[g->n++];
	memset(nd, 0, sizeof(*nd));
	nd->bytes = kiln__arena_alloc(g->arena, len ? len : 1);
	memcpy(nd->bytes, bytes, len);
	nd->len = len;
	memcpy(nd->digest, digest, sizeof(digest));
	nd->n_outputs = n_outputs;
	if (b->plat.os) {
		nd->plat.os = kiln__arena_strdup(g->arena, b->plat.os);
		nd->plat.arch = kiln__arena_strdup(g->arena, b->plat.arch);
		nd->plat.variant = kiln__arena_strdup(g->arena, b->plat.variant);
	}
	nd->n_inputs = b->n_inputs;
	nd->inputs = kiln__arena_alloc(g->arena, (b->n_inputs ? b->n_inputs : 1) * sizeof(uint32_t));
	memcpy(nd->inputs, b->input_nodes, b->n_inputs * sizeof(uint32_t));
	nd->meta = b->meta;
	nd->meta.desc = dup_kvs(g->arena, b->meta.desc, b->meta.n_desc);

	if (2 * g->n > g->n_slots) {
		free(g->slots);
		g->n_slots = g->n_slots ? 2 * g->n_slots : 64;
		g->slots = kiln__xcalloc(g->n_slots, sizeof(*g->slots));
		for (uint32_t i = 1; i < g->n; i++)
			insert_slot(g, i);
	}
	insert_slot(g, (uint32_t)g->n);
	*out = (struct kiln_graph_ref){ (uint32_t)g->n, 0 };
done:
	kiln__arena_free(b->tmp);
	b->tmp = NULL;
	return rc;
}

static void build_abort(struct build *b)
{
	kiln__arena_free(b->tmp);
	b->tmp = NULL;
}

/* ---- sources ---------------------------------------------------------- */

/* Attrs of a SourceOp before sorting. */
struct attrs {
	struct kiln_kv kv[16];
	size_t n;
};

static void attr(struct build *b, struct attrs *at, const char *key, const char *value)
{
	if (at->n < sizeof(at->kv) / sizeof(at->kv[0])) {
		at->kv[at->n].key = key;
		at->kv[at->n].value = tdup(b, value);
		at->n++;
	}
}

/* A JSON array of strings, as client/llb sends patterns. */
static int json_list(struct build *b, const char *what, const char *const *v, size_t n,
		     char **out)
{
	if (!v)
		return kiln__err(b->err, KILN_E_INVALID, "%s: count without array", what);
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *s = v[i] ? json_string(v[i]) : NULL;
		if (!s) {
			json_decref(arr);
			return kiln__err(b->err, KILN_E_INVALID, "%s %zu: missing or not UTF-8", what, i);
		}
		json_array_append_new(arr, s);
	}
	/* Into our own buffer, so jansson's allocator never owns the result. */
	size_t n_json = json_dumpb(arr, NULL, 0, JSON_COMPACT);
	char *buf = talloc(b, n_json + 1, 1);
	if (!n_json || json_dumpb(arr, buf, n_json, JSON_COMPACT) != n_json) {
		json_decref(arr);
		return kiln__err(b->err, KILN_E_INVALID, "%s: cannot encode as JSON", what);
	}
	json_decref(arr);
	*out = buf;
	return 0;
}

/* Fields a kind may set; the rest must be zero. */
enum { F_PLATFORM = 1, F_RESOLVE = 2, F_LOCAL = 4, F_GIT = 8, F_HTTP = 16 };

static int check_source_fields(const struct kiln_graph_source *s, struct kiln_err *err)
{
	static const unsigned allowed[] = {
		[KILN_GRAPH_SOURCE_IMAGE] = F_PLATFORM | F_RESOLVE,
		[KILN_GRAPH_SOURCE_LOCAL] = F_LOCAL,
		[KILN_GRAPH_SOURCE_GIT] = F_GIT,
		[KILN_GRAPH_SOURCE_HTTP] = F_HTTP,
	};
	static const char *const kinds[] = { "", "image", "local", "git", "http" };
	unsigned ok = allowed[s->kind];
	const char *field = NULL;
#define SET(cond, flag, name)                                                 \
	do {                                                                  \
		if ((cond) && !(ok & (flag)) && !field)                       \
			field = (name);                                       \
	} while (0)
	SET(s->platform != NULL, F_PLATFORM, "platform");
	SET(s->resolve_mode != 0, F_RESOLVE, "resolve_mode");
	SET(s->session_id != NULL, F_LOCAL, "session_id");
	SET(s->unique_id != NULL, F_LOCAL, "unique_id");
	SET(s->n_include_patterns != 0 || s->include_patterns, F_LOCAL, "include_patterns");
	SET(s->n_exclude_patterns != 0 || s->exclude_patterns, F_LOCAL, "exclude_patterns");
	SET(s->n_follow_paths != 0 || s->follow_paths, F_LOCAL, "follow_paths");
	SET(s->shared_key_hint != NULL, F_LOCAL, "shared_key_hint");
	SET(s->git_ref != NULL, F_GIT, "git_ref");
	SET(s->keep_git_dir, F_GIT, "keep_git_dir");
	SET(s->auth_token_secret != NULL, F_GIT, "auth_token_secret");
	SET(s->auth_header_secret != NULL, F_GIT, "auth_header_secret");
	SET(s->known_ssh_hosts != NULL, F_GIT, "known_ssh_hosts");
	SET(s->mount_ssh_sock != NULL, F_GIT, "mount_ssh_sock");
	SET(s->checksum != NULL, F_HTTP, "checksum");
	SET(s->filename != NULL, F_HTTP, "filename");
	SET(s->perm != 0, F_HTTP, "perm");
	SET(s->uid != 0 || s->gid != 0, F_HTTP, "uid/gid");
#undef SET
	if (field)
		return kiln__err(err, KILN_E_INVALID, "%s source \"%s\": %s does not apply",
				 kinds[s->kind], s->ref, field);
	return 0;
}

static bool is_ssh_transport(const char *s)
{
	/* sshutil.IsSSHTransport: ^[a-zA-Z0-9-_]+@[a-zA-Z0-9-.]+:.*$ */
	const char *c = s;
	while ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
	       (*c >= '0' && *c <= '9') || *c == '-' || *c == '_')
		c++;
	if (c == s || *c != '@')
		return false;
	const char *h = ++c;
	while ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
	       (*c >= '0' && *c <= '9') || *c == '-' || *c == '.')
		c++;
	return c != h && *c == ':';
}

/* client/llb Git(): identifier "git://HOST/PATH[#REF]" plus attrs. */
static int source_git(struct build *b, const struct kiln_graph_source *s, struct attrs *at,
		      const char **id)
{
	static const struct {
		const char *prefix;
		bool ssh;
	} schemes[] = { { "http://", false }, { "https://", false },
			{ "git://", false }, { "ssh://", true } };
	const char *remote = s->ref;
	bool known = false, ssh = false;
	if (strchr(remote, '#') || strchr(remote, ' '))
		return kiln__err(b->err, KILN_E_INVALID,
				 "git remote \"%s\": put the ref in git_ref", remote);
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t n = strlen(schemes[i].prefix);
		if (strncmp(remote, schemes[i].prefix, n) == 0) {
			remote += n;
			known = true;
			ssh = schemes[i].ssh;
		}
	}
	if (!known && is_ssh_transport(remote))
		known = ssh = true;
	const char *url = known ? tdup(b, s->ref) : arena_printf(b->tmp, "https://%s", s->ref);
	char *r = tdup(b, remote);
	if (ssh) {
		char *user_at = strchr(r, '@');
		if (user_at)
			r = user_at + 1;
		char *colon = strchr(r, ':');
		if (colon)
			*colon = '/'; /* host:path -> host/path, as Go does */
	}
	if (!*r)
		return kiln__err(b->err, KILN_E_INVALID, "bad git remote \"%s\"", s->ref);
	*id = s->git_ref && *s->git_ref ? arena_printf(b->tmp, "git://%s#%s", r, s->git_ref)
					 : arena_printf(b->tmp, "git://%s", r);
	if (s->keep_git_dir) {
		attr(b, at, "git.keepgitdir", "true");
		add_cap(&b->meta, CAP_SOURCE_GIT_KEEPDIR);
	}
	attr(b, at, "git.fullurl", url);
	add_cap(&b->meta, CAP_SOURCE_GIT_FULLURL);
	attr(b, at, "git.authtokensecret", s->auth_token_secret ? s->auth_token_secret : "GIT_AUTH_TOKEN");
	attr(b, at, "git.authheadersecret",
	     s->auth_header_secret ? s->auth_header_secret : "GIT_AUTH_HEADER");
	if (s->auth_token_secret || s->auth_header_secret)
		add_cap(&b->meta, CAP_SOURCE_GIT_HTTPAUTH);
	if (ssh) {
		if (s->known_ssh_hosts)
			attr(b, at, "git.knownsshhosts", s->known_ssh_hosts);
		add_cap(&b->meta, CAP_SOURCE_GIT_KNOWNSSHHOSTS);
		attr(b, at, "git.mountsshsock", s->mount_ssh_sock ? s->mount_ssh_sock : "default");
		add_cap(&b->meta, CAP_SOURCE_GIT_MOUNTSSHSOCK);
	} else if (s->known_ssh_hosts || s->mount_ssh_sock) {
		return kiln__err(b->err, KILN_E_INVALID,
				 "git remote \"%s\": known_ssh_hosts and mount_ssh_sock need an ssh remote",
				 s->ref);
	}
	add_cap(&b->meta, CAP_SOURCE_GIT);
	return 0;
}

static int source_local(struct build *b, const struct kiln_graph_source *s, struct attrs *at,
			const char **id)
{
	if (strchr(s->ref, '/') || strchr(s->ref, ':'))
		return kiln__err(b->err, KILN_E_INVALID,
				 "local source \"%s\": the name may not contain '/' or ':'", s->ref);
	*id = arena_printf(b->tmp, "local://%s", s->ref);
	const char *session = s->session_id ? s->session_id : b->g->session_id;
	if (session) {
		if (!*session || strchr(session, ':'))
			return kiln__err(b->err, KILN_E_INVALID,
					 "local source \"%s\": bad session ID \"%s\"", s->ref, session);
		attr(b, at, "local.session", session);
		add_cap(&b->meta, CAP_SOURCE_LOCAL_SESSIONID);
	} else if (s->unique_id && *s->unique_id) {
		attr(b, at, "local.unique", s->unique_id);
		add_cap(&b->meta, CAP_SOURCE_LOCAL_UNIQUE);
	} else {
		return kiln__err(b->err, KILN_E_INVALID,
				 "local source \"%s\" needs a session_id (here or in the graph "
				 "options) or a unique_id",
				 s->ref);
	}
	char *json;
	int rc;
	if (s->n_include_patterns) {
		if ((rc = json_list(b, "include pattern", s->include_patterns,
				    s->n_include_patterns, &json)) < 0)
			return rc;
		attr(b, at, "local.includepattern", json);
		add_cap(&b->meta, CAP_SOURCE_LOCAL_INCLUDE);
	}
	if (s->n_follow_paths) {
		if ((rc = json_list(b, "follow path", s->follow_paths, s->n_follow_paths, &json)) < 0)
			return rc;
		attr(b, at, "local.followpaths", json);
		add_cap(&b->meta, CAP_SOURCE_LOCAL_FOLLOW);
	}
	if (s->n_exclude_patterns) {
		if ((rc = json_list(b, "exclude pattern", s->exclude_patterns,
				    s->n_exclude_patterns, &json)) < 0)
			return rc;
		attr(b, at, "local.excludepatterns", json);
		add_cap(&b->meta, CAP_SOURCE_LOCAL_EXCLUDE);
	}
	if (s->shared_key_hint && *s->shared_key_hint) {
		attr(b, at, "local.sharedkeyhint", s->shared_key_hint);
		add_cap(&b->meta, CAP_SOURCE_LOCAL_SHAREDKEYHINT);
	}
	add_cap(&b->meta, CAP_SOURCE_LOCAL);
	return 0;
}

static int source_http(struct build *b, const struct kiln_graph_source *s, struct attrs *at,
		       const char **id)
{
	if (strncmp(s->ref, "https://", 8) != 0 && strncmp(s->ref, "http://", 7) != 0)
		return kiln__err(b->err, KILN_E_INVALID,
				 "http source \"%s\": want an http:// or https:// URL", s->ref);
	*id = tdup(b, s->ref);
	if (s->checksum) {
		if (strncmp(s->checksum, "sha256:", 7) != 0 || strlen(s->checksum) != 71)
			return kiln__err(b->err, KILN_E_INVALID,
					 "http source \"%s\": checksum \"%s\" is not sha256:<hex>",
					 s->ref, s->checksum);
		attr(b, at, "http.checksum", s->checksum);
		add_cap(&b->meta, CAP_SOURCE_HTTP_CHECKSUM);
	}
	if (s->filename && *s->filename)
		attr(b, at, "http.filename", s->filename);
	if (s->perm) {
		if (s->perm > 0777)
			return kiln__err(b->err, KILN_E_INVALID, "http source \"%s\": perm %#o above 0777",
					 s->ref, (unsigned)s->perm);
		attr(b, at, "http.perm", arena_printf(b->tmp, "0%o", (unsigned)s->perm));
		add_cap(&b->meta, CAP_SOURCE_HTTP_PERM);
	}
	if (s->uid) {
		attr(b, at, "http.uid", arena_printf(b->tmp, "%u", (unsigned)s->uid));
		add_cap(&b->meta, CAP_SOURCE_HTTP_UIDGID);
	}
	if (s->gid) {
		attr(b, at, "http.gid", arena_printf(b->tmp, "%u", (unsigned)s->gid));
		add_cap(&b->meta, CAP_SOURCE_HTTP_UIDGID);
	}
	add_cap(&b->meta, CAP_SOURCE_HTTP);
	return 0;
}

int kiln__graph_add_source(struct kiln_graph *g, const struct kiln_graph_source *src,
			   struct kiln_graph_ref *out, struct kiln_err *err)
{
	struct kiln_graph_source s;
	int rc;
	if (!g || !out)
		return kiln__err(err, KILN_E_INVALID, "graph_add_source: graph or out is NULL");
	if ((rc = copy_opts(&s, sizeof(s), SOURCE_V1, src, "source", err)) < 0)
		return rc;
	if (s.kind < KILN_GRAPH_SOURCE_IMAGE || s.kind > KILN_GRAPH_SOURCE_HTTP)
		return kiln__err(err, KILN_E_INVALID, "source: unknown kind %d", (int)s.kind);
	if (!s.ref || !*s.ref)
		return kiln__err(err, KILN_E_INVALID, "source: ref is empty");
	if ((unsigned)s.resolve_mode > KILN_GRAPH_RESOLVE_LOCAL)
		return kiln__err(err, KILN_E_INVALID, "source \"%s\": unknown resolve mode %d",
				 s.ref, (int)s.resolve_mode);
	if ((rc = check_source_fields(&s, err)) < 0)
		return rc;

	struct build b;
	build_init(&b, g, 0, err);
	struct attrs at = { .n = 0 };
	const char *id = NULL;
	switch (s.kind) {
	case KILN_GRAPH_SOURCE_IMAGE: {
		const char *ref = NULL;
		if ((rc = normalize_image(b.tmp, s.ref, &ref, err)) < 0)
			goto fail;
		id = arena_printf(b.tmp, "docker-image://%s", ref);
		if (s.resolve_mode == KILN_GRAPH_RESOLVE_PULL) {
			attr(&b, &at, "image.resolvemode", "pull");
			add_cap(&b.meta, CAP_SOURCE_IMAGE_RESOLVEMODE); /* Go: only for pull */
		} else if (s.resolve_mode == KILN_GRAPH_RESOLVE_LOCAL) {
			attr(&b, &at, "image.resolvemode", "local");
		}
		add_cap(&b.meta, CAP_SOURCE_IMAGE);
		/* Only image sources carry a platform (client/llb
		 * platformSpecificSource). */
		if ((rc = build_platform(&b, s.platform, 0)) < 0)
			goto fail;
		break;
	}
	case KILN_GRAPH_SOURCE_LOCAL:
		rc = source_local(&b, &s, &at, &id);
		break;
	case KILN_GRAPH_SOURCE_GIT:
		rc = source_git(&b, &s, &at, &id);
		break;
	case KILN_GRAPH_SOURCE_HTTP:
		rc = source_http(&b, &s, &at, &id);
		break;
	}
	if (rc < 0)
		goto fail;
	if ((rc = build_meta(&b, "source", s.name, s.description, s.n_description,
			     s.ignore_cache)) < 0)
		goto fail;

	Pb__SourceOp *so = talloc(&b, 1, sizeof(*so));
	pb__source_op__init(so);
	so->identifier = tdup(&b, id);
	qsort(at.kv, at.n, sizeof(at.kv[0]), cmp_kv);
	so->n_attrs = at.n;
	so->attrs = talloc(&b, at.n ? at.n : 1, sizeof(*so->attrs));
	for (size_t i = 0; i < at.n; i++) {
		Pb__SourceOp__AttrsEntry *e = talloc(&b, 1, sizeof(*e));
		pb__source_op__attrs_entry__init(e);
		e->key = tdup(&b, at.kv[i].key);
		e->value = tdup(&b, at.kv[i].value);
		so->attrs[i] = e;
	}
	b.op->op_case = PB__OP__OP_SOURCE;
	b.op->source = so;
	return build_finish(&b, 1, out);
fail:
	build_abort(&b);
	return rc;
}

/* ---- exec ------------------------------------------------------------- */

static int check_mount_fields(const struct kiln_graph_mount *m, size_t i, struct kiln_err *err)
{
	const char *bad = NULL;
	bool bind = m->type == KILN_GRAPH_MOUNT_BIND, cache = m->type == KILN_GRAPH_MOUNT_CACHE;
	bool sec = m->type == KILN_GRAPH_MOUNT_SECRET || m->type == KILN_GRAPH_MOUNT_SSH;
	if (!bind && (m->source.node || m->source.output))
		bad = "source";
	else if (!bind && m->selector)
		bad = "selector";
	else if (!bind && m->readonly)
		bad = "readonly";
	else if (!cache && !sec && m->id)
		bad = "id";
	else if (!cache && m->sharing)
		bad = "sharing";
	else if (!sec && (m->uid || m->gid || m->mode))
		bad = "uid/gid/mode";
	else if (!sec && m->optional)
		bad = "optional";
	if (bad)
		return kiln__err(err, KILN_E_INVALID, "mount %zu: %s does not apply to its type", i, bad);
	return 0;
}

int kiln__graph_add_exec(struct kiln_graph *g, const struct kiln_graph_exec *exec,
			 struct kiln_graph_ref *out, struct kiln_err *err)
{
	struct kiln_graph_exec e;
	int rc;
	if (!g || !out)
		return kiln__err(err, KILN_E_INVALID, "graph_add_exec: graph or out is NULL");
	if ((rc = copy_opts(&e, sizeof(e), EXEC_V1, exec, "exec", err)) < 0)
		return rc;
	if (!e.n_args || !e.args)
		return kiln__err(err, KILN_E_INVALID, "exec: args are empty");
	for (size_t i = 0; i < e.n_args; i++)
		if (!e.args[i])
			return kiln__err(err, KILN_E_INVALID, "exec: args[%zu] is NULL", i);
	if ((e.n_env && !e.env) || (e.n_extra_hosts && !e.extra_hosts) ||
	    (e.n_mounts && !e.mounts))
		return kiln__err(err, KILN_E_INVALID, "exec: a count without its array");
	if ((unsigned)e.network > KILN_GRAPH_NET_NONE)
		return kiln__err(err, KILN_E_INVALID, "exec: unknown network mode %d", (int)e.network);
	if ((rc = check_ref(g, e.rootfs, "exec rootfs", true, err)) < 0)
		return rc;
	for (size_t i = 0; i < e.n_env; i++) {
		const char *k = e.env[i].key;
		if (!k || !*k || strchr(k, '=') || !e.env[i].value)
			return kiln__err(err, KILN_E_INVALID,
					 "exec: env %zu needs a key without '=' and a value", i);
	}
	for (size_t i = 0; i < e.n_extra_hosts; i++)
		if (!e.extra_hosts[i].key || !*e.extra_hosts[i].key || !e.extra_hosts[i].value ||
		    !*e.extra_hosts[i].value)
			return kiln__err(err, KILN_E_INVALID, "exec: extra host %zu needs a host and an IP", i);

	struct build b;
	build_init(&b, g, 1 + e.n_mounts, err);
	struct kiln_graph_mount *mounts = talloc(&b, e.n_mounts ? e.n_mounts : 1, sizeof(*mounts));
	Pb__Mount **pm = talloc(&b, 1 + e.n_mounts, sizeof(*pm));
	const char **dests = talloc(&b, 1 + e.n_mounts, sizeof(*dests));
	const char *ssh_sock = NULL;
	size_t n_ssh = 0;
	uint32_t n_outputs = 1;

	/* The root filesystem: mount 0, output 0 (BUILDKIT-WIRE.md 3.3 RUN). */
	pm[0] = talloc(&b, 1, sizeof(*pm[0]));
	pb__mount__init(pm[0]);
	pm[0]->input = build_input(&b, e.rootfs);
	pm[0]->dest = tdup(&b, "/");
	pm[0]->output = 0;
	dests[0] = "/";
	if (e.rootfs.node)
		add_cap(&b.meta, CAP_EXEC_MOUNT_BIND);

	for (size_t i = 0; i < e.n_mounts; i++) {
		struct kiln_graph_mount *m = &mounts[i];
		if ((rc = copy_elem(m, sizeof(*m), MOUNT_V1, e.mounts, i, "mount", err)) < 0)
			goto fail;
		if ((unsigned)m->type > KILN_GRAPH_MOUNT_TMPFS ||
		    (unsigned)m->sharing > KILN_GRAPH_CACHE_LOCKED) {
			rc = kiln__err(err, KILN_E_INVALID, "mount %zu: unknown type or sharing", i);
			goto fail;
		}
		if ((rc = check_mount_fields(m, i, err)) < 0)
			goto fail;
		if (m->mode > 0777) {
			rc = kiln__err(err, KILN_E_INVALID, "mount %zu: mode %#o above 0777", i,
				       (unsigned)m->mode);
			goto fail;
		}
		if (m->type == KILN_GRAPH_MOUNT_SECRET && (!m->id || !*m->id)) {
			rc = kiln__err(err, KILN_E_INVALID, "mount %zu: a secret mount needs an id", i);
			goto fail;
		}
		const char *dest = m->dest;
		if (!dest || !*dest) {
			if (m->type == KILN_GRAPH_MOUNT_SECRET)
				dest = arena_printf(b.tmp, "/run/secrets/%s", m->id);
			else if (m->type == KILN_GRAPH_MOUNT_SSH)
				dest = arena_printf(b.tmp, "/run/buildkit/ssh_agent.%zu", n_ssh);
			else {
				rc = kiln__err(err, KILN_E_INVALID, "mount %zu: dest is empty", i);
				goto fail;
			}
		}
		dest = clean_path(b.tmp, dest, false);
		if (strcmp(dest, "/") == 0) {
			rc = kiln__err(err, KILN_E_INVALID,
				       "mount %zu: dest is \"/\" (use the exec's rootfs)", i);
			goto fail;
		}
		for (size_t j = 0; j <= i; j++)
			if (strcmp(dests[j], dest) == 0) {
				rc = kiln__err(err, KILN_E_INVALID, "mount %zu: %s is mounted twice", i, dest);
				goto fail;
			}
		dests[i + 1] = dest;

		Pb__Mount *p = talloc(&b, 1, sizeof(*p));
		pb__mount__init(p);
		pm[i + 1] = p;
		p->dest = tdup(&b, dest);
		p->input = -1;
		p->output = -1;
		p->mounttype = (Pb__MountType)m->type;
		switch (m->type) {
		case KILN_GRAPH_MOUNT_BIND:
			if ((rc = check_ref(g, m->source, "bind mount source", true, err)) < 0)
				goto fail;
			p->input = build_input(&b, m->source);
			p->readonly = m->readonly;
			p->selector = tdup(&b, m->selector);
			if (m->selector && *m->selector)
				add_cap(&b.meta, CAP_EXEC_MOUNT_SELECTOR);
			if (!m->readonly)
				p->output = n_outputs++;
			if (m->source.node)
				add_cap(&b.meta, CAP_EXEC_MOUNT_BIND);
			break;
		case KILN_GRAPH_MOUNT_CACHE:
			p->cacheopt = talloc(&b, 1, sizeof(*p->cacheopt));
			pb__cache_opt__init(p->cacheopt);
			p->cacheopt->id = tdup(&b, m->id && *m->id ? m->id : dest);
			p->cacheopt->sharing = (Pb__CacheSharingOpt)m->sharing;
			add_cap(&b.meta, CAP_EXEC_MOUNT_CACHE);
			add_cap(&b.meta, CAP_EXEC_MOUNT_CACHE_SHARING);
			break;
		case KILN_GRAPH_MOUNT_SECRET:
			p->secretopt = talloc(&b, 1, sizeof(*p->secretopt));
			pb__secret_opt__init(p->secretopt);
			p->secretopt->id = tdup(&b, m->id);
			p->secretopt->uid = m->uid;
			p->secretopt->gid = m->gid;
			p->secretopt->mode = m->mode ? m->mode : 0400;
			p->secretopt->optional = m->optional;
			add_cap(&b.meta, CAP_EXEC_MOUNT_SECRET);
			break;
		case KILN_GRAPH_MOUNT_SSH:
			p->sshopt = talloc(&b, 1, sizeof(*p->sshopt));
			pb__sshopt__init(p->sshopt);
			p->sshopt->id = tdup(&b, m->id);
			p->sshopt->uid = m->uid;
			p->sshopt->gid = m->gid;
			p->sshopt->mode = m->mode ? m->mode : 0600;
			p->sshopt->optional = m->optional;
			if (!ssh_sock)
				ssh_sock = dest;
			n_ssh++;
			add_cap(&b.meta, CAP_EXEC_MOUNT_SSH);
			break;
		case KILN_GRAPH_MOUNT_TMPFS:
			add_cap(&b.meta, CAP_EXEC_MOUNT_TMPFS);
			break;
		}
	}

	Pb__Meta *meta = talloc(&b, 1, sizeof(*meta));
	pb__meta__init(meta);
	meta->n_args = e.n_args;
	meta->args = talloc(&b, e.n_args, sizeof(char *));
	for (size_t i = 0; i < e.n_args; i++)
		meta->args[i] = tdup(&b, e.args[i]);
	bool has_sock = false;
	for (size_t i = 0; i < e.n_env; i++)
		has_sock = has_sock || strcmp(e.env[i].key, "SSH_AUTH_SOCK") == 0;
	meta->n_env = e.n_env + (ssh_sock && !has_sock);
	meta->env = talloc(&b, meta->n_env ? meta->n_env : 1, sizeof(char *));
	for (size_t i = 0; i < e.n_env; i++)
		meta->env[i] = arena_printf(b.tmp, "%s=%s", e.env[i].key, e.env[i].value);
	if (ssh_sock && !has_sock)
		meta->env[e.n_env] = arena_printf(b.tmp, "SSH_AUTH_SOCK=%s", ssh_sock);
	if (!meta->n_env)
		meta->env = NULL;
	meta->cwd = clean_path(b.tmp, e.cwd && *e.cwd ? e.cwd : "/", false);
	meta->user = tdup(&b, e.user);
	meta->hostname = tdup(&b, e.hostname);
	if (e.n_extra_hosts) {
		meta->n_extrahosts = e.n_extra_hosts;
		meta->extrahosts = talloc(&b, e.n_extra_hosts, sizeof(*meta->extrahosts));
		for (size_t i = 0; i < e.n_extra_hosts; i++) {
			Pb__HostIP *h = talloc(&b, 1, sizeof(*h));
			pb__host_ip__init(h);
			h->host = tdup(&b, e.extra_hosts[i].key);
			h->ip = tdup(&b, e.extra_hosts[i].value);
			meta->extrahosts[i] = h;
		}
	}
	if (e.http_proxy || e.https_proxy || e.ftp_proxy || e.no_proxy) {
		meta->proxy_env = talloc(&b, 1, sizeof(*meta->proxy_env));
		pb__proxy_env__init(meta->proxy_env);
		meta->proxy_env->http_proxy = tdup(&b, e.http_proxy);
		meta->proxy_env->https_proxy = tdup(&b, e.https_proxy);
		meta->proxy_env->ftp_proxy = tdup(&b, e.ftp_proxy);
		meta->proxy_env->no_proxy = tdup(&b, e.no_proxy);
		add_cap(&b.meta, CAP_EXEC_META_PROXY);
	}

	Pb__ExecOp *xo = talloc(&b, 1, sizeof(*xo));
	pb__exec_op__init(xo);
	xo->meta = meta;
	xo->n_mounts = 1 + e.n_mounts;
	xo->mounts = pm;
	xo->network = (Pb__NetMode)e.network;
	xo->security = e.insecure ? PB__SECURITY_MODE__INSECURE : PB__SECURITY_MODE__SANDBOX;
	if (e.network != KILN_GRAPH_NET_SANDBOX)
		add_cap(&b.meta, CAP_EXEC_META_NETWORK);
	if (e.insecure)
		add_cap(&b.meta, CAP_EXEC_META_SECURITY);
	add_cap(&b.meta, CAP_EXEC_META_BASE);

	if ((rc = build_platform(&b, e.platform, e.rootfs.node)) < 0)
		goto fail;
	if ((rc = build_meta(&b, "exec", e.name, e.description, e.n_description,
			     e.ignore_cache)) < 0)
		goto fail;
	b.op->op_case = PB__OP__OP_EXEC;
	b.op->exec = xo;
	return build_finish(&b, n_outputs, out);
fail:
	build_abort(&b);
	return rc;
}

/* ---- file ops --------------------------------------------------------- */

/* client/llb WithUser: "user[:group]", each "root", a number or a name
 * (resolved in the filesystem `input`). */
static Pb__UserOpt *user_opt(struct build *b, const char *s, size_t len, int64_t input)
{
	Pb__UserOpt *u = talloc(b, 1, sizeof(*u));
	pb__user_opt__init(u);
	char *name = kiln__arena_alloc(b->tmp, len + 1);
	memcpy(name, s, len);
	bool numeric = len > 0 && len <= 10;
	unsigned long long id = 0;
	for (size_t i = 0; i < len && numeric; i++) {
		numeric = name[i] >= '0' && name[i] <= '9';
		id = id * 10 + (unsigned)(name[i] - '0');
	}
	if (strcmp(name, "root") == 0 || (numeric && id <= INT32_MAX)) {
		u->user_case = PB__USER_OPT__USER_BY_ID;
		u->byid = strcmp(name, "root") == 0 ? 0 : (uint32_t)id;
	} else {
		u->user_case = PB__USER_OPT__USER_BY_NAME;
		u->byname = talloc(b, 1, sizeof(*u->byname));
		pb__named_user_opt__init(u->byname);
		u->byname->name = name;
		u->byname->input = input;
	}
	return u;
}

static Pb__ChownOpt *chown_opt(struct build *b, const char *owner, int64_t input)
{
	if (!owner)
		return NULL;
	Pb__ChownOpt *c = talloc(b, 1, sizeof(*c));
	pb__chown_opt__init(c);
	const char *colon = strchr(owner, ':');
	c->user = user_opt(b, owner, colon ? (size_t)(colon - owner) : strlen(owner), input);
	if (colon)
		c->group = user_opt(b, colon + 1, strlen(colon + 1), input);
	return c;
}

static int check_action(const struct kiln_graph_file_action *a, size_t i, struct kiln_err *err)
{
	static const uint32_t copy_flags = KILN_GRAPH_COPY_FOLLOW_SYMLINKS |
		KILN_GRAPH_COPY_DIR_CONTENTS | KILN_GRAPH_COPY_UNPACK |
		KILN_GRAPH_COPY_CREATE_DEST_PATH | KILN_GRAPH_COPY_ALLOW_WILDCARD |
		KILN_GRAPH_COPY_ALLOW_EMPTY_WILDCARD | KILN_GRAPH_FILE_CREATED;
	uint32_t allowed = 0;
	bool copy = a->kind == KILN_GRAPH_FILE_COPY, mkfile = a->kind == KILN_GRAPH_FILE_MKFILE;
	switch (a->kind) {
	case KILN_GRAPH_FILE_COPY:
		allowed = copy_flags;
		break;
	case KILN_GRAPH_FILE_MKDIR:
		allowed = KILN_GRAPH_MKDIR_PARENTS | KILN_GRAPH_FILE_CREATED;
		break;
	case KILN_GRAPH_FILE_MKFILE:
		allowed = KILN_GRAPH_FILE_CREATED;
		break;
	case KILN_GRAPH_FILE_RM:
		allowed = KILN_GRAPH_RM_ALLOW_NOT_FOUND | KILN_GRAPH_RM_ALLOW_WILDCARD;
		break;
	default:
		return kiln__err(err, KILN_E_INVALID, "file action %zu: unknown kind %d", i,
				 (int)a->kind);
	}
	const char *bad = NULL;
	if (a->flags & ~allowed)
		bad = "a flag";
	else if (!copy && (a->src.node || a->src.output || a->src_path))
		bad = "src";
	else if (!mkfile && (a->data || a->data_len))
		bad = "data";
	else if (a->kind == KILN_GRAPH_FILE_RM && (a->mode || a->owner))
		bad = "mode/owner";
	else if (!(a->flags & KILN_GRAPH_FILE_CREATED) && a->created_ns)
		bad = "created_ns without KILN_GRAPH_FILE_CREATED";
	if (bad)
		return kiln__err(err, KILN_E_INVALID, "file action %zu: %s does not apply", i, bad);
	if (!a->path || !*a->path)
		return kiln__err(err, KILN_E_INVALID, "file action %zu: path is empty", i);
	if (copy && (!a->src_path || !*a->src_path))
		return kiln__err(err, KILN_E_INVALID, "file action %zu: copy needs src_path", i);
	if (mkfile && a->data_len && !a->data)
		return kiln__err(err, KILN_E_INVALID, "file action %zu: data_len without data", i);
	if (a->mode > 0777)
		return kiln__err(err, KILN_E_INVALID, "file action %zu: mode %#o above 0777", i,
				 (unsigned)a->mode);
	if (a->owner) {
		const char *colon = strchr(a->owner, ':');
		if (!*a->owner || colon == a->owner || (colon && (!colon[1] || strchr(colon + 1, ':'))))
			return kiln__err(err, KILN_E_INVALID,
					 "file action %zu: owner \"%s\" is not user[:group]", i, a->owner);
	}
	return 0;
}

int kiln__graph_add_file(struct kiln_graph *g, const struct kiln_graph_file *file,
			 struct kiln_graph_ref *out, struct kiln_err *err)
{
	struct kiln_graph_file f;
	int rc;
	if (!g || !out)
		return kiln__err(err, KILN_E_INVALID, "graph_add_file: graph or out is NULL");
	if ((rc = copy_opts(&f, sizeof(f), FILE_V1, file, "file op", err)) < 0)
		return rc;
	if (!f.n_actions || !f.actions)
		return kiln__err(err, KILN_E_INVALID, "file op: no actions");
	if ((rc = check_ref(g, f.base, "file op base", true, err)) < 0)
		return rc;

	struct build b;
	build_init(&b, g, 1 + f.n_actions, err);
	struct kiln_graph_file_action *acts = talloc(&b, f.n_actions, sizeof(*acts));
	int64_t *second = talloc(&b, f.n_actions, sizeof(*second));
	bool rm_wildcard = false;

	/* First every input (base first, then copy sources), so that action
	 * results can be numbered after them (len(inputs) + k). */
	for (size_t i = 0; i < f.n_actions; i++) {
		struct kiln_graph_file_action *a = &acts[i];
		if ((rc = copy_elem(a, sizeof(*a), ACTION_V1, f.actions, i, "file action", err)) < 0)
			goto fail;
		if ((rc = check_action(a, i, err)) < 0)
			goto fail;
		rm_wildcard = rm_wildcard || (a->flags & KILN_GRAPH_RM_ALLOW_WILDCARD);
	}
	int64_t base = build_input(&b, f.base);
	for (size_t i = 0; i < f.n_actions; i++) {
		second[i] = -1;
		if (acts[i].kind != KILN_GRAPH_FILE_COPY)
			continue;
		if ((rc = check_ref(g, acts[i].src, "copy source", true, err)) < 0)
			goto fail;
		second[i] = build_input(&b, acts[i].src);
	}

	Pb__FileOp *fo = talloc(&b, 1, sizeof(*fo));
	pb__file_op__init(fo);
	fo->n_actions = f.n_actions;
	fo->actions = talloc(&b, f.n_actions, sizeof(*fo->actions));
	for (size_t i = 0; i < f.n_actions; i++) {
		const struct kiln_graph_file_action *a = &acts[i];
		Pb__FileAction *fa = talloc(&b, 1, sizeof(*fa));
		pb__file_action__init(fa);
		fa->input = i == 0 ? base : (int64_t)(b.n_inputs + i - 1);
		fa->secondaryinput = second[i];
		fa->output = i + 1 == f.n_actions ? 0 : -1;
		int64_t ts = (a->flags & KILN_GRAPH_FILE_CREATED) ? a->created_ns : -1;
		switch (a->kind) {
		case KILN_GRAPH_FILE_COPY: {
			Pb__FileActionCopy *c = talloc(&b, 1, sizeof(*c));
			pb__file_action_copy__init(c);
			c->src = clean_path(b.tmp, a->src_path, false);
			c->dest = clean_path(b.tmp, a->path, true);
			c->owner = chown_opt(&b, a->owner, base);
			c->mode = a->mode ? (int32_t)a->mode : -1;
			c->followsymlink = !!(a->flags & KILN_GRAPH_COPY_FOLLOW_SYMLINKS);
			c->dircopycontents = !!(a->flags & KILN_GRAPH_COPY_DIR_CONTENTS);
			c->attemptunpackdockercompatibility = !!(a->flags & KILN_GRAPH_COPY_UNPACK);
			c->createdestpath = !!(a->flags & KILN_GRAPH_COPY_CREATE_DEST_PATH);
			c->allowwildcard = !!(a->flags & KILN_GRAPH_COPY_ALLOW_WILDCARD);
			c->allowemptywildcard = !!(a->flags & KILN_GRAPH_COPY_ALLOW_EMPTY_WILDCARD);
			c->timestamp = ts;
			fa->action_case = PB__FILE_ACTION__ACTION_COPY;
			fa->copy = c;
			break;
		}
		case KILN_GRAPH_FILE_MKDIR: {
			Pb__FileActionMkDir *d = talloc(&b, 1, sizeof(*d));
			pb__file_action_mk_dir__init(d);
			d->path = clean_path(b.tmp, a->path, false);
			d->mode = (int32_t)(a->mode ? a->mode : 0755);
			d->makeparents = !!(a->flags & KILN_GRAPH_MKDIR_PARENTS);
			d->owner = chown_opt(&b, a->owner, base);
			d->timestamp = ts;
			fa->action_case = PB__FILE_ACTION__ACTION_MKDIR;
			fa->mkdir = d;
			break;
		}
		case KILN_GRAPH_FILE_MKFILE: {
			Pb__FileActionMkFile *m = talloc(&b, 1, sizeof(*m));
			pb__file_action_mk_file__init(m);
			m->path = clean_path(b.tmp, a->path, false);
			m->mode = (int32_t)(a->mode ? a->mode : 0644);
			if (a->data_len) {
				m->data.data = talloc(&b, a->data_len, 1);
				memcpy(m->data.data, a->data, a->data_len);
				m->data.len = a->data_len;
			}
			m->owner = chown_opt(&b, a->owner, base);
			m->timestamp = ts;
			fa->action_case = PB__FILE_ACTION__ACTION_MKFILE;
			fa->mkfile = m;
			break;
		}
		case KILN_GRAPH_FILE_RM: {
			Pb__FileActionRm *r = talloc(&b, 1, sizeof(*r));
			pb__file_action_rm__init(r);
			r->path = clean_path(b.tmp, a->path, false);
			r->allownotfound = !!(a->flags & KILN_GRAPH_RM_ALLOW_NOT_FOUND);
			r->allowwildcard = !!(a->flags & KILN_GRAPH_RM_ALLOW_WILDCARD);
			fa->action_case = PB__FILE_ACTION__ACTION_RM;
			fa->rm = r;
			break;
		}
		}
		fo->actions[i] = fa;
	}
	add_cap(&b.meta, CAP_FILE_BASE);
	if (rm_wildcard)
		add_cap(&b.meta, CAP_FILE_RM_WILDCARD);

	if ((rc = build_platform(&b, f.platform, f.base.node)) < 0)
		goto fail;
	if ((rc = build_meta(&b, "file op", f.name, f.description, f.n_description,
			     f.ignore_cache)) < 0)
		goto fail;
	b.op->op_case = PB__OP__OP_FILE;
	b.op->file = fo;
	return build_finish(&b, 1, out);
fail:
	build_abort(&b);
	return rc;
}

/* ---- marshalling ------------------------------------------------------ */

static Pb__OpMetadata *op_metadata(struct kiln_arena *a, const struct meta *m)
{
	Pb__OpMetadata *md = kiln__arena_alloc(a, sizeof(*md));
	pb__op_metadata__init(md);
	md->ignore_cache = m->ignore_cache;
	md->n_description = m->n_desc;
	md->description = kiln__arena_alloc(a, (m->n_desc ? m->n_desc : 1) * sizeof(*md->description));
	for (size_t i = 0; i < m->n_desc; i++) { /* already sorted */
		Pb__OpMetadata__DescriptionEntry *e = kiln__arena_alloc(a, sizeof(*e));
		pb__op_metadata__description_entry__init(e);
		e->key = (char *)m->desc[i].key;
		e->value = (char *)m->desc[i].value;
		md->description[i] = e;
	}
	md->n_caps = m->n_caps;
	md->caps = kiln__arena_alloc(a, (m->n_caps ? m->n_caps : 1) * sizeof(*md->caps));
	for (size_t i = 0; i < m->n_caps; i++) { /* already sorted */
		Pb__OpMetadata__CapsEntry *e = kiln__arena_alloc(a, sizeof(*e));
		pb__op_metadata__caps_entry__init(e);
		e->key = (char *)m->caps[i];
		e->value = 1;
		md->caps[i] = e;
	}
	return md;
}

static int cmp_metadata_entry(const void *a, const void *b)
{
	const Pb__Definition__MetadataEntry *x = *(Pb__Definition__MetadataEntry *const *)a;
	const Pb__Definition__MetadataEntry *y = *(Pb__Definition__MetadataEntry *const *)b;
	return strcmp(x->key, y->key);
}

int kiln__graph_marshal(struct kiln_graph *g, struct kiln_graph_ref result,
			struct kiln_arena *arena, const uint8_t **data, size_t *len,
			char digest[KILN_GRAPH_DIGEST_SIZE], struct kiln_err *err)
{
	int rc;
	if (!g || !data || !len)
		return kiln__err(err, KILN_E_INVALID, "graph_marshal: graph, data or len is NULL");
	if ((rc = check_ref(g, result, "marshal result", false, err)) < 0)
		return rc;

	struct kiln_arena *tmp = kiln__arena_new();
	/* Vertices only read lower-numbered ones, so one downward pass finds
	 * everything result reaches, and ascending order lists inputs first. */
	bool *reach = kiln__arena_alloc(tmp, (g->n + 1) * sizeof(*reach));
	reach[result.node] = true;
	size_t m = 0;
	for (size_t k = g->n; k >= 1; k--) {
		if (!reach[k])
			continue;
		m++;
		const struct node *nd = &g->nodes[k - 1];
		for (size_t i = 0; i < nd->n_inputs; i++)
			reach[nd->inputs[i]] = true;
	}

	Pb__Definition def;
	pb__definition__init(&def);
	def.n_def = m + 1;
	def.def = kiln__arena_alloc(tmp, (m + 1) * sizeof(*def.def));
	def.n_metadata = m + 1;
	def.metadata = kiln__arena_alloc(tmp, (m + 1) * sizeof(*def.metadata));
	struct meta term = { .n_caps = 0 };
	add_cap(&term, CAP_CONSTRAINTS);
	add_cap(&term, CAP_PLATFORM);
	size_t j = 0;
	for (size_t k = 1; k <= g->n; k++) {
		if (!reach[k])
			continue;
		const struct node *nd = &g->nodes[k - 1];
		def.def[j].data = nd->bytes;
		def.def[j].len = nd->len;
		Pb__Definition__MetadataEntry *e = kiln__arena_alloc(tmp, sizeof(*e));
		pb__definition__metadata_entry__init(e);
		e->key = (char *)nd->digest;
		e->value = op_metadata(tmp, &nd->meta);
		def.metadata[j] = e;
		if (nd->meta.n_desc)
			add_cap(&term, CAP_META_DESCRIPTION);
		if (nd->meta.ignore_cache)
			add_cap(&term, CAP_META_IGNORECACHE);
		j++;
	}

	/* The terminal op: no op, one input (BUILDKIT-WIRE.md 3.2). */
	Pb__Input in;
	pb__input__init(&in);
	in.digest = g->nodes[result.node - 1].digest;
	in.index = result.output;
	Pb__Input *ins[1] = { &in };
	Pb__Op top;
	pb__op__init(&top);
	top.n_inputs = 1;
	top.inputs = ins;
	size_t tlen = pb__op__get_packed_size(&top);
	uint8_t *tbytes = kiln__arena_alloc(tmp, tlen);
	pb__op__pack(&top, tbytes);
	char tdigest[KILN_GRAPH_DIGEST_SIZE];
	kiln__sha256_digest(tbytes, tlen, tdigest);
	def.def[m].data = tbytes;
	def.def[m].len = tlen;
	qsort(term.caps, term.n_caps, sizeof(term.caps[0]), cmp_str);
	Pb__Definition__MetadataEntry *te = kiln__arena_alloc(tmp, sizeof(*te));
	pb__definition__metadata_entry__init(te);
	te->key = tdigest;
	te->value = op_metadata(tmp, &term);
	def.metadata[m] = te;
	qsort(def.metadata, m + 1, sizeof(*def.metadata), cmp_metadata_entry);

	size_t size = pb__definition__get_packed_size(&def);
	uint8_t *buf = arena ? kiln__arena_alloc(arena, size) : kiln__xmalloc(size);
	pb__definition__pack(&def, buf);
	*data = buf;
	*len = size;
	if (digest)
		memcpy(digest, tdigest, KILN_GRAPH_DIGEST_SIZE);
	kiln__arena_free(tmp);
	return 0;
}

int kiln__graph_digest(const struct kiln_graph *g, struct kiln_graph_ref ref,
		       char digest[KILN_GRAPH_DIGEST_SIZE], struct kiln_err *err)
{
	int rc;
	if (!g || !digest)
		return kiln__err(err, KILN_E_INVALID, "graph_digest: graph or digest is NULL");
	if ((rc = check_ref(g, ref, "digest of", false, err)) < 0)
		return rc;
	memcpy(digest, g->nodes[ref.node - 1].digest, KILN_GRAPH_DIGEST_SIZE);
	return 0;
}
