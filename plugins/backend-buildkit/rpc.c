/*
 * rpc.c: calls on a BuildKit channel with gRPC core's generic call API.
 * protoc-c makes the messages; a call is a method path, a packed request
 * in a byte buffer, and a completion queue per call that kiln plucks with
 * the call's deadline (plus a little slack: gRPC itself ends a call at its
 * deadline with DEADLINE_EXCEEDED).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "buildkit.h"
#include "session.h"

#define PLUCK_SLACK_MS 2000

struct buildkit_rpc {
	grpc_call *call;
	grpc_completion_queue *cq;
	gpr_timespec deadline;
	int timeout_ms;
	grpc_metadata_array initial_md, trailing_md;
	grpc_status_code status;
	grpc_slice details;
	const char *error_string;  /* gRPC's debug text (gpr_free) */
	bool initial_md_asked;     /* RECV_INITIAL_METADATA was started */
	bool status_started;       /* RECV_STATUS_ON_CLIENT under way (tag 2) */
	bool status_done;
	bool ended;                /* the server sent its status */
	struct buildkit_rpc *next; /* in conn->calls */
};

/* ---- protobuf-c on the host's heap -------------------------------------------- */

static void *pb_alloc(void *data, size_t size)
{
	const struct kiln_host *host = data;
	return host->alloc(size ? size : 1);
}

static void pb_free(void *data, void *ptr)
{
	const struct kiln_host *host = data;
	host->free(ptr);
}

void buildkit_allocator(const struct kiln_host *host, ProtobufCAllocator *out)
{
	*out = (ProtobufCAllocator){ .alloc = pb_alloc, .free = pb_free,
				     .allocator_data = (void *)host };
}

static grpc_byte_buffer *pack(const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	grpc_slice s;
	if (len == 0) {
		s = grpc_empty_slice();
	} else {
		s = grpc_slice_malloc(len);
		protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
	}
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return bb;
}

static ProtobufCMessage *unpack(const struct kiln_host *host,
				const ProtobufCMessageDescriptor *type, grpc_byte_buffer *bb)
{
	grpc_byte_buffer_reader r;
	if (!grpc_byte_buffer_reader_init(&r, bb))
		return NULL;
	grpc_slice s = grpc_byte_buffer_reader_readall(&r);
	grpc_byte_buffer_reader_destroy(&r);
	ProtobufCAllocator a;
	buildkit_allocator(host, &a);
	ProtobufCMessage *m = protobuf_c_message_unpack(type, &a, GRPC_SLICE_LENGTH(s),
							GRPC_SLICE_START_PTR(s));
	grpc_slice_unref(s);
	return m;
}

/* ---- session handlers: one request message -------------------------------------- */

