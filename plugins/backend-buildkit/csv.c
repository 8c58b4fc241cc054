/*
 * csv.c: one CSV record of "key=value" fields, as buildx reads the values
 * of -o, --secret, --cache-from and --cache-to (Go's encoding/csv).
 */
#include <string.h>

#include "buildkit.h"

long buildkit_csv_fields(const struct kiln_host *host, const char *spec, char ***out,
			 const char **why)
{
	size_t len = strlen(spec), cap = 4, n = 0;
	char **f = host->alloc(cap * sizeof(char *));
	char *buf = host->alloc(len + 1);
	const char *p = spec;
	for (;;) {
		size_t b = 0;
		if (*p == '"') {
			p++;
			for (;;) {
				if (!*p) {
					*why = "unterminated quote";
					goto fail;
				}
				if (*p == '"' && p[1] == '"') {
					buf[b++] = '"';
					p += 2;
				} else if (*p == '"') {
					p++;
					break;
				} else {
					buf[b++] = *p++;
				}
			}
			if (*p && *p != ',') {
				*why = "extraneous text after a closing quote";
				goto fail;
			}
		} else {
			while (*p && *p != ',') {
				if (*p == '"') {
					*why = "a quote inside an unquoted field";
					goto fail;
				}
				buf[b++] = *p++;
			}
		}
		if (n == cap) {
			cap *= 2;
			f = host->realloc(f, cap * sizeof(char *));
		}
		f[n] = host->alloc(b + 1);
		memcpy(f[n], buf, b);
		f[n++][b] = '\0';
		if (!*p)
			break;
		p++; /* the comma */
	}
	host->free(buf);
	*out = f;
	return (long)n;
fail:
	for (size_t i = 0; i < n; i++)
		host->free(f[i]);
	host->free(f);
	host->free(buf);
	return -1;
}
