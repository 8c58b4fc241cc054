/* engine.c: which engine a command talks to, and through which backend. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define BUILDKITD_SOCK "/run/buildkit/buildkitd.sock"

const char *kiln__engine_addr(const char *flag)
{
	const char *env;
	if (flag && *flag)
		return flag;
	if ((env = getenv("BUILDKIT_HOST")) && *env)
		return env;
	if (access(BUILDKITD_SOCK, F_OK) == 0)
		return "unix://" BUILDKITD_SOCK;
	if ((env = getenv("DOCKER_HOST")) && *env)
		return env;
	return "unix:///var/run/docker.sock";
}

static bool provides(const struct kiln_backend *b, enum kiln_need need)
{
	/* Older plugins' vtables may end before the optional calls. */
	switch (need) {
	case KILN_NEED_SOLVE:
		return true;
	case KILN_NEED_WORKERS:
		return KILN_HAS_FIELD(b, struct kiln_backend, workers) && b->workers;
	case KILN_NEED_DISK_USAGE:
		return KILN_HAS_FIELD(b, struct kiln_backend, disk_usage) && b->disk_usage;
	case KILN_NEED_PRUNE:
		return KILN_HAS_FIELD(b, struct kiln_backend, prune) && b->prune;
	}
	return false;
}

const struct kiln_backend *kiln__pick_backend(struct kiln_ctx *ctx, const char *addr,
					      enum kiln_need need)
{
	/* KILN_BACKEND=NAME limits the choice to that backend (e.g. the
	 * docker backend on Docker's socket, where buildkit wins). */
	const char *only = getenv("KILN_BACKEND");
	const struct kiln_backend *best = NULL;
	int best_score = 0;
	for (size_t i = 0; i < ctx->reg.n_entries; i++) {
		const struct kiln_reg_entry *e = &ctx->reg.entries[i];
		if (e->kind != KILN_KIND_BACKEND || !provides(e->vt, need))
			continue;
		const struct kiln_backend *b = e->vt;
		if (only && *only && strcmp(only, b->name) != 0)
			continue;
		int score = b->probe(addr);
		if (score > best_score) {
			best = b;
			best_score = score;
		}
	}
	return best;
}
