/*
 * addr.c: engine addresses for the buildkit backend (no gRPC here, so the
 * unit tests can use it alone).
 *
 *   unix:///PATH         standalone buildkitd (unix:// alone: its default
 *                        socket, /run/buildkit/buildkitd.sock)
 *   tcp://HOST:PORT      standalone buildkitd over TCP; gRPC target
 *                        "ipv4:H:P" / "ipv6:[H]:P" for literals, else
 *                        "dns:///H:P"; HOST is also the default TLS
 *                        server name
 *   docker-unix:///PATH  the BuildKit inside dockerd at PATH
 *   docker://            = docker-unix:///var/run/docker.sock
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buildkit.h"

#define DEFAULT_BUILDKITD "/run/buildkit/buildkitd.sock"
#define DEFAULT_DOCKER "/var/run/docker.sock"
#define ADDR_FORMS "unix:///PATH, tcp://HOST:PORT, docker-unix:///PATH or docker://"

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int set_path(const struct kiln_host *host, const char *addr, const char *path,
		    struct buildkit_addr *out, struct kiln_err *err)
{
	if (strlen(path) >= sizeof(out->path))
		return host->error(err, KILN_E_INVALID,
				   "cannot use %s: socket path longer than %zu bytes", addr,
				   sizeof(out->path) - 1);
	memcpy(out->path, path, strlen(path) + 1);
	return 0;
}

/* tcp://HOST:PORT or tcp://[V6]:PORT -> a gRPC target. */
static int parse_tcp(const struct kiln_host *host, const char *addr, const char *hp,
		     struct buildkit_addr *out, struct kiln_err *err)
{
	char h[256];
	const char *port;
	bool v6 = false;
	if (*hp == '[') {
		const char *close = strchr(hp, ']');
		if (!close || close[1] != ':' || (size_t)(close - hp - 1) >= sizeof(h))
			goto bad;
		memcpy(h, hp + 1, (size_t)(close - hp - 1));
		h[close - hp - 1] = '\0';
		port = close + 2;
		v6 = true;
	} else {
		const char *colon = strrchr(hp, ':');
		if (!colon || colon == hp || (size_t)(colon - hp) >= sizeof(h))
			goto bad;
		memcpy(h, hp, (size_t)(colon - hp));
		h[colon - hp] = '\0';
		port = colon + 1;
	}
	char *end;
	errno = 0;
	long p = strtol(port, &end, 10);
	if (!*port || *end || errno || p < 1 || p > 65535 || strchr(h, '/'))
		goto bad;
	unsigned char buf[16];
	if (v6 && inet_pton(AF_INET6, h, buf) == 1)
		snprintf(out->target, sizeof(out->target), "ipv6:[%s]:%ld", h, p);
	else if (!v6 && inet_pton(AF_INET, h, buf) == 1)
		snprintf(out->target, sizeof(out->target), "ipv4:%s:%ld", h, p);
	else if (!v6)
		snprintf(out->target, sizeof(out->target), "dns:///%s:%ld", h, p);
	else
		goto bad;
	snprintf(out->host, sizeof(out->host), "%s", h);
	return 0;
bad:
	return host->error(err, KILN_E_INVALID,
			   "cannot use %s: expected tcp://HOST:PORT (or tcp://[IPV6]:PORT)", addr);
}

int buildkit_addr_parse(const struct kiln_host *host, const char *addr,
			struct buildkit_addr *out, struct kiln_err *err)
{
	*out = (struct buildkit_addr){ 0 };
	if (has_prefix(addr, "unix://")) {
		out->transport = BUILDKIT_UNIX;
		return set_path(host, addr, addr[7] ? addr + 7 : DEFAULT_BUILDKITD, out, err);
	}
	if (has_prefix(addr, "docker-unix://")) {
		out->transport = BUILDKIT_DOCKER;
		return set_path(host, addr, addr[14] ? addr + 14 : DEFAULT_DOCKER, out, err);
	}
	if (strcmp(addr, "docker://") == 0) {
		out->transport = BUILDKIT_DOCKER;
		return set_path(host, addr, DEFAULT_DOCKER, out, err);
	}
	if (has_prefix(addr, "docker://"))
		return host->error(err, KILN_E_INVALID,
				   "cannot use %s: docker:// means %s; name another socket "
				   "as docker-unix:///PATH", addr, DEFAULT_DOCKER);
	if (has_prefix(addr, "tcp://")) {
		out->transport = BUILDKIT_TCP;
		return parse_tcp(host, addr, addr + 6, out, err);
	}
	return host->error(err, KILN_E_INVALID,
			   "the buildkit backend cannot use '%s' (expected " ADDR_FORMS ")", addr);
}

