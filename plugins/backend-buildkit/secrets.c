/*
 * secrets.c: --secret, and the session's Secrets/GetSecret (BUILDKIT-WIRE.md
 * section 9).
 *
 * The forms are buildx's (v0.10 util/buildflags/secrets.go with BuildKit's
 * secretsprovider store): a CSV list of key=value fields, keys id, src
 * (alias source), env and type=file|env; with type=env a src names the
 * variable; with neither src nor env the id names an environment variable
 * if one is set, else a file. A later spec with the same id replaces an
 * earlier one. Unlike buildx, which reads a missing variable as "", kiln
 * fails at parse time, before any daemon is contacted.
 *
 * The value is read when the daemon asks, never earlier, and never goes
 * into a log line, an event or an error: only ids, paths and variable
 * names do.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buildkit.h"
#include "secrets.pb-c.h"
#include "session.h"

/* The response carries data plus a tag and a length (at most 5 bytes). */
#define SECRET_MAX (BUILDKIT_MAX_SEND - 16)

static char *dup_n(const struct kiln_host *host, const char *p, size_t n)
{
	char *d = host->alloc(n + 1);
	memcpy(d, p, n);
	d[n] = '\0';
	return d;
}

static char *dup_s(const struct kiln_host *host, const char *p)
{
	return p ? dup_n(host, p, strlen(p)) : NULL;
}

static void secret_clear(const struct kiln_host *host, struct buildkit_secret *sec)
{
	host->free(sec->id);
	host->free(sec->src);
	host->free(sec->env);
	*sec = (struct buildkit_secret){ 0 };
}

/* ---- parsing ------------------------------------------------------------------ */

/* Check what the secret reads, now, so that a typo fails before the
 * build: the file exists, is not a directory, is readable and small
 * enough; the variable is set. */
static int secret_check(const struct kiln_host *host, const char *spec,
			const struct buildkit_secret *sec, struct kiln_err *err)
{
	if (sec->env) {
		const char *v = getenv(sec->env);
		if (!v)
			return host->error(err, KILN_E_NOTFOUND,
					   "--secret %s: environment variable %s is not set",
					   spec, sec->env);
		if (strlen(v) > SECRET_MAX)
			return host->error(err, KILN_E_INVALID,
					   "--secret %s: %s is %zu bytes; a secret may be at most "
					   "%d bytes (BuildKit's 4 MiB message limit)",
					   spec, sec->env, strlen(v), SECRET_MAX);
	}
	if (!sec->src)
		return 0;
	struct stat st;
	if (stat(sec->src, &st) != 0)
		return host->error(err, errno == ENOENT || errno == ENOTDIR ? KILN_E_NOTFOUND
									     : KILN_E_IO,
				   "--secret %s: %s: %s", spec, sec->src, strerror(errno));
	if (S_ISDIR(st.st_mode))
		return host->error(err, KILN_E_INVALID, "--secret %s: %s is a directory", spec,
				   sec->src);
	if (S_ISREG(st.st_mode) && st.st_size > SECRET_MAX)
		return host->error(err, KILN_E_INVALID,
				   "--secret %s: %s is %lld bytes; a secret may be at most %d "
				   "bytes (BuildKit's 4 MiB message limit)",
				   spec, sec->src, (long long)st.st_size, SECRET_MAX);
	if (access(sec->src, R_OK) != 0)
		return host->error(err, errno == EACCES ? KILN_E_DENIED : KILN_E_IO,
				   "--secret %s: %s: %s", spec, sec->src, strerror(errno));
	return 0;
}

