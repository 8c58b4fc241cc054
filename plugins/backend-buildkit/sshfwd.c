/*
 * sshfwd.c: --ssh, and the session's SSH/CheckAgent and SSH/ForwardAgent
 * (BUILDKIT-WIRE.md section 9).
 *
 * The forms are buildx's: "default", "ID" (both use $SSH_AUTH_SOCK) and
 * "ID=PATH"; an empty ID is "default". As in BuildKit's sshprovider an id
 * may name one agent socket and appear once. BuildKit also accepts key
 * files (it runs an agent of its own in the client); kiln forwards agent
 * sockets only and says so.
 *
 * ForwardAgent carries the raw ssh-agent protocol (uint32 length, type
 * byte, body) in BytesMessages whose boundaries mean nothing. Two threads
 * pump it: a reader thread takes the daemon's messages to the agent socket
 * (half-close -> shutdown(SHUT_WR)); the handler's thread reads the agent
 * and sends. Like BuildKit, which serves the agent read-only, kiln passes
 * only requests to list keys and to sign: any other request (add, remove,
 * lock, extensions) is swapped on the way for a message of type 0, which
 * no agent knows and each answers SSH_AGENT_FAILURE, so answers stay in
 * order. If the agent goes away first, requests it left unanswered, and
 * any that follow, get SSH_AGENT_FAILURE from kiln until the daemon
 * half-closes: a call's pending read can only end with the call.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "buildkit.h"
#include "session.h"
#include "ssh.pb-c.h"

#define DEFAULT_ID "default"
#define SSH_ID_KEY "buildkit.ssh.id" /* request metadata of ForwardAgent */
#define AGENT_CHUNK (32 * 1024)

/* ssh-agent message types (draft-miller-ssh-agent). */
#define AGENT_FAILURE 5
#define AGENTC_REQUEST_IDENTITIES 11
#define AGENTC_SIGN_REQUEST 13

static char *dup_n(const struct kiln_host *host, const char *p, size_t n)
{
	char *d = host->alloc(n + 1);
	memcpy(d, p, n);
	d[n] = '\0';
	return d;
}

static void ssh_clear(const struct kiln_host *host, struct buildkit_ssh *e)
{
	for (size_t i = 0; i < e->n_sockets; i++)
		host->free(e->sockets[i]);
	host->free(e->sockets);
	host->free(e->id);
	*e = (struct buildkit_ssh){ 0 };
}

/* ---- parsing ------------------------------------------------------------------- */

static int ssh_check_path(const struct kiln_host *host, const char *spec, const char *path,
			  struct kiln_err *err)
{
	struct stat st;
	if (!*path)
		return host->error(err, KILN_E_INVALID, "--ssh %s: empty path", spec);
	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return host->error(err, KILN_E_INVALID,
				   "--ssh %s: %s: path too long for a unix socket", spec, path);
	if (stat(path, &st) != 0) {
		int e = errno;
		return host->error(err, e == ENOENT || e == ENOTDIR ? KILN_E_NOTFOUND : KILN_E_IO,
				   "--ssh %s: %s: %s", spec, path, strerror(e));
	}
	if (!S_ISSOCK(st.st_mode))
		return host->error(err, KILN_E_UNSUPPORTED,
				   "--ssh %s: %s is not an ssh-agent socket; kiln forwards agent "
				   "sockets only (load the key into an agent with ssh-add and "
				   "give the agent's socket, or a bare id for $SSH_AUTH_SOCK)",
				   spec, path);
	return 0;
}

