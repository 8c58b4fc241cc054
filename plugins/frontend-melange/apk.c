/*
 * apk.c: apk v2 packages and APKINDEX.tar.gz (see apk.h for the layout).
 *
 * Why not libarchive's tar writer: every data entry needs the pax record
 * APK-TOOLS.checksum.SHA1, and libarchive has no way to add a pax keyword
 * of one's own; nor does its gzip filter tell where one member ends when
 * reading. So the ustar/pax headers are made here (a few octal fields),
 * zlib deflates/inflates each member, libcrypto hashes and signs, and
 * libarchive reads the control tar back when indexing.
 *
 * Private to the melange frontend: names are apk_* (hidden symbols).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <zlib.h>

#include "kiln/common.h"
#include "apk.h"

#define CHUNK (64 * 1024)
#define MAX_CONTROL (16u << 20) /* signature + control members, when indexing */

static int fail(struct kiln_err *err, int code, const char *fmt, ...) KILN_PRINTF(3, 4);
static int fail(struct kiln_err *err, int code, const char *fmt, ...)
{
	if (!err)
		return code;
	va_list ap;
	va_start(ap, fmt);
	memset(err, 0, sizeof(*err));
	err->code = code;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	for (char *p = err->msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return code;
}

static int io_fail(struct kiln_err *err, const char *what, const char *path)
{
	int e = errno;
	return fail(err, e == ENOENT ? KILN_E_NOTFOUND : KILN_E_IO, "apk: %s %s: %s",
		    what, path, strerror(e));
}

/* ---- a byte buffer ---------------------------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void buf_add(struct buf *b, const void *d, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, d, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void buf_addf(struct buf *b, const char *fmt, ...) KILN_PRINTF(2, 3);
static void buf_addf(struct buf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		buf_add(b, small, (size_t)n);
		return;
	}
	char *big = malloc((size_t)n + 1);
	if (!big) {
		b->oom = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	buf_add(b, big, (size_t)n);
	free(big);
}

static void buf_release(struct buf *b)
{
	free(b->p);
	*b = (struct buf){ 0 };
}

/* ---- hashing helpers (libcrypto) ----------------------------------------- */

static void hex(char *out, const unsigned char *d, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[2 * n] = '\0';
}

/* "Q1" + base64 of a SHA-1 digest (apk's identity form): 30 chars + NUL. */
static void identity(char out[31], const unsigned char sha1[20])
{
	out[0] = 'Q';
	out[1] = '1';
	EVP_EncodeBlock((unsigned char *)out + 2, sha1, 20);
}

/* ---- a gzip member (zlib) whose compressed bytes are hashed ------------- */

struct gz {
	z_stream z;
	bool started;
	int fd;              /* output file, or -1 */
	struct buf *mem;     /* output buffer when fd < 0 */
	const char *what;    /* for messages */
	EVP_MD_CTX *sha1, *sha256;
	uint64_t len;        /* compressed bytes out */
	unsigned char dsha1[20], dsha256[32];
	unsigned char out[CHUNK];
};

static int gz_emit(struct gz *g, const unsigned char *p, size_t n, struct kiln_err *err)
{
	if (EVP_DigestUpdate(g->sha1, p, n) != 1 || EVP_DigestUpdate(g->sha256, p, n) != 1)
		return fail(err, KILN_E_IO, "apk: hashing %s failed", g->what);
	g->len += n;
	if (g->fd < 0) {
		buf_add(g->mem, p, n);
		return g->mem->oom ? fail(err, KILN_E_NOMEM, "apk: out of memory") : 0;
	}
	while (n > 0) {
		ssize_t w = write(g->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return io_fail(err, "writing", g->what);
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int gz_begin(struct gz *g, int fd, struct buf *mem, const char *what, struct kiln_err *err)
{
	memset(&g->z, 0, sizeof(g->z));
	g->fd = fd;
	g->mem = mem;
	g->what = what;
	g->len = 0;
	g->sha1 = EVP_MD_CTX_new();
	g->sha256 = EVP_MD_CTX_new();
	if (!g->sha1 || !g->sha256 || EVP_DigestInit_ex(g->sha1, EVP_sha1(), NULL) != 1 ||
	    EVP_DigestInit_ex(g->sha256, EVP_sha256(), NULL) != 1)
		return fail(err, KILN_E_NOMEM, "apk: cannot start a digest");
	/* windowBits 15 + 16: a gzip wrapper with mtime 0 and no name. */
	if (deflateInit2(&g->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return fail(err, KILN_E_NOMEM, "apk: cannot start zlib");
	g->started = true;
	return 0;
}

static int gz_run(struct gz *g, const void *p, size_t n, int flush, struct kiln_err *err)
{
	g->z.next_in = (unsigned char *)(uintptr_t)p;
	g->z.avail_in = (uInt)n;
	for (;;) {
		g->z.next_out = g->out;
		g->z.avail_out = sizeof(g->out);
		int zr = deflate(&g->z, flush);
		if (zr == Z_STREAM_ERROR)
			return fail(err, KILN_E_IO, "apk: zlib failed on %s", g->what);
		size_t have = sizeof(g->out) - g->z.avail_out;
		if (have) {
			int rc = gz_emit(g, g->out, have, err);
			if (rc < 0)
				return rc;
		}
		if (flush == Z_FINISH ? zr == Z_STREAM_END : (g->z.avail_in == 0 && g->z.avail_out != 0))
			return 0;
	}
}

static int gz_write(struct gz *g, const void *p, size_t n, struct kiln_err *err)
{
	/* avail_in is an unsigned int: feed large writes in pieces */
	const char *c = p;
	while (n > 0) {
		size_t k = n > (1u << 30) ? (1u << 30) : n;
		int rc = gz_run(g, c, k, Z_NO_FLUSH, err);
		if (rc < 0)
			return rc;
		c += k;
		n -= k;
	}
	return 0;
}

static int gz_finish(struct gz *g, struct kiln_err *err)
{
	int rc = gz_run(g, NULL, 0, Z_FINISH, err);
	if (rc < 0)
		return rc;
	if (EVP_DigestFinal_ex(g->sha1, g->dsha1, NULL) != 1 ||
	    EVP_DigestFinal_ex(g->sha256, g->dsha256, NULL) != 1)
		return fail(err, KILN_E_IO, "apk: hashing %s failed", g->what);
	return 0;
}

static void gz_release(struct gz *g)
{
	if (g->started)
		deflateEnd(&g->z);
	g->started = false;
	EVP_MD_CTX_free(g->sha1);
	EVP_MD_CTX_free(g->sha256);
	g->sha1 = g->sha256 = NULL;
}

/* ---- tar headers (POSIX ustar + pax 'x') --------------------------------- */

struct tar_hdr {
	const char *name;
	const char *linkname;  /* symlink target or hard link path, or NULL */
	char type;             /* '0', '1', '2', '3', '4', '5', '6' */
	unsigned mode;         /* 07777 bits */
	uint64_t uid, gid, size, mtime;
	const char *uname, *gname;
	unsigned devmajor, devminor;
};

/* n-1 octal digits and a NUL into f; false when v does not fit. */
static bool octal(char *f, size_t n, uint64_t v)
{
	if (n - 1 < 22 && v >> (3 * (n - 1)))
		return false;
	f[n - 1] = '\0';
	for (size_t i = n - 1; i-- > 0; v >>= 3)
		f[i] = (char)('0' + (v & 7));
	return true;
}

static void pax_record(struct buf *b, const char *key, const void *val, size_t vlen)
{
	size_t base = 1 + strlen(key) + 1 + vlen + 1; /* ' ' key '=' val '\n' */
	size_t n = base + 1;
	for (;;) { /* the length counts its own digits */
		char d[24];
		size_t want = base + (size_t)snprintf(d, sizeof(d), "%zu", n);
		if (want == n)
			break;
		n = want;
	}
	buf_addf(b, "%zu %s=", n, key);
	buf_add(b, val, vlen);
	buf_add(b, "\n", 1);
}

static void put_str(char *field, size_t n, const char *s)
{
	size_t l = s ? strlen(s) : 0;
	memcpy(field, s ? s : "", l < n ? l : n);
}

/* One 512-byte header block into out. */
static void ustar_block(unsigned char out[512], const struct tar_hdr *h, struct buf *pax)
{
	char *b = (char *)out;
	memset(out, 0, 512);
	put_str(b, 100, h->name);
	if (pax && strlen(h->name) > 100)
		pax_record(pax, "path", h->name, strlen(h->name));
	octal(b + 100, 8, h->mode & 07777);
	if (!octal(b + 108, 8, h->uid)) {
		octal(b + 108, 8, 0);
		if (pax) {
			char v[24];
			pax_record(pax, "uid", v, (size_t)snprintf(v, sizeof(v), "%" PRIu64, h->uid));
		}
	}
	if (!octal(b + 116, 8, h->gid)) {
		octal(b + 116, 8, 0);
		if (pax) {
			char v[24];
			pax_record(pax, "gid", v, (size_t)snprintf(v, sizeof(v), "%" PRIu64, h->gid));
		}
	}
	if (!octal(b + 124, 12, h->size)) {
		octal(b + 124, 12, 0);
		if (pax) {
			char v[24];
			pax_record(pax, "size", v, (size_t)snprintf(v, sizeof(v), "%" PRIu64, h->size));
		}
	}
	if (!octal(b + 136, 12, h->mtime)) {
		octal(b + 136, 12, 0);
		if (pax) {
			char v[24];
			pax_record(pax, "mtime", v, (size_t)snprintf(v, sizeof(v), "%" PRIu64, h->mtime));
		}
	}
	b[156] = h->type;
	if (h->linkname) {
		put_str(b + 157, 100, h->linkname);
		if (pax && strlen(h->linkname) > 100)
			pax_record(pax, "linkpath", h->linkname, strlen(h->linkname));
	}
	memcpy(b + 257, "ustar", 6);
	memcpy(b + 263, "00", 2);
	put_str(b + 265, 31, h->uname);
	if (pax && h->uname && strlen(h->uname) > 31)
		pax_record(pax, "uname", h->uname, strlen(h->uname));
	put_str(b + 297, 31, h->gname);
	if (pax && h->gname && strlen(h->gname) > 31)
		pax_record(pax, "gname", h->gname, strlen(h->gname));
	octal(b + 329, 8, h->devmajor);
	octal(b + 337, 8, h->devminor);
	memset(b + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += out[i];
	octal(b + 148, 7, sum); /* six digits, NUL, then the space already there */
}

static const unsigned char zeros[1024];

static int tar_pad(struct gz *g, uint64_t size, struct kiln_err *err)
{
	size_t pad = (size_t)((512 - size % 512) % 512);
	return pad ? gz_write(g, zeros, pad, err) : 0;
}

/* A header for h, preceded by a pax 'x' header when `extra` (records the
 * caller adds: checksum, xattrs) or a field overflow needs one. */
static int tar_header(struct gz *g, const struct tar_hdr *h, const struct buf *extra,
		      struct kiln_err *err)
{
	unsigned char blk[512];
	struct buf pax = { 0 };
	ustar_block(blk, h, &pax);
	if (extra && extra->len)
		buf_add(&pax, extra->p, extra->len);
	if (pax.oom) {
		buf_release(&pax);
		return fail(err, KILN_E_NOMEM, "apk: out of memory");
	}
	int rc = 0;
	if (pax.len) {
		/* name of the 'x' entry: <dir>/PaxHeaders.0/<base>, as Go writes it */
		const char *slash = strrchr(h->name, '/');
		char xname[101];
		if (slash)
			snprintf(xname, sizeof(xname), "%.*s/PaxHeaders.0/%s",
				 (int)(slash - h->name), h->name, slash + 1);
		else
			snprintf(xname, sizeof(xname), "PaxHeaders.0/%s", h->name);
		struct tar_hdr x = {
			.name = xname, .type = 'x', .mode = 0644, .size = pax.len,
			.mtime = h->mtime, .uname = h->uname, .gname = h->gname,
			.uid = h->uid, .gid = h->gid,
		};
		unsigned char xb[512];
		ustar_block(xb, &x, NULL);
		rc = gz_write(g, xb, 512, err);
		if (rc == 0)
			rc = gz_write(g, pax.p, pax.len, err);
		if (rc == 0)
			rc = tar_pad(g, pax.len, err);
	}
	buf_release(&pax);
	return rc ? rc : gz_write(g, blk, 512, err);
}

/* A whole root-owned regular file from memory. */
static int tar_mem_file(struct gz *g, const char *name, const void *data, size_t len,
			unsigned mode, uint64_t mtime, struct kiln_err *err)
{
	struct tar_hdr h = {
		.name = name, .type = '0', .mode = mode, .size = len, .mtime = mtime,
		.uname = "root", .gname = "root",
	};
	int rc = tar_header(g, &h, NULL, err);
	if (rc == 0)
		rc = gz_write(g, data, len, err);
	return rc ? rc : tar_pad(g, len, err);
}

/* ---- user and group names ------------------------------------------------- */

struct idname {
	uint64_t id;
	char *name;
};

struct idmap {
	struct idname *v;
	size_t n;
};

static void idmap_release(struct idmap *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].name);
	free(m->v);
	*m = (struct idmap){ 0 };
}

/* name:x:id:... lines of an /etc/passwd or /etc/group; first name wins. */
static int idmap_load(struct idmap *m, const char *path, struct kiln_err *err)
{
	if (!path)
		return 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return io_fail(err, "opening", path);
	char *line = NULL;
	size_t cap = 0;
	int rc = 0;
	while (getline(&line, &cap, f) > 0) {
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2 || c1 == line)
			continue;
		char *end;
		errno = 0;
		unsigned long long id = strtoull(c2 + 1, &end, 10);
		if (errno || end == c2 + 1 || (*end != ':' && *end != '\n' && *end))
			continue;
		struct idname *v = realloc(m->v, (m->n + 1) * sizeof(*v));
		char *name = strndup(line, (size_t)(c1 - line));
		if (!v || !name) {
			free(name);
			if (v)
				m->v = v;
			rc = fail(err, KILN_E_NOMEM, "apk: out of memory");
			break;
		}
		m->v = v;
		m->v[m->n++] = (struct idname){ id, name };
	}
	free(line);
	fclose(f);
	return rc;
}

static const char *idmap_name(const struct idmap *m, bool loaded, uint64_t id)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i].id == id)
			return m->v[i].name;
	return !loaded && id == 0 ? "root" : "";
}

/* ---- the data section: walk the tree -------------------------------------- */

struct seen {
	dev_t dev;
	ino_t ino;
	char *path;
};

struct walk {
	struct gz *g;
	const struct apk_options *o;
	uint64_t mtime;
	struct idmap users, groups;
	struct seen *seen;
	size_t n_seen;
	uint64_t installed;
	struct buf full;     /* root + "/" + rel, rebuilt per entry */
	size_t root_len;
	unsigned char *chunk;
};

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* SHA-1 of a file's first `size` bytes, in hex. */
static int sha1_file(int fd, uint64_t size, unsigned char *chunk, char out[41],
		     const char *path, struct kiln_err *err)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c || EVP_DigestInit_ex(c, EVP_sha1(), NULL) != 1) {
		EVP_MD_CTX_free(c);
		return fail(err, KILN_E_NOMEM, "apk: cannot start a digest");
	}
	uint64_t left = size;
	off_t off = 0;
	while (left > 0) {
		ssize_t r = pread(fd, chunk, left < CHUNK ? (size_t)left : CHUNK, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			EVP_MD_CTX_free(c);
			if (r == 0)
				return fail(err, KILN_E_IO, "apk: %s shrank while packaging", path);
			return io_fail(err, "reading", path);
		}
		EVP_DigestUpdate(c, chunk, (size_t)r);
		left -= (uint64_t)r;
		off += r;
	}
	unsigned char d[20];
	EVP_DigestFinal_ex(c, d, NULL);
	EVP_MD_CTX_free(c);
	hex(out, d, 20);
	return 0;
}