grpc_status_code buildkit_recv_request(struct buildkit_session *s,
				       const struct buildkit_pipe *pipe,
				       const ProtobufCMessageDescriptor *type, const char *what,
				       ProtobufCMessage **req, char *details, size_t n)
{
	const uint8_t *in;
	size_t in_len;
	*req = NULL;
	int r = pipe->recv(pipe->ctx, &in, &in_len);
	if (r < 0)
		return GRPC_STATUS_CANCELLED;
	if (r == 0) {
		snprintf(details, n, "%s: no request", what);
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	ProtobufCAllocator a;
	buildkit_allocator(s->host, &a);
	*req = protobuf_c_message_unpack(type, &a, in_len, in);
	if (!*req) {
		snprintf(details, n, "%s: malformed %s", what, type->short_name);
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	return GRPC_STATUS_OK;
}

/* ---- calls ---------------------------------------------------------------------- */

static const char *short_name(const char *method)
{
	const char *s = strrchr(method, '/');
	return s ? s + 1 : method;
}

static struct buildkit_rpc *rpc_new(struct buildkit_conn *conn, const char *method,
				    int timeout_ms)
{
	const struct kiln_host *host = conn->host;
	struct buildkit_rpc *r = host->alloc(sizeof(*r));
	*r = (struct buildkit_rpc){ .timeout_ms = timeout_ms };
	r->cq = grpc_completion_queue_create_for_pluck(NULL);
	r->deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
				   gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
	grpc_slice m = grpc_slice_from_static_string(method);
	r->call = grpc_channel_create_call(conn->channel, NULL, GRPC_PROPAGATE_DEFAULTS, r->cq,
					   m, NULL, r->deadline, NULL);
	grpc_metadata_array_init(&r->initial_md);
	grpc_metadata_array_init(&r->trailing_md);
	r->details = grpc_empty_slice();
	pthread_mutex_lock(&conn->lock);
	r->next = conn->calls;
	conn->calls = r;
	pthread_mutex_unlock(&conn->lock);
	/* cancel() may have run just before the call was listed */
	if (atomic_load(&conn->cancelled))
		grpc_call_cancel(r->call, NULL);
	return r;
}

/* Wait for the batch tagged tag. gRPC completes every batch by the call's
 * deadline; if it somehow does not, cancel the call, which completes it. */
static bool rpc_wait(struct buildkit_rpc *r, void *tag)
{
	gpr_timespec until = gpr_time_add(r->deadline,
					  gpr_time_from_millis(PLUCK_SLACK_MS, GPR_TIMESPAN));
	grpc_event ev = grpc_completion_queue_pluck(r->cq, tag, until, NULL);
	if (ev.type == GRPC_QUEUE_TIMEOUT) {
		grpc_call_cancel(r->call, NULL);
		ev = grpc_completion_queue_pluck(r->cq, tag, gpr_inf_future(GPR_CLOCK_MONOTONIC),
						 NULL);
	}
	return ev.type == GRPC_OP_COMPLETE && ev.success;
}

/* Start RECV_STATUS_ON_CLIENT (tag 2) if it is not under way. */
static void rpc_start_status(struct buildkit_rpc *r)
{
	if (r->status_started)
		return;
	grpc_op op = { .op = GRPC_OP_RECV_STATUS_ON_CLIENT };
	op.data.recv_status_on_client.trailing_metadata = &r->trailing_md;
	op.data.recv_status_on_client.status = &r->status;
	op.data.recv_status_on_client.status_details = &r->details;
	op.data.recv_status_on_client.error_string = &r->error_string;
	if (grpc_call_start_batch(r->call, &op, 1, (void *)2, NULL) == GRPC_CALL_OK) {
		r->status_started = true;
	} else {
		r->status = GRPC_STATUS_INTERNAL;
		r->status_done = true;
	}
}

static void rpc_finish_status(struct buildkit_rpc *r)
{
	rpc_start_status(r);
	if (!r->status_done) {
		rpc_wait(r, (void *)2);
		r->status_done = true;
	}
}

static void rpc_free(struct buildkit_conn *conn, struct buildkit_rpc *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&conn->lock);
	for (struct buildkit_rpc **p = &conn->calls; *p; p = &(*p)->next)
		if (*p == r) {
			*p = r->next;
			break;
		}
	pthread_mutex_unlock(&conn->lock);
	if (r->status_started && !r->status_done) {
		grpc_call_cancel(r->call, NULL);
		rpc_finish_status(r);
	}
	grpc_call_unref(r->call);
	grpc_completion_queue_shutdown(r->cq);
	grpc_completion_queue_destroy(r->cq);
	grpc_metadata_array_destroy(&r->initial_md);
	grpc_metadata_array_destroy(&r->trailing_md);
	grpc_slice_unref(r->details);
	gpr_free((void *)r->error_string);
	conn->host->free(r);
}

void buildkit_cancel_calls(struct buildkit_conn *conn)
{
	pthread_mutex_lock(&conn->lock);
	for (struct buildkit_rpc *r = conn->calls; r; r = r->next)
		grpc_call_cancel(r->call, NULL);
	pthread_mutex_unlock(&conn->lock);
}

/* ---- status -> kiln_err ------------------------------------------------------------ */

static const char *code_name(grpc_status_code c)
{
	static const char *const names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
		"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
		"INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
	};
	return (unsigned)c < sizeof(names) / sizeof(names[0]) ? names[c] : "status?";
}

/* gRPC's words for a failed connection, minus its framing: "failed to
 * connect to all addresses; last error: UNKNOWN: ipv4:h:p: Failed to
 * connect to remote host: Connection refused" -> "ipv4:h:p: Failed …". */
static const char *connect_cause(const char *details)
{
	static const char lead[] = "failed to connect to all addresses; last error: ";
	if (strncmp(details, lead, sizeof(lead) - 1) == 0)
		details += sizeof(lead) - 1;
	if (strncmp(details, "UNKNOWN: ", 9) == 0)
		details += 9;
	else if (strncmp(details, "UNAVAILABLE: ", 13) == 0)
		details += 13;
	return details;
}

/* gRPC's words for a failed TLS connection, as kiln's: the handshake
 * ("Ssl handshake failed: SSL_ERROR_SSL: error:0A000086:SSL routines::
 * certificate verify failed"), the name check ("Peer name N is not in
 * peer certificate"), no HTTP/2 after it ("missing selected ALPN
 * property"), or the server hanging up. Fills why and returns true when
 * details is one of them. */
