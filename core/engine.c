/* engine.c: which engine a command talks to, through which backend and
 * why (docs/cli.md "Choosing the engine"), and how to connect (buildctl's
 * TLS flags). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lazylib.h"
#include "cli.h"
#include "util.h"

#define BUILDKITD_SOCK "/run/buildkit/buildkitd.sock"
#define DOCKER_SOCK "/var/run/docker.sock"
/* GET /_ping: a live dockerd answers in milliseconds */
#define PING_MS 1500

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
	const struct kiln_backend *best = NULL;
	int best_score = 0;
	kiln__registry_want_kind(&ctx->reg, KILN_KIND_BACKEND); /* probe() them all */
	for (size_t i = 0; i < ctx->reg.n_entries; i++) {
		const struct kiln_reg_entry *e = &ctx->reg.entries[i];
		if (e->kind != KILN_KIND_BACKEND || !provides(e->vt, need))
			continue;
		const struct kiln_backend *b = e->vt;
		int score = b->probe(addr);
		if (score > best_score) {
			best = b;
			best_score = score;
		}
	}
	return best;
}

/* ---- which backend: buildx's and buildctl's rules (docs/cli.md) ------------------- */

struct ping_hdrs {
	struct kiln_docker_ping *p;
};

/* Copy the value of header line h (len bytes) into dst when its name is
 * name (case-insensitive), trimmed. */
static void header_value(const char *h, size_t len, const char *name, char *dst, size_t cap)
{
	size_t nl = strlen(name);
	if (len <= nl || strncasecmp(h, name, nl) != 0 || h[nl] != ':')
		return;
	const char *v = h + nl + 1, *end = h + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	snprintf(dst, cap, "%.*s", (int)(end - v), v);
}

static size_t ping_header_cb(char *h, size_t size, size_t n, void *ud)
{
	struct kiln_docker_ping *p = ud;
	size_t len = size * n;
	header_value(h, len, "Api-Version", p->api_version, sizeof(p->api_version));
	header_value(h, len, "Builder-Version", p->builder_version, sizeof(p->builder_version));
	header_value(h, len, "Libpod-Api-Version", p->libpod_version, sizeof(p->libpod_version));
	header_value(h, len, "Server", p->server, sizeof(p->server));
	return len;
}

static size_t ping_body_cb(char *data, size_t size, size_t n, void *ud)
{
	(void)data, (void)ud;
	return size * n;
}

void kiln__docker_ping(const char *sock, int timeout_ms, struct kiln_docker_ping *p)
{
	*p = (struct kiln_docker_ping){ 0 };
	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURL *c = curl_easy_init();
	if (!c) {
		snprintf(p->error, sizeof(p->error), "cannot initialise libcurl");
		curl_global_cleanup();
		return;
	}
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(c, CURLOPT_URL, "http://docker/_ping");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, ping_header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, p);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ping_body_cb);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	CURLcode cc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	p->status = status;
	/* A peer that accepts and hangs up at once can make curl say
	 * "couldn't connect" with no OS error: it did connect. */
	long os_errno = 0;
	curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
	p->connected = cc != CURLE_COULDNT_CONNECT || os_errno == 0;
	p->answered = status > 0;
	p->timed_out = cc == CURLE_OPERATION_TIMEDOUT && !p->answered;
	if (cc != CURLE_OK)
		snprintf(p->error, sizeof(p->error), "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
	curl_easy_cleanup(c);
	curl_global_cleanup();
}

/* "1.41" >= "1.39"? */
static bool api_at_least(const char *v, int major, int minor)
{
	int a = 0, b = 0;
	if (sscanf(v, "%d.%d", &a, &b) != 2)
		return false;
	return a > major || (a == major && b >= minor);
}

static const char *source_name(enum kiln_addr_source s)
{
	switch (s) {
	case KILN_ADDR_FLAG: return "--addr";
	case KILN_ADDR_BUILDKIT_HOST: return "BUILDKIT_HOST";
	case KILN_ADDR_DOCKER_HOST: return "DOCKER_HOST";
	case KILN_ADDR_BUILDKITD_DEFAULT: return "buildkitd's default socket";
	case KILN_ADDR_DOCKER_DEFAULT: return "Docker's default socket";
	case KILN_ADDR_BUILDER: return "the kiln.lua builder";
	}
	return "?";
}

const char *kiln__engine_addr_from(const char *flag, enum kiln_addr_source *src)
{
	const char *env;
	if (flag && *flag)
		return *src = KILN_ADDR_FLAG, flag;
	if ((env = getenv("BUILDKIT_HOST")) && *env)
		return *src = KILN_ADDR_BUILDKIT_HOST, env;
	if ((env = getenv("DOCKER_HOST")) && *env)
		return *src = KILN_ADDR_DOCKER_HOST, env;
	if (access(BUILDKITD_SOCK, F_OK) == 0)
		return *src = KILN_ADDR_BUILDKITD_DEFAULT, "unix://" BUILDKITD_SOCK;
	return *src = KILN_ADDR_DOCKER_DEFAULT, "unix://" DOCKER_SOCK;
}

