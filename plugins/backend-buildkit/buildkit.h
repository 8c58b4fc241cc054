/*
 * buildkit.h: the parts of the `buildkit` backend (BuildKit's gRPC API,
 * spoken from C with gRPC core's generic call API and protobuf-c).
 *
 *   backend.c    the vtable: probe, connect / connect_opts (TLS; Info),
 *                solve, cancel
 *   addr.c       engine addresses (unix://, tcp://, docker-unix://, docker://)
 *   transport.c  gRPC channels: buildkitd's unix:// and tcp:// (plain or
 *                TLS), dockerd's POST /grpc upgraded to h2c (docker-unix://)
 *   rpc.c        unary and server-streaming calls with deadlines; gRPC
 *                status -> struct kiln_err
 *   control.c    Control.ListWorkers, DiskUsage, Prune -> kiln's records
 *
 * Wire facts: ../shared/docs/BUILDKIT-WIRE.md. Private to this plugin:
 * names are buildkit_* (hidden symbols).
 */
#ifndef KILN_BACKEND_BUILDKIT_H
#define KILN_BACKEND_BUILDKIT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#include <kiln/kiln.h>

/* Deadlines, in milliseconds. Every call has one: an engine that stops
 * answering ends the command, it never hangs it. */
#define BUILDKIT_CONNECT_MS 4000          /* connect: socket, h2c upgrade, Info */
#define BUILDKIT_UNARY_MS 5000            /* Info, ListWorkers */
#define BUILDKIT_DU_MS (2 * 60 * 1000)    /* DiskUsage sizes every record */
#define BUILDKIT_PRUNE_MS (30 * 60 * 1000) /* Prune deletes as it streams */

/* Messages the daemon may send us; BuildKit's Go client allows 16 MiB. */
#define BUILDKIT_MAX_RECV (64 * 1024 * 1024)

/* gRPC method paths: "/" package "." service "/" method. */
#define BUILDKIT_CONTROL "/moby.buildkit.v1.Control/"
#define BUILDKIT_M_INFO BUILDKIT_CONTROL "Info"
#define BUILDKIT_M_LIST_WORKERS BUILDKIT_CONTROL "ListWorkers"
#define BUILDKIT_M_DISK_USAGE BUILDKIT_CONTROL "DiskUsage"
#define BUILDKIT_M_PRUNE BUILDKIT_CONTROL "Prune"
#define BUILDKIT_M_SOLVE BUILDKIT_CONTROL "Solve"
#define BUILDKIT_M_STATUS BUILDKIT_CONTROL "Status"

/* ---- addr.c ------------------------------------------------------------------ */

enum buildkit_transport {
	BUILDKIT_UNIX,   /* standalone buildkitd on a unix socket */
	BUILDKIT_TCP,    /* standalone buildkitd over TCP */
	BUILDKIT_DOCKER, /* the BuildKit inside dockerd: POST /grpc, h2c */
};

/* A parsed engine address. */
struct buildkit_addr {
	enum buildkit_transport transport;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* unix, docker */
	char target[300]; /* tcp: the gRPC target, "ipv4:h:p" or "dns:///h:p" */
	char host[256];   /* tcp: the host, without [] (the default TLS server name) */
};

/* Parse addr ("unix:///p", "tcp://h:p", "docker-unix:///p", "docker://").
 * Returns 0, or KILN_E_INVALID naming the address. */
int buildkit_addr_parse(const struct kiln_host *host, const char *addr,
			struct buildkit_addr *out, struct kiln_err *err);

/* Monotonic clock in milliseconds (transport.c). */
int64_t buildkit_now_ms(void);

/* ---- TLS for tcp:// (transport.c) ------------------------------------------- */

/* buildctl's --tls* flags, read: PEM text, NUL-terminated, host->alloc'd. */
struct buildkit_tls {
	char *ca_pem;          /* roots to verify the daemon; NULL: the system's */
	char *cert_pem;        /* client certificate, or NULL */
	char *key_pem;         /* its private key (with cert_pem), or NULL */
	char server_name[256]; /* the name the daemon's certificate must carry */
};

/* Read the PEM files opts names for a connection to where (a tcp://
 * address; server name: opts->tls_server_name, else where->host).
 * Returns 0; KILN_E_NOTFOUND, KILN_E_IO or KILN_E_INVALID (not PEM, a
 * certificate without its key) naming the file. */
int buildkit_tls_load(const struct kiln_host *host, const struct kiln_connect_opts *opts,
		      const struct buildkit_addr *where, struct buildkit_tls **out,
		      struct kiln_err *err);
/* Wipe the key and free; NULL is fine. */
void buildkit_tls_free(const struct kiln_host *host, struct buildkit_tls *tls);

/* ---- the connection (backend.c, transport.c) -------------------------------- */

struct buildkit_rpc;

struct buildkit_conn {
	const struct kiln_host *host;
	char *addr;                  /* as given, for messages */
	struct buildkit_addr where;
	struct buildkit_tls *tls_pem; /* tcp:// with TLS, until dialled; NULL: plain */
	/* TLS as dialled, for messages: on, with a CA file, with a client
	 * certificate. */
	bool tls, tls_ca, tls_client_cert;
	grpc_channel *channel;
	/* From Control.Info: "v0.11.6", or "" when the daemon has no Info
	 * (BuildKit before v0.11, e.g. v0.8 in dockerd 20.10). */
	char version[64];
	/* The feature set to speak: false = v0.8's (no Info, no history, no
	 * newer caps or ops; see BUILDKIT-WIRE.md section 10). */
	bool v011;
	bool http_answered;          /* the socket answered HTTP/1.x (dial) */
	atomic_bool cancelled;
	pthread_mutex_t lock;        /* guards calls */
	struct buildkit_rpc *calls;  /* calls under way, for cancel() */
};