static int copy_file(struct walk *w, int fd, uint64_t size, const char *path,
		     struct kiln_err *err)
{
	uint64_t left = size;
	off_t off = 0;
	while (left > 0) {
		ssize_t r = pread(fd, w->chunk, left < CHUNK ? (size_t)left : CHUNK, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				return fail(err, KILN_E_IO, "apk: %s shrank while packaging", path);
			return io_fail(err, "reading", path);
		}
		int rc = gz_write(w->g, w->chunk, (size_t)r, err);
		if (rc < 0)
			return rc;
		left -= (uint64_t)r;
		off += r;
	}
	return tar_pad(w->g, size, err);
}

/* SCHILY.xattr.* records of path, names sorted; system.* (ACLs) and
 * security.selinux (the build host's label) are left out. */
static int xattrs(const char *path, struct buf *pax, struct kiln_err *err)
{
	ssize_t n = llistxattr(path, NULL, 0);
	if (n <= 0)
		return 0; /* none, or not supported here */
	char *names = malloc((size_t)n);
	if (!names)
		return fail(err, KILN_E_NOMEM, "apk: out of memory");
	n = llistxattr(path, names, (size_t)n);
	if (n <= 0) {
		free(names);
		return 0;
	}
	size_t count = 0;
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1)
		count++;
	char **v = calloc(count ? count : 1, sizeof(*v));
	if (!v) {
		free(names);
		return fail(err, KILN_E_NOMEM, "apk: out of memory");
	}
	count = 0;
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1)
		v[count++] = names + i;
	qsort(v, count, sizeof(*v), name_cmp);
	int rc = 0;
	for (size_t i = 0; i < count && rc == 0; i++) {
		if (strncmp(v[i], "system.", 7) == 0 || strcmp(v[i], "security.selinux") == 0)
			continue;
		ssize_t vl = lgetxattr(path, v[i], NULL, 0);
		if (vl < 0)
			continue;
		char *val = malloc((size_t)vl + 1);
		if (!val) {
			rc = fail(err, KILN_E_NOMEM, "apk: out of memory");
			break;
		}
		vl = lgetxattr(path, v[i], val, (size_t)vl);
		if (vl >= 0) {
			char key[300];
			snprintf(key, sizeof(key), "SCHILY.xattr.%s", v[i]);
			pax_record(pax, key, val, (size_t)vl);
		}
		free(val);
	}
	free(v);
	free(names);
	return rc;
}