static int secret_parse_one(const struct kiln_host *host, const char *spec,
			    struct buildkit_secret *sec, struct kiln_err *err)
{
	if (!*spec)
		return host->error(err, KILN_E_INVALID,
				   "--secret: empty value (want id=NAME,src=FILE or "
				   "id=NAME,env=VAR)");
	char **f;
	const char *why = "";
	long nf = buildkit_csv_fields(host, spec, &f, &why);
	if (nf < 0)
		return host->error(err, KILN_E_INVALID, "--secret %s: %s", spec, why);
	int rc = 0;
	const char *type = NULL;
	for (long i = 0; i < nf && rc == 0; i++) {
		char *eq = strchr(f[i], '=');
		if (!eq) {
			rc = host->error(err, KILN_E_INVALID,
					 "--secret %s: field '%s' must be a key=value pair", spec,
					 f[i]);
			break;
		}
		*eq = '\0';
		const char *val = eq + 1;
		for (char *k = f[i]; *k; k++)
			if (*k >= 'A' && *k <= 'Z')
				*k = (char)(*k - 'A' + 'a');
		char **slot = NULL;
		if (strcmp(f[i], "type") == 0) {
			if (strcmp(val, "file") != 0 && strcmp(val, "env") != 0)
				rc = host->error(err, KILN_E_INVALID,
						 "--secret %s: unsupported secret type '%s' (want "
						 "file or env)", spec, val);
			type = strcmp(val, "env") == 0 ? "env" : "file";
		} else if (strcmp(f[i], "id") == 0) {
			slot = &sec->id;
		} else if (strcmp(f[i], "src") == 0 || strcmp(f[i], "source") == 0) {
			slot = &sec->src;
		} else if (strcmp(f[i], "env") == 0) {
			slot = &sec->env;
		} else {
			rc = host->error(err, KILN_E_INVALID,
					 "--secret %s: unknown key '%s' (want id, src, env or type)",
					 spec, f[i]);
		}
		if (slot) {
			host->free(*slot);
			*slot = *val ? dup_s(host, val) : NULL;
		}
	}
	for (long i = 0; i < nf; i++)
		host->free(f[i]);
	host->free(f);
	if (rc)
		return rc;

	if (!sec->id)
		return host->error(err, KILN_E_INVALID, "--secret %s: id is required", spec);
	if (type && strcmp(type, "env") == 0 && !sec->env) {
		/* buildx: with type=env, src names the variable */
		sec->env = sec->src;
		sec->src = NULL;
	}
	if (!sec->env && !sec->src) {
		/* BuildKit's store: the id names a variable if one is set,
		 * else a file */
		if (getenv(sec->id))
			sec->env = dup_s(host, sec->id);
		else
			sec->src = dup_s(host, sec->id);
	}
	return secret_check(host, spec, sec, err);
}

int buildkit_secrets_parse(struct buildkit_session *s, const char *const *specs, size_t n,
			   struct kiln_err *err)
{
	const struct kiln_host *host = s->host;
	for (size_t i = 0; i < n; i++) {
		struct buildkit_secret sec = { 0 };
		int rc = secret_parse_one(host, specs[i], &sec, err);
		if (rc) {
			secret_clear(host, &sec);
			return rc;
		}
		size_t j = 0;
		while (j < s->n_secrets && strcmp(s->secrets[j].id, sec.id) != 0)
			j++;
		if (j < s->n_secrets) {
			/* the later spec wins, as in buildx */
			secret_clear(host, &s->secrets[j]);
		} else {
			s->secrets = host->realloc(s->secrets, (s->n_secrets + 1) *
								  sizeof(*s->secrets));
			s->n_secrets++;
		}
		s->secrets[j] = sec;
	}
	return 0;
}

void buildkit_secrets_free(struct buildkit_session *s)
{
	for (size_t i = 0; i < s->n_secrets; i++)
		secret_clear(s->host, &s->secrets[i]);
	s->host->free(s->secrets);
	s->secrets = NULL;
	s->n_secrets = 0;
}

/* ---- Secrets/GetSecret ------------------------------------------------------------ */

static const struct buildkit_secret *secret_find(const struct buildkit_session *s,
						 const char *id)
{
	for (size_t i = 0; i < s->n_secrets; i++)
		if (strcmp(s->secrets[i].id, id) == 0)
			return &s->secrets[i];
	return NULL;
}

/* Read the secret's value into *data (heap, *len bytes). Returns
 * GRPC_STATUS_OK or a status with details (never the value). */
