/*
 * fuzz_dockercfg: libFuzzer target of the docker config lookup
 * (core/dockercfg.c, `make fuzz-dockercfg`). The input, up to its first
 * NUL, is $DOCKER_CONFIG/config.json; credentials are then asked for three
 * registries (a local one, Docker Hub, ghcr.io). The rest of the input is
 * what the credential helper docker-credential-fuzz prints (a config with
 * "credsStore": "fuzz" or a credHelpers entry "fuzz" runs it; PATH holds
 * only that helper). Checks: the contract of kiln__docker_credentials
 * (0 with a secret, or KILN_E_NOTFOUND with both NULL); no leak.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dockercfg.h"
#include "util.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s\n", #c); __builtin_trap(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char cfg_path[4096], out_path[4096];

static int put(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fwrite(data, 1, n, f);
	return fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char tmpl[] = "/tmp/kiln-fuzz-dockercfg-XXXXXX";
	const char *dir = mkdtemp(tmpl);
	if (!dir)
		return 1;
	snprintf(cfg_path, sizeof(cfg_path), "%s/config.json", dir);
	snprintf(out_path, sizeof(out_path), "%s/helper-out", dir);
	char helper[4096], script[8192];
	snprintf(helper, sizeof(helper), "%s/docker-credential-fuzz", dir);
	snprintf(script, sizeof(script), "#!/bin/sh\nexec /bin/cat '%s'\n", out_path);
	if (put(helper, script, strlen(script)) != 0 || chmod(helper, 0755) != 0)
		return 1;
	setenv("DOCKER_CONFIG", dir, 1);
	setenv("PATH", dir, 1);
	kiln__log_level = KILN_LOG_ERROR; /* warnings about bad configs are expected */
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t clen = nul ? (size_t)(nul - data) : size;
	if (put(cfg_path, data, clen) != 0)
		return 0;
	if (nul)
		put(out_path, nul + 1, size - clen - 1);
	else
		put(out_path, "", 0);
	static const char *const regs[] = { "127.0.0.1:5000", "docker.io", "ghcr.io" };
	for (size_t i = 0; i < 3; i++) {
		char *user = (char *)1, *secret = (char *)1;
		int rc = kiln__docker_credentials(regs[i], &user, &secret);
		if (rc == 0) {
			CHECK(secret != NULL);
		} else {
			CHECK(rc == KILN_E_NOTFOUND && user == NULL && secret == NULL);
		}
		kiln__creds_free(user, secret);
	}
	return 0;
}