static int walk_dir(struct walk *w, struct kiln_err *err);

/* One entry: w->full holds its full path; rel starts at root_len + 1. */
static int walk_entry(struct walk *w, struct kiln_err *err)
{
	const char *full = w->full.p;
	const char *rel = full + w->root_len + 1;
	struct stat st;
	if (lstat(full, &st) < 0)
		return io_fail(err, "reading", full);

	struct tar_hdr h = {
		.name = rel, .mode = st.st_mode & 07777, .mtime = w->mtime,
		.uid = st.st_uid, .gid = st.st_gid,
	};
	if (w->o->root_owner) {
		h.uid = h.gid = 0;
		h.uname = h.gname = "root";
	} else {
		h.uname = idmap_name(&w->users, w->o->passwd != NULL, h.uid);
		h.gname = idmap_name(&w->groups, w->o->group != NULL, h.gid);
	}
	struct buf pax = { 0 };
	char sum[41];
	char *target = NULL;
	int fd = -1, rc = 0;

	if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
		for (size_t i = 0; i < w->n_seen; i++)
			if (w->seen[i].dev == st.st_dev && w->seen[i].ino == st.st_ino) {
				h.type = '1';
				h.linkname = w->seen[i].path;
				break;
			}
		if (!h.linkname) {
			struct seen *s = realloc(w->seen, (w->n_seen + 1) * sizeof(*s));
			char *p = strdup(rel);
			if (!s || !p) {
				free(p);
				if (s)
					w->seen = s;
				return fail(err, KILN_E_NOMEM, "apk: out of memory");
			}
			w->seen = s;
			w->seen[w->n_seen++] = (struct seen){ st.st_dev, st.st_ino, p };
		}
	}

	if (S_ISREG(st.st_mode)) {
		fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return io_fail(err, "opening", full);
		rc = sha1_file(fd, (uint64_t)st.st_size, w->chunk, sum, full, err);
		if (rc == 0)
			pax_record(&pax, "APK-TOOLS.checksum.SHA1", sum, 40);
		if (!h.linkname) {
			h.type = '0';
			h.size = (uint64_t)st.st_size;
			w->installed += (uint64_t)st.st_size;
			if (rc == 0)
				rc = xattrs(full, &pax, err);
		}
	} else if (h.linkname) {
		/* a hard link to a device or fifo */
	} else if (S_ISLNK(st.st_mode)) {
		size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : PATH_MAX;
		target = malloc(cap);
		ssize_t n = target ? readlink(full, target, cap) : -1;
		if (!target)
			return fail(err, KILN_E_NOMEM, "apk: out of memory");
		if (n < 0 || (size_t)n >= cap) {
			free(target);
			return n < 0 ? io_fail(err, "reading link", full)
				     : fail(err, KILN_E_IO, "apk: link %s changed while packaging", full);
		}
		target[n] = '\0';
		h.type = '2';
		h.linkname = target;
		w->installed += (uint64_t)n;
		unsigned char d[20];
		EVP_Digest(target, (size_t)n, d, NULL, EVP_sha1(), NULL);
		hex(sum, d, 20);
		pax_record(&pax, "APK-TOOLS.checksum.SHA1", sum, 40);
	} else if (S_ISDIR(st.st_mode)) {
		h.type = '5';
		rc = xattrs(full, &pax, err);
	} else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
		h.type = S_ISCHR(st.st_mode) ? '3' : '4';
		h.devmajor = major(st.st_rdev);
		h.devminor = minor(st.st_rdev);
	} else if (S_ISFIFO(st.st_mode)) {
		h.type = '6';
	} else {
		rc = fail(err, KILN_E_UNSUPPORTED, "apk: %s: sockets cannot go into a package", full);
	}
	if (rc == 0 && pax.oom)
		rc = fail(err, KILN_E_NOMEM, "apk: out of memory");
	if (rc == 0)
		rc = tar_header(w->g, &h, &pax, err);
	if (rc == 0 && h.type == '0')
		rc = copy_file(w, fd, h.size, full, err);
	if (fd >= 0)
		close(fd);
	free(target);
	buf_release(&pax);
	if (rc == 0 && h.type == '5')
		rc = walk_dir(w, err);
	return rc;
}

