/*
 * auth.c: the session's Auth/Credentials (BUILDKIT-WIRE.md section 9): the
 * daemon asks for a registry host's credentials when the registry answers
 * 401, and kiln answers with the host table's registry_credentials (the
 * core's lookup in the docker CLI's config, as buildx answers through
 * BuildKit's authprovider; plugin.h has the rules).
 *
 * None found means anonymous: an empty answer with OK, which the daemon
 * reads as "no credentials", so a public image still builds. An identity
 * token goes out as the Secret with no Username, as BuildKit sends it. A
 * core without registry_credentials (older than this plugin) gets a
 * warning and anonymous answers. No credential ever reaches a log line or
 * an error, and every buffer that held one is zeroed before it is freed.
 */
#include <string.h>

#include "auth.pb-c.h"
#include "buildkit.h"
#include "session.h"

static void wipe_free(const struct kiln_host *host, char *p)
{
	if (p) {
		explicit_bzero(p, strlen(p));
		host->free(p);
	}
}

/* The credentials for reg into *username and *secret (host heap strings,
 * or NULL for anonymous). */
static void lookup(const struct kiln_host *host, const char *reg, char **username,
		   char **secret)
{
	*username = *secret = NULL;
	if (!KILN_HAS_FIELD(host, struct kiln_host, registry_credentials) ||
	    !host->registry_credentials) {
		host->log(KILN_LOG_WARN, "buildkit: this kiln cannot look up registry "
			  "credentials (a core older than the plugin); using none for %s", reg);
		return;
	}
	if (host->registry_credentials(reg, username, secret) != 0) {
		/* both are NULL by contract; be safe with a host that differs */
		wipe_free(host, *username);
		wipe_free(host, *secret);
		*username = *secret = NULL;
	}
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
	char *user = NULL, *secret = NULL;
	if (*req->host)
		lookup(host, req->host, &user, &secret);

	Moby__Filesync__V1__CredentialsResponse resp =
		MOBY__FILESYNC__V1__CREDENTIALS_RESPONSE__INIT;
	if (user)
		resp.username = user;
	if (secret)
		resp.secret = secret;
	size_t plen = protobuf_c_message_get_packed_size(&resp.base);
	uint8_t *packed = host->alloc(plen ? plen : 1);
	protobuf_c_message_pack(&resp.base, packed);
	grpc_status_code code = pipe->send(pipe->ctx, packed, plen) < 0 ? GRPC_STATUS_CANCELLED
									 : GRPC_STATUS_OK;
	explicit_bzero(packed, plen);
	host->free(packed);
	wipe_free(host, user);
	wipe_free(host, secret);
	moby__filesync__v1__credentials_request__free_unpacked(req, &a);
	return code;
}
