/* dockercfg.h: registry credentials from the docker CLI's config file, for
 * the core's registry client and, through kiln_host.registry_credentials,
 * for backends (BuildKit's session Auth service, Docker's X-Registry-Auth).
 * Internal (kiln__ prefix); dockercfg.c describes the lookup. */
#ifndef KILN_CORE_DOCKERCFG_H
#define KILN_CORE_DOCKERCFG_H

/* Credentials for registry host REG ("127.0.0.1:5000", "docker.io",
 * "ghcr.io"), from $DOCKER_CONFIG/config.json else ~/.docker/config.json:
 * credHelpers, credsStore, auths (as buildx does, incl. Docker Hub's key).
 * *username and *secret are malloc'd (free with kiln__creds_free, which
 * wipes them); *username is NULL for an identity token. Returns 0 when
 * found, KILN_E_NOTFOUND when anonymous (nothing configured, or a
 * config/helper failure, which is logged as a warning).
 *
 * In detail: on 0, *secret is never NULL (it may be "": an auths entry
 * with a username and no password) and *username is NULL only for an
 * identity token (else a string, possibly ""). On KILN_E_NOTFOUND both are
 * set to NULL. reg NULL or "" is KILN_E_NOTFOUND. No credential ever
 * reaches a log line. Thread-safe (reads the environment, never changes
 * it); may wait up to 10 s for a credential helper. */
int kiln__docker_credentials(const char *reg, char **username, char **secret);

/* Zero and free what kiln__docker_credentials gave; NULLs are fine. */
void kiln__creds_free(char *username, char *secret);

#endif