/* The entries of directory w->full, names sorted by bytes. */
static int walk_dir(struct walk *w, struct kiln_err *err)
{
	size_t base = w->full.len;
	DIR *d = opendir(w->full.p);
	if (!d)
		return io_fail(err, "opening", w->full.p);
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno)
				rc = io_fail(err, "reading", w->full.p);
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			char **v = realloc(names, cap * sizeof(*v));
			if (!v) {
				rc = fail(err, KILN_E_NOMEM, "apk: out of memory");
				break;
			}
			names = v;
		}
		if (!(names[n] = strdup(de->d_name))) {
			rc = fail(err, KILN_E_NOMEM, "apk: out of memory");
			break;
		}
		n++;
	}
	closedir(d);
	if (rc == 0 && n > 1)
		qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n && rc == 0; i++) {
		w->full.len = base;
		buf_add(&w->full, "/", 1);
		buf_adds(&w->full, names[i]);
		if (w->full.oom)
			rc = fail(err, KILN_E_NOMEM, "apk: out of memory");
		else
			rc = walk_entry(w, err);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	w->full.len = base;
	if (w->full.p)
		w->full.p[base] = '\0';
	return rc;
}

/* ---- .PKGINFO ------------------------------------------------------------- */

static bool one_line(const char *s)
{
	return !s || !strpbrk(s, "\n\r");
}

static bool valid_name(const char *s)
{
	if (!s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("+_.-", *s)))
			return false;
	return true;
}

static bool token(const char *s)
{
	return s && *s && !strpbrk(s, " \t\n\r/");
}

static int check_meta(const struct apk_meta *m, const struct apk_options *o, struct kiln_err *err)
{
	if (!m)
		return fail(err, KILN_E_INVALID, "apk: no package metadata");
	if (!valid_name(m->name))
		return fail(err, KILN_E_INVALID, "apk: bad package name \"%s\"", m->name ? m->name : "");
	if (!token(m->version))
		return fail(err, KILN_E_INVALID, "apk: %s: bad version \"%s\"", m->name,
			    m->version ? m->version : "");
	if (!token(m->arch))
		return fail(err, KILN_E_INVALID, "apk: %s: bad arch \"%s\"", m->name,
			    m->arch ? m->arch : "");
	const char *one[] = { m->description, m->url, m->origin, m->commit, m->maintainer };
	for (size_t i = 0; i < sizeof(one) / sizeof(*one); i++)
		if (!one_line(one[i]))
			return fail(err, KILN_E_INVALID, "apk: %s: metadata holds a newline", m->name);
	const char *const *lists[] = { m->licenses, m->depends, m->provides, m->replaces };
	size_t counts[] = { m->n_licenses, m->n_depends, m->n_provides, m->n_replaces };
	for (size_t l = 0; l < 4; l++)
		for (size_t i = 0; i < counts[l]; i++)
			if (!lists[l] || !lists[l][i] || !one_line(lists[l][i]))
				return fail(err, KILN_E_INVALID, "apk: %s: bad list item", m->name);
	for (size_t i = 0; i < m->n_depends; i++)
		if (!*m->depends[i] || strpbrk(m->depends[i], " \t"))
			return fail(err, KILN_E_INVALID, "apk: %s: bad dependency \"%s\"", m->name,
				    m->depends[i]);
	for (size_t i = 0; i < m->n_provides; i++)
		if (!*m->provides[i] || strpbrk(m->provides[i], " \t"))
			return fail(err, KILN_E_INVALID, "apk: %s: bad provides \"%s\"", m->name,
				    m->provides[i]);
	if (o) {
		for (size_t i = 0; i < o->n_control_files; i++) {
			const struct apk_control_file *f = &o->control_files[i];
			if (!f->name || f->name[0] != '.' || strchr(f->name, '/') ||
			    strcmp(f->name, ".PKGINFO") == 0 || strncmp(f->name, ".SIGN.", 6) == 0 ||
			    strlen(f->name) > 100 || (f->len && !f->data))
				return fail(err, KILN_E_INVALID, "apk: %s: bad control file \"%s\"",
					    m->name, f->name ? f->name : "");
		}
		if (o->key && (!o->key->path || (o->key->hash != APK_SIG_SHA256 &&
						 o->key->hash != APK_SIG_SHA1)))
			return fail(err, KILN_E_INVALID, "apk: %s: bad signing key", m->name);
	}
	return 0;
}

