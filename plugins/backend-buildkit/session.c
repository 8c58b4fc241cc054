/*
 * session.c: kiln's gRPC server for a BuildKit session (BUILDKIT-WIRE.md
 * section 7). The daemon is the HTTP/2 client; kiln serves.
 *
 * One dispatch thread accepts calls (one grpc_server_request_call armed at
 * all times) and hands each to a thread of its own, so Health/Check is
 * answered at once while file transfers read the disk. Every call has a
 * pluck completion queue of its own; a handler's recv and send may run on
 * two threads at once (SSH forwarding), each plucking its own tag.
 *
 * Tunnels: dockerd's POST /session hijack (the fd goes straight to gRPC),
 * or Control.Session (a bidi byte stream on the control channel, pumped
 * to a socketpair whose other end gRPC serves), which is how buildctl
 * talks to buildkitd.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "buildkit.h"
#include "control.pb-c.h"
#include "session.h"

#define M_HEALTH "/grpc.health.v1.Health/Check"
#define M_FILESYNC "/moby.filesync.v1.FileSync/DiffCopy"
#define M_FILESEND "/moby.filesync.v1.FileSend/DiffCopy"
#define M_SECRET "/moby.buildkit.secrets.v1.Secrets/GetSecret"
#define M_SSH_CHECK "/moby.sshforward.v1.SSH/CheckAgent"
#define M_SSH_FORWARD "/moby.sshforward.v1.SSH/ForwardAgent"
#define M_AUTH_CREDS "/moby.filesync.v1.Auth/Credentials"

#define TUNNEL_CHUNK (32 * 1024) /* bytes per Control.Session message */

struct buildkit_server {
	const struct kiln_host *host;
	struct buildkit_session *session;
	grpc_server *server;
	grpc_completion_queue *cq; /* notifications: new calls, shutdown */
	pthread_t dispatch;
	bool dispatch_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int active;                /* call threads running */
	struct buildkit_scall *armed; /* the request_call under way */
	/* Control.Session tunnel (NULL for the /session hijack). */
	struct tunnel *tunnel;
	const char *methods[12];
};

struct buildkit_scall {
	struct buildkit_server *srv;
	grpc_call *call;
	grpc_call_details details;
	grpc_metadata_array md;
	grpc_completion_queue *cq;
	char method[256];
	/* request metadata as NUL-terminated strings */
	char **md_keys, **md_vals;
	size_t n_md;
	bool md_sent;              /* initial metadata went out */
	grpc_slice recv_slice;     /* the last message received */
	bool recv_done;            /* end of stream seen */
	pthread_mutex_t send_mu;   /* initial metadata once, across threads */
	int close_cancelled;       /* from RECV_CLOSE_ON_SERVER */
	int tag_recv, tag_send, tag_close, tag_end;
};

/* ---- session identity ------------------------------------------------------------ */

/* 25 random base36 characters, as Go's identity.NewID(). */
void buildkit_random_id(char *out, size_t n)
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
	uint8_t buf[32];
	size_t len = n - 1 < sizeof(buf) ? n - 1 : sizeof(buf);
	if (getrandom(buf, len, 0) != (ssize_t)len) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)((ts.tv_nsec >> (i % 24)) ^ (uint64_t)getpid() * 131 ^ i);
	}
	for (size_t i = 0; i < len; i++)
		out[i] = digits[buf[i] % 36];
	out[len] = '\0';
}

void buildkit_session_identity(struct buildkit_session *s, const char *name,
			       const char *sharedkey)
{
	buildkit_random_id(s->id, 26);
	/* metadata values must be printable ASCII */
	size_t j = 0;
	for (const char *p = name ? name : "kiln"; *p && j + 1 < sizeof(s->name); p++)
		s->name[j++] = (*p > ' ' && *p < 127 && *p != ':') ? *p : '_';
	s->name[j] = '\0';
	j = 0;
	for (const char *p = sharedkey ? sharedkey : ""; *p && j + 1 < sizeof(s->sharedkey); p++)
		s->sharedkey[j++] = (*p >= ' ' && *p < 127) ? *p : '_';
	s->sharedkey[j] = '\0';
}

