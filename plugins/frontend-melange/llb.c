/* llb.c: a compiled melange plan as one LLB graph (MELANGE.md 4.3):
 *
 *   image      docker-image://<build image>
 *   source     local://<source_name>, the sources dir (melange-out excluded)
 *   prepare    on image: mkdir /home/build; copy source's contents into
 *              it; mkdir /home/build/melange-out/<package>
 *   steps      one exec per step, strictly in order, each on the one before:
 *              /bin/sh -c <prelude + runs>, cwd /home/build, env sorted,
 *              as root; a mkdir melange-out/<subpackage> before each
 *              subpackage's steps
 *   result     on scratch: copy /home/build/melange-out's contents to /
 *
 * Nothing depends on time, addresses or map order: the same plan gives
 * the same bytes. */
#include <stdio.h>
#include <string.h>

#include <kiln/kiln.h>

#include "melange.h"

#define HOME "/home/build"

int mel_llb(const struct kiln_host *host, const struct mel_plan *plan,
	    const struct mel_llb_opts *o, struct kiln_arena *arena, const uint8_t **data,
	    size_t *len, char *digest, struct kiln_err *err)
{
	if (!KILN_HAS_FIELD(host, struct kiln_host, graph_marshal))
		return host->error(err, KILN_E_UNSUPPORTED, "this kiln has no graph builder");
	const struct mel_config *cfg = plan->cfg;
	struct kiln_graph *g = NULL;
	struct kiln_graph_opts gopts = { .struct_size = sizeof(gopts), .platform = o->platform };
	int rc = host->graph_new(&gopts, &g, err);
	if (rc < 0)
		return rc;
	struct mel_pool *p = mel_pool_new();

	struct kiln_graph_ref image, src, cur, out;
	struct kiln_graph_source img = {
		.struct_size = sizeof(img), .kind = KILN_GRAPH_SOURCE_IMAGE, .ref = o->build_image,
	};
	const char *excl[] = { "melange-out" };
	struct kiln_graph_source local = {
		.struct_size = sizeof(local), .kind = KILN_GRAPH_SOURCE_LOCAL,
		.ref = o->source_name,
		.unique_id = mel_printf(p, "melange:%s", cfg->name),
		.exclude_patterns = excl, .n_exclude_patterns = 1,
		.shared_key_hint = o->source_name,
		.name = mel_printf(p, "[%s] load sources", cfg->name),
	};
	if ((rc = host->graph_add_source(g, &img, &image, err)) < 0 ||
	    (rc = host->graph_add_source(g, &local, &src, err)) < 0)
		goto done;

	struct kiln_graph_file_action prep[] = {
		{ .struct_size = sizeof(prep[0]), .kind = KILN_GRAPH_FILE_MKDIR, .path = HOME,
		  .mode = 0755, .flags = KILN_GRAPH_MKDIR_PARENTS },
		{ .struct_size = sizeof(prep[0]), .kind = KILN_GRAPH_FILE_COPY, .path = HOME "/",
		  .src = src, .src_path = "/",
		  .flags = KILN_GRAPH_COPY_DIR_CONTENTS | KILN_GRAPH_COPY_CREATE_DEST_PATH },
		{ .struct_size = sizeof(prep[0]), .kind = KILN_GRAPH_FILE_MKDIR,
		  .path = mel_printf(p, HOME "/melange-out/%s", cfg->name), .mode = 0755,
		  .flags = KILN_GRAPH_MKDIR_PARENTS },
	};
	struct kiln_graph_file prepf = {
		.struct_size = sizeof(prepf), .base = image, .actions = prep, .n_actions = 3,
		.name = mel_printf(p, "[%s] prepare " HOME, cfg->name),
	};
	if ((rc = host->graph_add_file(g, &prepf, &cur, err)) < 0)
		goto done;

	size_t step = 0;
	for (size_t oi = 0; oi < plan->n_outputs; oi++) {
		const struct mel_output *po = &plan->outputs[oi];
		if (oi > 0) {
			struct kiln_graph_file_action mk = {
				.struct_size = sizeof(mk), .kind = KILN_GRAPH_FILE_MKDIR,
				.path = mel_printf(p, HOME "/melange-out/%s", po->name),
				.mode = 0755, .flags = KILN_GRAPH_MKDIR_PARENTS,
			};
			struct kiln_graph_file f = {
				.struct_size = sizeof(f), .base = cur, .actions = &mk, .n_actions = 1,
				.name = mel_printf(p, "[%s] mkdir melange-out/%s", po->name, po->name),
			};
			if ((rc = host->graph_add_file(g, &f, &cur, err)) < 0)
				goto done;
		}
		for (size_t k = 0; k < po->n_execs; k++) {
			const struct mel_exec *e = &plan->execs[po->first_exec + k];
			step++;
			const char *args[] = { "/bin/sh", "-c", e->script };
			struct kiln_kv *env = mel_alloc(p, (e->env.n + 1) * sizeof(*env));
			for (size_t i = 0; i < e->env.n; i++)
				env[i] = (struct kiln_kv){ e->env.v[i].key, e->env.v[i].value };
			const char *base = strrchr(e->file, '/');
			base = base ? base + 1 : e->file;
			struct kiln_kv desc[] = {
				{ "kiln.melange.source", mel_printf(p, "%s:%d", base, e->line) },
			};
			struct kiln_graph_exec ex = {
				.struct_size = sizeof(ex), .rootfs = cur, .args = args, .n_args = 3,
				.env = env, .n_env = e->env.n, .cwd = HOME,
				.name = mel_printf(p, "[%s %zu/%zu] %s (%s:%d)", e->pkg, step,
						   plan->n_execs, e->label, base, e->line),
				.description = desc, .n_description = 1,
			};
			if ((rc = host->graph_add_exec(g, &ex, &cur, err)) < 0)
				goto done;
		}
	}

	struct kiln_graph_file_action cp = {
		.struct_size = sizeof(cp), .kind = KILN_GRAPH_FILE_COPY, .path = "/", .src = cur,
		.src_path = HOME "/melange-out", .flags = KILN_GRAPH_COPY_DIR_CONTENTS,
	};
	struct kiln_graph_file res = {
		.struct_size = sizeof(res), .base = KILN_GRAPH_SCRATCH, .actions = &cp,
		.n_actions = 1, .name = mel_printf(p, "[%s] export melange-out", cfg->name),
	};
	if ((rc = host->graph_add_file(g, &res, &out, err)) < 0)
		goto done;
	rc = host->graph_marshal(g, out, arena, data, len, digest, err);
done:
	host->graph_free(g);
	mel_pool_free(p);
	return rc;
}