static bool given(const char *s)
{
	return s && *s;
}

static void pkginfo(struct buf *b, const struct apk_meta *m, uint64_t size, const char *datahash)
{
	buf_adds(b, "# Generated by kiln\n");
	buf_addf(b, "pkgname = %s\n", m->name);
	buf_addf(b, "pkgver = %s-r%u\n", m->version, m->epoch);
	buf_addf(b, "arch = %s\n", m->arch);
	buf_addf(b, "size = %" PRIu64 "\n", size);
	buf_addf(b, "origin = %s\n", given(m->origin) ? m->origin : m->name);
	buf_addf(b, "pkgdesc = %s\n", m->description ? m->description : "");
	buf_addf(b, "url = %s\n", m->url ? m->url : "");
	buf_addf(b, "commit = %s\n", m->commit ? m->commit : "");
	if (given(m->maintainer))
		buf_addf(b, "maintainer = %s\n", m->maintainer);
	if (m->builddate)
		buf_addf(b, "builddate = %" PRIu64 "\n", m->builddate);
	/* one line per license, as melange writes its copyright entries */
	for (size_t i = 0; i < m->n_licenses; i++)
		buf_addf(b, "license = %s\n", m->licenses[i]);
	for (size_t i = 0; i < m->n_depends; i++)
		buf_addf(b, "depend = %s\n", m->depends[i]);
	for (size_t i = 0; i < m->n_provides; i++)
		buf_addf(b, "provides = %s\n", m->provides[i]);
	for (size_t i = 0; i < m->n_replaces; i++)
		buf_addf(b, "replaces = %s\n", m->replaces[i]);
	if (m->provider_priority)
		buf_addf(b, "provider_priority = %u\n", m->provider_priority);
	if (m->replaces_priority)
		buf_addf(b, "replaces_priority = %u\n", m->replaces_priority);
	buf_addf(b, "datahash = %s\n", datahash);
}

/* ---- signatures ------------------------------------------------------------ */

/* A gzip member holding .SIGN.RSA[256].<name>.pub, the signature over
 * signed[0..len), tar without end-of-archive. */
static int sign_member(const struct apk_key *key, const void *signed_bytes, size_t len,
		       uint64_t mtime, struct buf *out, struct kiln_err *err)
{
	FILE *f = fopen(key->path, "r");
	if (!f)
		return io_fail(err, "opening key", key->path);
	EVP_PKEY *pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!pk)
		return fail(err, KILN_E_INVALID, "apk: %s: not a PEM private key", key->path);
	if (EVP_PKEY_base_id(pk) != EVP_PKEY_RSA) {
		EVP_PKEY_free(pk);
		return fail(err, KILN_E_UNSUPPORTED, "apk: %s: only RSA keys sign apks", key->path);
	}
	const EVP_MD *md = key->hash == APK_SIG_SHA1 ? EVP_sha1() : EVP_sha256();
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned char *sig = NULL;
	size_t slen = 0;
	int rc = 0;
	if (!c || EVP_DigestSignInit(c, NULL, md, NULL, pk) != 1 ||
	    EVP_DigestSignUpdate(c, signed_bytes, len) != 1 ||
	    EVP_DigestSignFinal(c, NULL, &slen) != 1 || !(sig = malloc(slen)) ||
	    EVP_DigestSignFinal(c, sig, &slen) != 1)
		rc = fail(err, KILN_E_INVALID, "apk: signing with %s failed", key->path);
	EVP_MD_CTX_free(c);
	EVP_PKEY_free(pk);
	if (rc < 0) {
		free(sig);
		return rc;
	}
	const char *base = key->name;
	if (!given(base)) {
		base = strrchr(key->path, '/');
		base = base ? base + 1 : key->path;
	}
	char name[300];
	snprintf(name, sizeof(name), ".SIGN.%s.%s.pub",
		 key->hash == APK_SIG_SHA1 ? "RSA" : "RSA256", base);
	struct gz g = { 0 };
	rc = gz_begin(&g, -1, out, "the signature", err);
	if (rc == 0)
		rc = tar_mem_file(&g, name, sig, slen, 0644, mtime, err);
	if (rc == 0)
		rc = gz_finish(&g, err);
	gz_release(&g);
	free(sig);
	return rc;
}

/* ---- writing files atomically --------------------------------------------- */

static int write_all(int fd, const void *p, size_t n, const char *path, struct kiln_err *err)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return io_fail(err, "writing", path);
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* A temporary sibling of `final` (dir/.name.XXXXXX), mode 0644. */
static int temp_open(const char *final, char *tmp, size_t cap, struct kiln_err *err)
{
	const char *slash = strrchr(final, '/');
	int n = slash ? snprintf(tmp, cap, "%.*s/.%s.XXXXXX", (int)(slash - final), final, slash + 1)
		      : snprintf(tmp, cap, ".%s.XXXXXX", final);
	if (n < 0 || (size_t)n >= cap)
		return fail(err, KILN_E_INVALID, "apk: path too long: %s", final);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return io_fail(err, "creating", tmp);
	if (fchmod(fd, 0644) < 0) {
		int rc = io_fail(err, "chmod", tmp);
		close(fd);
		unlink(tmp);
		return rc;
	}
	return fd;
}

static int copy_fd(int from, int to, const char *path, struct kiln_err *err)
{
	char *b = malloc(CHUNK);
	if (!b)
		return fail(err, KILN_E_NOMEM, "apk: out of memory");
	int rc = 0;
	off_t off = 0;
	for (;;) {
		ssize_t r = pread(from, b, CHUNK, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = io_fail(err, "reading back", path);
			break;
		}
		if (r == 0)
			break;
		off += r;
		if ((rc = write_all(to, b, (size_t)r, path, err)) < 0)
			break;
	}
	free(b);
	return rc;
}

static int mkdir_p(const char *dir, struct kiln_err *err)
{
	char p[4096];
	int n = snprintf(p, sizeof(p), "%s", dir);
	if (n < 0 || (size_t)n >= sizeof(p))
		return fail(err, KILN_E_INVALID, "apk: path too long: %s", dir);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return io_fail(err, "creating", p);
		*s = '/';
	}
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		return io_fail(err, "creating", p);
	return 0;
}

/* ---- apk_write ------------------------------------------------------------- */

