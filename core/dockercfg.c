/*
 * dockercfg.c: registry credentials from the docker CLI's config, as buildx
 * finds them (BuildKit's session/auth/authprovider over docker/cli's
 * config/configfile and credentials packages; the file is described at
 * https://docs.docker.com/reference/cli/docker/#configuration-files and
 * https://docs.docker.com/reference/cli/docker/login/#credential-stores):
 *
 *   - the file is $DOCKER_CONFIG/config.json, else ~/.docker/config.json;
 *   - Docker Hub's hosts (registry-1.docker.io, docker.io) are looked up
 *     as "https://index.docker.io/v1/";
 *   - credHelpers[key], else credsStore, names a credential helper:
 *     `docker-credential-NAME get`, with key on stdin, prints
 *     {"Username": …, "Secret": …} (Username "<token>" = identity token);
 *     "credentials not found in native keychain" on failure means none;
 *   - otherwise auths[key], or the first auths entry whose key is a URL
 *     with that host: "identitytoken" is sent as the secret with no
 *     username, else "auth" is base64("user:password"), else "username"
 *     and "password".
 *
 * Anything missing means anonymous. A config or helper that fails is a
 * warning and anonymous too: a public image still builds. No credential
 * ever reaches a log line: JSON parse errors give only a position, a
 * helper's output is never quoted, and every buffer that held one is
 * zeroed before it is freed.
 *
 * Moved here from the buildkit backend's auth.c, so that the core's
 * registry client and every backend share one lookup.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "dockercfg.h"
#include "util.h"

#define DOCKER_HUB_KEY "https://index.docker.io/v1/"
#define HELPER_TIMEOUT_MS 10000
#define HELPER_OUT_MAX (64 * 1024)
#define TOKEN_USERNAME "<token>" /* a helper's way to say "identity token" */
#define NOT_FOUND_MSG "credentials not found in native keychain"

extern char **environ;

/* Credentials found: heap strings, or NULL. */
struct creds {
	char *username;
	char *secret;
};

static char *dup_n(const char *p, size_t n)
{
	char *d = kiln__xmalloc(n + 1);
	memcpy(d, p, n);
	d[n] = '\0';
	return d;
}

static void wipe_free(char *p)
{
	if (p) {
		explicit_bzero(p, strlen(p));
		free(p);
	}
}

void kiln__creds_free(char *username, char *secret)
{
	wipe_free(username);
	wipe_free(secret);
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

/* ---- the config file ------------------------------------------------------ */

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
static bool decode_auth(const char *b64, struct creds *out)
{
	size_t n = strlen(b64);
	if (n == 0 || n % 4 != 0 || n > 64 * 1024)
		return false;
	unsigned char *raw = kiln__xmalloc(n / 4 * 3 + 1);
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
		out->username = dup_n((const char *)raw, ul);
		out->secret = dup_n(pw, pl);
	}
	explicit_bzero(raw, n / 4 * 3 + 1);
	free(raw);
	return colon != NULL;
}

/* ---- credential helpers --------------------------------------------------- */

static int64_t now_ms(void)
{
	return kiln__mono_ns() / 1000000;
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
static int helper_get(const char *name, const char *key, const char *reg,
		      struct creds *out)
{
	char prog[256];
	if ((size_t)snprintf(prog, sizeof(prog), "docker-credential-%s", name) >= sizeof(prog)) {
		kiln__log(KILN_LOG_WARN, "credential helper name too long in the docker "
			  "config; using no credentials for %s", reg);
		return -1;
	}
	/* stdin is a socket so that writing to a helper that exited early is
	 * EPIPE, not SIGPIPE (callers may be plugins that do not own signal
	 * dispositions) */
	int in[2] = { -1, -1 }, outp[2] = { -1, -1 };
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0 ||
	    pipe2(outp, O_CLOEXEC) != 0) {
		kiln__log(KILN_LOG_WARN, "cannot run %s: %s; using no credentials for %s",
			  prog, strerror(errno), reg);
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
		kiln__log(KILN_LOG_WARN, "cannot run %s (from the docker config): %s; "
			  "using no credentials for %s", prog, strerror(rc), reg);
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
	char *buf = kiln__xmalloc(HELPER_OUT_MAX + 1);
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
		kiln__log(KILN_LOG_WARN, "%s get did not answer within %d s; using no "
			  "credentials for %s", prog, HELPER_TIMEOUT_MS / 1000, reg);
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
			kiln__log(KILN_LOG_WARN, "cannot run %s (from the docker config); "
				  "using no credentials for %s", prog, reg);
		} else {
			kiln__log(KILN_LOG_WARN, "%s get failed (%s %d); using no credentials "
				  "for %s (run `printf %%s %s | %s get` to see why)", prog,
				  WIFEXITED(st) ? "exit status" : "signal",
				  WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), reg, key, prog);
		}
	} else {
		json_error_t je;
		json_t *j = json_loadb(buf, len, 0, &je);
		if (!json_is_object(j)) {
			kiln__log(KILN_LOG_WARN, "%s get printed something other than a JSON "
				  "object; using no credentials for %s", prog, reg);
		} else {
			const char *u = json_str(j, "Username"), *sec = json_str(j, "Secret");
			if (sec) {
				bool token = u && strcmp(u, TOKEN_USERNAME) == 0;
				out->username = token ? NULL : dup_n(u ? u : "", u ? strlen(u) : 0);
				out->secret = dup_n(sec, strlen(sec));
			}
			ret = 0;
		}
		json_wipe(j);
		json_decref(j);
	}
	explicit_bzero(buf, len);
	free(buf);
	return ret;
}

