/* tests/apk/mkapk: a command line over plugins/frontend-melange/apk.c for
 * tests/apk/run.sh.
 *   mkapk [-k KEY] [-1] [-r] [-d DEP]... [-p PROVIDES]... TREE OUTDIR NAME VERSION EPOCH ARCH
 *   mkapk --index [-k KEY] [-1] DIR [DESCRIPTION]
 * -1: sign with SHA-1 (.SIGN.RSA.) instead of SHA-256; -r: root:root owners.
 * SOURCE_DATE_EPOCH, when set, is the builddate. Prints the .apk path and
 * the sizes of its signature, control and data members. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/frontend-melange/apk.h"

static int usage(void)
{
	fprintf(stderr, "usage: mkapk [-k KEY] [-1] [-r] [-d DEP]... [-p PROV]... "
			"TREE OUTDIR NAME VERSION EPOCH ARCH\n"
			"       mkapk --index [-k KEY] [-1] DIR [DESCRIPTION]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct apk_key key = { 0 };
	struct apk_options o = { 0 };
	const char *deps[32], *provs[32];
	size_t nd = 0, np = 0;
	int index = 0, i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--index") == 0)
			index = 1;
		else if (strcmp(a, "-1") == 0)
			key.hash = APK_SIG_SHA1;
		else if (strcmp(a, "-r") == 0)
			o.root_owner = true;
		else if (strcmp(a, "-k") == 0 && i + 1 < argc)
			key.path = argv[++i];
		else if (strcmp(a, "-d") == 0 && i + 1 < argc && nd < 32)
			deps[nd++] = argv[++i];
		else if (strcmp(a, "-p") == 0 && i + 1 < argc && np < 32)
			provs[np++] = argv[++i];
		else
			return usage();
	}
	struct kiln_err err = { 0 };
	if (index) {
		if (argc - i < 1 || argc - i > 2)
			return usage();
		size_t n = 0;
		if (apk_index_write(argv[i], argc - i == 2 ? argv[i + 1] : NULL,
				    key.path ? &key : NULL, &n, &err) < 0) {
			fprintf(stderr, "mkapk: %s\n", err.msg);
			return 1;
		}
		printf("%s/APKINDEX.tar.gz %zu\n", argv[i], n);
		return 0;
	}
	if (argc - i != 6)
		return usage();
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	struct apk_meta m = {
		.name = argv[i + 2], .version = argv[i + 3],
		.epoch = (unsigned)strtoul(argv[i + 4], NULL, 10), .arch = argv[i + 5],
		.description = "made by tests/apk/mkapk", .url = "https://example.org/",
		.commit = "0000000000000000000000000000000000000000",
		.builddate = sde ? strtoull(sde, NULL, 10) : 0,
		.depends = deps, .n_depends = nd, .provides = provs, .n_provides = np,
	};
	static const char *const lic[] = { "MIT" };
	m.licenses = lic;
	m.n_licenses = 1;
	o.key = key.path ? &key : NULL;
	struct apk_result res;
	if (apk_write(argv[i], argv[i + 1], &m, &o, &res, &err) < 0) {
		fprintf(stderr, "mkapk: %s\n", err.msg);
		return 1;
	}
	printf("%s %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", res.path, res.sig_len,
	       res.control_len, res.data_len);
	return 0;
}