static int control_cmp(const void *a, const void *b)
{
	const struct apk_control_file *x = *(const struct apk_control_file *const *)a;
	const struct apk_control_file *y = *(const struct apk_control_file *const *)b;
	return strcmp(x->name, y->name);
}

static int control_member(const struct apk_meta *m, const struct apk_options *o,
			  uint64_t installed, const char *datahash, struct buf *out,
			  struct kiln_err *err)
{
	struct buf info = { 0 };
	pkginfo(&info, m, installed, datahash);
	if (info.oom) {
		buf_release(&info);
		return fail(err, KILN_E_NOMEM, "apk: out of memory");
	}
	size_t n = o ? o->n_control_files : 0;
	const struct apk_control_file **v = calloc(n ? n : 1, sizeof(*v));
	if (!v) {
		buf_release(&info);
		return fail(err, KILN_E_NOMEM, "apk: out of memory");
	}
	for (size_t i = 0; i < n; i++)
		v[i] = &o->control_files[i];
	qsort(v, n, sizeof(*v), control_cmp);
	struct gz g = { 0 };
	int rc = gz_begin(&g, -1, out, "the control section", err);
	/* .PKGINFO first: apk reads datahash from it before the data starts */
	if (rc == 0)
		rc = tar_mem_file(&g, ".PKGINFO", info.p, info.len, 0644, m->builddate, err);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = tar_mem_file(&g, v[i]->name, v[i]->data, v[i]->len, v[i]->mode & 07777,
				  m->builddate, err);
	/* no end-of-archive: the data tar follows in the same tar stream */
	if (rc == 0)
		rc = gz_finish(&g, err);
	gz_release(&g);
	free(v);
	buf_release(&info);
	return rc;
}

int apk_write(const char *root, const char *outdir, const struct apk_meta *meta,
	      const struct apk_options *opts, struct apk_result *res,
	      struct kiln_err *err)
{
	static const struct apk_options none = { 0 };
	const struct apk_options *o = opts ? opts : &none;
	int rc = check_meta(meta, o, err);
	if (rc < 0)
		return rc;
	if (!root || !outdir)
		return fail(err, KILN_E_INVALID, "apk: no tree or output directory");
	struct stat st;
	if (lstat(root, &st) < 0)
		return io_fail(err, "reading", root);
	if (!S_ISDIR(st.st_mode))
		return fail(err, KILN_E_INVALID, "apk: %s is not a directory", root);

	char dir[4096], final[4096], tmp[4200], dtmp[4200];
	int n = snprintf(dir, sizeof(dir), "%s/%s", outdir, meta->arch);
	int n2 = snprintf(final, sizeof(final), "%s/%s-%s-r%u.apk", dir, meta->name,
			  meta->version, meta->epoch);
	if (n < 0 || (size_t)n >= sizeof(dir) || n2 < 0 || (size_t)n2 >= sizeof(final))
		return fail(err, KILN_E_INVALID, "apk: output path too long");
	if ((rc = mkdir_p(dir, err)) < 0)
		return rc;

	struct walk w = { .o = o, .mtime = meta->builddate };
	struct gz data = { 0 };
	struct buf control = { 0 }, sig = { 0 };
	int dfd = -1, fd = -1;
	char datahash[65] = "", ident[31] = "";
	tmp[0] = dtmp[0] = '\0';

	w.chunk = malloc(CHUNK);
	if (!w.chunk) {
		rc = fail(err, KILN_E_NOMEM, "apk: out of memory");
		goto out;
	}
	if ((rc = idmap_load(&w.users, o->root_owner ? NULL : o->passwd, err)) < 0 ||
	    (rc = idmap_load(&w.groups, o->root_owner ? NULL : o->group, err)) < 0)
		goto out;

	/* 1. data member into a temporary file, hashed as it is written */
	char data_name[4200];
	snprintf(data_name, sizeof(data_name), "%s.data", final);
	if ((dfd = temp_open(data_name, dtmp, sizeof(dtmp), err)) < 0) {
		rc = dfd;
		dtmp[0] = '\0';
		goto out;
	}
	if ((rc = gz_begin(&data, dfd, NULL, final, err)) < 0)
		goto out;
	w.g = &data;
	buf_adds(&w.full, root);
	while (w.full.len > 1 && w.full.p[w.full.len - 1] == '/')
		w.full.p[--w.full.len] = '\0';
	w.root_len = w.full.len;
	if (w.full.oom) {
		rc = fail(err, KILN_E_NOMEM, "apk: out of memory");
		goto out;
	}
	if ((rc = walk_dir(&w, err)) < 0)
		goto out;
	if ((rc = gz_write(&data, zeros, 1024, err)) < 0 || (rc = gz_finish(&data, err)) < 0)
		goto out;
	hex(datahash, data.dsha256, 32);

	/* 2. control member, 3. its signature */
	if ((rc = control_member(meta, o, w.installed, datahash, &control, err)) < 0)
		goto out;
	{
		unsigned char d[20];
		EVP_Digest(control.p, control.len, d, NULL, EVP_sha1(), NULL);
		identity(ident, d);
	}
	if (o->key && (rc = sign_member(o->key, control.p, control.len, meta->builddate, &sig,
					err)) < 0)
		goto out;

	/* 4. signature ‖ control ‖ data, renamed into place */
	if ((fd = temp_open(final, tmp, sizeof(tmp), err)) < 0) {
		rc = fd;
		tmp[0] = '\0';
		goto out;
	}
	if ((rc = write_all(fd, sig.p, sig.len, tmp, err)) < 0 ||
	    (rc = write_all(fd, control.p, control.len, tmp, err)) < 0 ||
	    (rc = copy_fd(dfd, fd, tmp, err)) < 0)
		goto out;
	if (close(fd) < 0) {
		fd = -1;
		rc = io_fail(err, "writing", tmp);
		goto out;
	}
	fd = -1;
	if (rename(tmp, final) < 0) {
		rc = io_fail(err, "renaming to", final);
		goto out;
	}
	tmp[0] = '\0';
	if (res) {
		memset(res, 0, sizeof(*res));
		snprintf(res->path, sizeof(res->path), "%s", final);
		res->sig_len = sig.len;
		res->control_len = control.len;
		res->data_len = data.len;
		res->size = sig.len + control.len + data.len;
		res->installed_size = w.installed;
		memcpy(res->datahash, datahash, sizeof(datahash));
		memcpy(res->identity, ident, sizeof(ident));
	}
out:
	if (fd >= 0)
		close(fd);
	if (tmp[0])
		unlink(tmp);
	if (dfd >= 0)
		close(dfd);
	if (dtmp[0])
		unlink(dtmp);
	gz_release(&data);
	buf_release(&control);
	buf_release(&sig);
	buf_release(&w.full);
	for (size_t i = 0; i < w.n_seen; i++)
		free(w.seen[i].path);
	free(w.seen);
	idmap_release(&w.users);
	idmap_release(&w.groups);
	free(w.chunk);
	return rc;
}

