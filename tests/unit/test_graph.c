/* Unit tests of the LLB graph builder (core/graph.c, include/kiln/graph.h)
 * through the host table, as a plugin uses it: byte-identical marshalling,
 * decoding with protobuf-c (ops, inputs by digest, dependency order,
 * terminal op, metadata and caps), digests against BUILDKIT-WIRE.md's test
 * vector, deduplication, mounts and file actions, and errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ops.pb-c.h"

#include "arena.h"
#include "loader.h"
#include "util.h"

static const struct kiln_host *H = &kiln__host;

#define ALPINE_DIGEST "sha256:d38559b5065f477264e22ac833399ba3be7c4ed02409d52d7da4abf652785031"
#define ALPINE_TERMINAL "sha256:e43a131a26dbf13e148457c04539139ed97d4c50aabef1b081f57d850d501a89"

/* ---- helpers ---------------------------------------------------------- */

static void sha256_hex(const uint8_t *data, size_t len, char out[KILN_GRAPH_DIGEST_SIZE])
{
	unsigned char md[32];
	unsigned int n = 0;
	assert_int_equal(EVP_Digest(data, len, md, &n, EVP_sha256(), NULL), 1);
	memcpy(out, "sha256:", 7);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

static struct kiln_graph *new_graph(const char *platform, const char *session)
{
	struct kiln_graph *g = NULL;
	struct kiln_err err = { 0 };
	struct kiln_graph_opts o = { .struct_size = sizeof(o), .platform = platform,
				     .session_id = session };
	int rc = H->graph_new(&o, &g, &err);
	if (rc != 0)
		fail_msg("graph_new: %s", err.msg);
	return g;
}

/* call (which must use &err) succeeds. */
#define OK(call)                                                              \
	do {                                                                  \
		int rc_ = (call);                                             \
		if (rc_ != 0)                                                 \
			fail_msg("%s: %d (%s)", #call, rc_, err.msg);         \
	} while (0)

/* Expect call (which must use &err) to fail with code; the message must
 * mention want. */
#define FAILS(want_rc, want, call)                                               \
	do {                                                                  \
		memset(&err, 0, sizeof(err));                                 \
		int rc_ = (call);                                             \
		if (rc_ != (want_rc))                                            \
			fail_msg("%s: got %d (%s), want %d", #call, rc_,      \
				 err.msg, (want_rc));                            \
		assert_int_equal(err.code, (want_rc));                           \
		if (!strstr(err.msg, (want)))                                 \
			fail_msg("message \"%s\" lacks \"%s\"", err.msg,      \
				 (want));                                     \
	} while (0)

static struct kiln_graph_ref add_image(struct kiln_graph *g, const char *ref,
				       const char *platform)
{
	struct kiln_graph_ref r = { 0xffff, 0xffff };
	struct kiln_err err = { 0 };
	struct kiln_graph_source s = { .struct_size = sizeof(s), .kind = KILN_GRAPH_SOURCE_IMAGE,
				       .ref = ref, .platform = platform };
	if (H->graph_add_source(g, &s, &r, &err) != 0)
		fail_msg("add image %s: %s", ref, err.msg);
	return r;
}

/*
 * The acceptance graph: image source, local context, exec with env and
 * cwd, then one file op that copies from the context, makes a directory
 * and writes a file. Built with unrelated heap traffic in between so that
 * no pointer value can leak into the bytes unnoticed.
 */
static struct kiln_graph *build_sample(struct kiln_graph_ref *result, int noise)
{
	struct kiln_err err = { 0 };
	void *junk[8];
	for (int i = 0; i < 8; i++)
		junk[i] = malloc((size_t)(noise * 97 + i * 13 + 1));

	struct kiln_graph *g = new_graph("linux/amd64", "kilnsession1");
	struct kiln_graph_ref base = add_image(g, "alpine:3.18", NULL);

	const char *excludes[] = { "*.o", ".git" };
	struct kiln_graph_source ctx = {
		.struct_size = sizeof(ctx), .kind = KILN_GRAPH_SOURCE_LOCAL, .ref = "context",
		.exclude_patterns = excludes, .n_exclude_patterns = 2,
		.shared_key_hint = "context", .name = "load build context",
	};
	struct kiln_graph_ref local;
	if (H->graph_add_source(g, &ctx, &local, &err) != 0)
		fail_msg("local: %s", err.msg);

	const char *args[] = { "/bin/sh", "-c", "apk add --no-cache make && make -C /src" };
	struct kiln_kv env[] = { { "PATH", "/usr/sbin:/usr/bin:/sbin:/bin" },
				 { "CFLAGS", "-O2" }, { "A", "z" } };
	struct kiln_kv desc[] = { { "com.docker.dockerfile.v1.command", "RUN make" } };
	struct kiln_graph_mount mounts[] = {
		{ .struct_size = sizeof(mounts[0]), .type = KILN_GRAPH_MOUNT_BIND, .dest = "/src",
		  .source = local, .readonly = true },
		{ .struct_size = sizeof(mounts[0]), .type = KILN_GRAPH_MOUNT_CACHE,
		  .dest = "/var/cache/apk", .id = "apk", .sharing = KILN_GRAPH_CACHE_LOCKED },
	};
	struct kiln_graph_exec ex = {
		.struct_size = sizeof(ex), .rootfs = base, .args = args, .n_args = 3,
		.env = env, .n_env = 3, .cwd = "/work", .mounts = mounts, .n_mounts = 2,
		.name = "RUN make", .description = desc, .n_description = 1,
	};
	struct kiln_graph_ref run;
	if (H->graph_add_exec(g, &ex, &run, &err) != 0)
		fail_msg("exec: %s", err.msg);

	static const char data[] = "hello\n";
	struct kiln_graph_file_action acts[] = {
		{ .struct_size = sizeof(acts[0]), .kind = KILN_GRAPH_FILE_COPY, .src = local,
		  .src_path = "/etc/app.conf", .path = "/etc/app/", .owner = "1000:1000",
		  .flags = KILN_GRAPH_COPY_DOCKERFILE },
		{ .struct_size = sizeof(acts[0]), .kind = KILN_GRAPH_FILE_MKDIR, .path = "/var/lib/app",
		  .mode = 0750, .flags = KILN_GRAPH_MKDIR_PARENTS },
		{ .struct_size = sizeof(acts[0]), .kind = KILN_GRAPH_FILE_MKFILE,
		  .path = "/var/lib/app/greeting", .mode = 0600, .data = data,
		  .data_len = sizeof(data) - 1 },
	};
	struct kiln_graph_file fo = { .struct_size = sizeof(fo), .base = run, .actions = acts,
				      .n_actions = 3 };
	if (H->graph_add_file(g, &fo, result, &err) != 0)
		fail_msg("file: %s", err.msg);

	for (int i = 0; i < 8; i++)
		free(junk[i]);
	return g;
}

static Pb__Op *unpack_op(const ProtobufCBinaryData *d)
{
	Pb__Op *op = pb__op__unpack(NULL, d->len, d->data);
	assert_non_null(op);
	return op;
}

static const Pb__OpMetadata *metadata_of(const Pb__Definition *def, const char *digest)
{
	for (size_t i = 0; i < def->n_metadata; i++)
		if (strcmp(def->metadata[i]->key, digest) == 0)
			return def->metadata[i]->value;
	fail_msg("no metadata for %s", digest);
	return NULL;
}

static bool has_cap(const Pb__OpMetadata *md, const char *cap)
{
	for (size_t i = 0; i < md->n_caps; i++)
		if (strcmp(md->caps[i]->key, cap) == 0)
			return md->caps[i]->value;
	return false;
}

/* Checks every structural rule of a Definition and returns the digests of
 * def[i] in *digests (caller frees). */
static void check_definition(const Pb__Definition *def, char (**digests)[KILN_GRAPH_DIGEST_SIZE])
{
	assert_true(def->n_def >= 2);
	char(*dg)[KILN_GRAPH_DIGEST_SIZE] = calloc(def->n_def, sizeof(*dg));
	for (size_t i = 0; i < def->n_def; i++) {
		sha256_hex(def->def[i].data, def->def[i].len, dg[i]);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(dg[i], dg[j]); /* each op once */
		Pb__Op *op = unpack_op(&def->def[i]);
		/* Inputs name earlier ops by digest: dependency order. */
		for (size_t k = 0; k < op->n_inputs; k++) {
			bool earlier = false;
			for (size_t j = 0; j < i; j++)
				earlier = earlier || strcmp(op->inputs[k]->digest, dg[j]) == 0;
			if (!earlier)
				fail_msg("op %zu input %zu %s is not an earlier op", i, k,
					 op->inputs[k]->digest);
		}
		if (i + 1 == def->n_def) { /* the terminal op */
			assert_int_equal(op->op_case, PB__OP__OP__NOT_SET);
			assert_int_equal(op->n_inputs, 1);
			assert_null(op->platform);
			assert_null(op->constraints);
		} else {
			assert_int_not_equal(op->op_case, PB__OP__OP__NOT_SET);
			assert_int_not_equal(op->op_case, PB__OP__OP_BUILD);
		}
		pb__op__free_unpacked(op, NULL);
	}
	/* One metadata entry per op, keyed by digest, sorted by key. */
	assert_int_equal(def->n_metadata, def->n_def);
	for (size_t i = 0; i < def->n_metadata; i++) {
		if (i)
			assert_true(strcmp(def->metadata[i - 1]->key, def->metadata[i]->key) < 0);
		const Pb__OpMetadata *md = metadata_of(def, dg[i]);
		for (size_t k = 1; k < md->n_caps; k++)
			assert_true(strcmp(md->caps[k - 1]->key, md->caps[k]->key) < 0);
		for (size_t k = 1; k < md->n_description; k++)
			assert_true(strcmp(md->description[k - 1]->key, md->description[k]->key) < 0);
	}
	*digests = dg;
}

/* ---- tests ------------------------------------------------------------ */

/* BUILDKIT-WIRE.md section 3.2's test vector, from protoc --encode. */
static void matches_wire_test_vector(void **st)
{
	(void)st;
	struct kiln_err err = { 0 };
	struct kiln_graph *g = new_graph(NULL, NULL);
	struct kiln_graph_ref r = add_image(g, "docker.io/library/alpine:latest", "linux/amd64");
	char d[KILN_GRAPH_DIGEST_SIZE];
	OK(H->graph_digest(g, r, d, &err));
	assert_string_equal(d, ALPINE_DIGEST);
	/* The short name normalises to the same op, hence the same vertex. */
	struct kiln_graph_ref r2 = add_image(g, "alpine", "linux/x86_64");
	assert_int_equal(r2.node, r.node);

	struct kiln_arena *a = kiln__arena_new();
	const uint8_t *bytes;
	size_t len;
	char term[KILN_GRAPH_DIGEST_SIZE];
	OK(H->graph_marshal(g, r, a, &bytes, &len, term, &err));
	assert_string_equal(term, ALPINE_TERMINAL);

	Pb__Definition *def = pb__definition__unpack(NULL, len, bytes);
	assert_non_null(def);
	assert_int_equal(def->n_def, 2);
	assert_int_equal(def->def[0].len, 66);
	assert_int_equal(def->def[1].len, 75);
	const Pb__OpMetadata *tm = metadata_of(def, ALPINE_TERMINAL);
	assert_int_equal(tm->n_caps, 2);
	assert_string_equal(tm->caps[0]->key, "constraints");
	assert_string_equal(tm->caps[1]->key, "platform");
	const Pb__OpMetadata *im = metadata_of(def, ALPINE_DIGEST);
	assert_int_equal(im->n_caps, 1);
	assert_string_equal(im->caps[0]->key, "source.image");
	pb__definition__free_unpacked(def, NULL);
	kiln__arena_free(a);
	H->graph_free(g);
}

static void marshals_identically_100_times(void **st)
{
	(void)st;
	struct kiln_err err = { 0 };
	struct kiln_graph_ref res;
	struct kiln_graph *g = build_sample(&res, 1);
	const uint8_t *first = NULL;
	size_t first_len = 0;
	char first_digest[KILN_GRAPH_DIGEST_SIZE];
	OK(H->graph_marshal(g, res, NULL, &first, &first_len, first_digest, &err));
	for (int i = 0; i < 100; i++) {
		struct kiln_arena *a = kiln__arena_new();
		const uint8_t *bytes;
		size_t len;
		char d[KILN_GRAPH_DIGEST_SIZE];
		OK(H->graph_marshal(g, res, a, &bytes, &len, d, &err));
		assert_int_equal(len, first_len);
		assert_memory_equal(bytes, first, len);
		assert_string_equal(d, first_digest);
		kiln__arena_free(a);
	}

	/* The same calls on another graph, with other heap traffic and other
	 * arenas, give the same bytes. */
	struct kiln_graph_ref res2;
	struct kiln_graph *g2 = build_sample(&res2, 7);
	struct kiln_arena *a2 = kiln__arena_new();
	(void)kiln__arena_alloc(a2, 12345);
	const uint8_t *bytes2;
	size_t len2;
	char d2[KILN_GRAPH_DIGEST_SIZE];
	OK(H->graph_marshal(g2, res2, a2, &bytes2, &len2, d2, &err));
	assert_int_equal(len2, first_len);
	assert_memory_equal(bytes2, first, first_len);
	assert_string_equal(d2, first_digest);
	kiln__arena_free(a2);
	H->graph_free(g2);
	H->free((void *)first);
	H->graph_free(g);
}

static void decodes_to_the_expected_ops(void **st)
{
	(void)st;
	struct kiln_err err = { 0 };
	struct kiln_graph_ref res;
	struct kiln_graph *g = build_sample(&res, 3);
	struct kiln_arena *a = kiln__arena_new();
	const uint8_t *bytes;
	size_t len;
	char term[KILN_GRAPH_DIGEST_SIZE];
	OK(H->graph_marshal(g, res, a, &bytes, &len, term, &err));

	Pb__Definition *def = pb__definition__unpack(NULL, len, bytes);
	assert_non_null(def);
	char(*dg)[KILN_GRAPH_DIGEST_SIZE];
	check_definition(def, &dg);
	/* image, local, exec, file, terminal: in the order of the calls. */
	assert_int_equal(def->n_def, 5);
	assert_string_equal(dg[4], term);
	char want[KILN_GRAPH_DIGEST_SIZE];
	OK(H->graph_digest(g, res, want, &err));
	assert_string_equal(dg[3], want);

	Pb__Op *img = unpack_op(&def->def[0]);
	assert_int_equal(img->op_case, PB__OP__OP_SOURCE);
	assert_string_equal(img->source->identifier, "docker-image://docker.io/library/alpine:3.18");
	assert_string_equal(img->platform->os, "linux");
	assert_string_equal(img->platform->architecture, "amd64");
	assert_true(has_cap(metadata_of(def, dg[0]), "source.image"));

	Pb__Op *loc = unpack_op(&def->def[1]);
	assert_int_equal(loc->op_case, PB__OP__OP_SOURCE);
	assert_string_equal(loc->source->identifier, "local://context");
	assert_null(loc->platform); /* only image sources carry one */
	assert_int_equal(loc->source->n_attrs, 3);
	assert_string_equal(loc->source->attrs[0]->key, "local.excludepatterns");
	assert_string_equal(loc->source->attrs[0]->value, "[\"*.o\",\".git\"]");
	assert_string_equal(loc->source->attrs[1]->key, "local.session");
	assert_string_equal(loc->source->attrs[1]->value, "kilnsession1");
	assert_string_equal(loc->source->attrs[2]->key, "local.sharedkeyhint");
	const Pb__OpMetadata *lm = metadata_of(def, dg[1]);
	assert_true(has_cap(lm, "source.local"));
	assert_true(has_cap(lm, "source.local.sessionid"));
	assert_true(has_cap(lm, "source.local.excludepatterns"));
	assert_true(has_cap(lm, "source.local.sharedkeyhint"));
	assert_int_equal(lm->n_description, 1);
	assert_string_equal(lm->description[0]->key, "llb.customname");
	assert_string_equal(lm->description[0]->value, "load build context");

	Pb__Op *ex = unpack_op(&def->def[2]);
	assert_int_equal(ex->op_case, PB__OP__OP_EXEC);
	assert_int_equal(ex->n_inputs, 2);
	assert_string_equal(ex->inputs[0]->digest, dg[0]);
	assert_string_equal(ex->inputs[1]->digest, dg[1]);
	Pb__Meta *m = ex->exec->meta;
	assert_int_equal(m->n_args, 3);
	assert_string_equal(m->args[2], "apk add --no-cache make && make -C /src");
	assert_int_equal(m->n_env, 3); /* in the order given */
	assert_string_equal(m->env[0], "PATH=/usr/sbin:/usr/bin:/sbin:/bin");
	assert_string_equal(m->env[1], "CFLAGS=-O2");
	assert_string_equal(m->env[2], "A=z");
	assert_string_equal(m->cwd, "/work");
	assert_int_equal(ex->exec->n_mounts, 3);
	Pb__Mount **mt = ex->exec->mounts;
	assert_string_equal(mt[0]->dest, "/");
	assert_int_equal(mt[0]->input, 0);
	assert_int_equal(mt[0]->output, 0);
	assert_string_equal(mt[1]->dest, "/src");
	assert_int_equal(mt[1]->input, 1);
	assert_int_equal(mt[1]->output, -1);
	assert_true(mt[1]->readonly);
	assert_int_equal(mt[2]->mounttype, PB__MOUNT_TYPE__CACHE);
	assert_int_equal(mt[2]->input, -1);
	assert_int_equal(mt[2]->output, -1);
	assert_string_equal(mt[2]->cacheopt->id, "apk");
	assert_int_equal(mt[2]->cacheopt->sharing, PB__CACHE_SHARING_OPT__LOCKED);
	assert_string_equal(ex->platform->architecture, "amd64"); /* from rootfs */
	const Pb__OpMetadata *em = metadata_of(def, dg[2]);
	assert_true(has_cap(em, "exec.meta.base"));
	assert_true(has_cap(em, "exec.mount.bind"));
	assert_true(has_cap(em, "exec.mount.cache"));
	assert_true(has_cap(em, "exec.mount.cache.sharing"));
	assert_false(has_cap(em, "exec.meta.network"));
	assert_int_equal(em->n_description, 2);
	assert_string_equal(em->description[0]->key, "com.docker.dockerfile.v1.command");
	assert_string_equal(em->description[1]->key, "llb.customname");

	Pb__Op *fo = unpack_op(&def->def[3]);
	assert_int_equal(fo->op_case, PB__OP__OP_FILE);
	assert_int_equal(fo->n_inputs, 2);
	assert_string_equal(fo->inputs[0]->digest, dg[2]); /* base: the exec */
	assert_string_equal(fo->inputs[1]->digest, dg[1]); /* copy source */
	assert_int_equal(fo->file->n_actions, 3);
	Pb__FileAction **fa = fo->file->actions;
	assert_int_equal(fa[0]->input, 0);
	assert_int_equal(fa[0]->secondaryinput, 1);
	assert_int_equal(fa[0]->output, -1);
	assert_int_equal(fa[0]->action_case, PB__FILE_ACTION__ACTION_COPY);
	assert_string_equal(fa[0]->copy->src, "/etc/app.conf");
	assert_string_equal(fa[0]->copy->dest, "/etc/app/");
	assert_int_equal(fa[0]->copy->mode, -1);
	assert_int_equal(fa[0]->copy->timestamp, -1);
	assert_true(fa[0]->copy->followsymlink && fa[0]->copy->dircopycontents &&
		    fa[0]->copy->createdestpath && fa[0]->copy->allowwildcard &&
		    fa[0]->copy->allowemptywildcard);
	assert_false(fa[0]->copy->attemptunpackdockercompatibility);
	assert_int_equal(fa[0]->copy->owner->user->user_case, PB__USER_OPT__USER_BY_ID);
	assert_int_equal(fa[0]->copy->owner->user->byid, 1000);
	assert_int_equal(fa[0]->copy->owner->group->byid, 1000);
	assert_int_equal(fa[1]->input, 2); /* len(inputs) + 0: action 0's result */
	assert_int_equal(fa[1]->secondaryinput, -1);
	assert_int_equal(fa[1]->output, -1);
	assert_string_equal(fa[1]->mkdir->path, "/var/lib/app");
	assert_int_equal(fa[1]->mkdir->mode, 0750);
	assert_true(fa[1]->mkdir->makeparents);
	assert_int_equal(fa[1]->mkdir->timestamp, -1);
	assert_int_equal(fa[2]->input, 3);
	assert_int_equal(fa[2]->output, 0);
	assert_string_equal(fa[2]->mkfile->path, "/var/lib/app/greeting");
	assert_int_equal(fa[2]->mkfile->mode, 0600);
	assert_int_equal(fa[2]->mkfile->data.len, 6);
	assert_memory_equal(fa[2]->mkfile->data.data, "hello\n", 6);
	assert_true(has_cap(metadata_of(def, dg[3]), "file.base"));

	Pb__Op *t = unpack_op(&def->def[4]);
	assert_string_equal(t->inputs[0]->digest, dg[3]);
	assert_int_equal(t->inputs[0]->index, 0);
	const Pb__OpMetadata *tm = metadata_of(def, dg[4]);
	assert_true(has_cap(tm, "constraints"));
	assert_true(has_cap(tm, "platform"));
	assert_true(has_cap(tm, "meta.description"));
	assert_false(has_cap(tm, "meta.ignorecache"));

	pb__op__free_unpacked(img, NULL);
	pb__op__free_unpacked(loc, NULL);
	pb__op__free_unpacked(ex, NULL);
	pb__op__free_unpacked(fo, NULL);
	pb__op__free_unpacked(t, NULL);
	free(dg);
	pb__definition__free_unpacked(def, NULL);
	kiln__arena_free(a);
	H->graph_free(g);
}

static void dedupes_and_leaves_out_unreachable(void **st)
{
	(void)st;
	struct kiln_err err = { 0 };
	struct kiln_graph *g = new_graph("linux/arm64", NULL);
	struct kiln_graph_ref img = add_image(g, "busybox", NULL);
	struct kiln_graph_ref other = add_image(g, "debian:bookworm", NULL);
	const char *args[] = { "true" };
	struct kiln_graph_exec ex = { .struct_size = sizeof(ex), .rootfs = img, .args = args,
				      .n_args = 1, .ignore_cache = true };
	struct kiln_graph_ref r1, r2;
	OK(H->graph_add_exec(g, &ex, &r1, &err));
	ex.ignore_cache = false;
	ex.name = "again";
	OK(H->graph_add_exec(g, &ex, &r2, &err)); /* same op: same vertex */
	assert_int_equal(r1.node, r2.node);
	(void)other;

	struct kiln_arena *a = kiln__arena_new();
	const uint8_t *bytes;
	size_t len;
	OK(H->graph_marshal(g, r2, a, &bytes, &len, NULL, &err));
	Pb__Definition *def = pb__definition__unpack(NULL, len, bytes);
	char(*dg)[KILN_GRAPH_DIGEST_SIZE];
	check_definition(def, &dg);
	assert_int_equal(def->n_def, 3); /* busybox, exec, terminal; no debian */
	Pb__Op *src = unpack_op(&def->def[0]);
	assert_string_equal(src->source->identifier,
			    "docker-image://docker.io/library/busybox:latest");
	assert_string_equal(src->platform->architecture, "arm64");
	pb__op__free_unpacked(src, NULL);
	const Pb__OpMetadata *em = metadata_of(def, dg[1]);
	assert_true(em->ignore_cache); /* merged */
	assert_int_equal(em->n_description, 1);
	const Pb__OpMetadata *tm = metadata_of(def, dg[2]);
	assert_true(has_cap(tm, "meta.ignorecache"));
	assert_true(has_cap(tm, "meta.description"));
	free(dg);
	pb__definition__free_unpacked(def, NULL);
	kiln__arena_free(a);
	H->graph_free(g);
}

static void exec_mounts_and_options(void **st)
{
	(void)st;
	struct kiln_err err = { 0 };
	struct kiln_graph *g = new_graph(NULL, NULL);
	struct kiln_graph_ref img = add_image(g, "ghcr.io/o/r@sha256:0123", "linux/arm/v7");
	struct kiln_graph_ref dep = add_image(g, "localhost:5000/dep", NULL);
	const char *args[] = { "make" };
	struct kiln_kv hosts[] = { { "db", "10.0.0.2" } };
	struct kiln_graph_mount mounts[] = {
		{ .struct_size = sizeof(mounts[0]), .type = KILN_GRAPH_MOUNT_BIND, .dest = "out",
		  .source = KILN_GRAPH_SCRATCH },
		{ .struct_size = sizeof(mounts[0]), .type = KILN_GRAPH_MOUNT_SECRET, .id = "npmrc" },
		{ .struct_size = sizeof(mounts[0]), .type = KILN_GRAPH_MOUNT_SSH },
		{ .struct_size = sizeof(mounts[0]), .type = KILN_GRAPH_MOUNT_TMPFS, .dest = "/tmp" },
		{ .struct_size = sizeof(mounts[0]), .type = KILN_GRAPH_MOUNT_BIND, .dest = "/dep/",
		  .source = dep, .selector = "/usr/lib" },
		{ .struct_size = sizeof(mounts[0]), .type = KILN_GRAPH_MOUNT_CACHE, .dest = "/root/.cache" },
	};
	struct kiln_graph_exec ex = {
		.struct_size = sizeof(ex), .rootfs = img, .args = args, .n_args = 1,
		.mounts = mounts, .n_mounts = 6, .network = KILN_GRAPH_NET_NONE, .insecure = true,
		.user = "builder", .hostname = "kiln", .extra_hosts = hosts, .n_extra_hosts = 1,
		.http_proxy = "http://proxy:3128",
	};
	struct kiln_graph_ref root;
	OK(H->graph_add_exec(g, &ex, &root, &err));
	/* Outputs: the root (0), then the writable binds: /out (1), /dep (2). */
	char d[KILN_GRAPH_DIGEST_SIZE];
	OK(H->graph_digest(g, (struct kiln_graph_ref){ root.node, 2 }, d, &err));
	FAILS(KILN_E_INVALID, "no output 3",
	      H->graph_digest(g, (struct kiln_graph_ref){ root.node, 3 }, d, &err));

	struct kiln_arena *a = kiln__arena_new();
	const uint8_t *bytes;
	size_t len;
	OK(H->graph_marshal(g, (struct kiln_graph_ref){ root.node, 1 }, a, &bytes, &len, NULL, &err));
	Pb__Definition *def = pb__definition__unpack(NULL, len, bytes);
	char(*dg)[KILN_GRAPH_DIGEST_SIZE];
	check_definition(def, &dg);
	assert_int_equal(def->n_def, 4);
	Pb__Op *s0 = unpack_op(&def->def[0]);
	assert_string_equal(s0->source->identifier, "docker-image://ghcr.io/o/r@sha256:0123");
	assert_string_equal(s0->platform->variant, "v7");
	Pb__Op *s1 = unpack_op(&def->def[1]);
	assert_string_equal(s1->source->identifier, "docker-image://localhost:5000/dep:latest");
	assert_null(s1->platform); /* no platform anywhere: the daemon's */
	Pb__Op *op = unpack_op(&def->def[2]);
	Pb__ExecOp *x = op->exec;
	assert_string_equal(op->platform->architecture, "arm"); /* inherited */
	assert_int_equal(x->network, PB__NET_MODE__NONE);
	assert_int_equal(x->security, PB__SECURITY_MODE__INSECURE);
	assert_string_equal(x->meta->cwd, "/");
	assert_string_equal(x->meta->user, "builder");
	assert_string_equal(x->meta->hostname, "kiln");
	assert_string_equal(x->meta->extrahosts[0]->ip, "10.0.0.2");
	assert_string_equal(x->meta->proxy_env->http_proxy, "http://proxy:3128");
	assert_int_equal(x->meta->n_env, 1);
	assert_string_equal(x->meta->env[0], "SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0");
	assert_int_equal(x->n_mounts, 7);
	Pb__Mount **m = x->mounts;
	assert_string_equal(m[1]->dest, "/out");
	assert_int_equal(m[1]->input, -1);
	assert_int_equal(m[1]->output, 1);
	assert_string_equal(m[2]->dest, "/run/secrets/npmrc");
	assert_int_equal(m[2]->mounttype, PB__MOUNT_TYPE__SECRET);
	assert_int_equal(m[2]->input, -1);
	assert_int_equal(m[2]->output, -1);
	assert_int_equal(m[2]->secretopt->mode, 0400);
	assert_string_equal(m[3]->dest, "/run/buildkit/ssh_agent.0");
	assert_int_equal(m[3]->sshopt->mode, 0600);
	assert_int_equal(m[3]->input, -1);
	assert_int_equal(m[4]->mounttype, PB__MOUNT_TYPE__TMPFS);
	assert_int_equal(m[4]->output, -1);
	assert_string_equal(m[5]->dest, "/dep");
	assert_int_equal(m[5]->input, 1);
	assert_int_equal(m[5]->output, 2);
	assert_string_equal(m[5]->selector, "/usr/lib");
	assert_string_equal(m[6]->cacheopt->id, "/root/.cache"); /* id defaults to dest */
	const Pb__OpMetadata *md = metadata_of(def, dg[2]);
	static const char *const caps[] = {
		"exec.meta.base", "exec.meta.network", "exec.meta.proxyenv", "exec.meta.security",
		"exec.mount.bind", "exec.mount.cache", "exec.mount.cache.sharing",
		"exec.mount.secret", "exec.mount.selector", "exec.mount.ssh", "exec.mount.tmpfs",
	};
	assert_int_equal(md->n_caps, sizeof(caps) / sizeof(caps[0]));
	for (size_t i = 0; i < md->n_caps; i++)
		assert_string_equal(md->caps[i]->key, caps[i]);
	Pb__Op *t = unpack_op(&def->def[3]);
	assert_int_equal(t->inputs[0]->index, 1);
	pb__op__free_unpacked(t, NULL);
	pb__op__free_unpacked(op, NULL);
	pb__op__free_unpacked(s0, NULL);
	pb__op__free_unpacked(s1, NULL);
	free(dg);
	pb__definition__free_unpacked(def, NULL);
	kiln__arena_free(a);
	H->graph_free(g);
}

static void other_sources_and_actions(void **st)
{
	(void)st;
	struct kiln_err err = { 0 };
	struct kiln_graph *g = new_graph(NULL, NULL);
	struct kiln_graph_ref git, http, loc, f;
	struct kiln_graph_source s = { .struct_size = sizeof(s), .kind = KILN_GRAPH_SOURCE_GIT,
				       .ref = "git@github.com:o/r.git", .git_ref = "v1.2",
				       .keep_git_dir = true };
	OK(H->graph_add_source(g, &s, &git, &err));
	struct kiln_graph_source h = { .struct_size = sizeof(h), .kind = KILN_GRAPH_SOURCE_HTTP,
				       .ref = "https://example.com/a.tgz", .perm = 0644, .uid = 7 };
	OK(H->graph_add_source(g, &h, &http, &err));
	const char *inc[] = { "src/", "Makefile" };
	struct kiln_graph_source l = { .struct_size = sizeof(l), .kind = KILN_GRAPH_SOURCE_LOCAL,
				       .ref = "context", .unique_id = "u-1", .include_patterns = inc,
				       .n_include_patterns = 2 };
	OK(H->graph_add_source(g, &l, &loc, &err));
	struct kiln_graph_file_action acts[] = {
		{ .struct_size = sizeof(acts[0]), .kind = KILN_GRAPH_FILE_COPY, .src = git,
		  .src_path = "src/./a/../b/.", .path = "dst/." },
		{ .struct_size = sizeof(acts[0]), .kind = KILN_GRAPH_FILE_COPY, .src = http,
		  .src_path = "/a.tgz", .path = "/", .mode = 0755, .owner = "app:staff",
		  .flags = KILN_GRAPH_COPY_UNPACK | KILN_GRAPH_FILE_CREATED, .created_ns = 0 },
		{ .struct_size = sizeof(acts[0]), .kind = KILN_GRAPH_FILE_RM, .path = "/tmp/*",
		  .flags = KILN_GRAPH_RM_ALLOW_WILDCARD | KILN_GRAPH_RM_ALLOW_NOT_FOUND },
		{ .struct_size = sizeof(acts[0]), .kind = KILN_GRAPH_FILE_MKFILE, .path = "../../empty" },
	};
	struct kiln_graph_file fo = { .struct_size = sizeof(fo), .base = loc, .actions = acts,
				      .n_actions = 4, .platform = "linux/aarch64/v8" };
	OK(H->graph_add_file(g, &fo, &f, &err));

	struct kiln_arena *a = kiln__arena_new();
	const uint8_t *bytes;
	size_t len;
	OK(H->graph_marshal(g, f, a, &bytes, &len, NULL, &err));
	Pb__Definition *def = pb__definition__unpack(NULL, len, bytes);
	char(*dg)[KILN_GRAPH_DIGEST_SIZE];
	check_definition(def, &dg);
	assert_int_equal(def->n_def, 5);

	Pb__Op *o = unpack_op(&def->def[0]);
	assert_string_equal(o->source->identifier, "git://github.com/o/r.git#v1.2");
	assert_null(o->platform);
	const char *want_git[][2] = {
		{ "git.authheadersecret", "GIT_AUTH_HEADER" }, { "git.authtokensecret", "GIT_AUTH_TOKEN" },
		{ "git.fullurl", "git@github.com:o/r.git" }, { "git.keepgitdir", "true" },
		{ "git.mountsshsock", "default" },
	};
	assert_int_equal(o->source->n_attrs, 5);
	for (size_t i = 0; i < 5; i++) {
		assert_string_equal(o->source->attrs[i]->key, want_git[i][0]);
		assert_string_equal(o->source->attrs[i]->value, want_git[i][1]);
	}
	const Pb__OpMetadata *gm = metadata_of(def, dg[0]);
	assert_true(has_cap(gm, "source.git") && has_cap(gm, "source.git.fullurl") &&
		    has_cap(gm, "source.git.keepgitdir") && has_cap(gm, "source.git.mountsshsock"));
	assert_false(has_cap(gm, "source.git.httpauth"));
	pb__op__free_unpacked(o, NULL);

	o = unpack_op(&def->def[1]);
	assert_string_equal(o->source->identifier, "https://example.com/a.tgz");
	assert_string_equal(o->source->attrs[0]->key, "http.perm");
	assert_string_equal(o->source->attrs[0]->value, "0644");
	assert_string_equal(o->source->attrs[1]->key, "http.uid");
	assert_true(has_cap(metadata_of(def, dg[1]), "soruce.http.uidgid")); /* sic */
	pb__op__free_unpacked(o, NULL);

	o = unpack_op(&def->def[2]);
	assert_string_equal(o->source->attrs[0]->key, "local.includepattern");
	assert_string_equal(o->source->attrs[0]->value, "[\"src/\",\"Makefile\"]");
	assert_string_equal(o->source->attrs[1]->key, "local.unique");
	assert_true(has_cap(metadata_of(def, dg[2]), "source.local.unique"));
	pb__op__free_unpacked(o, NULL);

	o = unpack_op(&def->def[3]);
	assert_string_equal(o->platform->architecture, "arm64");
	assert_string_equal(o->platform->variant, "");
	assert_int_equal(o->n_inputs, 3); /* local base, git, http */
	Pb__FileAction **fa = o->file->actions;
	assert_string_equal(fa[0]->copy->src, "/src/b");
	assert_string_equal(fa[0]->copy->dest, "/dst/.");
	assert_int_equal(fa[0]->secondaryinput, 1);
	assert_int_equal(fa[1]->input, 3);
	assert_int_equal(fa[1]->secondaryinput, 2);
	assert_string_equal(fa[1]->copy->dest, "/");
	assert_int_equal(fa[1]->copy->mode, 0755);
	assert_int_equal(fa[1]->copy->timestamp, 0); /* set: the epoch */
	assert_true(fa[1]->copy->attemptunpackdockercompatibility);
	assert_int_equal(fa[1]->copy->owner->user->user_case, PB__USER_OPT__USER_BY_NAME);
	assert_string_equal(fa[1]->copy->owner->user->byname->name, "app");
	assert_int_equal(fa[1]->copy->owner->user->byname->input, 0);
	assert_string_equal(fa[1]->copy->owner->group->byname->name, "staff");
	assert_true(fa[2]->rm->allowwildcard && fa[2]->rm->allownotfound);
	assert_string_equal(fa[3]->mkfile->path, "/empty");
	assert_int_equal(fa[3]->mkfile->mode, 0644);
	assert_int_equal(fa[3]->output, 0);
	const Pb__OpMetadata *fm = metadata_of(def, dg[3]);
	assert_true(has_cap(fm, "file.base") && has_cap(fm, "file.rm.wildcard"));
	pb__op__free_unpacked(o, NULL);

	free(dg);
	pb__definition__free_unpacked(def, NULL);
	kiln__arena_free(a);
	H->graph_free(g);
}

/* A larger option struct from a newer plugin is fine while the fields this
 * kiln does not know are zero; set ones are refused. */
struct newer_source {
	struct kiln_graph_source v1;
	uint64_t future;
};

static void errors_leave_the_graph_unchanged(void **st)
{
	(void)st;
	struct kiln_err err;
	struct kiln_graph *g = new_graph(NULL, NULL);
	struct kiln_graph_ref img = add_image(g, "alpine", NULL), out = { 0, 0 };
	struct kiln_arena *a = kiln__arena_new();
	const uint8_t *before, *after;
	size_t before_len, after_len;
	OK(H->graph_marshal(g, img, a, &before, &before_len, NULL, &err));

	const char *args[] = { "true" };
	struct kiln_graph_exec ex = { .struct_size = sizeof(ex), .rootfs = img, .args = args };
	FAILS(KILN_E_INVALID, "args are empty", H->graph_add_exec(g, &ex, &out, &err));
	ex.n_args = 1;
	ex.rootfs = (struct kiln_graph_ref){ 42, 0 };
	FAILS(KILN_E_INVALID, "unknown vertex 42", H->graph_add_exec(g, &ex, &out, &err));
	ex.rootfs = (struct kiln_graph_ref){ img.node, 1 };
	FAILS(KILN_E_INVALID, "no output 1", H->graph_add_exec(g, &ex, &out, &err));
	ex.rootfs = img;
	struct kiln_graph_mount bad[] = {
		{ .struct_size = sizeof(bad[0]), .type = KILN_GRAPH_MOUNT_CACHE, .dest = "/c" },
		{ .struct_size = sizeof(bad[0]), .type = KILN_GRAPH_MOUNT_TMPFS, .dest = "/c/" },
	};
	ex.mounts = bad;
	ex.n_mounts = 2;
	FAILS(KILN_E_INVALID, "mounted twice", H->graph_add_exec(g, &ex, &out, &err));
	bad[1].dest = "/";
	FAILS(KILN_E_INVALID, "rootfs", H->graph_add_exec(g, &ex, &out, &err));
	bad[1] = (struct kiln_graph_mount){ .struct_size = sizeof(bad[0]),
					    .type = KILN_GRAPH_MOUNT_TMPFS, .dest = "/t", .id = "x" };
	FAILS(KILN_E_INVALID, "id does not apply", H->graph_add_exec(g, &ex, &out, &err));
	bad[1] = (struct kiln_graph_mount){ .struct_size = sizeof(bad[0]),
					    .type = KILN_GRAPH_MOUNT_SECRET };
	FAILS(KILN_E_INVALID, "needs an id", H->graph_add_exec(g, &ex, &out, &err));
	bad[1].struct_size = 8;
	FAILS(KILN_E_INVALID, "struct_size", H->graph_add_exec(g, &ex, &out, &err));
	ex.struct_size = 0;
	FAILS(KILN_E_INVALID, "struct_size 0", H->graph_add_exec(g, &ex, &out, &err));
	FAILS(KILN_E_INVALID, "no options", H->graph_add_exec(g, NULL, &out, &err));

	struct kiln_graph_source s = { .struct_size = sizeof(s), .kind = KILN_GRAPH_SOURCE_LOCAL,
				       .ref = "context" };
	FAILS(KILN_E_INVALID, "session_id", H->graph_add_source(g, &s, &out, &err));
	s.platform = "linux/amd64";
	s.unique_id = "u";
	FAILS(KILN_E_INVALID, "platform does not apply", H->graph_add_source(g, &s, &out, &err));
	s = (struct kiln_graph_source){ .struct_size = sizeof(s), .kind = KILN_GRAPH_SOURCE_IMAGE,
					.ref = "Alpine" };
	FAILS(KILN_E_INVALID, "bad image reference", H->graph_add_source(g, &s, &out, &err));
	s.ref = "alpine";
	s.platform = "linux";
	FAILS(KILN_E_INVALID, "bad platform", H->graph_add_source(g, &s, &out, &err));
	s.platform = NULL;
	s.kind = 9;
	FAILS(KILN_E_INVALID, "unknown kind", H->graph_add_source(g, &s, &out, &err));
	struct newer_source ns = { .v1 = { .struct_size = sizeof(ns),
					   .kind = KILN_GRAPH_SOURCE_IMAGE, .ref = "alpine" },
				   .future = 1 };
	FAILS(KILN_E_UNSUPPORTED, "newer", H->graph_add_source(g, &ns.v1, &out, &err));
	ns.future = 0;
	OK(H->graph_add_source(g, &ns.v1, &out, &err)); /* same op as img */
	assert_int_equal(out.node, img.node);

	struct kiln_graph_file_action act = { .struct_size = sizeof(act),
					      .kind = KILN_GRAPH_FILE_MKDIR, .path = "" };
	struct kiln_graph_file fo = { .struct_size = sizeof(fo), .base = img, .actions = &act };
	FAILS(KILN_E_INVALID, "no actions", H->graph_add_file(g, &fo, &out, &err));
	fo.n_actions = 1;
	FAILS(KILN_E_INVALID, "path is empty", H->graph_add_file(g, &fo, &out, &err));
	act.path = "/d";
	act.mode = 01777;
	FAILS(KILN_E_INVALID, "above 0777", H->graph_add_file(g, &fo, &out, &err));
	act.mode = 0;
	act.flags = KILN_GRAPH_COPY_UNPACK;
	FAILS(KILN_E_INVALID, "a flag does not apply", H->graph_add_file(g, &fo, &out, &err));
	act.flags = 0;
	act.owner = "a:b:c";
	FAILS(KILN_E_INVALID, "user[:group]", H->graph_add_file(g, &fo, &out, &err));
	act.owner = NULL;
	act.kind = KILN_GRAPH_FILE_COPY;
	FAILS(KILN_E_INVALID, "src_path", H->graph_add_file(g, &fo, &out, &err));
	act.src_path = "/x";
	act.src = (struct kiln_graph_ref){ 99, 0 };
	FAILS(KILN_E_INVALID, "unknown vertex 99", H->graph_add_file(g, &fo, &out, &err));

	FAILS(KILN_E_INVALID, "scratch",
	      H->graph_marshal(g, KILN_GRAPH_SCRATCH, a, &after, &after_len, NULL, &err));
	FAILS(KILN_E_INVALID, "unknown vertex",
	      H->graph_marshal(g, (struct kiln_graph_ref){ 2, 0 }, a, &after, &after_len, NULL, &err));
	struct kiln_graph *g2 = NULL;
	struct kiln_graph_opts go = { .struct_size = sizeof(go), .session_id = "a:b" };
	FAILS(KILN_E_INVALID, "session ID", H->graph_new(&go, &g2, &err));
	assert_null(g2);
	go = (struct kiln_graph_opts){ .struct_size = sizeof(go), .platform = "linux//x" };
	FAILS(KILN_E_INVALID, "bad platform", H->graph_new(&go, &g2, &err));
	assert_null(g2);

	/* Nothing above changed the graph. */
	OK(H->graph_marshal(g, img, a, &after, &after_len, NULL, &err));
	assert_int_equal(after_len, before_len);
	assert_memory_equal(after, before, before_len);
	kiln__arena_free(a);
	H->graph_free(g);
	H->graph_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(matches_wire_test_vector),
		cmocka_unit_test(marshals_identically_100_times),
		cmocka_unit_test(decodes_to_the_expected_ops),
		cmocka_unit_test(dedupes_and_leaves_out_unreachable),
		cmocka_unit_test(exec_mounts_and_options),
		cmocka_unit_test(other_sources_and_actions),
		cmocka_unit_test(errors_leave_the_graph_unchanged),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