static int ssh_parse_one(const struct kiln_host *host, const char *spec,
			 struct buildkit_ssh *e, struct kiln_err *err)
{
	if (!*spec)
		return host->error(err, KILN_E_INVALID,
				   "--ssh: empty value (want default, ID or ID=SOCKET)");
	const char *eq = strchr(spec, '=');
	size_t idlen = eq ? (size_t)(eq - spec) : strlen(spec);
	e->id = idlen ? dup_n(host, spec, idlen) : dup_n(host, DEFAULT_ID, strlen(DEFAULT_ID));
	const char *paths = eq ? eq + 1 : "";
	if (!*paths) {
		const char *sock = getenv("SSH_AUTH_SOCK");
		if (!sock || !*sock)
			return host->error(err, KILN_E_INVALID,
					   "--ssh %s: SSH_AUTH_SOCK is not set; start an agent "
					   "(eval \"$(ssh-agent)\"; ssh-add) or give its socket: "
					   "--ssh %s=/path/to/agent.sock", spec, e->id);
		paths = sock;
	} else if (strchr(paths, ',')) {
		return host->error(err, KILN_E_INVALID,
				   "--ssh %s: one agent socket per id (as in BuildKit); give "
				   "another id for another agent", spec);
	}
	int rc = ssh_check_path(host, spec, paths, err);
	if (rc)
		return rc;
	e->sockets = host->alloc(sizeof(char *));
	e->sockets[0] = dup_n(host, paths, strlen(paths));
	e->n_sockets = 1;
	return 0;
}

int buildkit_ssh_parse(struct buildkit_session *s, const char *const *specs, size_t n,
		       struct kiln_err *err)
{
	const struct kiln_host *host = s->host;
	for (size_t i = 0; i < n; i++) {
		struct buildkit_ssh e = { 0 };
		int rc = ssh_parse_one(host, specs[i], &e, err);
		for (size_t j = 0; rc == 0 && j < s->n_ssh; j++)
			if (strcmp(s->ssh[j].id, e.id) == 0)
				rc = host->error(err, KILN_E_INVALID,
						 "--ssh %s: id %s given twice", specs[i], e.id);
		if (rc) {
			ssh_clear(host, &e);
			return rc;
		}
		s->ssh = host->realloc(s->ssh, (s->n_ssh + 1) * sizeof(*s->ssh));
		s->ssh[s->n_ssh++] = e;
	}
	return 0;
}

void buildkit_ssh_free(struct buildkit_session *s)
{
	for (size_t i = 0; i < s->n_ssh; i++)
		ssh_clear(s->host, &s->ssh[i]);
	s->host->free(s->ssh);
	s->ssh = NULL;
	s->n_ssh = 0;
}

static const struct buildkit_ssh *ssh_find(const struct buildkit_session *s, const char *id)
{
	if (!id || !*id)
		id = DEFAULT_ID;
	for (size_t i = 0; i < s->n_ssh; i++)
		if (strcmp(s->ssh[i].id, id) == 0)
			return &s->ssh[i];
	return NULL;
}

/* ---- SSH/CheckAgent -------------------------------------------------------------- */

grpc_status_code buildkit_ssh_check(struct buildkit_session *s, struct buildkit_scall *c,
				    const struct buildkit_pipe *pipe, char *details, size_t n)
{
	(void)c;
	ProtobufCAllocator a;
	buildkit_allocator(s->host, &a);
	ProtobufCMessage *msg;
	grpc_status_code rs = buildkit_recv_request(
		s, pipe, &moby__sshforward__v1__check_agent_request__descriptor, "CheckAgent", &msg,
		details, n);
	if (rs != GRPC_STATUS_OK)
		return rs;
	Moby__Sshforward__V1__CheckAgentRequest *req = (void *)msg;
	grpc_status_code code = GRPC_STATUS_OK;
	if (!ssh_find(s, req->id)) {
		snprintf(details, n, "no ssh agent for id %s: kiln was given no --ssh %s",
			 *req->id ? req->id : DEFAULT_ID, *req->id ? req->id : DEFAULT_ID);
		code = GRPC_STATUS_NOT_FOUND;
	} else if (pipe->send(pipe->ctx, "", 0) < 0) { /* CheckAgentResponse{} */
		code = GRPC_STATUS_CANCELLED;
	}
	moby__sshforward__v1__check_agent_request__free_unpacked(req, &a);
	return code;
}

/* ---- SSH/ForwardAgent ------------------------------------------------------------ */

struct fwd {
	const struct kiln_host *host;
	const struct buildkit_pipe *pipe;
	int fd; /* the agent */

	pthread_mutex_t mu; /* guards the fields below and orders sends */
	bool agent_gone;     /* the agent closed (or failed) */
	bool broken;         /* ... in the middle of an answer: send nothing more */
	uint64_t requests;   /* requests passed to the agent */
	grpc_status_code end; /* how the reader ended */
	char why[160];