/* ---- reading members back ---------------------------------------------------- */

int apk_split_members(const void *buf, size_t len, size_t *off, size_t cap, size_t *n,
		      struct kiln_err *err)
{
	const unsigned char *p = buf;
	size_t pos = 0, count = 0;
	unsigned char *sink = malloc(CHUNK);
	if (!sink)
		return fail(err, KILN_E_NOMEM, "apk: out of memory");
	int rc = 0;
	while (pos < len && rc == 0) {
		if (count == cap) {
			rc = fail(err, KILN_E_SYNTAX, "apk: more than %zu gzip members", cap);
			break;
		}
		off[count++] = pos;
		z_stream z = { 0 };
		if (inflateInit2(&z, 15 + 16) != Z_OK) {
			rc = fail(err, KILN_E_NOMEM, "apk: cannot start zlib");
			break;
		}
		z.next_in = (unsigned char *)(uintptr_t)(p + pos);
		z.avail_in = (uInt)((len - pos) > UINT_MAX ? UINT_MAX : (len - pos));
		int zr;
		do {
			z.next_out = sink;
			z.avail_out = CHUNK;
			zr = inflate(&z, Z_NO_FLUSH);
		} while (zr == Z_OK && (z.avail_in > 0 || z.avail_out == 0));
		if (zr != Z_STREAM_END)
			rc = fail(err, KILN_E_SYNTAX, "apk: gzip member %zu at byte %zu is broken",
				  count, pos);
		else
			pos += z.total_in;
		inflateEnd(&z);
	}
	free(sink);
	if (rc == 0)
		*n = count;
	return rc;
}

/* The first members of an .apk file, each as compressed and plain bytes,
 * up to and including the member that starts with .PKGINFO. */
struct member {
	struct buf gz, tar;
};

static int read_control(int fd, const char *path, struct member *ctl, struct kiln_err *err)
{
	unsigned char *in = malloc(CHUNK), *out = malloc(CHUNK);
	z_stream z = { 0 };
	bool zinit = false, found = false;
	int rc = 0;
	size_t total = 0;
	if (!in || !out) {
		rc = fail(err, KILN_E_NOMEM, "apk: out of memory");
		goto done;
	}
	while (!found && rc == 0) {
		/* one member */
		buf_release(&ctl->gz);
		buf_release(&ctl->tar);
		z = (z_stream){ 0 };
		if (inflateInit2(&z, 15 + 16) != Z_OK) {
			rc = fail(err, KILN_E_NOMEM, "apk: cannot start zlib");
			break;
		}
		zinit = true;
		int zr = Z_OK;
		while (zr != Z_STREAM_END && rc == 0) {
			off_t at = (off_t)total;
			ssize_t r = pread(fd, in, CHUNK, at);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				rc = io_fail(err, "reading", path);
				break;
			}
			if (r == 0) {
				rc = fail(err, KILN_E_SYNTAX, "apk: %s: no .PKGINFO", path);
				break;
			}
			z.next_in = in;
			z.avail_in = (uInt)r;
			do {
				z.next_out = out;
				z.avail_out = CHUNK;
				zr = inflate(&z, Z_NO_FLUSH);
				if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
					rc = fail(err, KILN_E_SYNTAX, "apk: %s: broken gzip data", path);
					break;
				}
				buf_add(&ctl->tar, out, CHUNK - z.avail_out);
			} while (zr == Z_OK && z.avail_out == 0);
			size_t used = (size_t)r - z.avail_in;
			buf_add(&ctl->gz, in, used);
			total += used;
			if (ctl->gz.oom || ctl->tar.oom)
				rc = fail(err, KILN_E_NOMEM, "apk: out of memory");
			else if (total > MAX_CONTROL)
				rc = fail(err, KILN_E_SYNTAX, "apk: %s: no .PKGINFO near the start", path);
		}
		inflateEnd(&z);
		zinit = false;
		if (rc == 0 && ctl->tar.len >= 512) {
			/* the first entry's name, after any pax 'x' header */
			const char *t = ctl->tar.p;
			if (t[156] == 'x' && ctl->tar.len >= 1024) {
				char sz[13] = { 0 };
				memcpy(sz, t + 124, 12);
				size_t skip = 512 + ((strtoull(sz, NULL, 8) + 511) / 512) * 512;
				if (skip + 512 <= ctl->tar.len)
					t += skip;
			}
			found = strncmp(t, ".PKGINFO", 100) == 0;
		}
	}
done:
	if (zinit)
		inflateEnd(&z);
	free(in);
	free(out);
	return rc;
}

/* The .PKGINFO text from a control member's tar, by libarchive. */
static int pkginfo_text(const struct member *ctl, const char *path, struct buf *out,
			struct kiln_err *err)
{
	struct archive *a = archive_read_new();
	if (!a)
		return fail(err, KILN_E_NOMEM, "apk: out of memory");
	archive_read_support_format_tar(a);
	int rc = 0;
	struct archive_entry *e;
	if (archive_read_open_memory(a, ctl->tar.p, ctl->tar.len) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK ||
	    strcmp(archive_entry_pathname(e), ".PKGINFO") != 0) {
		rc = fail(err, KILN_E_SYNTAX, "apk: %s: control section unreadable: %s", path,
			  archive_error_string(a) ? archive_error_string(a) : "no .PKGINFO");
	} else {
		char b[4096];
		la_ssize_t r;
		while ((r = archive_read_data(a, b, sizeof(b))) > 0)
			buf_add(out, b, (size_t)r);
		if (r < 0)
			rc = fail(err, KILN_E_SYNTAX, "apk: %s: .PKGINFO unreadable", path);
		else if (out->oom)
			rc = fail(err, KILN_E_NOMEM, "apk: out of memory");
		else if (!out->p)
			buf_add(out, "", 0);
	}
	archive_read_free(a);
	return rc;
}