static bool tls_cause(const struct buildkit_conn *conn, const char *details, char *why,
		      size_t len)
{
	static const char peer[] = "Peer name ";
	const char *p;
	if ((p = strstr(details, "Ssl handshake failed"))) {
		/* OpenSSL's reason is the error string's last field */
		const char *colon = strrchr(p, ':'), *reason = colon ? colon + 1 : p;
		while (*reason == ' ')
			reason++;
		const char *hint = "";
		if (strstr(reason, "wrong version number") || strstr(reason, "packet length too long"))
			hint = " (the server does not speak TLS)";
		else if (strstr(reason, "certificate verify failed"))
			hint = conn->tls_ca ? " (the daemon's certificate is not signed by the "
					      "--tlscacert CA)"
					    : " (the daemon's certificate is not signed by a CA this "
					      "system trusts: give its CA with --tlscacert)";
		else if (strstr(reason, "certificate required"))
			hint = " (the daemon wants a client certificate: --tlscert and --tlskey)";
		else if (strstr(reason, "alert"))
			hint = " (the daemon refused the TLS connection)";
		snprintf(why, len, "TLS handshake failed: %s%s", reason, hint);
		return true;
	}
	if ((p = strstr(details, peer))) {
		const char *name = p + sizeof(peer) - 1, *end = strstr(name, " is not in");
		int nl = end ? (int)(end - name) : (int)strlen(name);
		snprintf(why, len, "TLS: the daemon's certificate is not for %.*s (--tlsservername "
			 "sets the name to check)", nl, name);
		return true;
	}
	if (strstr(details, "missing selected ALPN property")) {
		snprintf(why, len, "TLS handshake done, but the server does not offer HTTP/2 "
			 "(ALPN \"h2\"): not a BuildKit daemon");
		return true;
	}
	if (strstr(details, "empty address list")) {
		/* the subchannel's TLS context could not be made */
		snprintf(why, len, "gRPC refused the TLS settings (kiln --debug workers shows "
			 "why)");
		return true;
	}
	if (strstr(details, "Endpoint read failed") || strstr(details, "Socket closed") ||
	    strstr(details, "Connection reset")) {
		snprintf(why, len, "the server closed the TLS connection%s",
			 conn->tls_client_cert ? "" : " (does the daemon want a client "
			 "certificate? --tlscert and --tlskey)");
		return true;
	}
	return false;
}