const char *kiln__engine_addr(const char *flag)
{
	enum kiln_addr_source src;
	return kiln__engine_addr_from(flag, &src);
}

static const struct kiln_backend *backend_named(struct kiln_ctx *ctx, const char *name,
						enum kiln_need need)
{
	const struct kiln_reg_entry *e = kiln__registry_want(&ctx->reg, KILN_KIND_BACKEND, name);
	return e && provides(e->vt, need) ? e->vt : NULL;
}

static bool backend_exists(struct kiln_ctx *ctx, const char *name)
{
	return kiln__registry_want(&ctx->reg, KILN_KIND_BACKEND, name) != NULL;
}

/* The backend that pushes from the image store of the Docker API at addr. */
static const struct kiln_backend *store_pusher(struct kiln_ctx *ctx, const char *addr)
{
	const struct kiln_backend *b = kiln__pick_backend(ctx, addr, KILN_NEED_PUSH);
	return b && b->probe(addr) >= 10 ? b : NULL;
}

static bool has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

/* The socket path of a unix:// or docker-unix:// address (its default
 * when empty), or NULL. */
static const char *sock_path(const char *addr, const char *dflt)
{
	if (has_prefix(addr, "unix://"))
		return addr[7] ? addr + 7 : dflt;
	if (has_prefix(addr, "docker-unix://"))
		return addr[14] ? addr + 14 : DOCKER_SOCK;
	if (strcmp(addr, "docker://") == 0)
		return DOCKER_SOCK;
	return NULL;
}

#define WHY(...) snprintf(out->why, sizeof(out->why), __VA_ARGS__)

/* Rules 1 and 2: a forced backend, or an address meant for BuildKit. */
static int choose_named(struct kiln_ctx *ctx, const char *name, const char *by,
			enum kiln_need need, struct kiln_engine_choice *out, struct kiln_err *err)
{
	const struct kiln_backend *b = backend_named(ctx, name, need);
	if (!b)
		return kiln__err(err, KILN_E_NOTFOUND, backend_exists(ctx, name)
				 ? "%s: the %s backend cannot do this (see 'kiln plugins')"
				 : "%s: no backend plugin is named '%s' (see 'kiln plugins')",
				 by, name);
	out->backend = b;
	return 0;
}

int kiln__engine_choose_at(struct kiln_ctx *ctx, const char *addr, enum kiln_addr_source src,
			   const char *flag_backend, enum kiln_need need, bool want_store,
			   struct kiln_engine_choice *out, struct kiln_err *err)
{
	*out = (struct kiln_engine_choice){ 0 };
	snprintf(out->addr, sizeof(out->addr), "%s", addr);
	const char *env = getenv("KILN_BACKEND");
	const char *dkb = getenv("DOCKER_BUILDKIT");
	const char *src_name = source_name(src);
	const char *path = sock_path(addr, src == KILN_ADDR_BUILDKIT_HOST || src == KILN_ADDR_FLAG
						   ? BUILDKITD_SOCK : DOCKER_SOCK);
	bool explicit_docker = has_prefix(addr, "docker-unix://") || has_prefix(addr, "docker://");
	struct kiln_docker_ping ping = { 0 };
	bool pinged = false;

