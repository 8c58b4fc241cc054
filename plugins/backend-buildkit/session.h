/*
 * session.h: kiln's side of a BuildKit session (BUILDKIT-WIRE.md section
 * 7). kiln is the gRPC *server*; the daemon calls the session services:
 *
 *   session.c   the server: accepts calls over either tunnel (dockerd's
 *               POST /session hijack, or Control.Session for buildkitd),
 *               runs every call on its own thread so Health/Check is
 *               answered promptly while files move; unknown methods get
 *               UNIMPLEMENTED at once
 *   fsutil.c    FileSync/DiffCopy sender (build context upload) and the
 *               FileSend/DiffCopy receivers (local, tar/oci/docker exports)
 *   secrets.c   Secrets/GetSecret from --secret
 *   sshfwd.c    SSH/CheckAgent and SSH/ForwardAgent from --ssh
 *   auth.c      Auth/Credentials from host->registry_credentials
 *               (the docker CLI's config.json)
 *
 * Every handler runs on its own thread and talks to its call through a
 * struct buildkit_pipe: blocking, one message at a time.
 */
#ifndef KILN_BUILDKIT_SESSION_H
#define KILN_BUILDKIT_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#include <kiln/kiln.h>

/* Messages kiln sends must stay under the daemon's 4 MiB receive limit. */
#define BUILDKIT_MAX_SEND (4 * 1024 * 1024 - 64 * 1024)

/* One side of a streaming call, seen as a blocking message pipe. Used by
 * the handlers, and by unit tests that replay a recorded exchange. */
struct buildkit_pipe {
	void *ctx;
	/* The next message: 1 with *data and *len valid until the next recv (len
	 * may be 0: a zero-length message is not end-of-stream), 0 when the
	 * peer half-closed, <0 when the call failed or was cancelled. */
	int (*recv)(void *ctx, const uint8_t **data, size_t *len);
	/* Send one message (len <= BUILDKIT_MAX_SEND). 0, or <0 when the
	 * call is gone. */
	int (*send)(void *ctx, const void *data, size_t len);
	/* No "buffer this one" variant: gRPC core completes a send made with
	 * GRPC_WRITE_BUFFER_HINT only once something flushes it, and a call
	 * has one send in flight, so the sender would wait for the daemon's
	 * next unrelated write (its health check, once a second). */
};

/* ---- what the session serves (filled by solve before the session starts) -- */

/* --secret id=x,src=file | id=x,env=VAR (secrets.c parses). */
struct buildkit_secret {
	char *id;
	char *src;  /* file path, or NULL */
	char *env;  /* environment variable, or NULL */
};

/* --ssh default | id=path[,path…] (sshfwd.c parses). */
struct buildkit_ssh {
	char *id;       /* "default" when none was given */
	char **sockets; /* agent socket paths ($SSH_AUTH_SOCK for a bare id) */
	size_t n_sockets;
};

/* Where a FileSend export goes (fsutil.c receives). */
enum buildkit_export_mode {
	BUILDKIT_EXPORT_NONE,
	BUILDKIT_EXPORT_PACKETS, /* `local`: fsutil packets into a directory */
	BUILDKIT_EXPORT_RAW,     /* `tar`, `oci`, `docker`: raw bytes into a file */
};

struct buildkit_export {
	enum buildkit_export_mode mode;
	char *dest;      /* directory (PACKETS) or file (RAW); "-" = stdout (RAW) */
	char *tmp;       /* the temp sibling written while the export runs */
	bool received;   /* the daemon finished sending it */
	bool failed;     /* kiln's side failed (why says how; set before the flag) */
	char why[512];   /* e.g. "export to DEST: write f: No space left on device" */
};

struct buildkit_session {
	const struct kiln_host *host;
	/* Identity (section 7.1): printable ASCII, no ':' in id. */
	char id[32];
	char name[64];
	char sharedkey[128];
	/* FileSync: the only directories served, by local name ("context",
	 * "dockerfile", …) -> absolute path. */
	const struct kiln_kv *dirs;
	size_t n_dirs;
	/* FileSend. */
	struct buildkit_export export_;
	/* Secrets, SSH. */
	struct buildkit_secret *secrets;
	size_t n_secrets;
	struct buildkit_ssh *ssh;
	size_t n_ssh;
	/* Where warnings go (may be NULL in unit tests). */
	struct kiln_bus *bus;
	const struct kiln_job *job;
	/* The server (session.c). */
	struct buildkit_server *server;
};

/* ---- the server (session.c) ---------------------------------------------- */

struct buildkit_conn;

/* How the daemon reaches kiln's server (BUILDKIT-WIRE.md 7.3, 7.5). */
enum buildkit_tunnel {
	BUILDKIT_TUNNEL_HIJACK,  /* dockerd: POST /session on a new socket */
	BUILDKIT_TUNNEL_CONTROL, /* buildkitd (and dockerd): Control.Session */
};

