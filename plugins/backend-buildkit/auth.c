/*
 * auth.c: the session's Auth/Credentials (BUILDKIT-WIRE.md section 9): the
 * daemon asks for a registry host's credentials when the registry answers
 * 401, and kiln answers from the docker CLI's config, as buildx does
 * (BuildKit's authprovider over docker/cli's config file):
 *
 *   - the file is $DOCKER_CONFIG/config.json, else ~/.docker/config.json;
 *   - Docker Hub's hosts (registry-1.docker.io, docker.io) are looked up
 *     as "https://index.docker.io/v1/";
 *   - credHelpers[key], else credsStore, names a credential helper:
 *     `docker-credential-NAME get`, with key on stdin, prints
 *     {"Username": …, "Secret": …} (Username "<token>" = identity token);
 *   - otherwise auths[key], or the first auths entry whose key is a URL
 *     with that host: "auth" is base64("user:password"), or "username" and
 *     "password"; an "identitytoken" is sent as the Secret with no
 *     Username.
 *
 * Anything missing means anonymous (an empty answer with OK, which the
 * daemon reads as "no credentials"). A config or helper that fails is a
 * warning and anonymous too: a public image still builds. No credential
 * ever reaches a log line or an error.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "auth.pb-c.h"
#include "buildkit.h"
#include "session.h"

#define DOCKER_HUB_KEY "https://index.docker.io/v1/"
#define HELPER_TIMEOUT_MS 10000
#define HELPER_OUT_MAX (64 * 1024)
#define TOKEN_USERNAME "<token>" /* a helper's way to say "identity token" */
#define NOT_FOUND_MSG "credentials not found in native keychain"

extern char **environ;

/* Credentials found: heap strings (host->alloc), or NULL. */
struct creds {
	char *username;
	char *secret;
};

static char *dup_n(const struct kiln_host *host, const char *p, size_t n)
{
	char *d = host->alloc(n + 1);
	memcpy(d, p, n);
	d[n] = '\0';
	return d;
}

static void wipe_free(const struct kiln_host *host, char *p)
{
	if (p) {
		explicit_bzero(p, strlen(p));
		host->free(p);
	}
}

static void creds_clear(const struct kiln_host *host, struct creds *cr)
{
	wipe_free(host, cr->username);
	wipe_free(host, cr->secret);
	*cr = (struct creds){ 0 };
}

/* A non-empty string member of obj, or NULL. */
static const char *json_str(const json_t *obj, const char *key)
{
	const char *v = json_string_value(json_object_get(obj, key));
	return v && *v ? v : NULL;
}

/* Zero every string in j (credentials live there) before it is freed. */
static void json_wipe(json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;
	if (json_is_string(j)) {
		explicit_bzero((char *)json_string_value(j), json_string_length(j));
	} else if (json_is_object(j)) {
		json_object_foreach(j, k, v)
			json_wipe(v);
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			json_wipe(v);
	}
}

/* ---- the config file -------------------------------------------------------------- */

/* The path of config.json into buf; false if there is no home to look in. */
static bool config_path(char *buf, size_t n)
{
	const char *dir = getenv("DOCKER_CONFIG");
	if (dir && *dir)
		return (size_t)snprintf(buf, n, "%s/config.json", dir) < n;
	const char *home = getenv("HOME");
	if (!home || !*home) {
		struct passwd pw, *res = NULL;
		char pwbuf[1024];
		if (getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &res) != 0 || !res)
			return false;
		return (size_t)snprintf(buf, n, "%s/.docker/config.json", pw.pw_dir) < n;
	}
	return (size_t)snprintf(buf, n, "%s/.docker/config.json", home) < n;
}

/* docker/cli's ConvertToHostname: drop http:// or https://, keep what
 * comes before the first '/'. Compares that with host. */
