/*
 * backend.c: the `buildkit` backend: BuildKit's own gRPC API, as buildctl
 * and docker buildx speak it, to standalone buildkitd (unix://, tcp://) or
 * to the BuildKit inside dockerd (docker-unix://, docker://).
 *
 * connect_opts() (and connect(), without options) dials, over TLS when
 * buildctl's --tls* flags are given for a tcp:// address, and checks the
 * daemon with Info (the version probe); solve.c runs
 * builds with a session (session.c); control.c has ListWorkers, DiskUsage
 * and Prune (kiln workers/du/prune).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/log.h>

#include "buildkit.h"

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- probe -------------------------------------------------------------------------- */

/*
 * `kiln build` takes the backend with the highest score. BuildKit's own
 * API is kiln's main engine: it beats the docker backend (10) on Docker's
 * socket too, as `docker buildx` does on the docker driver; tcp:// is ours
 * alone. A unix:// socket scores 20 when its name says buildkit or docker
 * (connect falls back to Docker's POST /grpc), else 5: another engine's
 * socket (Podman's has no BuildKit) goes to the docker backend, and an
 * oddly named buildkitd socket is reached with KILN_BACKEND=buildkit.
 */
static int probe(const char *addr)
{
	if (has_prefix(addr, "docker-unix://") || has_prefix(addr, "docker://") ||
	    has_prefix(addr, "tcp://"))
		return 20;
	if (has_prefix(addr, "unix://")) {
		const char *path = addr + 7;
		const char *base = strrchr(path, '/');
		base = base ? base + 1 : path;
		if (!*path || strstr(path, "buildkit") || strstr(base, "docker"))
			return 20;
		return 5;
	}
	return 0;
}

/* ---- gRPC's own diagnostics ----------------------------------------------------------- */

/* gRPC core writes its log to stderr; an unreachable daemon must give one
 * line, so route it to kiln's debug log. The log function is process-wide
 * in gRPC; the host table is the same for every connection. */
static const struct kiln_host *_Atomic log_host;
static atomic_int grpc_users;

static void grpc_log(gpr_log_func_args *a)
{
	const struct kiln_host *host = atomic_load(&log_host);
	if (host)
		host->log(KILN_LOG_DEBUG, "grpc: %s:%d: %s", a->file, a->line, a->message);
}

static void grpc_use(const struct kiln_host *host)
{
	if (atomic_fetch_add(&grpc_users, 1) == 0) {
		atomic_store(&log_host, host);
		gpr_set_log_function(grpc_log);
	}
	grpc_init();
}

static void grpc_unuse(void)
{
	grpc_shutdown();
	if (atomic_fetch_sub(&grpc_users, 1) == 1) {
		gpr_set_log_function(NULL); /* back to gRPC's default */
		atomic_store(&log_host, NULL);
	}
}

/* ---- connect ----------------------------------------------------------------------------- */

/* msg without its "cannot reach buildkit at ADDR: " opening. */
static const char *after_addr(const char *msg, const char *addr)
{
	const char *p = strstr(msg, addr);
	if (p && strncmp(p + strlen(addr), ": ", 2) == 0)
		return p + strlen(addr) + 2;
	return msg;
}

static void disconnect(void *connp);