const char *const *buildkit_session_methods(const struct buildkit_session *s)
{
	static const char *const base[] = { M_HEALTH, M_FILESYNC, M_FILESEND, M_SECRET,
					    M_SSH_CHECK, M_SSH_FORWARD, M_AUTH_CREDS, NULL };
	(void)s;
	return base;
}

/* ---- a call: the pipe --------------------------------------------------------------- */

size_t buildkit_scall_md(const struct buildkit_scall *c, const char *key, const char **vals,
			 size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < c->n_md; i++)
		if (strcmp(c->md_keys[i], key) == 0) {
			if (n < max)
				vals[n] = c->md_vals[i];
			n++;
		}
	return n;
}

static bool call_wait(struct buildkit_scall *c, void *tag)
{
	grpc_event ev = grpc_completion_queue_pluck(c->cq, tag,
						    gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
	return ev.type == GRPC_OP_COMPLETE && ev.success;
}

static int pipe_recv(void *ctx, const uint8_t **data, size_t *len)
{
	struct buildkit_scall *c = ctx;
	grpc_slice_unref(c->recv_slice);
	c->recv_slice = grpc_empty_slice();
	if (c->recv_done)
		return 0;
	grpc_byte_buffer *bb = NULL;
	grpc_op op = { .op = GRPC_OP_RECV_MESSAGE, .data.recv_message.recv_message = &bb };
	if (grpc_call_start_batch(c->call, &op, 1, &c->tag_recv, NULL) != GRPC_CALL_OK)
		return -1;
	if (!call_wait(c, &c->tag_recv)) {
		if (bb)
			grpc_byte_buffer_destroy(bb);
		return -1;
	}
	if (!bb) { /* the client half-closed (or the call ended) */
		c->recv_done = true;
		return 0;
	}
	grpc_byte_buffer_reader r;
	if (!grpc_byte_buffer_reader_init(&r, bb)) {
		grpc_byte_buffer_destroy(bb);
		return -1;
	}
	c->recv_slice = grpc_byte_buffer_reader_readall(&r);
	grpc_byte_buffer_reader_destroy(&r);
	grpc_byte_buffer_destroy(bb);
	*data = GRPC_SLICE_START_PTR(c->recv_slice);
	*len = GRPC_SLICE_LENGTH(c->recv_slice);
	return 1;
}

static int pipe_send(void *ctx, const void *data, size_t len)
{
	struct buildkit_scall *c = ctx;
	grpc_slice s = len ? grpc_slice_from_copied_buffer(data, len) : grpc_empty_slice();
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	grpc_op ops[2];
	size_t n = 0;
	pthread_mutex_lock(&c->send_mu);
	if (!c->md_sent) {
		ops[n++] = (grpc_op){ .op = GRPC_OP_SEND_INITIAL_METADATA };
		c->md_sent = true;
	}
	ops[n++] = (grpc_op){ .op = GRPC_OP_SEND_MESSAGE,
			      .data.send_message.send_message = bb };
	bool ok = grpc_call_start_batch(c->call, ops, n, &c->tag_send, NULL) == GRPC_CALL_OK &&
		  call_wait(c, &c->tag_send);
	pthread_mutex_unlock(&c->send_mu);
	grpc_byte_buffer_destroy(bb);
	return ok ? 0 : -1;
}


/* ---- handlers kept here --------------------------------------------------------------- */

/* Health/Check: read the (empty) request, answer SERVING (bytes 08 01). */
static grpc_status_code health_check(struct buildkit_session *s, struct buildkit_scall *c,
				     const struct buildkit_pipe *pipe, char *details, size_t n)
{
	(void)s, (void)c, (void)details, (void)n;
	const uint8_t *d;
	size_t len;
	if (pipe->recv(pipe->ctx, &d, &len) < 0)
		return GRPC_STATUS_CANCELLED;
	static const uint8_t serving[] = { 0x08, 0x01 };
	return pipe->send(pipe->ctx, serving, sizeof(serving)) == 0 ? GRPC_STATUS_OK
								  : GRPC_STATUS_CANCELLED;
}

static const struct {
	const char *method;
	buildkit_handler_fn *fn;
} handlers[] = {
	{ M_HEALTH, health_check },
	{ M_FILESYNC, buildkit_filesync_diffcopy },
	{ M_FILESEND, buildkit_filesend_diffcopy },
	{ M_SECRET, buildkit_secrets_get },
	{ M_SSH_CHECK, buildkit_ssh_check },
	{ M_SSH_FORWARD, buildkit_ssh_forward },
	{ M_AUTH_CREDS, buildkit_auth_credentials },
};

/* ---- call threads -------------------------------------------------------------------------- */

static struct buildkit_scall *scall_new(struct buildkit_server *srv)
{
	const struct kiln_host *host = srv->host;
	struct buildkit_scall *c = host->alloc(sizeof(*c));
	*c = (struct buildkit_scall){ .srv = srv };
	grpc_call_details_init(&c->details);
	grpc_metadata_array_init(&c->md);
	c->cq = grpc_completion_queue_create_for_pluck(NULL);
	c->recv_slice = grpc_empty_slice();
	pthread_mutex_init(&c->send_mu, NULL);
	return c;
}

static void scall_free(struct buildkit_scall *c)
{
	const struct kiln_host *host = c->srv->host;
	if (c->call)
		grpc_call_unref(c->call);
	grpc_completion_queue_shutdown(c->cq);
	grpc_completion_queue_destroy(c->cq);
	grpc_call_details_destroy(&c->details);
	grpc_metadata_array_destroy(&c->md);
	grpc_slice_unref(c->recv_slice);
	for (size_t i = 0; i < c->n_md; i++) {
		host->free(c->md_keys[i]);
		host->free(c->md_vals[i]);
	}
	host->free(c->md_keys);
	host->free(c->md_vals);
	pthread_mutex_destroy(&c->send_mu);
	host->free(c);
}

static char *slice_str(const struct kiln_host *host, grpc_slice s)
{
	size_t n = GRPC_SLICE_LENGTH(s);
	char *p = host->alloc(n + 1);
	memcpy(p, GRPC_SLICE_START_PTR(s), n);
	p[n] = '\0';
	return p;
}

static void *call_main(void *arg)
{
	struct buildkit_scall *c = arg;
	struct buildkit_server *srv = c->srv;
	const struct kiln_host *host = srv->host;

	size_t ml = GRPC_SLICE_LENGTH(c->details.method);
	if (ml >= sizeof(c->method))
		ml = sizeof(c->method) - 1;
	memcpy(c->method, GRPC_SLICE_START_PTR(c->details.method), ml);
	c->method[ml] = '\0';
	c->n_md = c->md.count;
	c->md_keys = host->alloc((c->n_md ? c->n_md : 1) * sizeof(char *));
	c->md_vals = host->alloc((c->n_md ? c->n_md : 1) * sizeof(char *));
	for (size_t i = 0; i < c->n_md; i++) {
		c->md_keys[i] = slice_str(host, c->md.metadata[i].key);
		c->md_vals[i] = slice_str(host, c->md.metadata[i].value);
	}

	/* learn about cancellation; completes when the call is over */
	grpc_op close_op = { .op = GRPC_OP_RECV_CLOSE_ON_SERVER,
			     .data.recv_close_on_server.cancelled = &c->close_cancelled };
	bool close_started = grpc_call_start_batch(c->call, &close_op, 1, &c->tag_close,
						   NULL) == GRPC_CALL_OK;

	buildkit_handler_fn *fn = NULL;
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
		if (strcasecmp(handlers[i].method, c->method) == 0)
			fn = handlers[i].fn;
	char details[512] = "";
	grpc_status_code code;
	if (fn) {
		struct buildkit_pipe pipe = { .ctx = c, .recv = pipe_recv, .send = pipe_send };
		code = fn(srv->session, c, &pipe, details, sizeof(details));
	} else {
		code = GRPC_STATUS_UNIMPLEMENTED;
		snprintf(details, sizeof(details), "kiln does not serve %s", c->method);
	}
	if (strcmp(c->method, M_HEALTH) != 0)
		host->log(KILN_LOG_DEBUG, "buildkit: session: %s -> %d%s%s", c->method, code,
			  details[0] ? ": " : "", details);

	grpc_slice ds = grpc_slice_from_copied_string(details);
	grpc_op ops[2];
	size_t n = 0;
	pthread_mutex_lock(&c->send_mu);
	if (!c->md_sent) {
		ops[n++] = (grpc_op){ .op = GRPC_OP_SEND_INITIAL_METADATA };
		c->md_sent = true;
	}
	ops[n] = (grpc_op){ .op = GRPC_OP_SEND_STATUS_FROM_SERVER };
	ops[n].data.send_status_from_server.status = code;
	ops[n].data.send_status_from_server.status_details = details[0] ? &ds : NULL;
	n++;
	if (grpc_call_start_batch(c->call, ops, n, &c->tag_end, NULL) == GRPC_CALL_OK)
		call_wait(c, &c->tag_end);
	pthread_mutex_unlock(&c->send_mu);
	grpc_slice_unref(ds);
	if (close_started)
		call_wait(c, &c->tag_close);
	scall_free(c);

	pthread_mutex_lock(&srv->mu);
	srv->active--;
	pthread_cond_broadcast(&srv->cv);
	pthread_mutex_unlock(&srv->mu);
	return NULL;
}

/* ---- dispatch -------------------------------------------------------------------------------- */

static int shutdown_tag;

static bool arm(struct buildkit_server *srv)
{
	struct buildkit_scall *c = scall_new(srv);
	if (grpc_server_request_call(srv->server, &c->call, &c->details, &c->md, c->cq, srv->cq,
				     c) != GRPC_CALL_OK) {
		scall_free(c);
		srv->armed = NULL;
		return false;
	}
	srv->armed = c;
	return true;
}

static void *dispatch_main(void *arg)
{
	struct buildkit_server *srv = arg;
	bool armed = arm(srv), shut = false;
	while (armed || !shut) {
		grpc_event ev = grpc_completion_queue_next(srv->cq,
							   gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		if (ev.type != GRPC_OP_COMPLETE)
			break;
		if (ev.tag == &shutdown_tag) {
			shut = true;
			continue;
		}
		struct buildkit_scall *c = ev.tag;
		armed = false;
		if (!ev.success) { /* the server is shutting down */
			scall_free(c);
			continue;
		}
		pthread_mutex_lock(&srv->mu);
		srv->active++;
		pthread_mutex_unlock(&srv->mu);
		pthread_t t;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, call_main, c) != 0) {
			pthread_mutex_lock(&srv->mu);
			srv->active--;
			pthread_mutex_unlock(&srv->mu);
			grpc_call_cancel(c->call, NULL);
			scall_free(c);
		}
		pthread_attr_destroy(&attr);
		if (!shut)
			armed = arm(srv);
	}
	return NULL;
}