static bool key_host_is(const char *key, const char *host)
{
	if (strncmp(key, "http://", 7) == 0)
		key += 7;
	else if (strncmp(key, "https://", 8) == 0)
		key += 8;
	size_t l = strcspn(key, "/");
	return strlen(host) == l && strncmp(key, host, l) == 0;
}

/* The auths entry for key: exact, else the first whose key's host is key
 * (docker/cli's fileStore.Get). */
static json_t *auths_entry(json_t *auths, const char *key)
{
	json_t *e = json_object_get(auths, key);
	if (json_is_object(e))
		return e;
	const char *k;
	json_t *v;
	json_object_foreach(auths, k, v) {
		if (json_is_object(v) && key_host_is(k, key))
			return v;
	}
	return NULL;
}

/* Decode an "auth" value, base64("user:password"), with libcrypto. false
 * when it is not that (the caller warns; no detail of the value is kept). */
static bool decode_auth(const struct kiln_host *host, const char *b64, struct creds *out)
{
	size_t n = strlen(b64);
	if (n == 0 || n % 4 != 0 || n > 64 * 1024)
		return false;
	unsigned char *raw = host->alloc(n / 4 * 3 + 1);
	int len = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n);
	bool ok = len >= 0;
	if (ok) {
		/* EVP_DecodeBlock counts the bytes '=' padding stands for */
		for (size_t i = n; i > n - 2 && b64[i - 1] == '='; i--)
			len--;
		ok = len >= 0;
	}
	char *colon = ok ? memchr(raw, ':', (size_t)len) : NULL;
	if (colon) {
		size_t ul = (size_t)(colon - (char *)raw);
		/* docker/cli trims NULs around the password */
		const char *pw = colon + 1;
		size_t pl = (size_t)len - ul - 1;
		while (pl && *pw == '\0')
			pw++, pl--;
		while (pl && pw[pl - 1] == '\0')
			pl--;
		out->username = dup_n(host, (const char *)raw, ul);
		out->secret = dup_n(host, pw, pl);
	}
	explicit_bzero(raw, n / 4 * 3 + 1);
	host->free(raw);
	return colon != NULL;
}

/* ---- credential helpers -------------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for pid until deadline, then kill it. Its wait status, or -1. */
static int reap(pid_t pid, int64_t deadline)
{
	int st;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return st;
		if (r < 0 && errno != EINTR)
			return -1;
		if (now_ms() >= deadline)
			break;
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return -1;
}

/* Run `docker-credential-NAME get` with key on stdin. Returns 0 with *out
 * filled (both NULL when the helper has none), or -1 after a warning. */
