/* engine.c: which engine a command talks to, through which backend, and
 * how to connect (buildctl's TLS flags). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

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
	case KILN_NEED_PUSH:
		return KILN_HAS_FIELD(b, struct kiln_backend, push) && b->push;
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

/* ---- buildctl's TLS flags ------------------------------------------------------- */

bool kiln__tls_cli_take(struct kiln_tls_cli *t, int o, const char *arg)
{
	switch (o) {
	case KILN_OPT_TLSCACERT: t->ca_cert = arg; return true;
	case KILN_OPT_TLSCERT: t->cert = arg; return true;
	case KILN_OPT_TLSKEY: t->key = arg; return true;
	case KILN_OPT_TLSSERVERNAME: t->server_name = arg; return true;
	case KILN_OPT_TLSDIR: t->dir = arg; return true;
	}
	return false;
}

/* An empty value counts as not given, as in buildctl. */
static const char *given(const char *s)
{
	return s && *s ? s : NULL;
}

/* The first TLS option set in opts, for messages; NULL when none is. */
static const char *first_tls_flag(const struct kiln_connect_opts *o)
{
	if (o->tls_ca_cert)
		return "--tlscacert";
	if (o->tls_cert)
		return "--tlscert";
	if (o->tls_key)
		return "--tlskey";
	if (o->tls_server_name)
		return "--tlsservername";
	return NULL;
}

int kiln__tls_cli_resolve(struct kiln_tls_cli *t, const char *addr,
			  struct kiln_connect_opts *opts, struct kiln_err *err)
{
	*opts = (struct kiln_connect_opts){
		.struct_size = sizeof(*opts),
		.addr = addr,
		.tls_ca_cert = given(t->ca_cert),
		.tls_cert = given(t->cert),
		.tls_key = given(t->key),
		.tls_server_name = given(t->server_name),
	};
	const char *dir = given(t->dir);
	if (dir) {
		static const char *const names[] = { "ca.pem", "cert.pem", "key.pem" };
		const char *sep = dir[strlen(dir) - 1] == '/' ? "" : "/";
		if (opts->tls_ca_cert || opts->tls_cert || opts->tls_key)
			return kiln__err(err, KILN_E_INVALID, "--tlsdir cannot be combined with "
					 "--tlscacert, --tlscert or --tlskey");
		for (size_t i = 0; i < 3; i++) {
			free(t->dir_files[i]);
			t->dir_files[i] = kiln__xasprintf("%s%s%s", dir, sep, names[i]);
		}
		opts->tls_ca_cert = t->dir_files[0];
		opts->tls_cert = t->dir_files[1];
		opts->tls_key = t->dir_files[2];
	}
	if (opts->tls_cert && !opts->tls_key)
		return kiln__err(err, KILN_E_INVALID, "--tlscert needs --tlskey (the client "
				 "certificate's private key)");
	if (opts->tls_key && !opts->tls_cert)
		return kiln__err(err, KILN_E_INVALID, "--tlskey needs --tlscert (the client "
				 "certificate it belongs to)");
	const char *flag = dir ? "--tlsdir" : first_tls_flag(opts);
	if (flag && strncmp(addr, "tcp://", 6) != 0)
		return kiln__err(err, KILN_E_INVALID, "%s needs a tcp:// engine address (TLS to "
				 "buildkitd), not '%s'", flag, addr);
	return 0;
}

void kiln__tls_cli_release(struct kiln_tls_cli *t)
{
	for (size_t i = 0; i < 3; i++) {
		free(t->dir_files[i]);
		t->dir_files[i] = NULL;
	}
}

int kiln__backend_connect(const struct kiln_backend *be, const struct kiln_connect_opts *opts,
			  void **conn, struct kiln_err *err)
{
	/* Older plugins' vtables end before connect_opts. */
	if (KILN_HAS_FIELD(be, struct kiln_backend, connect_opts) && be->connect_opts)
		return be->connect_opts(&kiln__host, opts, conn, err);
	const char *flag = first_tls_flag(opts);
	if (flag)
		return kiln__err(err, KILN_E_UNSUPPORTED, "the %s backend does not support %s "
				 "(TLS to %s)", be->name, flag, opts->addr);
	return be->connect(&kiln__host, opts->addr, conn, err);
}