static int status_error(struct buildkit_conn *conn, const char *method,
			struct buildkit_rpc *r, struct buildkit_status *st,
			struct kiln_err *err)
{
	const struct kiln_host *host = conn->host;
	char details[512];
	size_t dl = GRPC_SLICE_LENGTH(r->details);
	if (dl >= sizeof(details))
		dl = sizeof(details) - 1;
	memcpy(details, GRPC_SLICE_START_PTR(r->details), dl);
	details[dl] = '\0';
	for (char *p = details; *p; p++) /* one line */
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (!details[0])
		snprintf(details, sizeof(details), "%s", code_name(r->status));
	if (st)
		*st = (struct buildkit_status){ .code = r->status };
	if (st)
		snprintf(st->details, sizeof(st->details), "%s", details);
	if (r->error_string)
		host->log(KILN_LOG_DEBUG, "buildkit: %s: %s: %s", conn->addr, method,
			  r->error_string);
	const char *m = short_name(method);
	/* Something other than gRPC answered (whatever the status says). */
	int http_status = 0;
	const char *h2 = strstr(details, "Received http2 header with status: ");
	if (h2)
		http_status = atoi(h2 + 35);
	if (strstr(details, "http1.x server"))
		return host->error(err, KILN_E_CONNECT, "cannot reach buildkit at %s: it answered "
				   "HTTP/1.x, not gRPC (not a BuildKit daemon)", conn->addr);
	if (http_status && http_status != 200)
		return host->error(err, KILN_E_CONNECT, "cannot reach buildkit at %s: it answered "
				   "HTTP/2 status %d to %s, not gRPC (not a BuildKit daemon)",
				   conn->addr, http_status, m);
	char why[600];
	if (conn->tls && r->status == GRPC_STATUS_UNAVAILABLE &&
	    tls_cause(conn, details, why, sizeof(why)))
		return host->error(err, KILN_E_CONNECT, "cannot reach buildkit at %s: %s",
				   conn->addr, why);
	switch (r->status) {
	case GRPC_STATUS_UNAVAILABLE:
		return host->error(err, KILN_E_CONNECT, "cannot reach buildkit at %s: %s",
				   conn->addr, connect_cause(details));
	case GRPC_STATUS_DEADLINE_EXCEEDED:
		if (strcmp(m, "Info") == 0) /* the connect check */
			return host->error(err, KILN_E_CONNECT, "cannot reach buildkit at %s: "
					   "no gRPC answer within %d s", conn->addr,
					   (r->timeout_ms + 999) / 1000);
		return host->error(err, KILN_E_CONNECT,
				   "buildkit at %s: no answer to %s within %d s", conn->addr, m,
				   (r->timeout_ms + 999) / 1000);
	case GRPC_STATUS_CANCELLED:
		if (atomic_load(&conn->cancelled))
			return host->error(err, KILN_E_CANCELLED, "%s cancelled", m);
		break;
	case GRPC_STATUS_UNIMPLEMENTED:
		return host->error(err, KILN_E_UNSUPPORTED,
				   "buildkit at %s does not implement %s: %s", conn->addr, m,
				   details);
	case GRPC_STATUS_PERMISSION_DENIED:
	case GRPC_STATUS_UNAUTHENTICATED:
		return host->error(err, KILN_E_DENIED, "buildkit at %s: %s: %s", conn->addr,
				   m, details);
	case GRPC_STATUS_INVALID_ARGUMENT:
		return host->error(err, KILN_E_INVALID, "buildkit at %s: %s: %s", conn->addr,
				   m, details);
	case GRPC_STATUS_NOT_FOUND:
		return host->error(err, KILN_E_NOTFOUND, "buildkit at %s: %s: %s", conn->addr,
				   m, details);
	case GRPC_STATUS_UNKNOWN:
		/* BuildKit returns plain Go errors; containerd's errdefs end
		 * a bad request's text with "invalid argument" (e.g. a
		 * filter that does not parse) */
		if (strlen(details) >= 16 &&
		    strcmp(details + strlen(details) - 16, "invalid argument") == 0)
			return host->error(err, KILN_E_INVALID, "buildkit at %s: %s: %s",
					   conn->addr, m, details);
		break;
	default:
		break;
	}
	return host->error(err, KILN_E_PROTOCOL, "buildkit at %s: %s: %s (%s)", conn->addr, m,
			   details, code_name(r->status));
}

static int decode_error(struct buildkit_conn *conn, const char *method,
			const ProtobufCMessageDescriptor *type, struct kiln_err *err)
{
	return conn->host->error(err, KILN_E_PROTOCOL,
				 "buildkit at %s: %s: cannot decode the answer as %s",
				 conn->addr, short_name(method), type->name);
}

/* ---- unary ------------------------------------------------------------------------------ */

int buildkit_unary(struct buildkit_conn *conn, const char *method,
		   const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_type,
		   int timeout_ms, ProtobufCMessage **resp, struct buildkit_status *st,
		   struct kiln_err *err)
{
	const struct kiln_host *host = conn->host;
	*resp = NULL;
	if (atomic_load(&conn->cancelled))
		return host->error(err, KILN_E_CANCELLED, "%s cancelled", short_name(method));
	struct buildkit_rpc *r = rpc_new(conn, method, timeout_ms);
	grpc_byte_buffer *out = pack(req), *in = NULL;
	grpc_op ops[6] = { { .op = GRPC_OP_SEND_INITIAL_METADATA },
			   { .op = GRPC_OP_SEND_MESSAGE },
			   { .op = GRPC_OP_SEND_CLOSE_FROM_CLIENT },
			   { .op = GRPC_OP_RECV_INITIAL_METADATA },
			   { .op = GRPC_OP_RECV_MESSAGE },
			   { .op = GRPC_OP_RECV_STATUS_ON_CLIENT } };
	ops[1].data.send_message.send_message = out;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &r->initial_md;
	ops[4].data.recv_message.recv_message = &in;
	ops[5].data.recv_status_on_client.trailing_metadata = &r->trailing_md;
	ops[5].data.recv_status_on_client.status = &r->status;
	ops[5].data.recv_status_on_client.status_details = &r->details;
	ops[5].data.recv_status_on_client.error_string = &r->error_string;
	int rc = 0;
	grpc_call_error ce = grpc_call_start_batch(r->call, ops, 6, (void *)1, NULL);
	if (ce != GRPC_CALL_OK) {
		rc = host->error(err, KILN_E_PROTOCOL, "buildkit at %s: %s: cannot start the "
				 "call (gRPC call error %d)", conn->addr, short_name(method), ce);
	} else {
		rpc_wait(r, (void *)1); /* status is filled whether or not it "succeeded" */
		if (r->status != GRPC_STATUS_OK)
			rc = status_error(conn, method, r, st, err);
		else if (!in || !(*resp = unpack(host, resp_type, in)))
			rc = decode_error(conn, method, resp_type, err);
	}
	grpc_byte_buffer_destroy(out);
	if (in)
		grpc_byte_buffer_destroy(in);
	rpc_free(conn, r);
	return rc;
}