	/* the reader thread's framing of requests */
	uint8_t hdr[5];
	size_t have;
	uint32_t left; /* body bytes of the current request still to come */
	bool pass;     /* pass them (else swallow) */
};

static int sock_write(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int send_bytes(const struct fwd *f, const uint8_t *data, size_t len)
{
	Moby__Sshforward__V1__BytesMessage m = MOBY__SSHFORWARD__V1__BYTES_MESSAGE__INIT;
	m.data.data = (uint8_t *)data;
	m.data.len = len;
	size_t plen = protobuf_c_message_get_packed_size(&m.base);
	uint8_t stackbuf[64];
	uint8_t *packed = plen <= sizeof(stackbuf) ? stackbuf : f->host->alloc(plen);
	protobuf_c_message_pack(&m.base, packed);
	int rc = f->pipe->send(f->pipe->ctx, packed, plen);
	if (packed != stackbuf)
		f->host->free(packed);
	return rc;
}

/* Answer one request SSH_AGENT_FAILURE ourselves (mu held). */
static int send_failure(const struct fwd *f)
{
	static const uint8_t failure[] = { 0, 0, 0, 1, AGENT_FAILURE };
	return send_bytes(f, failure, sizeof(failure));
}

static bool request_allowed(uint8_t type)
{
	return type == AGENTC_REQUEST_IDENTITIES || type == AGENTC_SIGN_REQUEST;
}

/* A request's header is complete (4 length bytes, and the type byte when
 * the length is not 0): pass it, swap it, or answer it. */
static void request_begin(struct fwd *f, uint32_t len)
{
	static const uint8_t refused[] = { 0, 0, 0, 1, 0 };
	pthread_mutex_lock(&f->mu);
	if (f->agent_gone) {
		if (!f->broken && send_failure(f) < 0)
			f->broken = true;
		f->pass = false;
	} else if (len == 0 || request_allowed(f->hdr[4])) {
		f->requests++;
		sock_write(f->fd, f->hdr, len == 0 ? 4 : 5);
		f->pass = true;
	} else {
		f->requests++;
		sock_write(f->fd, refused, sizeof(refused));
		f->pass = false;
	}
	pthread_mutex_unlock(&f->mu);
	/* write errors are the handler's to see: the agent's end reads EOF */
	f->left = len ? len - 1 : 0;
	f->have = 0;
}

static void to_agent(struct fwd *f, const uint8_t *p, size_t n)
{
	while (n) {
		if (f->left) {
			size_t k = n < f->left ? n : f->left;
			if (f->pass)
				sock_write(f->fd, p, k);
			p += k;
			n -= k;
			f->left -= (uint32_t)k;
			continue;
		}
		f->hdr[f->have++] = *p++;
		n--;
		uint32_t len = (uint32_t)f->hdr[0] << 24 | (uint32_t)f->hdr[1] << 16 |
			       (uint32_t)f->hdr[2] << 8 | f->hdr[3];
		if ((f->have == 4 && len == 0) || f->have == 5)
			request_begin(f, len);
	}
}

/* The reader thread: the daemon's messages to the agent. */
static void *fwd_reader(void *arg)
{
	struct fwd *f = arg;
	ProtobufCAllocator a;
	buildkit_allocator(f->host, &a);
	grpc_status_code end = GRPC_STATUS_OK;
	for (;;) {
		const uint8_t *in;
		size_t in_len;
		int r = f->pipe->recv(f->pipe->ctx, &in, &in_len);
		if (r < 0) {
			end = GRPC_STATUS_CANCELLED;
			shutdown(f->fd, SHUT_RDWR); /* wakes the handler's read */
			break;
		}
		if (r == 0) { /* the daemon half-closed: so does kiln, to the agent */
			shutdown(f->fd, SHUT_WR);
			break;
		}
		Moby__Sshforward__V1__BytesMessage *m =
			moby__sshforward__v1__bytes_message__unpack(&a, in_len, in);
		if (!m) {
			end = GRPC_STATUS_INVALID_ARGUMENT;
			pthread_mutex_lock(&f->mu);
			snprintf(f->why, sizeof(f->why), "ForwardAgent: malformed BytesMessage");
			pthread_mutex_unlock(&f->mu);
			shutdown(f->fd, SHUT_RDWR);
			break;
		}
		to_agent(f, m->data.data, m->data.len);
		moby__sshforward__v1__bytes_message__free_unpacked(m, &a);
	}
	pthread_mutex_lock(&f->mu);
	f->end = end;
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

static int agent_connect(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t l = strlen(path);
	if (l >= sizeof(sa.sun_path)) {
		close(fd);
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, l + 1);
	int rc;
	do
		rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

grpc_status_code buildkit_ssh_forward(struct buildkit_session *s, struct buildkit_scall *c,
				      const struct buildkit_pipe *pipe, char *details, size_t n)
{
	const struct kiln_host *host = s->host;
	const char *id = NULL;
	if (buildkit_scall_md(c, SSH_ID_KEY, &id, 1) == 0)
		id = NULL;
	const struct buildkit_ssh *e = ssh_find(s, id);
	if (!e) {
		snprintf(details, n, "no ssh agent for id %s: kiln was given no --ssh %s",
			 id && *id ? id : DEFAULT_ID, id && *id ? id : DEFAULT_ID);
		return GRPC_STATUS_NOT_FOUND;
	}
	int fd = agent_connect(e->sockets[0]);
	if (fd < 0) {
		snprintf(details, n, "--ssh %s: cannot connect to the agent at %s: %s", e->id,
			 e->sockets[0], strerror(errno));
		return GRPC_STATUS_UNAVAILABLE;
	}

	struct fwd *f = host->alloc(sizeof(*f));
	*f = (struct fwd){ .host = host, .pipe = pipe, .fd = fd };
	pthread_mutex_init(&f->mu, NULL);
	pthread_t reader;
	if (pthread_create(&reader, NULL, fwd_reader, f) != 0) {
		snprintf(details, n, "--ssh %s: cannot start a thread", e->id);
		pthread_mutex_destroy(&f->mu);
		host->free(f);
		close(fd);
		return GRPC_STATUS_INTERNAL;
	}

	/* The agent's answers to the daemon, counted to know what is owed
	 * if the agent goes away. */
	uint8_t *buf = host->alloc(AGENT_CHUNK);
	uint8_t rhdr[4];
	size_t rhave = 0;
	uint32_t rleft = 0;
	uint64_t answered = 0;
	bool call_gone = false;
	for (;;) {
		ssize_t r = read(fd, buf, AGENT_CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break; /* EOF, or the reader shut the socket down */
		for (ssize_t i = 0; i < r;) {
			if (rleft) {
				size_t k = (size_t)(r - i) < rleft ? (size_t)(r - i) : rleft;
				i += (ssize_t)k;
				rleft -= (uint32_t)k;
				if (!rleft)
					answered++;
				continue;
			}
			rhdr[rhave++] = buf[i++];
			if (rhave == 4) {
				rleft = (uint32_t)rhdr[0] << 24 | (uint32_t)rhdr[1] << 16 |
					(uint32_t)rhdr[2] << 8 | rhdr[3];
				rhave = 0;
				if (!rleft)
					answered++;
			}
		}
		if (send_bytes(f, buf, (size_t)r) < 0) {
			call_gone = true;
			break;
		}
	}
	host->free(buf);

	pthread_mutex_lock(&f->mu);
	f->agent_gone = true;
	if (call_gone || rhave || rleft) {
		f->broken = true;
	} else {
		for (uint64_t i = answered; i < f->requests; i++)
			if (send_failure(f) < 0) {
				f->broken = true;
				break;
			}
		if (f->requests > answered)
			host->log(KILN_LOG_DEBUG, "buildkit: session: ssh agent %s closed with %llu "
				  "request(s) unanswered", e->sockets[0],
				  (unsigned long long)(f->requests - answered));
	}
	pthread_mutex_unlock(&f->mu);
	shutdown(fd, SHUT_RDWR);
	pthread_join(reader, NULL);
	close(fd);

	grpc_status_code code = call_gone ? GRPC_STATUS_CANCELLED : f->end;
	if (code != GRPC_STATUS_OK && f->why[0])
		snprintf(details, n, "%s", f->why);
	pthread_mutex_destroy(&f->mu);
	host->free(f);
	return code;
}