	/* 1. --backend, then KILN_BACKEND: that backend, whatever the address. */
	const char *forced = flag_backend && *flag_backend ? flag_backend : env && *env ? env : NULL;
	if (forced) {
		const char *by = flag_backend && *flag_backend ? "--backend" : "KILN_BACKEND";
		int rc = choose_named(ctx, forced, by, need, out, err);
		if (rc < 0)
			return rc;
		WHY("%s=%s", by, forced);
	} else if (src == KILN_ADDR_FLAG || src == KILN_ADDR_BUILDKIT_HOST ||
		   src == KILN_ADDR_BUILDKITD_DEFAULT || explicit_docker ||
		   has_prefix(addr, "tcp://")) {
		/* 2. An address for BuildKit (buildctl's --addr and
		 * BUILDKIT_HOST; any docker-unix://): the buildkit backend. */
		const struct kiln_backend *b = backend_named(ctx, "buildkit", need);
		if (b && b->probe(addr) > 0) {
			out->backend = b;
			WHY("%s=%s is a BuildKit address", src_name, addr);
		}
	} else if (path) {
		/* 3. A Docker Engine API socket (DOCKER_HOST, Docker's default,
		 * a kiln.lua builder): ask it, as the docker CLI does. */
		kiln__docker_ping(path, PING_MS, &ping);
		pinged = true;
		const char *b_name = NULL;
		if (ping.answered && ping.status == 200) {
			bool podman = ping.libpod_version[0] || has_prefix(ping.server, "Libpod");
			bool bk_env = dkb && (strcmp(dkb, "1") == 0 || strcasecmp(dkb, "true") == 0);
			bool bk = strcmp(ping.builder_version, "2") == 0 ||
				  api_at_least(ping.api_version, 1, 39) || bk_env;
			if (podman) {
				b_name = "docker";
				WHY("%s=%s is Podman (Libpod API %s), which has no BuildKit", src_name,
				    addr, ping.libpod_version[0] ? ping.libpod_version : "?");
			} else if (dkb && (strcmp(dkb, "0") == 0 || strcasecmp(dkb, "false") == 0)) {
				b_name = "docker";
				WHY("DOCKER_BUILDKIT=%s: the classic builder of %s", dkb, addr);
			} else if (bk) {
				b_name = "buildkit";
				snprintf(out->addr, sizeof(out->addr), "docker-unix://%s", path);
				WHY("%s=%s is dockerd with BuildKit (%s%s%s%sAPI %s)", src_name,
				    addr, bk_env ? "DOCKER_BUILDKIT=1, " : "",
				    ping.builder_version[0] ? "Builder-Version " : "",
				    ping.builder_version, ping.builder_version[0] ? ", " : "",
				    ping.api_version[0] ? ping.api_version : "?");
			} else {
				b_name = "docker";
				WHY("%s=%s is a Docker Engine API without BuildKit (API %s < 1.39)",
				    src_name, addr, ping.api_version[0] ? ping.api_version : "?");
			}
		} else if (ping.answered) {
			/* HTTP, but not Docker's /_ping: name both. */
			return kiln__err(err, KILN_E_CONNECT, "cannot reach the engine at %s (%s): "
					 "GET /_ping answered HTTP %ld, not a Docker Engine API; "
					 "use BUILDKIT_HOST or --addr for a buildkitd", addr,
					 src_name, ping.status);
		} else if (ping.timed_out) {
			/* A gRPC server sends its HTTP/2 SETTINGS at once: a
			 * silent socket is neither engine. */
			return kiln__err(err, KILN_E_CONNECT, "cannot reach the engine at %s (%s): "
					 "no answer in %.1f s: not a Docker Engine API (GET /_ping) "
					 "and not BuildKit (no HTTP/2 preface from a gRPC server)",
					 addr, src_name, PING_MS / 1000.0);
		} else if (ping.connected) {
			/* Something listens but speaks no HTTP: maybe buildkitd. */
			b_name = "buildkit";
			WHY("%s=%s did not answer GET /_ping (%s); trying BuildKit's gRPC",
			    src_name, addr, ping.error);
		}
		if (b_name && !(out->backend = backend_named(ctx, b_name, need)) && pinged &&
		    strcmp(b_name, "buildkit") == 0 && ping.answered &&
		    (out->backend = backend_named(ctx, "docker", need)))
			WHY("%s=%s: dockerd with BuildKit, but only the docker backend can do "
			    "this", src_name, addr);
		if (out->backend && strcmp(out->backend->name, "buildkit") == 0 &&
		    !has_prefix(out->addr, "docker-unix://") && !ping.answered)
			snprintf(out->addr, sizeof(out->addr), "%s", addr);
	}
	/* 4. Anything else (unreachable sockets, other schemes): the plugin
	 * that says it serves the address best; its connect names the error. */
	if (!out->backend) {
		out->backend = kiln__pick_backend(ctx, addr, need);
		if (!out->backend)
			return kiln__err(err, KILN_E_NOTFOUND, "no backend plugin can reach '%s' "
					 "(see 'kiln plugins')", addr);
		if (pinged)
			WHY("%s=%s: %s; the %s backend serves such addresses", src_name, addr,
			    ping.error[0] ? ping.error : "no answer", out->backend->name);
		else
			WHY("%s=%s: the %s backend serves such addresses", src_name, addr,
			    out->backend->name);
	}
	/* An image store to push from: a Docker API engine. */
	if (want_store && path) {
		if (!pinged && !explicit_docker && strcmp(out->backend->name, "docker") != 0) {
			kiln__docker_ping(path, PING_MS, &ping);
			pinged = true;
		}
		bool podman = ping.libpod_version[0] || has_prefix(ping.server, "Libpod");
		if (explicit_docker || (ping.answered && ping.status == 200) || podman ||
		    strcmp(out->backend->name, "docker") == 0) {
			char dock[sizeof(out->addr)];
			snprintf(dock, sizeof(dock), "unix://%s", path);
			out->pusher = store_pusher(ctx, dock);
			if (out->pusher)
				snprintf(out->store_addr, sizeof(out->store_addr), "%s", dock);
		}
	}
	kiln__log(KILN_LOG_DEBUG, "engine: %s backend at %s: %s", out->backend->name, out->addr,
		  out->why);
	return 0;
}

int kiln__engine_choose(struct kiln_ctx *ctx, const char *flag_addr, const char *flag_backend,
			enum kiln_need need, bool want_store, struct kiln_engine_choice *out,
			struct kiln_err *err)
{
	enum kiln_addr_source src;
	const char *addr = kiln__engine_addr_from(flag_addr, &src);
	return kiln__engine_choose_at(ctx, addr, src, flag_backend, need, want_store, out, err);
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