/* ---- server streams ------------------------------------------------------------------------ */

int buildkit_stream_open(struct buildkit_conn *conn, const char *method,
			 const ProtobufCMessage *req, int timeout_ms,
			 struct buildkit_stream *s, struct kiln_err *err)
{
	const struct kiln_host *host = conn->host;
	*s = (struct buildkit_stream){ .conn = conn, .method = method };
	if (atomic_load(&conn->cancelled))
		return host->error(err, KILN_E_CANCELLED, "%s cancelled", short_name(method));
	struct buildkit_rpc *r = rpc_new(conn, method, timeout_ms);
	s->rpc = r;
	grpc_byte_buffer *out = pack(req);
	grpc_op ops[3] = { { .op = GRPC_OP_SEND_INITIAL_METADATA },
			   { .op = GRPC_OP_SEND_MESSAGE },
			   { .op = GRPC_OP_SEND_CLOSE_FROM_CLIENT } };
	ops[1].data.send_message.send_message = out;
	grpc_call_error ce = grpc_call_start_batch(r->call, ops, 3, (void *)1, NULL);
	int rc = 0;
	if (ce != GRPC_CALL_OK)
		rc = host->error(err, KILN_E_PROTOCOL, "buildkit at %s: %s: cannot start the "
				 "call (gRPC call error %d)", conn->addr, short_name(method), ce);
	else
		rpc_wait(r, (void *)1); /* a failed send shows in the status later */
	grpc_byte_buffer_destroy(out);
	if (rc < 0) {
		rpc_free(conn, r);
		s->rpc = NULL;
		return rc;
	}
	/* the status arrives whenever the server ends the call */
	rpc_start_status(r);
	return 0;
}

int buildkit_stream_next(struct buildkit_stream *s, const ProtobufCMessageDescriptor *type,
			 ProtobufCMessage **msg, struct kiln_err *err)
{
	struct buildkit_conn *conn = s->conn;
	const struct kiln_host *host = conn->host;
	struct buildkit_rpc *r = s->rpc;
	*msg = NULL;
	if (!r || r->ended)
		return 0;
	grpc_byte_buffer *in = NULL;
	grpc_op ops[2];
	size_t n = 0;
	if (!r->initial_md_asked) {
		ops[n++] = (grpc_op){ .op = GRPC_OP_RECV_INITIAL_METADATA,
				      .data.recv_initial_metadata.recv_initial_metadata =
					      &r->initial_md };
		r->initial_md_asked = true;
	}
	ops[n++] = (grpc_op){ .op = GRPC_OP_RECV_MESSAGE, .data.recv_message.recv_message = &in };
	grpc_call_error ce = grpc_call_start_batch(r->call, ops, n, (void *)3, NULL);
	if (ce != GRPC_CALL_OK)
		return host->error(err, KILN_E_PROTOCOL, "buildkit at %s: %s: cannot read "
				   "(gRPC call error %d)", conn->addr, short_name(s->method), ce);
	rpc_wait(r, (void *)3);
	if (in) {
		*msg = unpack(host, type, in);
		grpc_byte_buffer_destroy(in);
		if (!*msg)
			return decode_error(conn, s->method, type, err);
		return 1;
	}
	/* no message: the server ended the call (or it failed) */
	r->ended = true;
	rpc_finish_status(r);
	if (r->status != GRPC_STATUS_OK)
		return status_error(conn, s->method, r, NULL, err);
	return 0;
}

void buildkit_stream_close(struct buildkit_stream *s)
{
	if (s->rpc && !s->rpc->ended)
		grpc_call_cancel(s->rpc->call, NULL);
	rpc_free(s->conn, s->rpc);
	s->rpc = NULL;
}

void buildkit_stream_cancel(struct buildkit_stream *s)
{
	if (s->rpc)
		grpc_call_cancel(s->rpc->call, NULL);
}