static int helper_get(const struct kiln_host *host, const char *name, const char *key,
		      struct creds *out)
{
	char prog[256];
	if ((size_t)snprintf(prog, sizeof(prog), "docker-credential-%s", name) >= sizeof(prog)) {
		host->log(KILN_LOG_WARN, "buildkit: credential helper name too long; "
			  "using no credentials");
		return -1;
	}
	/* stdin is a socket so that writing to a helper that exited early is
	 * EPIPE, not SIGPIPE (the plugin does not own signal dispositions) */
	int in[2] = { -1, -1 }, outp[2] = { -1, -1 };
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0 ||
	    pipe2(outp, O_CLOEXEC) != 0) {
		host->log(KILN_LOG_WARN, "buildkit: cannot run %s: %s; using no credentials",
			  prog, strerror(errno));
		for (int i = 0; i < 2; i++) {
			if (in[i] >= 0)
				close(in[i]);
			if (outp[i] >= 0)
				close(outp[i]);
		}
		return -1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[1], 0);
	posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	char *argv[] = { prog, "get", NULL };
	pid_t pid;
	int rc = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(in[1]);
	close(outp[1]);
	if (rc != 0) {
		close(in[0]);
		close(outp[0]);
		host->log(KILN_LOG_WARN, "buildkit: cannot run %s (from the docker config): %s; "
			  "using no credentials", prog, strerror(rc));
		return -1;
	}
	size_t kl = strlen(key);
	for (size_t off = 0; off < kl;) {
		ssize_t w = send(in[0], key + off, kl - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			break; /* the helper will say what it thinks */
		off += (size_t)w;
	}
	close(in[0]);

	int64_t deadline = now_ms() + HELPER_TIMEOUT_MS;
	char *buf = host->alloc(HELPER_OUT_MAX + 1);
	size_t len = 0;
	bool timed_out = false;
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0) {
			timed_out = true;
			break;
		}
		struct pollfd p = { .fd = outp[0], .events = POLLIN };
		int pr = poll(&p, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0) {
			timed_out = true;
			break;
		}
		if (pr < 0)
			break;
		char tmp[4096];
		ssize_t r = read(outp[0], tmp, sizeof(tmp));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		size_t k = (size_t)r <= HELPER_OUT_MAX - len ? (size_t)r : HELPER_OUT_MAX - len;
		memcpy(buf + len, tmp, k);
		len += k;
		explicit_bzero(tmp, sizeof(tmp));
	}
	close(outp[0]);
	buf[len] = '\0';
	int st = reap(pid, timed_out ? now_ms() : deadline);

	int ret = -1;
	if (timed_out || st == -1) {
		host->log(KILN_LOG_WARN, "buildkit: %s get did not answer within %d s; using no "
			  "credentials", prog, HELPER_TIMEOUT_MS / 1000);
	} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		/* the helper's own words, trimmed, tell "not found" apart;
		 * they are not logged (they come from a credential store) */
		const char *t = buf;
		size_t tl = len;
		while (tl && strchr(" \t\r\n", *t))
			t++, tl--;
		while (tl && strchr(" \t\r\n", t[tl - 1]))
			tl--;
		if (tl == strlen(NOT_FOUND_MSG) && memcmp(t, NOT_FOUND_MSG, tl) == 0) {
			ret = 0;
		} else if (WIFEXITED(st) && WEXITSTATUS(st) == 127) {
			host->log(KILN_LOG_WARN, "buildkit: cannot run %s (from the docker config); "
				  "using no credentials", prog);
		} else {
			host->log(KILN_LOG_WARN, "buildkit: %s get failed (%s %d); using no "
				  "credentials (run `printf %%s %s | %s get` to see why)", prog,
				  WIFEXITED(st) ? "exit status" : "signal",
				  WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), key, prog);
		}
	} else {
		json_error_t je;
		json_t *j = json_loadb(buf, len, 0, &je);
		if (!json_is_object(j)) {
			host->log(KILN_LOG_WARN, "buildkit: %s get printed something other than a "
				  "JSON object; using no credentials", prog);
		} else {
			const char *u = json_str(j, "Username"), *sec = json_str(j, "Secret");
			if (u && strcmp(u, TOKEN_USERNAME) == 0)
				u = NULL;
			if (sec) {
				out->username = u ? dup_n(host, u, strlen(u)) : NULL;
				out->secret = dup_n(host, sec, strlen(sec));
			}
			ret = 0;
		}
		json_wipe(j);
		json_decref(j);
	}
	explicit_bzero(buf, len);
	host->free(buf);
	return ret;
}

/* ---- lookup ---------------------------------------------------------------------------- */

/* The docker config's credentials for registry host: *out filled, or
 * left empty for anonymous. */