/* n-1 random base36 characters and a NUL into out (Go's identity.NewID
 * is 25 of them: n = 26). */
void buildkit_random_id(char *out, size_t n);
/* Fill s->id (25 random base36 chars), s->name and s->sharedkey (made
 * printable ASCII; no ':' in the name). */
void buildkit_session_identity(struct buildkit_session *s, const char *name,
			       const char *sharedkey);
/* Start serving s over a tunnel of kind on conn. Returns 0, or
 * KILN_E_CONNECT / KILN_E_IO naming the address. */
int buildkit_session_start(struct buildkit_conn *conn, struct buildkit_session *s,
			   enum buildkit_tunnel kind, struct kiln_err *err);
/* Close the tunnel, cancel calls still running, wait for their threads
 * and free the server. Safe when the session never started. */
void buildkit_session_stop(struct buildkit_session *s);

/* ---- a call the daemon made (session.c) --------------------------------- */

struct buildkit_scall;

/* The request metadata values for key (lowercase), in order: stores up to
 * max pointers (valid for the call) and returns how many there are. */
size_t buildkit_scall_md(const struct buildkit_scall *c, const char *key, const char **vals,
			 size_t max);

/* A handler serves one call on its own thread: it reads and writes through
 * pipe and returns the gRPC status to end the call with; details (up to
 * n bytes, NUL-terminated) explain a non-OK status. */
typedef grpc_status_code buildkit_handler_fn(struct buildkit_session *s,
					     struct buildkit_scall *c,
					     const struct buildkit_pipe *pipe, char *details,
					     size_t n);

/* For unary handlers: receive the one request message and decode it as
 * type into *req (free with protobuf_c_message_free_unpacked and
 * buildkit_allocator()). Returns GRPC_STATUS_OK, or the status to end the
 * call with (details filled, naming what, e.g. "GetSecret"). */
grpc_status_code buildkit_recv_request(struct buildkit_session *s,
				       const struct buildkit_pipe *pipe,
				       const ProtobufCMessageDescriptor *type, const char *what,
				       ProtobufCMessage **req, char *details, size_t n);

/* The method paths kiln declares to the daemon (x-docker-expose-session-
 * grpc-method), NULL-terminated, for this session's configuration. */
const char *const *buildkit_session_methods(const struct buildkit_session *s);

/* ---- handlers (fsutil.c, secrets.c, sshfwd.c, auth.c) ---------------------- */

buildkit_handler_fn buildkit_filesync_diffcopy; /* /moby.filesync.v1.FileSync/DiffCopy */
buildkit_handler_fn buildkit_filesend_diffcopy; /* /moby.filesync.v1.FileSend/DiffCopy */
buildkit_handler_fn buildkit_secrets_get;       /* /moby.buildkit.secrets.v1.Secrets/GetSecret */
buildkit_handler_fn buildkit_ssh_check;         /* /moby.sshforward.v1.SSH/CheckAgent */
buildkit_handler_fn buildkit_ssh_forward;       /* /moby.sshforward.v1.SSH/ForwardAgent */
buildkit_handler_fn buildkit_auth_credentials;  /* /moby.filesync.v1.Auth/Credentials */

/* ---- options -> session configuration ------------------------------------- */

/* Parse --secret specs into s->secrets (buildx's forms: "id=x,src=path",
 * "id=x,env=VAR", "type=file|env", bare "id" = env or file named so). A
 * bad spec, a missing file or an unset variable fails now, before any
 * daemon is contacted: KILN_E_INVALID / KILN_E_NOTFOUND naming the spec. */
int buildkit_secrets_parse(struct buildkit_session *s, const char *const *specs, size_t n,
			   struct kiln_err *err);
/* Parse --ssh specs ("default", "id", "id=sock[,sock]") into s->ssh; a
 * bare id uses $SSH_AUTH_SOCK (KILN_E_INVALID if unset). */
int buildkit_ssh_parse(struct buildkit_session *s, const char *const *specs, size_t n,
		       struct kiln_err *err);

/* Exports: make the temp sibling before the solve; commit renames it over
 * dest after a successful solve (replacing an existing directory or file
 * only then); abort removes it and frees s->export_'s strings (commit
 * frees them too). Both are safe to call when there is no export. s->
 * export_.mode and .dest (heap, host->alloc) are set by the solve. */
int buildkit_export_prepare(struct buildkit_session *s, struct kiln_err *err);
int buildkit_export_commit(struct buildkit_session *s, struct kiln_err *err);
void buildkit_export_abort(struct buildkit_session *s);

/* Free what the parse functions allocated (s->secrets, s->ssh). */
void buildkit_secrets_free(struct buildkit_session *s);
void buildkit_ssh_free(struct buildkit_session *s);

#endif