/* ---- lookup --------------------------------------------------------------- */

/* The docker config's credentials for registry host reg: *out filled (a
 * non-NULL secret), or left empty for anonymous. */
static void lookup(const char *reg, struct creds *out)
{
	const char *key = reg;
	if (strcmp(reg, "registry-1.docker.io") == 0 || strcmp(reg, "docker.io") == 0)
		key = DOCKER_HUB_KEY;

	char path[4096];
	if (!config_path(path, sizeof(path))) {
		kiln__log(KILN_LOG_DEBUG, "no docker config (no home directory): no "
			  "credentials for %s", reg);
		return;
	}
	json_error_t je;
	json_t *cfg = json_load_file(path, 0, &je);
	if (!cfg) {
		if (access(path, F_OK) != 0) {
			kiln__log(KILN_LOG_DEBUG, "no %s: no credentials for %s", path, reg);
			return;
		}
		/* je.text may quote the file: give only the position */
		kiln__log(KILN_LOG_WARN, "%s is not valid JSON (line %d, column %d); using "
			  "no credentials for %s", path, je.line, je.column, reg);
		return;
	}
	if (!json_is_object(cfg)) {
		kiln__log(KILN_LOG_WARN, "%s is not a JSON object; using no credentials "
			  "for %s", path, reg);
		goto out;
	}

	const char *helper = json_str(json_object_get(cfg, "credHelpers"), key);
	if (!helper)
		helper = json_str(cfg, "credsStore");
	if (helper) {
		if (helper_get(helper, key, reg, out) == 0)
			kiln__log(KILN_LOG_DEBUG, "credentials for %s from docker-credential-%s: "
				  "%s", reg, helper, out->secret ? "found" : "none");
		goto out;
	}

	json_t *e = auths_entry(json_object_get(cfg, "auths"), key);
	if (!e) {
		kiln__log(KILN_LOG_DEBUG, "no credentials for %s in %s", reg, path);
		goto out;
	}
	const char *token = json_str(e, "identitytoken");
	const char *auth = json_str(e, "auth");
	if (token) {
		out->secret = dup_n(token, strlen(token));
	} else if (auth) {
		if (!decode_auth(auth, out)) {
			kiln__log(KILN_LOG_WARN, "%s: the auth of %s is not "
				  "base64(\"user:password\"); using no credentials for %s", path,
				  key, reg);
			goto out;
		}
	} else {
		const char *u = json_str(e, "username"), *p = json_str(e, "password");
		if (u || p) {
			out->username = dup_n(u ? u : "", u ? strlen(u) : 0);
			out->secret = dup_n(p ? p : "", p ? strlen(p) : 0);
		}
	}
	kiln__log(KILN_LOG_DEBUG, "credentials for %s from %s: %s", reg, path,
		  out->secret ? "found" : "none");
out:
	json_wipe(cfg);
	json_decref(cfg);
}

int kiln__docker_credentials(const char *reg, char **username, char **secret)
{
	struct creds cr = { 0 };
	if (reg && *reg)
		lookup(reg, &cr);
	if (!cr.secret) {
		kiln__creds_free(cr.username, cr.secret);
		*username = *secret = NULL;
		return KILN_E_NOTFOUND;
	}
	*username = cr.username;
	*secret = cr.secret;
	return 0;
}