static void lookup(const struct kiln_host *host, const char *reg, struct creds *out)
{
	const char *key = reg;
	if (strcmp(reg, "registry-1.docker.io") == 0 || strcmp(reg, "docker.io") == 0)
		key = DOCKER_HUB_KEY;

	char path[4096];
	if (!config_path(path, sizeof(path))) {
		host->log(KILN_LOG_DEBUG, "buildkit: no docker config (no home directory)");
		return;
	}
	json_error_t je;
	json_t *cfg = json_load_file(path, 0, &je);
	if (!cfg) {
		if (access(path, F_OK) != 0) {
			host->log(KILN_LOG_DEBUG, "buildkit: no %s: no registry credentials", path);
			return;
		}
		/* je.text may quote the file: give only the position */
		host->log(KILN_LOG_WARN, "buildkit: %s is not valid JSON (line %d, column %d); "
			  "using no registry credentials", path, je.line, je.column);
		return;
	}
	if (!json_is_object(cfg)) {
		host->log(KILN_LOG_WARN, "buildkit: %s is not a JSON object; using no registry "
			  "credentials", path);
		goto out;
	}

	const char *helper = json_str(json_object_get(cfg, "credHelpers"), key);
	if (!helper)
		helper = json_str(cfg, "credsStore");
	if (helper) {
		if (helper_get(host, helper, key, out) == 0)
			host->log(KILN_LOG_DEBUG, "buildkit: credentials for %s from "
				  "docker-credential-%s: %s", reg, helper,
				  out->secret ? "found" : "none");
		goto out;
	}

	json_t *e = auths_entry(json_object_get(cfg, "auths"), key);
	if (!e) {
		host->log(KILN_LOG_DEBUG, "buildkit: no credentials for %s in %s", reg, path);
		goto out;
	}
	const char *token = json_str(e, "identitytoken");
	const char *auth = json_str(e, "auth");
	if (token) {
		out->secret = dup_n(host, token, strlen(token));
	} else if (auth) {
		if (!decode_auth(host, auth, out)) {
			host->log(KILN_LOG_WARN, "buildkit: %s: the auth of %s is not "
				  "base64(\"user:password\"); using no credentials for %s", path,
				  key, reg);
			goto out;
		}
	} else {
		const char *u = json_str(e, "username"), *p = json_str(e, "password");
		if (u || p) {
			out->username = u ? dup_n(host, u, strlen(u)) : NULL;
			out->secret = p ? dup_n(host, p, strlen(p)) : NULL;
		}
	}
	host->log(KILN_LOG_DEBUG, "buildkit: credentials for %s from %s: %s", reg, path,
		  out->secret ? "found" : "none");
out:
	json_wipe(cfg);
	json_decref(cfg);
}

/* ---- Auth/Credentials ------------------------------------------------------------------ */

grpc_status_code buildkit_auth_credentials(struct buildkit_session *s,
					   struct buildkit_scall *c,
					   const struct buildkit_pipe *pipe, char *details,
					   size_t n)
{
	(void)c;
	const struct kiln_host *host = s->host;
	ProtobufCAllocator a;
	buildkit_allocator(host, &a);
	ProtobufCMessage *msg;
	grpc_status_code rs = buildkit_recv_request(
		s, pipe, &moby__filesync__v1__credentials_request__descriptor, "Credentials", &msg,
		details, n);
	if (rs != GRPC_STATUS_OK)
		return rs;
	Moby__Filesync__V1__CredentialsRequest *req = (void *)msg;
	struct creds cr = { 0 };
	if (*req->host)
		lookup(host, req->host, &cr);

	Moby__Filesync__V1__CredentialsResponse resp =
		MOBY__FILESYNC__V1__CREDENTIALS_RESPONSE__INIT;
	if (cr.username)
		resp.username = cr.username;
	if (cr.secret)
		resp.secret = cr.secret;
	size_t plen = protobuf_c_message_get_packed_size(&resp.base);
	uint8_t *packed = host->alloc(plen ? plen : 1);
	protobuf_c_message_pack(&resp.base, packed);
	grpc_status_code code = pipe->send(pipe->ctx, packed, plen) < 0 ? GRPC_STATUS_CANCELLED
									 : GRPC_STATUS_OK;
	explicit_bzero(packed, plen);
	host->free(packed);
	creds_clear(host, &cr);
	moby__filesync__v1__credentials_request__free_unpacked(req, &a);
	return code;
}
