/* util.c: the backend's byte buffer and synthetic vertex digests. */
#include <string.h>

#include <openssl/evp.h>

#include "docker.h"

void docker_buf_add(const struct kiln_host *host, struct docker_buf *b,
		    const void *data, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + len + 1)
			cap *= 2;
		b->p = host->realloc(b->p, cap);
		b->cap = cap;
	}
	if (len)
		memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
}

void docker_buf_adds(const struct kiln_host *host, struct docker_buf *b, const char *s)
{
	docker_buf_add(host, b, s, strlen(s));
}

void docker_buf_consume(struct docker_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->p, b->p + n, b->len - n);
		b->len -= n;
	}
	if (b->p)
		b->p[b->len] = '\0';
}

void docker_buf_release(const struct kiln_host *host, struct docker_buf *b)
{
	host->free(b->p);
	*b = (struct docker_buf){ 0 };
}

/* The classic builder has no vertex digests; kiln makes stable ones from
 * the job, the step and its instruction, so the same step of the same job
 * gets the same digest on every build (renderers and metrics key on it). */
void docker_digest(char out[DOCKER_DIGEST_SIZE], const char *const *parts, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (size_t i = 0; ok && i < n; i++)
		ok = EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]) + 1);
	ok = ok && EVP_DigestFinal_ex(ctx, md, &md_len) && md_len == 32;
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		/* Only on a broken libcrypto: FNV-1a, spread over 32 bytes. */
		uint64_t h = 0xcbf29ce484222325u;
		for (size_t i = 0; i < n; i++)
			for (const char *p = parts[i];; p++) {
				h = (h ^ (unsigned char)*p) * 0x100000001b3u;
				if (!*p)
					break;
			}
		for (int i = 0; i < 32; i++) {
			h = (h ^ (uint64_t)i) * 0x100000001b3u;
			md[i] = (unsigned char)(h >> 56);
		}
	}
	memcpy(out, "sha256:", 7);
	for (int i = 0; i < 32; i++) {
		out[7 + 2 * i] = hex[md[i] >> 4];
		out[8 + 2 * i] = hex[md[i] & 15];
	}
	out[71] = '\0';
}