/* .PKGINFO lines → one APKINDEX entry. */
static int index_entry(struct buf *idx, const char *pkginfo_txt, const char *ident,
		       uint64_t size, const char *path, struct kiln_err *err)
{
	struct field {
		const char *key;
		char tag;
		struct buf v;
	} f[] = {
		{ "pkgname", 'P', { 0 } }, { "pkgver", 'V', { 0 } }, { "arch", 'A', { 0 } },
		{ "size", 'I', { 0 } }, { "pkgdesc", 'T', { 0 } }, { "url", 'U', { 0 } },
		{ "license", 'L', { 0 } }, { "origin", 'o', { 0 } }, { "maintainer", 'm', { 0 } },
		{ "builddate", 't', { 0 } }, { "commit", 'c', { 0 } },
		{ "provider_priority", 'k', { 0 } }, { "depend", 'D', { 0 } },
		{ "provides", 'p', { 0 } },
	};
	const size_t nf = sizeof(f) / sizeof(*f);
	const char *s = pkginfo_txt;
	while (*s) {
		const char *eol = strchr(s, '\n');
		size_t len = eol ? (size_t)(eol - s) : strlen(s);
		const char *eq = memchr(s, '=', len);
		if (*s != '#' && eq && eq > s) {
			size_t kl = (size_t)(eq - s);
			while (kl && s[kl - 1] == ' ')
				kl--;
			const char *v = eq + 1;
			while (v < s + len && *v == ' ')
				v++;
			size_t vl = (size_t)(s + len - v);
			for (size_t i = 0; i < nf; i++) {
				if (strlen(f[i].key) != kl || strncmp(f[i].key, s, kl) != 0)
					continue;
				/* D:, p: are space-separated lists; several license
				 * lines (melange: one per copyright entry) are joined
				 * with " AND " where apk-tools would keep the last */
				bool list = f[i].tag == 'D' || f[i].tag == 'p';
				if (f[i].v.len && (list || f[i].tag == 'L'))
					buf_adds(&f[i].v, list ? " " : " AND ");
				else if (!list)
					f[i].v.len = 0; /* otherwise the last one wins, as in apk */
				buf_add(&f[i].v, v, vl);
			}
		}
		s += len + (eol ? 1 : 0);
	}
	int rc = 0;
	if (!f[0].v.len || !f[1].v.len)
		rc = fail(err, KILN_E_SYNTAX, "apk: %s: .PKGINFO lacks pkgname or pkgver", path);
	if (rc == 0) {
		buf_addf(idx, "C:%s\n", ident);
		for (size_t i = 0; i < nf; i++) {
			char tag = f[i].tag;
			bool always = tag == 'P' || tag == 'V' || tag == 'I' || tag == 'T' ||
				      tag == 'U' || tag == 'L';
			bool skip = (!always && !f[i].v.len) ||
				    (tag == 't' && f[i].v.len && strcmp(f[i].v.p, "0") == 0);
			if (!skip)
				buf_addf(idx, "%c:%s\n", tag, f[i].v.p ? f[i].v.p : "");
			if (tag == 'A') /* apk writes S: after A: */
				buf_addf(idx, "S:%" PRIu64 "\n", size);
		}
		buf_add(idx, "\n", 1);
	}
	for (size_t i = 0; i < nf; i++)
		buf_release(&f[i].v);
	return rc;
}

static int apk_name_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return d->d_name[0] != '.' && n > 4 && strcmp(d->d_name + n - 4, ".apk") == 0;
}

static int byte_sort(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int apk_index_write(const char *dir, const char *description, const struct apk_key *key,
		    size_t *n_packages, struct kiln_err *err)
{
	if (!dir)
		return fail(err, KILN_E_INVALID, "apk: no directory to index");
	if (key && (!key->path || (key->hash != APK_SIG_SHA256 && key->hash != APK_SIG_SHA1)))
		return fail(err, KILN_E_INVALID, "apk: bad signing key");
	struct dirent **names = NULL;
	int n = scandir(dir, &names, apk_name_filter, byte_sort);
	if (n < 0)
		return io_fail(err, "reading", dir);
	struct buf idx = { 0 }, gzb = { 0 }, sig = { 0 };
	size_t count = 0;
	int rc = 0;
	for (int i = 0; i < n && rc == 0; i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0) {
			rc = io_fail(err, "reading", path);
			if (fd >= 0)
				close(fd);
			break;
		}
		if (!S_ISREG(st.st_mode)) {
			close(fd);
			continue;
		}
		struct member ctl = { 0 };
		struct buf info = { 0 };
		rc = read_control(fd, path, &ctl, err);
		close(fd);
		if (rc == 0)
			rc = pkginfo_text(&ctl, path, &info, err);
		if (rc == 0) {
			unsigned char d[20];
			char ident[31];
			EVP_Digest(ctl.gz.p, ctl.gz.len, d, NULL, EVP_sha1(), NULL);
			identity(ident, d);
			rc = index_entry(&idx, info.p, ident, (uint64_t)st.st_size, path, err);
			count++;
		}
		buf_release(&info);
		buf_release(&ctl.gz);
		buf_release(&ctl.tar);
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (rc == 0 && idx.oom)
		rc = fail(err, KILN_E_NOMEM, "apk: out of memory");

	/* the index member: DESCRIPTION, APKINDEX, end-of-archive */
	struct gz g = { 0 };
	if (rc == 0)
		rc = gz_begin(&g, -1, &gzb, "the index", err);
	if (rc == 0 && description)
		rc = tar_mem_file(&g, "DESCRIPTION", description, strlen(description), 0644, 0, err);
	if (rc == 0)
		rc = tar_mem_file(&g, "APKINDEX", idx.p ? idx.p : "", idx.len, 0644, 0, err);
	if (rc == 0)
		rc = gz_write(&g, zeros, 1024, err);
	if (rc == 0)
		rc = gz_finish(&g, err);
	gz_release(&g);
	if (rc == 0 && key)
		rc = sign_member(key, gzb.p, gzb.len, 0, &sig, err);

	char final[4096], tmp[4200] = "";
	int fd = -1;
	if (rc == 0) {
		int k = snprintf(final, sizeof(final), "%s/APKINDEX.tar.gz", dir);
		if (k < 0 || (size_t)k >= sizeof(final))
			rc = fail(err, KILN_E_INVALID, "apk: path too long: %s", dir);
	}
	if (rc == 0 && (fd = temp_open(final, tmp, sizeof(tmp), err)) < 0) {
		rc = fd;
		tmp[0] = '\0';
	}
	if (rc == 0 && (rc = write_all(fd, sig.p, sig.len, tmp, err)) == 0 &&
	    (rc = write_all(fd, gzb.p, gzb.len, tmp, err)) == 0) {
		int c = close(fd);
		fd = -1;
		if (c < 0)
			rc = io_fail(err, "writing", tmp);
		else if (rename(tmp, final) < 0)
			rc = io_fail(err, "renaming to", final);
		else
			tmp[0] = '\0';
	}
	if (fd >= 0)
		close(fd);
	if (tmp[0])
		unlink(tmp);
	buf_release(&idx);
	buf_release(&gzb);
	buf_release(&sig);
	if (rc == 0 && n_packages)
		*n_packages = count;
	return rc;
}