/* ---- Control.Session tunnel -------------------------------------------------------------------- */

struct tunnel {
	const struct kiln_host *host;
	grpc_call *call;
	grpc_completion_queue *cq;
	int fd;                 /* our end of the socketpair */
	pthread_t up, down;     /* socket -> call, call -> socket */
	grpc_metadata md[16];
	size_t n_md;
	grpc_metadata_array initial, trailing;
	grpc_status_code status;
	grpc_slice details;
	int tag_md, tag_recv, tag_send, tag_status, tag_close;
	atomic_bool closing;
};

static bool tunnel_wait(struct tunnel *t, void *tag)
{
	grpc_event ev = grpc_completion_queue_pluck(t->cq, tag,
						    gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
	return ev.type == GRPC_OP_COMPLETE && ev.success;
}

/* call -> socket: each BytesMessage's data is the next slice of the
 * daemon's HTTP/2 bytes. */
static void *tunnel_down(void *arg)
{
	struct tunnel *t = arg;
	const struct kiln_host *host = t->host;
	ProtobufCAllocator a;
	buildkit_allocator(host, &a);
	bool first = true;
	for (;;) {
		grpc_byte_buffer *bb = NULL;
		grpc_op ops[2];
		size_t n = 0;
		if (first) /* the response headers come first */
			ops[n++] = (grpc_op){ .op = GRPC_OP_RECV_INITIAL_METADATA,
					      .data.recv_initial_metadata.recv_initial_metadata =
						      &t->initial };
		first = false;
		ops[n++] = (grpc_op){ .op = GRPC_OP_RECV_MESSAGE,
				      .data.recv_message.recv_message = &bb };
		if (grpc_call_start_batch(t->call, ops, n, &t->tag_recv, NULL) != GRPC_CALL_OK)
			break;
		bool ok = tunnel_wait(t, &t->tag_recv);
		if (!ok || !bb) {
			if (bb)
				grpc_byte_buffer_destroy(bb);
			break;
		}
		grpc_byte_buffer_reader r;
		grpc_byte_buffer_reader_init(&r, bb);
		grpc_slice s = grpc_byte_buffer_reader_readall(&r);
		grpc_byte_buffer_reader_destroy(&r);
		grpc_byte_buffer_destroy(bb);
		Moby__Buildkit__V1__BytesMessage *m = moby__buildkit__v1__bytes_message__unpack(
			&a, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
		grpc_slice_unref(s);
		if (!m)
			break;
		const uint8_t *p = m->data.data;
		size_t left = m->data.len;
		bool failed = false;
		while (left) {
			ssize_t w = send(t->fd, p, left, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				failed = true;
				break;
			}
			p += w;
			left -= (size_t)w;
		}
		moby__buildkit__v1__bytes_message__free_unpacked(m, &a);
		if (failed)
			break;
	}
	shutdown(t->fd, SHUT_WR);
	return NULL;
}

/* socket -> call. */
static void *tunnel_up(void *arg)
{
	struct tunnel *t = arg;
	uint8_t *buf = t->host->alloc(TUNNEL_CHUNK);
	uint8_t *packed = t->host->alloc(TUNNEL_CHUNK + 16);
	for (;;) {
		ssize_t r = recv(t->fd, buf, TUNNEL_CHUNK, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		Moby__Buildkit__V1__BytesMessage m = MOBY__BUILDKIT__V1__BYTES_MESSAGE__INIT;
		m.data.data = buf;
		m.data.len = (size_t)r;
		size_t len = moby__buildkit__v1__bytes_message__pack(&m, packed);
		grpc_slice s = grpc_slice_from_copied_buffer((const char *)packed, len);
		grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
		grpc_slice_unref(s);
		grpc_op op = { .op = GRPC_OP_SEND_MESSAGE, .data.send_message.send_message = bb };
		bool ok = grpc_call_start_batch(t->call, &op, 1, &t->tag_send, NULL) ==
				  GRPC_CALL_OK && tunnel_wait(t, &t->tag_send);
		grpc_byte_buffer_destroy(bb);
		if (!ok)
			break;
	}
	t->host->free(buf);
	t->host->free(packed);
	return NULL;
}

static void md_add(struct tunnel *t, const char *key, const char *val)
{
	if (t->n_md < sizeof(t->md) / sizeof(t->md[0]))
		t->md[t->n_md++] = (grpc_metadata){ .key = grpc_slice_from_copied_string(key),
						    .value = grpc_slice_from_copied_string(val) };
}

/* Open Control.Session on conn's channel; *fd is the socketpair end for
 * the local gRPC server. */
static int tunnel_open(struct buildkit_conn *conn, struct buildkit_session *s,
		       struct tunnel **out, int *server_fd, struct kiln_err *err)
{
	const struct kiln_host *host = conn->host;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return host->error(err, KILN_E_IO, "session: socketpair: %s", strerror(errno));
	struct tunnel *t = host->alloc(sizeof(*t));
	*t = (struct tunnel){ .host = host, .fd = sv[1] };
	atomic_init(&t->closing, false);
	t->cq = grpc_completion_queue_create_for_pluck(NULL);
	grpc_metadata_array_init(&t->initial);
	grpc_metadata_array_init(&t->trailing);
	t->details = grpc_empty_slice();
	grpc_slice m = grpc_slice_from_static_string(BUILDKIT_CONTROL "Session");
	t->call = grpc_channel_create_call(conn->channel, NULL, GRPC_PROPAGATE_DEFAULTS, t->cq, m,
					   NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	md_add(t, "x-docker-expose-session-uuid", s->id);
	md_add(t, "x-docker-expose-session-name", s->name);
	md_add(t, "x-docker-expose-session-sharedkey", s->sharedkey);
	for (const char *const *p = buildkit_session_methods(s); *p; p++)
		md_add(t, "x-docker-expose-session-grpc-method", *p);
	grpc_op ops[2] = { { .op = GRPC_OP_SEND_INITIAL_METADATA },
			   { .op = GRPC_OP_RECV_STATUS_ON_CLIENT } };
	ops[0].data.send_initial_metadata.count = t->n_md;
	ops[0].data.send_initial_metadata.metadata = t->md;
	ops[1].data.recv_status_on_client.trailing_metadata = &t->trailing;
	ops[1].data.recv_status_on_client.status = &t->status;
	ops[1].data.recv_status_on_client.status_details = &t->details;
	if (grpc_call_start_batch(t->call, &ops[0], 1, &t->tag_md, NULL) != GRPC_CALL_OK ||
	    grpc_call_start_batch(t->call, &ops[1], 1, &t->tag_status, NULL) != GRPC_CALL_OK) {
		close(sv[0]);
		/* the caller frees through tunnel_close */
	}
	tunnel_wait(t, &t->tag_md);
	pthread_create(&t->down, NULL, tunnel_down, t);
	pthread_create(&t->up, NULL, tunnel_up, t);
	*out = t;
	*server_fd = sv[0];
	return 0;
}

static void tunnel_close(struct tunnel *t)
{
	if (!t)
		return;
	/* half-close: the daemon ends the tunnel and the RPC with OK */
	grpc_op op = { .op = GRPC_OP_SEND_CLOSE_FROM_CLIENT };
	if (grpc_call_start_batch(t->call, &op, 1, &t->tag_close, NULL) == GRPC_CALL_OK)
		tunnel_wait(t, &t->tag_close);
	shutdown(t->fd, SHUT_RDWR); /* ends tunnel_up */
	gpr_timespec until = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
					  gpr_time_from_millis(3000, GPR_TIMESPAN));
	grpc_event ev = grpc_completion_queue_pluck(t->cq, &t->tag_status, until, NULL);
	if (ev.type == GRPC_QUEUE_TIMEOUT) {
		grpc_call_cancel(t->call, NULL);
		tunnel_wait(t, &t->tag_status);
	}
	pthread_join(t->up, NULL);
	grpc_call_cancel(t->call, NULL); /* ends tunnel_down if still reading */
	pthread_join(t->down, NULL);
	close(t->fd);
	grpc_call_unref(t->call);
	grpc_completion_queue_shutdown(t->cq);
	while (grpc_completion_queue_pluck(t->cq, NULL, gpr_inf_future(GPR_CLOCK_MONOTONIC),
					   NULL).type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(t->cq);
	for (size_t i = 0; i < t->n_md; i++) {
		grpc_slice_unref(t->md[i].key);
		grpc_slice_unref(t->md[i].value);
	}
	grpc_metadata_array_destroy(&t->initial);
	grpc_metadata_array_destroy(&t->trailing);
	grpc_slice_unref(t->details);
	t->host->free(t);
}

/* ---- start and stop -------------------------------------------------------------------------------- */

static void server_destroy(struct buildkit_server *srv)
{
	grpc_server_shutdown_and_notify(srv->server, srv->cq, &shutdown_tag);
	grpc_server_cancel_all_calls(srv->server);
	if (srv->dispatch_started) { /* the dispatch loop takes the tag */
		pthread_join(srv->dispatch, NULL);
	} else {
		grpc_event ev;
		do
			ev = grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC),
							NULL);
		while (ev.type == GRPC_OP_COMPLETE && ev.tag != &shutdown_tag);
	}
	/* call threads end once their calls are cancelled */
	pthread_mutex_lock(&srv->mu);
	while (srv->active > 0)
		pthread_cond_wait(&srv->cv, &srv->mu);
	pthread_mutex_unlock(&srv->mu);
	grpc_server_destroy(srv->server);
	grpc_completion_queue_shutdown(srv->cq);
	while (grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)
		       .type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(srv->cq);
	pthread_mutex_destroy(&srv->mu);
	pthread_cond_destroy(&srv->cv);
	srv->host->free(srv);
}

int buildkit_session_start(struct buildkit_conn *conn, struct buildkit_session *s,
			   enum buildkit_tunnel kind, struct kiln_err *err)
{
	const struct kiln_host *host = conn->host;
	struct buildkit_server *srv = host->alloc(sizeof(*srv));
	*srv = (struct buildkit_server){ .host = host, .session = s };
	pthread_mutex_init(&srv->mu, NULL);
	pthread_cond_init(&srv->cv, NULL);

	static char k_md[] = GRPC_ARG_MAX_METADATA_SIZE;
	static char k_recv[] = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	static char k_strikes[] = GRPC_ARG_HTTP2_MAX_PING_STRIKES;
	grpc_arg a[] = {
		{ .type = GRPC_ARG_INTEGER, .key = k_md, .value.integer = 1024 * 1024 },
		{ .type = GRPC_ARG_INTEGER, .key = k_recv, .value.integer = BUILDKIT_MAX_RECV },
		{ .type = GRPC_ARG_INTEGER, .key = k_strikes, .value.integer = 0 },
	};
	grpc_channel_args args = { .num_args = sizeof(a) / sizeof(a[0]), .args = a };
	srv->server = grpc_server_create(&args, NULL);
	srv->cq = grpc_completion_queue_create_for_next(NULL);
	grpc_server_register_completion_queue(srv->server, srv->cq, NULL);
	grpc_server_start(srv->server);
	s->server = srv;

	int fd = -1, rc = 0;
	if (kind == BUILDKIT_TUNNEL_HIJACK) {
		rc = buildkit_docker_session(conn, s, buildkit_now_ms() + BUILDKIT_CONNECT_MS, &fd,
					     err);
	} else {
		rc = tunnel_open(conn, s, &srv->tunnel, &fd, err);
	}
	if (rc < 0) {
		server_destroy(srv);
		s->server = NULL;
		return rc;
	}
	/* gRPC owns fd from here; its server side expects a non-blocking
	 * socket (unlike grpc_channel_create_from_fd, it does not set it) */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
	grpc_server_add_channel_from_fd(srv->server, fd, creds);
	grpc_server_credentials_release(creds);
	if (pthread_create(&srv->dispatch, NULL, dispatch_main, srv) == 0)
		srv->dispatch_started = true;
	host->log(KILN_LOG_DEBUG, "buildkit: session %s up (%s)", s->id,
		  kind == BUILDKIT_TUNNEL_HIJACK ? "POST /session" : "Control.Session");
	return 0;
}

void buildkit_session_stop(struct buildkit_session *s)
{
	struct buildkit_server *srv = s->server;
	if (!srv)
		return;
	tunnel_close(srv->tunnel);
	srv->tunnel = NULL;
	server_destroy(srv);
	s->server = NULL;
}