/* Make conn->channel for conn->where: connect the socket (and upgrade it
 * to h2c on dockerd) by deadline (monotonic ms, buildkit_now_ms()).
 * Returns 0, or KILN_E_CONNECT with one line naming the address. */
int buildkit_dial(struct buildkit_conn *conn, int64_t deadline, struct kiln_err *err);

struct buildkit_session;
/* dockerd: open a session socket with POST /session (Upgrade: h2c, the
 * X-Docker-Expose-Session-* headers of s); *fd is then served by kiln's
 * gRPC server (BUILDKIT-WIRE.md 7.5). 0 or KILN_E_CONNECT. */
int buildkit_docker_session(struct buildkit_conn *conn, const struct buildkit_session *s,
			    int64_t deadline, int *fd, struct kiln_err *err);

/* ---- rpc.c ------------------------------------------------------------------ */

/* A protobuf-c allocator on host->alloc/free. */
void buildkit_allocator(const struct kiln_host *host, ProtobufCAllocator *out);

/* What a failed call says: its gRPC status and details. */
struct buildkit_status {
	grpc_status_code code;
	char details[512];
};

/* Call unary method with req; on success *resp is the decoded answer (free
 * with protobuf_c_message_free_unpacked and buildkit_allocator()). On
 * failure fills *err ("buildkit at ADDR: Method: details") and, when st is
 * not NULL, *st. */
int buildkit_unary(struct buildkit_conn *conn, const char *method,
		   const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_type,
		   int timeout_ms, ProtobufCMessage **resp, struct buildkit_status *st,
		   struct kiln_err *err);

/* A server-streaming call. */
struct buildkit_stream {
	struct buildkit_conn *conn;
	const char *method;
	struct buildkit_rpc *rpc;
};

/* Send req and half-close. Returns 0 or a negative code. */
int buildkit_stream_open(struct buildkit_conn *conn, const char *method,
			 const ProtobufCMessage *req, int timeout_ms,
			 struct buildkit_stream *s, struct kiln_err *err);
/* The next message: 1 and *msg (free as for buildkit_unary), 0 at the end
 * of a stream that ended OK, or a negative code. */
int buildkit_stream_next(struct buildkit_stream *s, const ProtobufCMessageDescriptor *type,
			 ProtobufCMessage **msg, struct kiln_err *err);
/* Cancel if still open and free. */
void buildkit_stream_close(struct buildkit_stream *s);
/* Cancel the call from another thread; the reader's next() then ends. */
void buildkit_stream_cancel(struct buildkit_stream *s);

/* Cancel every call under way on conn (thread-safe). */
void buildkit_cancel_calls(struct buildkit_conn *conn);

/* ---- control.c ---------------------------------------------------------------- */

/* Control.Info within timeout_ms: fills conn->version and conn->v011.
 * UNIMPLEMENTED means BuildKit before v0.11 (dockerd 20.10's v0.8).
 * Doubles as the check that a BuildKit daemon answers at all. On failure
 * *st (if not NULL) holds the gRPC status. */
int buildkit_info(struct buildkit_conn *conn, int timeout_ms, struct buildkit_status *st,
		  struct kiln_err *err);

int buildkit_workers(void *conn, struct kiln_arena *arena, struct kiln_worker **out,
		     size_t *n, struct kiln_err *err);
int buildkit_disk_usage(void *conn, const char *const *filters, size_t n_filters,
			struct kiln_arena *arena, struct kiln_usage_record **out,
			size_t *n, struct kiln_err *err);
int buildkit_prune(void *conn, const struct kiln_prune_opts *opts, kiln_prune_cb cb,
		   void *ctx, struct kiln_err *err);

/* ---- csv.c ------------------------------------------------------------------------- */

/* Split spec into CSV fields as Go's encoding/csv reads one record: ","
 * separates, a field that starts with '"' is quoted ("" is a quote), a
 * quote inside an unquoted field is an error. *out is a heap array of
 * heap strings (free each and the array with host->free); returns the
 * count, or -1 with *why (a static string) set. */
long buildkit_csv_fields(const struct kiln_host *host, const char *spec, char ***out,
			 const char **why);

/* ---- solve.c ------------------------------------------------------------------------ */

/* The backend's solve(): session, Status -> events, Solve, export. */
int buildkit_solve(void *conn, const struct kiln_solve *req, struct kiln_solve_result *res,
		   struct kiln_err *err);
/* One Control.Status message m (as the daemon sent it, unpacked) -> the
 * job's vertex, status, log and warning events, emitted to req->bus. m
 * stays the caller's. (Not static so that tests/fuzz/fuzz_solvestatus.c
 * can feed it a hostile daemon's replies.) */
struct Moby__Buildkit__V1__StatusResponse;
void buildkit_status_emit(const struct kiln_host *host, const struct kiln_solve *req,
			  const struct Moby__Buildkit__V1__StatusResponse *m);

#endif