static int connect_opts(const struct kiln_host *host, const struct kiln_connect_opts *given,
			void **connp, struct kiln_err *err)
{
	/* A core built before a field existed passes a shorter struct: the
	 * fields it lacks stay NULL. */
	struct kiln_connect_opts opts = { 0 };
	memcpy(&opts, given, given->struct_size < sizeof(opts) ? given->struct_size : sizeof(opts));
	const char *addr = opts.addr;
	if (!addr)
		return host->error(err, KILN_E_INVALID, "connect: no engine address");
	struct buildkit_addr where;
	int rc = buildkit_addr_parse(host, addr, &where, err);
	if (rc < 0)
		return rc;
	struct buildkit_tls *tls = NULL;
	if (opts.tls_ca_cert || opts.tls_cert || opts.tls_key || opts.tls_server_name) {
		if (where.transport != BUILDKIT_TCP)
			return host->error(err, KILN_E_INVALID, "cannot use TLS with %s: TLS is "
					   "for tcp:// addresses", addr);
		/* the files first: a missing one is named before any dialling */
		if ((rc = buildkit_tls_load(host, &opts, &where, &tls, err)) < 0)
			return rc;
	}
	struct buildkit_conn *conn = host->alloc(sizeof(*conn));
	*conn = (struct buildkit_conn){ .host = host, .where = where, .tls_pem = tls };
	atomic_init(&conn->cancelled, false);
	pthread_mutex_init(&conn->lock, NULL);
	conn->addr = host->alloc(strlen(addr) + 1);
	memcpy(conn->addr, addr, strlen(addr) + 1);
	grpc_use(host);

	/* One budget for the whole connect: a silent peer fails in time. */
	int64_t deadline = buildkit_now_ms() + BUILDKIT_CONNECT_MS;
	struct buildkit_status st = { 0 };
	rc = buildkit_dial(conn, deadline, err);
	buildkit_tls_free(host, conn->tls_pem); /* gRPC has its copy */
	conn->tls_pem = NULL;
	if (rc == 0)
		rc = buildkit_info(conn, (int)(deadline - buildkit_now_ms()), &st, err);
	if (rc < 0 && conn->channel && conn->where.transport == BUILDKIT_UNIX &&
	    (st.code == GRPC_STATUS_UNAVAILABLE || st.code == GRPC_STATUS_UNKNOWN)) {
		/* Something listens but does not speak gRPC: if it is
		 * Docker's socket, use the BuildKit inside, as docker-unix://
		 * would. Report the first failure unless Docker answered. */
		host->log(KILN_LOG_DEBUG, "buildkit: %s: %s; trying Docker's POST /grpc", addr,
			  err->msg);
		struct kiln_err err2 = { 0 };
		grpc_channel_destroy(conn->channel);
		conn->channel = NULL;
		conn->where.transport = BUILDKIT_DOCKER;
		rc = buildkit_dial(conn, deadline, &err2);
		if (rc == 0)
			rc = buildkit_info(conn, (int)(deadline - buildkit_now_ms()), NULL, &err2);
		if (rc < 0 && conn->http_answered) {
			*err = err2;
		} else if (rc < 0) {
			/* Neither protocol: name both attempts. */
			char first[sizeof(err->msg)];
			snprintf(first, sizeof(first), "%s", after_addr(err->msg, addr));
			rc = host->error(err, err->code, "cannot reach %s: it answers neither as "
					 "BuildKit (gRPC: %s) nor as a Docker Engine API (POST "
					 "/grpc: %s)", addr, first, after_addr(err2.msg, addr));
		}
	} else if (rc < 0 && conn->channel && conn->where.transport == BUILDKIT_UNIX &&
		   st.code == GRPC_STATUS_DEADLINE_EXCEEDED) {
		rc = host->error(err, KILN_E_CONNECT, "cannot reach %s: no answer within %d s, "
				 "neither as BuildKit (gRPC) nor as a Docker Engine API", addr,
				 BUILDKIT_CONNECT_MS / 1000);
	}
	if (rc < 0) {
		disconnect(conn);
		return rc;
	}
	host->log(KILN_LOG_DEBUG, "buildkit: connected to %s: BuildKit %s", addr,
		  conn->version[0] ? conn->version : "before v0.11 (v0.8 feature set)");
	*connp = conn;
	return 0;
}

static int connect_(const struct kiln_host *host, const char *addr, void **connp,
		    struct kiln_err *err)
{
	struct kiln_connect_opts opts = { .struct_size = sizeof(opts), .addr = addr };
	return connect_opts(host, &opts, connp, err);
}

static void disconnect(void *connp)
{
	struct buildkit_conn *conn = connp;
	if (!conn)
		return;
	const struct kiln_host *host = conn->host;
	if (conn->channel)
		grpc_channel_destroy(conn->channel);
	grpc_unuse();
	buildkit_tls_free(host, conn->tls_pem);
	pthread_mutex_destroy(&conn->lock);
	host->free(conn->addr);
	host->free(conn);
}

static void cancel(void *connp)
{
	struct buildkit_conn *conn = connp;
	atomic_store(&conn->cancelled, true);
	buildkit_cancel_calls(conn);
}

static const struct kiln_backend backend = {
	.abi_version = KILN_ABI_VERSION,
	.struct_size = sizeof(struct kiln_backend),
	.name = "buildkit",
	.version = "0.1.0",
	.description = "BuildKit's gRPC API: buildkitd (unix://, tcp:// with TLS) or dockerd "
		       "(docker-unix://, docker://): solve with sessions, workers, du, prune",
	.probe = probe,
	.connect = connect_,
	.solve = buildkit_solve,
	.cancel = cancel,
	.disconnect = disconnect,
	.workers = buildkit_workers,
	.disk_usage = buildkit_disk_usage,
	.prune = buildkit_prune,
	.connect_opts = connect_opts,
};

KILN_EXPORT int kiln_plugin_init(const struct kiln_host *host, uint32_t host_abi,
				 struct kiln_plugin *plugin, struct kiln_err *err)
{
	int rc = kiln_check_host_abi(host, host_abi, err);
	return rc < 0 ? rc : host->register_backend(plugin, &backend);
}