static grpc_status_code secret_read(const struct kiln_host *host,
				    const struct buildkit_secret *sec, uint8_t **data,
				    size_t *len, char *details, size_t n)
{
	*data = NULL;
	*len = 0;
	if (sec->env) {
		const char *v = getenv(sec->env);
		if (!v) {
			snprintf(details, n, "secret %s: environment variable %s is no longer set",
				 sec->id, sec->env);
			return GRPC_STATUS_NOT_FOUND;
		}
		size_t l = strlen(v);
		if (l > SECRET_MAX) {
			snprintf(details, n, "secret %s: %s is %zu bytes; a secret may be at most "
				 "%d bytes", sec->id, sec->env, l, SECRET_MAX);
			return GRPC_STATUS_RESOURCE_EXHAUSTED;
		}
		*data = host->alloc(l ? l : 1);
		memcpy(*data, v, l);
		*len = l;
		return GRPC_STATUS_OK;
	}
	int fd = open(sec->src, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(details, n, "secret %s: %s: %s", sec->id, sec->src, strerror(e));
		return e == ENOENT ? GRPC_STATUS_NOT_FOUND
		       : e == EACCES ? GRPC_STATUS_PERMISSION_DENIED : GRPC_STATUS_INTERNAL;
	}
	/* read up to one byte past the limit, to tell "too big" */
	size_t cap = 4096, l = 0;
	uint8_t *buf = host->alloc(cap);
	grpc_status_code code = GRPC_STATUS_OK;
	for (;;) {
		if (l == cap) {
			if (cap > SECRET_MAX) {
				snprintf(details, n, "secret %s: %s is larger than %d bytes, the most "
					 "a secret may be", sec->id, sec->src, SECRET_MAX);
				code = GRPC_STATUS_RESOURCE_EXHAUSTED;
				break;
			}
			size_t ncap = cap * 2 > (size_t)SECRET_MAX + 1 ? (size_t)SECRET_MAX + 1
								       : cap * 2;
			uint8_t *nb = host->alloc(ncap);
			memcpy(nb, buf, l);
			explicit_bzero(buf, l);
			host->free(buf);
			buf = nb;
			cap = ncap;
		}
		ssize_t r = read(fd, buf + l, cap - l);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(details, n, "secret %s: reading %s: %s", sec->id, sec->src,
				 strerror(errno));
			code = GRPC_STATUS_INTERNAL;
			break;
		}
		if (r == 0)
			break;
		l += (size_t)r;
	}
	close(fd);
	if (code != GRPC_STATUS_OK) {
		explicit_bzero(buf, l);
		host->free(buf);
		return code;
	}
	*data = buf;
	*len = l;
	return GRPC_STATUS_OK;
}

grpc_status_code buildkit_secrets_get(struct buildkit_session *s, struct buildkit_scall *c,
				      const struct buildkit_pipe *pipe, char *details, size_t n)
{
	(void)c;
	const struct kiln_host *host = s->host;
	ProtobufCAllocator a;
	buildkit_allocator(host, &a);
	ProtobufCMessage *msg;
	grpc_status_code rs = buildkit_recv_request(
		s, pipe, &moby__buildkit__secrets__v1__get_secret_request__descriptor, "GetSecret", &msg,
		details, n);
	if (rs != GRPC_STATUS_OK)
		return rs;
	Moby__Buildkit__Secrets__V1__GetSecretRequest *req = (void *)msg;
	grpc_status_code code;
	const struct buildkit_secret *sec = secret_find(s, req->id);
	if (!sec) {
		snprintf(details, n, "secret %s not found: kiln was given no --secret id=%s",
			 req->id, req->id);
		code = GRPC_STATUS_NOT_FOUND;
		goto out;
	}
	uint8_t *data;
	size_t len;
	code = secret_read(host, sec, &data, &len, details, n);
	if (code != GRPC_STATUS_OK)
		goto out;
	Moby__Buildkit__Secrets__V1__GetSecretResponse resp =
		MOBY__BUILDKIT__SECRETS__V1__GET_SECRET_RESPONSE__INIT;
	resp.data.data = data;
	resp.data.len = len;
	size_t plen = protobuf_c_message_get_packed_size(&resp.base);
	uint8_t *packed = host->alloc(plen ? plen : 1);
	protobuf_c_message_pack(&resp.base, packed);
	host->log(KILN_LOG_DEBUG, "buildkit: session: sending secret %s (%zu bytes)", sec->id,
		  len);
	if (pipe->send(pipe->ctx, packed, plen) < 0)
		code = GRPC_STATUS_CANCELLED;
	explicit_bzero(packed, plen);
	explicit_bzero(data, len);
	host->free(packed);
	host->free(data);
out:
	moby__buildkit__secrets__v1__get_secret_request__free_unpacked(req, &a);
	return code;
}
