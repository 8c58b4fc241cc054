/*
 * fsutil.c: BuildKit's file transfers (tonistiigi/fsutil's protocol, the
 * Packet and Stat of proto/fsutil.proto; BUILDKIT-WIRE.md section 8).
 *
 *   FileSync/DiffCopy   kiln sends a served directory (build context,
 *                       Dockerfile directory) to the daemon: a walk in
 *                       fsutil's order with its include/exclude/followpaths
 *                       filters, one STAT per entry, file data on request
 *   FileSend/DiffCopy   the daemon sends an export: fsutil packets into a
 *                       directory (`local`) or raw bytes into a file (`tar`,
 *                       `oci`, `docker`)
 *
 * and the export's temp sibling, renamed over the destination only after
 * the solve succeeded.
 *
 * Confinement: every path is opened below a directory fd one component at
 * a time with O_NOFOLLOW, so the sender reads nothing outside the served
 * directory and the receiver writes nothing outside the export's temp
 * directory, whatever the walk meets or the daemon sends.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/openat2.h>

#include <kiln/ignore.h>

#include "buildkit.h"
#include "control.pb-c.h"
#include "fsutil.h"
#include "fsutil.pb-c.h"
#include "session.h"

#define PKT_STAT FSUTIL__TYPES__PACKET_TYPE__PACKET_STAT
#define PKT_REQ FSUTIL__TYPES__PACKET_TYPE__PACKET_REQ
#define PKT_DATA FSUTIL__TYPES__PACKET_TYPE__PACKET_DATA
#define PKT_FIN FSUTIL__TYPES__PACKET_TYPE__PACKET_FIN
#define PKT_ERR FSUTIL__TYPES__PACKET_TYPE__PACKET_ERR

/* Room for a DATA packet's header: type, ID and data length. */
#define DATA_HDR 24
/* Symlinks followed while resolving followpaths before giving up. */
#define MAX_FOLLOW 255

/* ---- small helpers ------------------------------------------------------------ */

uint32_t buildkit_go_mode(mode_t m)
{
	uint32_t g = m & 0777;
	switch (m & S_IFMT) {
	case S_IFDIR: g |= BUILDKIT_GO_DIR; break;
	case S_IFLNK: g |= BUILDKIT_GO_SYMLINK; break;
	case S_IFBLK: g |= BUILDKIT_GO_DEVICE; break;
	case S_IFCHR: g |= BUILDKIT_GO_DEVICE | BUILDKIT_GO_CHARDEVICE; break;
	case S_IFIFO: g |= BUILDKIT_GO_NAMEDPIPE; break;
	default: break; /* regular; a socket's bit is cleared, as fsutil does */
	}
	if (m & S_ISUID)
		g |= BUILDKIT_GO_SETUID;
	if (m & S_ISGID)
		g |= BUILDKIT_GO_SETGID;
	if (m & S_ISVTX)
		g |= BUILDKIT_GO_STICKY;
	return g;
}

mode_t buildkit_posix_mode(uint32_t g)
{
	mode_t m = g & 0777;
	if (g & BUILDKIT_GO_DIR)
		m |= S_IFDIR;
	else if (g & BUILDKIT_GO_SYMLINK)
		m |= S_IFLNK;
	else if (g & BUILDKIT_GO_DEVICE)
		m |= (g & BUILDKIT_GO_CHARDEVICE) ? S_IFCHR : S_IFBLK;
	else if (g & BUILDKIT_GO_NAMEDPIPE)
		m |= S_IFIFO;
	else if (g & BUILDKIT_GO_SOCKET)
		m |= S_IFSOCK;
	else
		m |= S_IFREG;
	if (g & BUILDKIT_GO_SETUID)
		m |= S_ISUID;
	if (g & BUILDKIT_GO_SETGID)
		m |= S_ISGID;
	if (g & BUILDKIT_GO_STICKY)
		m |= S_ISVTX;
	return m;
}

bool buildkit_go_has_data(uint32_t g)
{
	return (g & BUILDKIT_GO_TYPE) == 0;
}

static char *xstrndup(const struct kiln_host *host, const char *s, size_t n)
{
	char *d = host->alloc(n + 1);
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

static char *xstrdup(const struct kiln_host *host, const char *s)
{
	return xstrndup(host, s, strlen(s));
}

/* Grow *p (elements of size sz) so that it holds at least need. */
static void grow(const struct kiln_host *host, void *p, size_t *cap, size_t need, size_t sz)
{
	if (need <= *cap)
		return;
	size_t n = *cap ? *cap * 2 : 16;
	while (n < need)
		n *= 2;
	*(void **)p = host->realloc(*(void **)p, n * sz);
	*cap = n;
}

static void close_keep_errno(int fd)
{
	int e = errno;
	close(fd);
	errno = e;
}

/* Go's path.Clean, in place: "./a//b/../c/" -> "a/c", "" -> ".". */
static void path_clean(char *p)
{
	bool rooted = p[0] == '/';
	size_t r = 0, w = 0, dotdot = 0, n = strlen(p);
	if (rooted) {
		w = r = 1;
		dotdot = 1;
	}
	while (r < n) {
		if (p[r] == '/') {
			r++;
		} else if (p[r] == '.' && (r + 1 == n || p[r + 1] == '/')) {
			r++;
		} else if (p[r] == '.' && p[r + 1] == '.' && (r + 2 == n || p[r + 2] == '/')) {
			r += 2;
			if (w > dotdot) {
				w--;
				while (w > dotdot && p[w] != '/')
					w--;
			} else if (!rooted) {
				if (w > 0)
					p[w++] = '/';
				p[w++] = '.';
				p[w++] = '.';
				dotdot = w;
			}
		} else {
			if ((rooted && w != 1) || (!rooted && w != 0))
				p[w++] = '/';
			for (; r < n && p[r] != '/'; r++)
				p[w++] = p[r];
		}
	}
	if (w == 0)
		p[w++] = '.';
	p[w] = '\0';
}

/* A path the receiver accepts: relative, '/'-separated and clean. */
static bool path_ok(const char *p)
{
	if (!p[0] || p[0] == '/')
		return false;
	for (const char *c = p;;) {
		const char *e = strchr(c, '/');
		size_t n = e ? (size_t)(e - c) : strlen(c);
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (!e)
			return true;
		c = e + 1;
	}
}

/* Open directory rel[0..len) below dirfd one component at a time, never
 * following a symlink and refusing "." and ".." ("" gives a copy of
 * dirfd). An O_PATH fd, or -1 with errno (ENOTDIR or ELOOP where a
 * component is a symlink). */
static int open_dir_beneath(int dirfd, const char *rel, size_t len)
{
	int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	const char *p = rel, *end = rel + len;
	char comp[NAME_MAX + 1];
	while (fd >= 0 && p < end) {
		const char *slash = memchr(p, '/', (size_t)(end - p));
		size_t n = (size_t)((slash ? slash : end) - p);
		if (n == 0 || n > NAME_MAX || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.')) {
			close(fd);
			errno = n > NAME_MAX ? ENAMETOOLONG : EINVAL;
			return -1;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		int nfd = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close_keep_errno(fd);
		fd = nfd;
		p += n + (slash != NULL);
	}
	return fd;
}

/* The directory holding rel, opened below dirfd; *base points into rel. */
static int open_parent_beneath(int dirfd, const char *rel, const char **base)
{
	const char *slash = strrchr(rel, '/');
	*base = slash ? slash + 1 : rel;
	if (!path_ok(*base)) {
		errno = EINVAL;
		return -1;
	}
	return open_dir_beneath(dirfd, rel, slash ? (size_t)(slash - rel) : 0);
}

/* Open file rel below dirfd (flags get O_NOFOLLOW). */
static int open_beneath(int dirfd, const char *rel, int flags, mode_t mode)
{
	const char *base;
	int pfd = open_parent_beneath(dirfd, rel, &base);
	if (pfd < 0)
		return -1;
	int fd = openat(pfd, base, flags | O_NOFOLLOW | O_CLOEXEC, mode);
	close_keep_errno(pfd);
	return fd;
}

static ssize_t read_full(int fd, uint8_t *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static int write_full(int fd, const uint8_t *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, buf, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* Pack and send one Packet. */
static int send_packet(const struct kiln_host *host, const struct buildkit_pipe *pipe,
		       const Fsutil__Types__Packet *p)
{
	uint8_t small[1024];
	size_t len = fsutil__types__packet__get_packed_size(p);
	uint8_t *buf = len <= sizeof(small) ? small : host->alloc(len);
	fsutil__types__packet__pack(p, buf);
	int rc = pipe->send(pipe->ctx, buf, len);
	if (buf != small)
		host->free(buf);
	return rc;
}

static int send_simple(const struct kiln_host *host, const struct buildkit_pipe *pipe,
		       Fsutil__Types__PacketType type, uint32_t id, const char *data)
{
	Fsutil__Types__Packet p = FSUTIL__TYPES__PACKET__INIT;
	p.type = type;
	p.id = id;
	if (data) {
		p.data.data = (uint8_t *)data;
		p.data.len = strlen(data);
	}
	return send_packet(host, pipe, &p);
}

static Fsutil__Types__Packet *unpack_packet(const struct kiln_host *host, const uint8_t *d,
					    size_t len)
{
	ProtobufCAllocator a;
	buildkit_allocator(host, &a);
	return fsutil__types__packet__unpack(&a, len, d);
}

static void free_packet(const struct kiln_host *host, Fsutil__Types__Packet *p)
{
	ProtobufCAllocator a;
	buildkit_allocator(host, &a);
	fsutil__types__packet__free_unpacked(p, &a);
}

/* Every value of metadata key (a heap array of borrowed strings). */
static const char **md_all(const struct kiln_host *host, const struct buildkit_scall *c,
			   const char *key, size_t *n)
{
	*n = buildkit_scall_md(c, key, NULL, 0);
	if (*n == 0)
		return NULL;
	const char **v = host->alloc(*n * sizeof(*v));
	*n = buildkit_scall_md(c, key, v, *n);
	return v;
}

/* ---- hard links: (dev, ino) -> first path sent ----------------------------------- */

struct link_slot {
	dev_t dev;
	ino_t ino;
	char *path; /* NULL: empty slot */
};

struct link_map {
	struct link_slot *slots;
	size_t cap, used;
};

static size_t link_hash(dev_t dev, ino_t ino)
{
	uint64_t h = ((uint64_t)ino * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)dev * 0xc2b2ae3d27d4eb4full);
	return (size_t)(h ^ (h >> 29));
}

static struct link_slot *link_find(struct link_map *m, dev_t dev, ino_t ino)
{
	size_t i = link_hash(dev, ino) & (m->cap - 1);
	while (m->slots[i].path && !(m->slots[i].dev == dev && m->slots[i].ino == ino))
		i = (i + 1) & (m->cap - 1);
	return &m->slots[i];
}

/* The path first sent for (dev, ino), or NULL after recording path as it. */
static const char *link_seen(const struct kiln_host *host, struct link_map *m, dev_t dev,
			     ino_t ino, const char *path)
{
	if ((m->used + 1) * 2 > m->cap) {
		struct link_map n = { .cap = m->cap ? m->cap * 2 : 64 };
		n.slots = host->alloc(n.cap * sizeof(*n.slots));
		memset(n.slots, 0, n.cap * sizeof(*n.slots));
		for (size_t i = 0; i < m->cap; i++)
			if (m->slots[i].path)
				*link_find(&n, m->slots[i].dev, m->slots[i].ino) = m->slots[i];
		n.used = m->used;
		host->free(m->slots);
		*m = n;
	}
	struct link_slot *s = link_find(m, dev, ino);
	if (s->path)
		return s->path;
	*s = (struct link_slot){ .dev = dev, .ino = ino, .path = xstrdup(host, path) };
	m->used++;
	return NULL;
}

static void link_map_free(const struct kiln_host *host, struct link_map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		host->free(m->slots[i].path);
	host->free(m->slots);
	*m = (struct link_map){ 0 };
}

/* ---- string lists -------------------------------------------------------------------- */

struct strv {
	char **v;
	size_t n, cap;
};

static void strv_push(const struct kiln_host *host, struct strv *s, char *owned)
{
	grow(host, &s->v, &s->cap, s->n + 1, sizeof(*s->v));
	s->v[s->n++] = owned;
}

static bool strv_has(const struct strv *s, const char *x)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], x) == 0)
			return true;
	return false;
}

static void strv_clear(const struct kiln_host *host, struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		host->free(s->v[i]);
	host->free(s->v);
	*s = (struct strv){ 0 };
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* fsutil's dedupePaths: drop what lies below the entry kept before it;
 * false when an entry is "." (no filter at all). */
static bool dedupe_paths(const struct kiln_host *host, struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], ".") == 0)
			return false;
	size_t w = 0;
	const char *last = "";
	for (size_t i = 0; i < s->n; i++) {
		size_t ll = strlen(last);
		if (strncmp(s->v[i], last, ll) == 0 && s->v[i][ll] == '/') {
			host->free(s->v[i]);
			continue;
		}
		s->v[w++] = s->v[i];
		last = s->v[w - 1];
	}
	s->n = w;
	return true;
}

/* ---- followpaths: symlinks on the way become include patterns ------------------------ */

struct resolver {
	const struct kiln_host *host;
	int rootfd;
	struct strv resolved;
	char err[512];
};

static bool has_wildcards(const char *name)
{
	for (; *name; name++) {
		if (*name == '\\' && name[1])
			name++;
		else if (*name == '*' || *name == '?' || *name == '[')
			return true;
	}
	return false;
}

/* a + "/" + b, cleaned (Go's filepath.Join of two non-empty parts). */
static char *join_clean(const struct kiln_host *host, const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *p = host->alloc(la + lb + 2);
	memcpy(p, a, la);
	p[la] = '/';
	memcpy(p + la + 1, b, lb + 1);
	if (!lb)
		p[la] = '\0';
	path_clean(p);
	return p;
}

/* The symlink targets at p (relative to the root), as absolute paths
 * ("/x": the root is "/"). A wildcard in p's last component (when allowed)
 * is expanded. 0, or -1 with r->err. */
static int read_symlink(struct resolver *r, const char *p, bool wildcard, struct strv *out)
{
	const struct kiln_host *host = r->host;
	const char *base;
	const char *slash = strrchr(p, '/');
	size_t dirlen = slash ? (size_t)(slash - p) : 0;
	base = slash ? slash + 1 : p;
	if (strcmp(p, ".") == 0)
		return 0; /* the root is a directory */
	int dfd = open_dir_beneath(r->rootfd, p, dirlen);
	if (dfd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		snprintf(r->err, sizeof(r->err), "followpath %s: %s", p, strerror(errno));
		return -1;
	}
	int rc = 0;
	if (wildcard && has_wildcards(base)) {
		int lfd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
		if (!d) {
			if (lfd >= 0)
				close(lfd);
			snprintf(r->err, sizeof(r->err), "followpath %s: readdir: %s", p,
				 strerror(errno));
			close(dfd);
			return -1;
		}
		struct strv names = { 0 };
		struct dirent *de;
		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
			    fnmatch(base, de->d_name, 0) == 0)
				strv_push(host, &names, xstrdup(host, de->d_name));
		closedir(d);
		if (names.n > 1)
			qsort(names.v, names.n, sizeof(*names.v), cmp_str);
		for (size_t i = 0; i < names.n && rc == 0; i++) {
			char *q = dirlen ? host->alloc(dirlen + strlen(names.v[i]) + 2) : NULL;
			if (q) {
				memcpy(q, p, dirlen);
				q[dirlen] = '/';
				memcpy(q + dirlen + 1, names.v[i], strlen(names.v[i]) + 1);
			}
			rc = read_symlink(r, q ? q : names.v[i], false, out);
			host->free(q);
		}
		strv_clear(host, &names);
		close(dfd);
		return rc;
	}
	struct stat st;
	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT && errno != ENOTDIR) {
			snprintf(r->err, sizeof(r->err), "followpath %s: %s", p, strerror(errno));
			rc = -1;
		}
		close(dfd);
		return rc;
	}
	if (!S_ISLNK(st.st_mode)) {
		close(dfd);
		return 0;
	}
	char link[PATH_MAX + 1];
	ssize_t ll = readlinkat(dfd, base, link, sizeof(link) - 1);
	close(dfd);
	if (ll < 0) {
		snprintf(r->err, sizeof(r->err), "followpath %s: readlink: %s", p, strerror(errno));
		return -1;
	}
	link[ll] = '\0';
	path_clean(link);
	if (link[0] == '/') {
		strv_push(host, out, xstrdup(host, link));
	} else {
		/* "/" + dir(p) + "/" + link, cleaned: ".." stops at the root */
		char *d = xstrndup(host, p, dirlen);
		char *rel = join_clean(host, dirlen ? d : ".", link);
		char *abs = join_clean(host, "/", rel);
		strv_push(host, out, abs);
		host->free(rel);
		host->free(d);
	}
	return 0;
}

/* fsutil's symlinkResolver.append. */
static int resolve_append(struct resolver *r, const char *path, int depth)
{
	const struct kiln_host *host = r->host;
	if (depth > MAX_FOLLOW) {
		snprintf(r->err, sizeof(r->err), "followpath %s: too many levels of symbolic links",
			 path);
		return -1;
	}
	char *p = join_clean(host, ".", path); /* "/x" -> "x", "a/../b" -> "b" */
	if (strcmp(p, "..") == 0 || strncmp(p, "../", 3) == 0) {
		snprintf(r->err, sizeof(r->err), "followpath %s leaves the directory", path);
		host->free(p);
		return -1;
	}
	char *current = xstrdup(host, ".");
	const char *rest = p;
	int rc = 0;
	for (;;) {
		const char *slash = strchr(rest, '/');
		size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
		char *part = xstrndup(host, rest, n);
		char *next = strcmp(current, ".") == 0 ? xstrdup(host, part)
						       : join_clean(host, current, part);
		host->free(part);
		host->free(current);
		current = next;
		struct strv targets = { 0 };
		if (read_symlink(r, current, true, &targets) < 0) {
			rc = -1;
			break;
		}
		rest = slash ? slash + 1 : "";
		if ((!*rest || targets.n) && strv_has(&r->resolved, current)) {
			strv_clear(host, &targets);
			break;
		}
		if (targets.n) {
			strv_push(host, &r->resolved, xstrdup(host, current));
			for (size_t i = 0; i < targets.n && rc == 0; i++) {
				char *t = *rest ? join_clean(host, targets.v[i], rest)
						: xstrdup(host, targets.v[i]);
				rc = resolve_append(r, t, depth + 1);
				host->free(t);
			}
			strv_clear(host, &targets);
			break;
		}
		if (!*rest) {
			strv_push(host, &r->resolved, xstrdup(host, current));
			break;
		}
	}
	host->free(current);
	host->free(p);
	return rc;
}

/* ---- patterns ----------------------------------------------------------------------- */

/* What the walk needs to know of one pattern to skip whole directories
 * (fsutil's patternWithoutTrailingGlob). */
struct pat_info {
	char *prefix;   /* cleaned, without '!' or a trailing glob component */
	bool exception; /* '!' */
	bool meta;      /* prefix holds a pattern character */
};

struct filter {
	struct kiln_patterns *pm;
	struct pat_info *info;
	size_t n;
	bool exceptions;
};

static void filter_clear(const struct kiln_host *host, struct filter *f)
{
	if (f->pm)
		host->patterns_free(f->pm);
	for (size_t i = 0; i < f->n; i++)
		host->free(f->info[i].prefix);
	host->free(f->info);
	*f = (struct filter){ 0 };
}

static int filter_init(const struct kiln_host *host, const char *what, char **pats, size_t n,
		       struct filter *f, char *msg, size_t msgn)
{
	*f = (struct filter){ 0 };
	if (!KILN_HAS_FIELD(host, struct kiln_host, ignore_free)) {
		snprintf(msg, msgn, "this kiln cannot match %s (host table too old)", what);
		return -1;
	}
	struct kiln_err err = { 0 };
	if (host->patterns_compile((const char *const *)pats, n, &f->pm, &err) < 0) {
		snprintf(msg, msgn, "invalid %s: %s", what, err.msg);
		return -1;
	}
	f->exceptions = host->patterns_has_exceptions(f->pm);
	f->info = host->alloc((n ? n : 1) * sizeof(*f->info));
	for (size_t i = 0; i < n; i++) {
		const char *s = pats[i];
		while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
			s++;
		size_t l = strlen(s);
		while (l && (s[l - 1] == ' ' || (s[l - 1] >= '\t' && s[l - 1] <= '\r')))
			l--;
		if (!l)
			continue;
		struct pat_info pi = { 0 };
		if (s[0] == '!') {
			pi.exception = true;
			s++;
			l--;
			while (l && (*s == ' ' || (*s >= '\t' && *s <= '\r'))) {
				s++;
				l--;
			}
		}
		char *p = xstrndup(host, s, l);
		path_clean(p);
		if (p[0] == '/')
			memmove(p, p + 1, strlen(p));
		l = strlen(p);
		if (l >= 3 && strcmp(p + l - 3, "/**") == 0)
			p[l -= 3] = '\0';
		if (l >= 2 && strcmp(p + l - 2, "/*") == 0)
			p[l -= 2] = '\0';
		pi.meta = strpbrk(p, "*[]?^\\") != NULL;
		pi.prefix = p;
		f->info[f->n++] = pi;
	}
	return 0;
}

/* Can a pattern of kind exception (or not) match below directory dir?
 * (Some pattern's prefix is dir itself or lies below it, or the patterns
 * have wildcards and nothing can be ruled out.) */
static bool filter_may_match_below(const struct filter *f, bool exception, const char *dir)
{
	size_t dl = strlen(dir);
	for (size_t i = 0; i < f->n; i++) {
		const struct pat_info *pi = &f->info[i];
		if (pi->exception != exception)
			continue;
		if (pi->meta)
			return true;
		if (strncmp(pi->prefix, dir, dl) == 0 &&
		    (pi->prefix[dl] == '/' || pi->prefix[dl] == '\0'))
			return true;
	}
	return false;
}

/* ---- the walk ------------------------------------------------------------------------- */

struct wframe {
	DIR *dir;        /* the directory, read once; dirfd() for *at calls */
	char **names;    /* its entries, sorted byte-wise */
	size_t n, next;
	size_t plen;     /* length of its path in walk.path (0: the root) */
	bool sent;       /* its STAT went out (the root counts as sent) */
	struct stat st;  /* for sending it late, as a parent of a kept entry */
};

struct walk;
/* Send one entry (path, its lstat, symlink target or hard link's first
 * path, or NULL). 0 or -1 with walk.err set. */
typedef int walk_emit_fn(struct walk *w, const char *path, const struct stat *st,
			 const char *linkname);

struct walk {
	const struct kiln_host *host;
	walk_emit_fn *emit;
	void *ctx;
	bool filtering;
	struct filter inc, exc;
	bool has_inc, has_exc;
	struct wframe *frames;
	size_t depth, cap;
	char *path;
	size_t pcap;
	struct link_map links;
	char err[512];
};

static int read_names(const struct kiln_host *host, DIR *d, char ***names, size_t *n)
{
	size_t cap = 0;
	*names = NULL;
	*n = 0;
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		grow(host, names, &cap, *n + 1, sizeof(**names));
		(*names)[(*n)++] = xstrdup(host, de->d_name);
		errno = 0;
	}
	if (errno)
		return -1;
	if (*n > 1)
		qsort(*names, *n, sizeof(**names), cmp_str);
	return 0;
}

static void frame_clear(const struct kiln_host *host, struct wframe *f)
{
	for (size_t i = 0; i < f->n; i++)
		host->free(f->names[i]);
	host->free(f->names);
	if (f->dir)
		closedir(f->dir);
	*f = (struct wframe){ 0 };
}

/* Push a frame for the directory fd (taken over). */
static int walk_push(struct walk *w, int fd, size_t plen, bool sent, const struct stat *st)
{
	DIR *d = fdopendir(fd);
	if (!d) {
		close_keep_errno(fd);
		return -1;
	}
	struct wframe f = { .dir = d, .plen = plen, .sent = sent };
	if (st)
		f.st = *st;
	if (read_names(w->host, d, &f.names, &f.n) < 0) {
		int e = errno;
		frame_clear(w->host, &f);
		errno = e;
		return -1;
	}
	grow(w->host, &w->frames, &w->cap, w->depth + 1, sizeof(*w->frames));
	w->frames[w->depth++] = f;
	return 0;
}

static void walk_clear(struct walk *w)
{
	while (w->depth)
		frame_clear(w->host, &w->frames[--w->depth]);
	w->host->free(w->frames);
	w->host->free(w->path);
	filter_clear(w->host, &w->inc);
	filter_clear(w->host, &w->exc);
	link_map_free(w->host, &w->links);
	w->frames = NULL;
	w->path = NULL;
}

/* Send the parents of the current entry that were passed over (not
 * included, or excluded with exceptions below them). */
static int walk_send_parents(struct walk *w)
{
	for (size_t i = 1; i < w->depth; i++) {
		struct wframe *f = &w->frames[i];
		if (f->sent)
			continue;
		char c = w->path[f->plen];
		w->path[f->plen] = '\0';
		int rc = w->emit(w, w->path, &f->st, NULL);
		w->path[f->plen] = c;
		if (rc < 0)
			return -1;
		f->sent = true;
	}
	return 0;
}

/* Visit the next entry: 1 while there is more, 0 at the end, -1 with
 * w->err on an error. */
static int walk_step(struct walk *w)
{
	const struct kiln_host *host = w->host;
	if (w->depth == 0)
		return 0;
	struct wframe *f = &w->frames[w->depth - 1];
	if (f->next == f->n) {
		frame_clear(host, f);
		w->depth--;
		return w->depth ? 1 : 0;
	}
	const char *name = f->names[f->next++];
	size_t nl = strlen(name), plen = f->plen ? f->plen + 1 + nl : nl;
	grow(host, &w->path, &w->pcap, plen + 1, 1);
	if (f->plen)
		w->path[f->plen] = '/';
	memcpy(w->path + (f->plen ? f->plen + 1 : 0), name, nl + 1);
	const char *path = w->path;
	int dfd = dirfd(f->dir);

	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 1; /* gone since the directory was read */
		snprintf(w->err, sizeof(w->err), "lstat %s: %s", path, strerror(errno));
		return -1;
	}
	if (S_ISSOCK(st.st_mode))
		return 1;
	bool isdir = S_ISDIR(st.st_mode), skip = false;
	if (w->has_inc && !host->patterns_match(w->inc.pm, path)) {
		if (isdir && !filter_may_match_below(&w->inc, false, path))
			return 1;
		skip = true;
	}
	if (w->has_exc && host->patterns_match(w->exc.pm, path)) {
		if (isdir && (!w->exc.exceptions || !filter_may_match_below(&w->exc, true, path)))
			return 1;
		skip = true;
	}

	int sub = -1;
	if (isdir) {
		sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0) {
			if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP ||
			    (skip && errno == EACCES))
				return 1;
			snprintf(w->err, sizeof(w->err), "open %s: %s", path, strerror(errno));
			return -1;
		}
	}
	if (!skip) {
		char link[PATH_MAX + 1];
		const char *linkname = NULL;
		if (S_ISLNK(st.st_mode)) {
			ssize_t ll = readlinkat(dfd, name, link, sizeof(link) - 1);
			if (ll < 0) {
				snprintf(w->err, sizeof(w->err), "readlink %s: %s", path,
					 strerror(errno));
				return -1;
			}
			link[ll] = '\0';
			linkname = link;
		}
		if (walk_send_parents(w) < 0 || w->emit(w, path, &st, linkname) < 0) {
			if (sub >= 0)
				close(sub);
			return -1;
		}
	}
	if (isdir && walk_push(w, sub, plen, !skip, &st) < 0) {
		if (skip && errno == EACCES)
			return 1;
		snprintf(w->err, sizeof(w->err), "readdir %s: %s", w->path, strerror(errno));
		return -1;
	}
	return 1;
}

/* ---- FileSync/DiffCopy: the sender ------------------------------------------------------ */

struct req {
	uint32_t id;
	char *path;
};

struct sender {
	const struct kiln_host *host;
	const struct buildkit_pipe *pipe;
	int rootfd;
	struct walk walk;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* under mu: by ID, the path of a data-bearing entry not requested yet */
	char **files;
	size_t n_files, cap_files;
	struct req *queue; /* REQs to answer, from head */
	size_t q_head, q_len, q_cap;
	bool fin, abort, walk_done;
	bool told;         /* the sender failed on its own and sent ERR */
	char err[512];     /* why the sender failed */
	uint8_t *buf;      /* DATA_HDR + BUILDKIT_FSUTIL_CHUNK */
};

static int sender_emit(struct walk *w, const char *path, const struct stat *st,
		       const char *linkname)
{
	struct sender *sd = w->ctx;
	const struct kiln_host *host = sd->host;
	Fsutil__Types__Stat m = FSUTIL__TYPES__STAT__INIT;
	m.path = (char *)path;
	m.mode = buildkit_go_mode(st->st_mode);
	m.modtime = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	if (!S_ISDIR(st->st_mode)) {
		/* fsutil reports the real size for hard links too (its
		 * mkstat overwrites the 0 set for them) */
		m.size = st->st_size;
		if (S_ISBLK(st->st_mode) || S_ISCHR(st->st_mode)) {
			m.devmajor = major(st->st_rdev);
			m.devminor = minor(st->st_rdev);
		}
	}
	if (linkname) {
		m.linkname = (char *)linkname;
	} else if (!S_ISDIR(st->st_mode) && st->st_nlink > 1) {
		const char *first = link_seen(host, &w->links, st->st_dev, st->st_ino, path);
		if (first)
			m.linkname = (char *)first;
	}
	pthread_mutex_lock(&sd->mu);
	grow(host, &sd->files, &sd->cap_files, sd->n_files + 1, sizeof(*sd->files));
	sd->files[sd->n_files++] = buildkit_go_has_data(m.mode) ? xstrdup(host, path) : NULL;
	pthread_mutex_unlock(&sd->mu);
	Fsutil__Types__Packet p = FSUTIL__TYPES__PACKET__INIT;
	p.type = PKT_STAT;
	p.stat = &m;
	if (send_packet(host, sd->pipe, &p) < 0) {
		snprintf(w->err, sizeof(w->err), "sending the stat of %s: the call is gone", path);
		return -1;
	}
	return 0;
}

/* Open regular file rel below dirfd for reading, never through a symlink:
 * one openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) where the kernel has
 * it (Linux 5.6), else open_beneath's walk, one openat per component. */
static int open_read_beneath(int dirfd, const char *rel)
{
#ifdef SYS_openat2
	static int no_openat2; /* ENOSYS, or refused by a seccomp filter */
	if (!__atomic_load_n(&no_openat2, __ATOMIC_RELAXED)) {
		struct open_how how = {
			.flags = O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
		};
		int fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
		if (fd >= 0 || (errno != ENOSYS && errno != EPERM && errno != E2BIG))
			return fd;
		__atomic_store_n(&no_openat2, 1, __ATOMIC_RELAXED);
	}
#endif
	return open_beneath(dirfd, rel, O_RDONLY | O_NONBLOCK, 0);
}

/* Answer one REQ: DATA chunks, then an empty DATA. A file that cannot be
 * opened (gone, or no longer a regular file) gets only the empty DATA, as
 * fsutil does. A short read is the end of the file (read_full reads until
 * the chunk is full or EOF), so a small file is one read and two packets.
 * 0, or -1 with sd->err. */
static int sender_serve(struct sender *sd, const struct req *q)
{
	uint8_t *data = sd->buf + DATA_HDR;
	int fd = open_read_beneath(sd->rootfd, q->path);
	const char *why = fd < 0 ? strerror(errno) : NULL;
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		fd = -1;
		why = "no longer a regular file";
	}
	if (fd < 0)
		sd->host->log(KILN_LOG_DEBUG, "buildkit: filesync: %s: %s (sending it empty)",
			      q->path, why);
	bool eof = fd < 0;
	for (;;) {
		ssize_t n = 0;
		if (!eof) {
			n = read_full(fd, data, BUILDKIT_FSUTIL_CHUNK);
			if (n < 0) {
				snprintf(sd->err, sizeof(sd->err), "read %s: %s", q->path,
					 strerror(errno));
				close(fd);
				return -1;
			}
			eof = n < BUILDKIT_FSUTIL_CHUNK;
		}
		uint8_t h[DATA_HDR];
		size_t hl = 0;
		h[hl++] = 0x08;
		h[hl++] = PKT_DATA;
		if (q->id) {
			h[hl++] = 0x18;
			hl += put_varint(h + hl, q->id);
		}
		if (n > 0) {
			h[hl++] = 0x22;
			hl += put_varint(h + hl, (uint64_t)n);
		}
		memcpy(data - hl, h, hl);
		if (sd->pipe->send(sd->pipe->ctx, data - hl, hl + (size_t)n) < 0) {
			snprintf(sd->err, sizeof(sd->err), "sending %s: the call is gone", q->path);
			if (fd >= 0)
				close(fd);
			return -1;
		}
		if (n > 0 && eof)
			continue; /* the empty DATA that ends the file */
		if (n == 0)
			break;
		pthread_mutex_lock(&sd->mu);
		bool stop = sd->abort;
		pthread_mutex_unlock(&sd->mu);
		if (stop) {
			snprintf(sd->err, sizeof(sd->err), "cancelled");
			close(fd);
			return -1;
		}
	}
	if (fd >= 0)
		close(fd);
	return 0;
}

/* The sender thread: STATs as the walk goes, with the REQs that arrive
 * answered between them; then the end marker; then the remaining REQs,
 * until the handler sees FIN (or gives up). */
static void *sender_main(void *arg)
{
	struct sender *sd = arg;
	for (;;) {
		pthread_mutex_lock(&sd->mu);
		while (!sd->abort && !sd->fin && sd->q_len == 0 && sd->walk_done)
			pthread_cond_wait(&sd->cv, &sd->mu);
		if (sd->abort || (sd->fin && sd->q_len == 0)) {
			pthread_mutex_unlock(&sd->mu);
			break;
		}
		struct req q = { 0 };
		bool have = sd->q_len > 0;
		if (have) {
			q = sd->queue[sd->q_head++];
			if (--sd->q_len == 0)
				sd->q_head = 0;
		}
		pthread_mutex_unlock(&sd->mu);
		int rc;
		if (have) {
			rc = sender_serve(sd, &q);
			sd->host->free(q.path);
		} else {
			rc = walk_step(&sd->walk);
			if (rc < 0) {
				snprintf(sd->err, sizeof(sd->err), "%s", sd->walk.err);
			} else if (rc == 0) {
				if (sd->pipe->send(sd->pipe->ctx, "", 0) < 0) {
					snprintf(sd->err, sizeof(sd->err),
						 "sending the last stat: the call is gone");
					rc = -1;
				}
				pthread_mutex_lock(&sd->mu);
				sd->walk_done = true;
				pthread_mutex_unlock(&sd->mu);
			}
		}
		if (rc < 0) {
			pthread_mutex_lock(&sd->mu);
			sd->told = !sd->abort;
			pthread_mutex_unlock(&sd->mu);
			/* tell the daemon, which then ends the call */
			if (sd->told)
				send_simple(sd->host, sd->pipe, PKT_ERR, 0, sd->err);
			break;
		}
	}
	return NULL;
}

/* Fill sd->walk's filters from the call's metadata (fsutil's Walk
 * options). 0, or -1 with msg. */
static int sender_filters(struct sender *sd, const struct buildkit_scall *c, char *msg,
			  size_t msgn)
{
	const struct kiln_host *host = sd->host;
	size_t n_inc, n_exc, n_follow;
	const char **inc = md_all(host, c, "include-patterns", &n_inc);
	const char **exc = md_all(host, c, "exclude-patterns", &n_exc);
	const char **follow = md_all(host, c, "followpaths", &n_follow);
	struct strv incs = { 0 };
	int rc = 0;
	for (size_t i = 0; i < n_inc; i++)
		strv_push(host, &incs, xstrdup(host, inc[i]));
	if (n_follow) {
		struct resolver r = { .host = host, .rootfd = sd->rootfd };
		for (size_t i = 0; i < n_follow && rc == 0; i++)
			rc = resolve_append(&r, follow[i], 0);
		if (rc < 0) {
			snprintf(msg, msgn, "%s", r.err);
		} else {
			if (r.resolved.n > 1)
				qsort(r.resolved.v, r.resolved.n, sizeof(*r.resolved.v), cmp_str);
			if (dedupe_paths(host, &r.resolved)) {
				for (size_t i = 0; i < r.resolved.n; i++)
					strv_push(host, &incs, r.resolved.v[i]);
				r.resolved.n = 0;
				if (!dedupe_paths(host, &incs))
					strv_clear(host, &incs);
			}
		}
		strv_clear(host, &r.resolved);
	}
	if (rc == 0 && incs.n) {
		rc = filter_init(host, "include patterns", incs.v, incs.n, &sd->walk.inc, msg, msgn);
		sd->walk.has_inc = rc == 0;
	}
	if (rc == 0 && n_exc) {
		rc = filter_init(host, "exclude patterns", (char **)exc, n_exc, &sd->walk.exc, msg,
				 msgn);
		sd->walk.has_exc = rc == 0;
	}
	strv_clear(host, &incs);
	host->free(inc);
	host->free(exc);
	host->free(follow);
	return rc;
}

static void sender_free(struct sender *sd)
{
	const struct kiln_host *host = sd->host;
	walk_clear(&sd->walk);
	for (size_t i = 0; i < sd->n_files; i++)
		host->free(sd->files[i]);
	host->free(sd->files);
	for (size_t i = 0; i < sd->q_len; i++)
		host->free(sd->queue[sd->q_head + i].path);
	host->free(sd->queue);
	host->free(sd->buf);
	if (sd->rootfd >= 0)
		close(sd->rootfd);
	pthread_mutex_destroy(&sd->mu);
	pthread_cond_destroy(&sd->cv);
	host->free(sd);
}

grpc_status_code buildkit_filesync_diffcopy(struct buildkit_session *s, struct buildkit_scall *c,
					    const struct buildkit_pipe *pipe, char *details,
					    size_t n)
{
	const struct kiln_host *host = s->host;
	const char *name = NULL, *root = NULL;
	if (buildkit_scall_md(c, "dir-name", &name, 1) == 0)
		name = "";
	for (size_t i = 0; i < s->n_dirs && !root; i++)
		if (strcmp(s->dirs[i].key, name) == 0)
			root = s->dirs[i].value;
	if (!root) {
		snprintf(details, n, "no access allowed to dir \"%s\"", name);
		return GRPC_STATUS_NOT_FOUND;
	}

	struct sender *sd = host->alloc(sizeof(*sd));
	*sd = (struct sender){ .host = host, .pipe = pipe, .rootfd = -1 };
	pthread_mutex_init(&sd->mu, NULL);
	pthread_cond_init(&sd->cv, NULL);
	sd->walk = (struct walk){ .host = host, .emit = sender_emit, .ctx = sd };
	sd->buf = host->alloc(DATA_HDR + BUILDKIT_FSUTIL_CHUNK);

	/* the served directory itself may be reached through a symlink */
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (sd->rootfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0 ||
	    walk_push(&sd->walk, fd, 0, true, NULL) < 0) {
		snprintf(details, n, "%s %s: %s", name, root, strerror(errno));
		if (fd >= 0 && sd->rootfd < 0)
			close(fd);
	} else if (sender_filters(sd, c, details, n) == 0) {
		details[0] = '\0';
	}
	if (details[0]) {
		send_simple(host, pipe, PKT_ERR, 0, details);
		sender_free(sd);
		return GRPC_STATUS_UNKNOWN;
	}

	pthread_t th;
	if (pthread_create(&th, NULL, sender_main, sd) != 0) {
		snprintf(details, n, "cannot start the sender thread");
		sender_free(sd);
		return GRPC_STATUS_INTERNAL;
	}
	grpc_status_code code = GRPC_STATUS_OK;
	for (;;) {
		const uint8_t *d;
		size_t len;
		int r = pipe->recv(pipe->ctx, &d, &len);
		if (r <= 0) {
			code = r < 0 ? GRPC_STATUS_CANCELLED : GRPC_STATUS_ABORTED;
			snprintf(details, n, "%s", r < 0 ? "the daemon cancelled the transfer"
							 : "the daemon closed the stream before FIN");
			break;
		}
		Fsutil__Types__Packet *p = unpack_packet(host, d, len);
		if (!p) {
			code = GRPC_STATUS_INVALID_ARGUMENT;
			snprintf(details, n, "cannot decode a packet from the daemon");
			break;
		}
		bool done = false;
		if (p->type == PKT_REQ) {
			pthread_mutex_lock(&sd->mu);
			char *path = p->id < sd->n_files ? sd->files[p->id] : NULL;
			if (path) {
				sd->files[p->id] = NULL;
				grow(host, &sd->queue, &sd->q_cap, sd->q_head + sd->q_len + 1,
				     sizeof(*sd->queue));
				sd->queue[sd->q_head + sd->q_len++] = (struct req){ p->id, path };
				pthread_cond_signal(&sd->cv);
			}
			pthread_mutex_unlock(&sd->mu);
			if (!path) {
				code = GRPC_STATUS_INVALID_ARGUMENT;
				snprintf(details, n, "invalid file id %u", p->id);
				done = true;
			}
		} else if (p->type == PKT_FIN) {
			pthread_mutex_lock(&sd->mu);
			sd->fin = true;
			pthread_cond_signal(&sd->cv);
			pthread_mutex_unlock(&sd->mu);
			done = true;
		} else if (p->type == PKT_ERR) {
			code = GRPC_STATUS_UNKNOWN;
			snprintf(details, n, "error from receiver: %.*s", (int)p->data.len,
				 (const char *)p->data.data);
			done = true;
		}
		free_packet(host, p);
		if (done)
			break;
	}
	pthread_mutex_lock(&sd->mu);
	if (code != GRPC_STATUS_OK)
		sd->abort = true;
	pthread_cond_signal(&sd->cv);
	pthread_mutex_unlock(&sd->mu);
	pthread_join(th, NULL);
	if (sd->told) {
		/* the walk or a read failed and the daemon was told (ERR); it
		 * ended the call then: the cause is ours */
		code = GRPC_STATUS_UNKNOWN;
		snprintf(details, n, "%s", sd->err);
	} else if (code == GRPC_STATUS_OK && send_simple(host, pipe, PKT_FIN, 0, NULL) < 0) {
		code = GRPC_STATUS_CANCELLED;
		snprintf(details, n, "the daemon cancelled the transfer");
	}
	sender_free(sd);
	return code;
}

/* ---- FileSend/DiffCopy: the receivers ----------------------------------------------------- */

/* A data-bearing file waiting for its REQ, or requested. */
struct rfile {
	uint32_t id;
	int fd;         /* open while requested */
	uint32_t mode;  /* Go FileMode */
	int64_t mtime;  /* ns */
	char *path;
};

struct rdir {
	char *path;
	uint32_t mode;
	int64_t mtime;
};

struct receiver {
	const struct kiln_host *host;
	const struct buildkit_pipe *pipe;
	int rootfd;      /* the export's temp directory */
	char *ppath;     /* the last parent directory opened, and its fd */
	int pfd;
	struct rfile *pending; /* not requested yet, from p_head */
	size_t p_head, p_len, p_cap;
	struct rfile inflight[BUILDKIT_FSUTIL_INFLIGHT];
	size_t n_inflight;
	struct rdir *dirs; /* in the order received, for their metadata at the end */
	size_t n_dirs, cap_dirs;
	uint32_t next_id;
	bool stats_done, fin_sent;
	char err[512];
};

static int recv_fail(struct receiver *r, const char *fmt, ...) KILN_PRINTF(2, 3);
static int recv_fail(struct receiver *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	return -1;
}

static void ns_to_times(int64_t ns, struct timespec ts[2])
{
	int64_t sec = ns / 1000000000, rem = ns % 1000000000;
	if (rem < 0) {
		rem += 1000000000;
		sec--;
	}
	ts[0].tv_sec = (time_t)sec;
	ts[0].tv_nsec = (long)rem;
	ts[1] = ts[0];
}

/* Why a path below the temp directory cannot be opened. */
static int recv_path_error(struct receiver *r, const char *what, const char *path)
{
	if (errno == ENOTDIR || errno == ELOOP)
		return recv_fail(r, "refusing %s %s: a parent is a symlink or not a directory",
				 what, path);
	return recv_fail(r, "%s %s: %s", what, path, strerror(errno));
}

/* The directory holding path (cached: entries arrive directory by
 * directory); *base points into path. */
static int recv_parent(struct receiver *r, const char *path, const char **base)
{
	const char *slash = strrchr(path, '/');
	*base = slash ? slash + 1 : path;
	size_t dl = slash ? (size_t)(slash - path) : 0;
	if (dl == 0)
		return r->rootfd;
	if (r->ppath && strlen(r->ppath) == dl && memcmp(r->ppath, path, dl) == 0)
		return r->pfd;
	if (r->ppath) {
		close(r->pfd);
		r->host->free(r->ppath);
		r->ppath = NULL;
	}
	int fd = open_dir_beneath(r->rootfd, path, dl);
	if (fd < 0)
		return -1;
	r->ppath = xstrndup(r->host, path, dl);
	r->pfd = fd;
	return fd;
}

static int recv_request(struct receiver *r, struct rfile *f)
{
	r->inflight[r->n_inflight++] = *f;
	if (send_simple(r->host, r->pipe, PKT_REQ, f->id, NULL) < 0)
		return recv_fail(r, "requesting %s: the call is gone", f->path);
	return 0;
}

/* Request pending files while fewer than BUILDKIT_FSUTIL_INFLIGHT are. */
static int recv_pump(struct receiver *r)
{
	while (r->n_inflight < BUILDKIT_FSUTIL_INFLIGHT && r->p_len) {
		struct rfile f = r->pending[r->p_head++];
		if (--r->p_len == 0)
			r->p_head = 0;
		f.fd = open_beneath(r->rootfd, f.path, O_WRONLY, 0);
		if (f.fd < 0) {
			recv_path_error(r, "open", f.path);
			r->host->free(f.path);
			return -1;
		}
		if (recv_request(r, &f) < 0)
			return -1;
	}
	return 0;
}

static int recv_stat(struct receiver *r, const Fsutil__Types__Stat *st)
{
	const struct kiln_host *host = r->host;
	uint32_t id = r->next_id++;
	const char *path = st->path, *base;
	if (!path_ok(path))
		return recv_fail(r, "refusing path \"%s\": not a clean relative path", path);
	int pfd = recv_parent(r, path, &base);
	if (pfd < 0)
		return recv_path_error(r, "create", path);
	uint32_t g = st->mode;
	mode_t pm = buildkit_posix_mode(g);
	struct timespec ts[2];
	ns_to_times(st->modtime, ts);
	if (g & BUILDKIT_GO_DIR) {
		/* owner-writable while it fills; its mode and mtime at the end */
		if (mkdirat(pfd, base, 0700) < 0)
			return recv_fail(r, "mkdir %s: %s", path, strerror(errno));
		grow(host, &r->dirs, &r->cap_dirs, r->n_dirs + 1, sizeof(*r->dirs));
		r->dirs[r->n_dirs++] = (struct rdir){ xstrdup(host, path), g, st->modtime };
		return 0;
	}
	if (g & BUILDKIT_GO_SYMLINK) {
		if (symlinkat(st->linkname, pfd, base) < 0)
			return recv_fail(r, "symlink %s: %s", path, strerror(errno));
		if (utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
			return recv_fail(r, "chtimes %s: %s", path, strerror(errno));
		return 0;
	}
	if (g & (BUILDKIT_GO_DEVICE | BUILDKIT_GO_NAMEDPIPE)) {
		dev_t dev = (g & BUILDKIT_GO_DEVICE)
				    ? makedev((unsigned)st->devmajor, (unsigned)st->devminor)
				    : 0;
		if (mknodat(pfd, base, (pm & S_IFMT) | 0600, dev) < 0)
			return recv_fail(r, "mknod %s: %s", path, strerror(errno));
		if (fchmodat(pfd, base, pm & 07777, 0) < 0 ||
		    utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
			return recv_fail(r, "chmod %s: %s", path, strerror(errno));
		return 0;
	}
	if (st->linkname[0]) { /* a hard link to an earlier file */
		const char *lbase;
		if (!path_ok(st->linkname))
			return recv_fail(r, "refusing link %s to \"%s\": not a clean relative path",
					 path, st->linkname);
		int lfd = open_parent_beneath(r->rootfd, st->linkname, &lbase);
		if (lfd < 0)
			return recv_path_error(r, "link to", st->linkname);
		int rc = linkat(lfd, lbase, pfd, base, 0);
		close_keep_errno(lfd);
		if (rc < 0)
			return recv_fail(r, "link %s to %s: %s", path, st->linkname, strerror(errno));
		return 0;
	}
	int fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return recv_fail(r, "create %s: %s", path, strerror(errno));
	struct rfile f = { .id = id, .fd = fd, .mode = g, .mtime = st->modtime };
	if (!buildkit_go_has_data(g)) { /* a socket or irregular file: empty */
		int rc = fchmod(fd, pm & 07777) < 0 || futimens(fd, ts) < 0 ? -1 : 0;
		close_keep_errno(fd);
		return rc < 0 ? recv_fail(r, "chmod %s: %s", path, strerror(errno)) : 0;
	}
	f.path = xstrdup(host, path);
	if (r->n_inflight < BUILDKIT_FSUTIL_INFLIGHT && r->p_len == 0)
		return recv_request(r, &f);
	close(fd);
	f.fd = -1;
	grow(host, &r->pending, &r->p_cap, r->p_head + r->p_len + 1, sizeof(*r->pending));
	r->pending[r->p_head + r->p_len++] = f;
	return 0;
}

static int recv_data(struct receiver *r, const Fsutil__Types__Packet *p)
{
	size_t i = 0;
	while (i < r->n_inflight && r->inflight[i].id != p->id)
		i++;
	if (i == r->n_inflight)
		return recv_fail(r, "invalid file request %u", p->id);
	struct rfile *f = &r->inflight[i];
	if (p->data.len) {
		if (write_full(f->fd, p->data.data, p->data.len) < 0)
			return recv_fail(r, "write %s: %s", f->path, strerror(errno));
		return 0;
	}
	/* done: mode after the data (a write clears setuid), then mtime */
	struct timespec ts[2];
	ns_to_times(f->mtime, ts);
	int rc = 0;
	if (fchmod(f->fd, buildkit_posix_mode(f->mode) & 07777) < 0 || futimens(f->fd, ts) < 0)
		rc = recv_fail(r, "chmod %s: %s", f->path, strerror(errno));
	if (close(f->fd) < 0 && rc == 0)
		rc = recv_fail(r, "write %s: %s", f->path, strerror(errno));
	r->host->free(f->path);
	*f = r->inflight[--r->n_inflight];
	return rc < 0 ? rc : recv_pump(r);
}

/* Everything written: directories' modes and mtimes, deepest first (a
 * read-only parent must stay writable until its children are done). */
static int recv_finish_dirs(struct receiver *r)
{
	for (size_t i = r->n_dirs; i-- > 0;) {
		const struct rdir *d = &r->dirs[i];
		const char *base;
		int pfd = recv_parent(r, d->path, &base);
		int fd = pfd < 0 ? -1
				 : openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return recv_path_error(r, "open", d->path);
		struct timespec ts[2];
		ns_to_times(d->mtime, ts);
		int rc = fchmod(fd, buildkit_posix_mode(d->mode) & 07777) < 0 ||
					 futimens(fd, ts) < 0
				 ? recv_fail(r, "chmod %s: %s", d->path, strerror(errno))
				 : 0;
		close(fd);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void receiver_clear(struct receiver *r)
{
	const struct kiln_host *host = r->host;
	for (size_t i = 0; i < r->p_len; i++)
		host->free(r->pending[r->p_head + i].path);
	host->free(r->pending);
	for (size_t i = 0; i < r->n_inflight; i++) {
		close(r->inflight[i].fd);
		host->free(r->inflight[i].path);
	}
	for (size_t i = 0; i < r->n_dirs; i++)
		host->free(r->dirs[i].path);
	host->free(r->dirs);
	if (r->ppath) {
		close(r->pfd);
		host->free(r->ppath);
	}
	if (r->rootfd >= 0)
		close(r->rootfd);
}

/* Kiln's side of the export failed: the solve's error says why, whether
 * the daemon saw the ERR packet or only the stream's end. */
static void export_failed(struct buildkit_session *s, const char *why)
{
	if (__atomic_load_n(&s->export_.failed, __ATOMIC_SEQ_CST))
		return;
	snprintf(s->export_.why, sizeof(s->export_.why), "%s", why);
	__atomic_store_n(&s->export_.failed, true, __ATOMIC_SEQ_CST);
}

/* Packet mode (the `local` exporter): the daemon walks, kiln asks for the
 * data, and finishes with FIN; the daemon answers FIN. */
static grpc_status_code recv_packets(struct buildkit_session *s, const struct buildkit_pipe *pipe,
				     char *details, size_t n)
{
	const struct kiln_host *host = s->host;
	struct receiver r = { .host = host, .pipe = pipe };
	r.rootfd = open(s->export_.tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (r.rootfd < 0) {
		snprintf(details, n, "open %s: %s", s->export_.tmp, strerror(errno));
		return GRPC_STATUS_INTERNAL;
	}
	grpc_status_code code = GRPC_STATUS_OK;
	bool tell = false; /* our failure: send ERR */
	for (;;) {
		const uint8_t *d;
		size_t len;
		int rc = pipe->recv(pipe->ctx, &d, &len);
		if (rc < 0) {
			code = GRPC_STATUS_CANCELLED;
			snprintf(details, n, "the daemon cancelled the export");
			break;
		}
		if (rc == 0) {
			if (!r.fin_sent) {
				code = GRPC_STATUS_ABORTED;
				snprintf(details, n, "the daemon closed the stream before the "
					 "export was complete");
			}
			break;
		}
		Fsutil__Types__Packet *p = unpack_packet(host, d, len);
		if (!p) {
			code = GRPC_STATUS_INVALID_ARGUMENT;
			snprintf(details, n, "cannot decode a packet from the daemon");
			tell = true;
			break;
		}
		int prc = 0;
		bool done = false;
		switch (p->type) {
		case PKT_STAT:
			if (r.stats_done)
				prc = recv_fail(&r, "a stat after the last one");
			else if (!p->stat)
				r.stats_done = true;
			else
				prc = recv_stat(&r, p->stat);
			break;
		case PKT_DATA:
			prc = recv_data(&r, p);
			break;
		case PKT_FIN:
			if (!r.fin_sent)
				prc = recv_fail(&r, "FIN before the export was complete");
			done = true;
			break;
		case PKT_ERR:
			code = GRPC_STATUS_UNKNOWN;
			snprintf(details, n, "error from sender: %.*s", (int)p->data.len,
				 (const char *)p->data.data);
			done = true;
			break;
		default:
			break;
		}
		free_packet(host, p);
		if (prc == 0 && !done && r.stats_done && !r.p_len && !r.n_inflight && !r.fin_sent) {
			prc = recv_finish_dirs(&r);
			if (prc == 0 && send_simple(host, pipe, PKT_FIN, 0, NULL) < 0)
				prc = recv_fail(&r, "sending FIN: the call is gone");
			r.fin_sent = prc == 0;
		}
		if (prc < 0) {
			/* the daemon shows it as "error from receiver: …": say where */
			code = GRPC_STATUS_UNKNOWN;
			snprintf(details, n, "export to %s: %s", s->export_.dest, r.err);
			tell = true;
			break;
		}
		if (done)
			break;
	}
	if (tell) {
		export_failed(s, details);
		send_simple(host, pipe, PKT_ERR, 0, details);
	}
	receiver_clear(&r);
	if (code == GRPC_STATUS_OK)
		__atomic_store_n(&s->export_.received, true, __ATOMIC_SEQ_CST);
	return code;
}

/* Raw mode (`tar`, `oci`, `docker`): BytesMessages appended to the file
 * until the daemon half-closes. */
static grpc_status_code recv_raw(struct buildkit_session *s, const struct buildkit_pipe *pipe,
				 char *details, size_t n)
{
	const struct kiln_host *host = s->host;
	int fd = open(s->export_.tmp, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(details, n, "open %s: %s", s->export_.tmp, strerror(errno));
		return GRPC_STATUS_INTERNAL;
	}
	ProtobufCAllocator a;
	buildkit_allocator(host, &a);
	grpc_status_code code = GRPC_STATUS_OK;
	for (;;) {
		const uint8_t *d;
		size_t len;
		int rc = pipe->recv(pipe->ctx, &d, &len);
		if (rc < 0) {
			code = GRPC_STATUS_CANCELLED;
			snprintf(details, n, "the daemon cancelled the export");
			break;
		}
		if (rc == 0)
			break;
		Moby__Buildkit__V1__BytesMessage *m =
			moby__buildkit__v1__bytes_message__unpack(&a, len, d);
		if (!m) {
			code = GRPC_STATUS_INVALID_ARGUMENT;
			snprintf(details, n, "cannot decode a message from the daemon");
			break;
		}
		rc = write_full(fd, m->data.data, m->data.len);
		moby__buildkit__v1__bytes_message__free_unpacked(m, &a);
		if (rc < 0) {
			code = GRPC_STATUS_INTERNAL;
			snprintf(details, n, "export to %s: write %s: %s", s->export_.dest,
				 s->export_.tmp, strerror(errno));
			export_failed(s, details);
			break;
		}
	}
	if (close(fd) < 0 && code == GRPC_STATUS_OK) {
		code = GRPC_STATUS_INTERNAL;
		snprintf(details, n, "export to %s: write %s: %s", s->export_.dest,
			 s->export_.tmp, strerror(errno));
		export_failed(s, details);
	}
	if (code == GRPC_STATUS_OK)
		__atomic_store_n(&s->export_.received, true, __ATOMIC_SEQ_CST);
	return code;
}

grpc_status_code buildkit_filesend_diffcopy(struct buildkit_session *s, struct buildkit_scall *c,
					    const struct buildkit_pipe *pipe, char *details,
					    size_t n)
{
	(void)c;
	if (s->export_.mode == BUILDKIT_EXPORT_NONE || !s->export_.tmp) {
		snprintf(details, n, "kiln asked for no export");
		return GRPC_STATUS_FAILED_PRECONDITION;
	}
	if (s->export_.mode == BUILDKIT_EXPORT_RAW)
		return recv_raw(s, pipe, details, n);
	return recv_packets(s, pipe, details, n);
}

/* ---- exports: a temp sibling, renamed over the destination on success ------------------- */

static mode_t current_umask(void)
{
	mode_t u = 022;
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return u;
	char line[256];
	unsigned v;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Umask: %o", &v) == 1) {
			u = (mode_t)v & 0777;
			break;
		}
	fclose(f);
	return u;
}

/* dest with trailing slashes dropped and, when it is a symlink, resolved
 * (the link stays; what it names is replaced). Heap. */
static char *dest_resolve(const struct kiln_host *host, const char *dest)
{
	char *d = xstrdup(host, dest);
	size_t l = strlen(d);
	while (l > 1 && d[l - 1] == '/')
		d[--l] = '\0';
	struct stat st;
	if (lstat(d, &st) == 0 && S_ISLNK(st.st_mode)) {
		char *real = realpath(d, NULL);
		if (real) {
			host->free(d);
			d = xstrdup(host, real);
			free(real);
		}
	}
	return d;
}

/* "<dir of path>/.<base of path>.kiln-<tag>XXXXXX" (heap). */
static char *sibling_template(const struct kiln_host *host, const char *path, const char *tag)
{
	const char *slash = strrchr(path, '/');
	size_t dl = slash ? (size_t)(slash - path) + 1 : 0;
	const char *base = path + dl;
	size_t n = dl + strlen(base) + strlen(tag) + 16;
	char *t = host->alloc(n);
	snprintf(t, n, "%.*s.%s.kiln-%sXXXXXX", (int)dl, path, base, tag);
	return t;
}

/* mkdir -p of path's parent directories. */
static int mkdir_parents(const struct kiln_host *host, const char *path)
{
	char *p = xstrdup(host, path);
	int rc = 0;
	for (char *s = strchr(p + 1, '/'); s && rc == 0; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdir(p, 0777) < 0 && errno != EEXIST)
			rc = -1;
		*s = '/';
	}
	int e = errno;
	host->free(p);
	errno = e;
	return rc;
}

/* Is a inside (or equal to) directory b? Both absolute and clean. */
static bool path_within(const char *a, const char *b)
{
	size_t bl = strlen(b);
	if (bl == 1 && b[0] == '/')
		return true;
	return strncmp(a, b, bl) == 0 && (a[bl] == '\0' || a[bl] == '/');
}

/* Replacing dest would delete something kiln must not: the file system
 * root, the current directory or one holding it, the home directory, or
 * a directory the build reads from. The reason, or NULL. */
static const char *dest_dangerous(const struct buildkit_session *s, const char *dest)
{
	char *real = realpath(dest, NULL);
	if (!real)
		return NULL;
	const char *why = NULL;
	char *cwd = realpath(".", NULL);
	const char *home = getenv("HOME");
	char *rhome = home && home[0] ? realpath(home, NULL) : NULL;
	if (strcmp(real, "/") == 0)
		why = "the root directory";
	else if (cwd && path_within(cwd, real))
		why = "the current directory or holds it";
	else if (rhome && path_within(rhome, real))
		why = "the home directory or holds it";
	for (size_t i = 0; i < s->n_dirs && !why; i++) {
		char *d = realpath(s->dirs[i].value, NULL);
		if (d && path_within(d, real))
			why = "a directory the build reads from, or holds one";
		free(d);
	}
	free(cwd);
	free(rhome);
	free(real);
	return why;
}

static const char *tmp_dir(void)
{
	const char *t = getenv("TMPDIR");
	return t && t[0] ? t : "/tmp";
}

int buildkit_export_prepare(struct buildkit_session *s, struct kiln_err *err)
{
	const struct kiln_host *host = s->host;
	struct buildkit_export *e = &s->export_;
	if (e->mode == BUILDKIT_EXPORT_NONE)
		return 0;
	e->received = false;
	if (!e->dest || !e->dest[0])
		return host->error(err, KILN_E_INVALID, "export: no destination (dest=)");
	bool raw = e->mode == BUILDKIT_EXPORT_RAW;
	if (!raw && strcmp(e->dest, "-") == 0)
		return host->error(err, KILN_E_INVALID,
				   "export: the local exporter writes a directory, not stdout");
	char *tmpl = NULL;
	if (raw && strcmp(e->dest, "-") == 0) {
		size_t l = strlen(tmp_dir()) + 32;
		tmpl = host->alloc(l);
		snprintf(tmpl, l, "%s/kiln-export-XXXXXX", tmp_dir());
	} else {
		char *dest = dest_resolve(host, e->dest);
		struct stat st;
		bool exists = stat(dest, &st) == 0;
		int rc = 0;
		const char *why;
		if (!raw && exists && !S_ISDIR(st.st_mode))
			rc = host->error(err, KILN_E_INVALID, "export destination %s exists and is "
					 "not a directory", e->dest);
		else if (raw && exists && S_ISDIR(st.st_mode))
			rc = host->error(err, KILN_E_INVALID, "export destination %s is a directory",
					 e->dest);
		else if (!raw && exists && (why = dest_dangerous(s, dest)))
			rc = host->error(err, KILN_E_INVALID, "export destination %s is %s, and an "
					 "export replaces its destination as a whole: name a new "
					 "or dedicated directory", e->dest, why);
		if (rc < 0) {
			host->free(dest);
			return rc;
		}
		if (raw && exists && !S_ISREG(st.st_mode)) {
			/* a device or pipe: written into at commit */
			size_t l = strlen(tmp_dir()) + 32;
			tmpl = host->alloc(l);
			snprintf(tmpl, l, "%s/kiln-export-XXXXXX", tmp_dir());
		} else {
			if (mkdir_parents(host, dest) < 0) {
				rc = host->error(err, KILN_E_IO,
						     "export destination %s: cannot create its "
						     "directory: %s", e->dest, strerror(errno));
				host->free(dest);
				return rc;
			}
			tmpl = sibling_template(host, dest, "");
		}
		host->free(dest);
	}
	int fd = -1;
	bool ok = raw ? (fd = mkostemp(tmpl, O_CLOEXEC)) >= 0 : mkdtemp(tmpl) != NULL;
	if (!ok) {
		int rc = host->error(err, KILN_E_IO, "export: cannot create %s: %s", tmpl,
				     strerror(errno));
		host->free(tmpl);
		return rc;
	}
	if (fd >= 0)
		close(fd);
	e->tmp = tmpl;
	return 0;
}

/* Remove the tree at path (a directory or anything else), never following
 * a symlink, making directories writable on the way (an export may hold
 * read-only ones). One directory fd at a time: depth costs no fds. */
static int remove_tree(const struct kiln_host *host, const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(path);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == EACCES && chmod(path, 0700) == 0)
		fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct strv up = { 0 }; /* names from path down to fd */
	int rc = 0;
	while (rc == 0) {
		fchmod(fd, 0700);
		int lfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
		if (!d) {
			if (lfd >= 0)
				close(lfd);
			rc = -1;
			break;
		}
		char *down = NULL;
		struct dirent *de;
		while ((de = readdir(d))) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			if (unlinkat(fd, de->d_name, 0) == 0)
				continue;
			if (errno == EISDIR || errno == EPERM) {
				down = xstrdup(host, de->d_name);
				break;
			}
			rc = -1;
			break;
		}
		closedir(d);
		if (rc < 0)
			break;
		if (down) {
			int nfd = openat(fd, down, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (nfd < 0 && errno == EACCES && fchmodat(fd, down, 0700, 0) == 0)
				nfd = openat(fd, down, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (nfd < 0) {
				host->free(down);
				rc = -1;
				break;
			}
			close(fd);
			fd = nfd;
			strv_push(host, &up, down);
			continue;
		}
		/* empty: go up and remove it */
		if (up.n == 0)
			break;
		int pfd = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (pfd < 0) {
			rc = -1;
			break;
		}
		close(fd);
		fd = pfd;
		char *name = up.v[--up.n];
		if (unlinkat(fd, name, AT_REMOVEDIR) < 0)
			rc = -1;
		host->free(name);
	}
	int e = errno;
	close(fd);
	strv_clear(host, &up);
	if (rc == 0 && rmdir(path) < 0)
		return -1;
	errno = e;
	return rc;
}

static int copy_to_fd(int from, int to)
{
	uint8_t buf[64 * 1024];
	for (;;) {
		ssize_t n = read_full(from, buf, sizeof(buf));
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		if (write_full(to, buf, (size_t)n) < 0)
			return -1;
	}
}

static void export_clear(const struct kiln_host *host, struct buildkit_export *e)
{
	host->free(e->dest);
	host->free(e->tmp);
	e->dest = e->tmp = NULL;
	e->mode = BUILDKIT_EXPORT_NONE;
	e->received = false;
	e->failed = false;
	e->why[0] = '\0';
}

static int commit_raw(const struct kiln_host *host, struct buildkit_export *e, struct kiln_err *err)
{
	int to = -1;
	bool close_to = false;
	if (strcmp(e->dest, "-") == 0) {
		to = STDOUT_FILENO;
	} else {
		char *dest = dest_resolve(host, e->dest);
		struct stat st;
		if (stat(dest, &st) == 0 && !S_ISREG(st.st_mode)) {
			to = open(dest, O_WRONLY | O_CLOEXEC);
			close_to = to >= 0;
			if (to < 0) {
				int rc = host->error(err, KILN_E_IO, "export: open %s: %s", e->dest,
						     strerror(errno));
				host->free(dest);
				return rc;
			}
		} else {
			mode_t mode = stat(dest, &st) == 0 ? st.st_mode & 07777
							   : 0666 & ~current_umask();
			chmod(e->tmp, mode);
			int rc = 0;
			if (rename(e->tmp, dest) < 0)
				rc = host->error(err, KILN_E_IO, "export: rename %s to %s: %s", e->tmp,
						 e->dest, strerror(errno));
			host->free(dest);
			return rc;
		}
		host->free(dest);
	}
	int from = open(e->tmp, O_RDONLY | O_CLOEXEC);
	int rc = 0;
	if (from < 0 || copy_to_fd(from, to) < 0)
		rc = host->error(err, KILN_E_IO, "export: writing %s: %s",
				 to == STDOUT_FILENO ? "stdout" : e->dest, strerror(errno));
	if (from >= 0)
		close(from);
	if (close_to && close(to) < 0 && rc == 0)
		rc = host->error(err, KILN_E_IO, "export: writing %s: %s", e->dest, strerror(errno));
	unlink(e->tmp);
	return rc;
}

static int commit_dir(const struct kiln_host *host, struct buildkit_export *e, struct kiln_err *err)
{
	char *dest = dest_resolve(host, e->dest);
	struct stat st;
	int rc = 0;
	if (lstat(dest, &st) < 0) {
		chmod(e->tmp, 0777 & ~current_umask());
		if (rename(e->tmp, dest) < 0)
			rc = host->error(err, KILN_E_IO, "export: rename %s to %s: %s", e->tmp,
					 e->dest, strerror(errno));
		host->free(dest);
		return rc;
	}
	if (!S_ISDIR(st.st_mode)) {
		rc = host->error(err, KILN_E_INVALID, "export destination %s is no longer a "
				 "directory", e->dest);
		host->free(dest);
		return rc;
	}
	chmod(e->tmp, st.st_mode & 07777);
	/* swap the two in one step where the file system can; the old tree
	 * then sits at tmp */
	char *old = NULL;
	if (renameat2(AT_FDCWD, e->tmp, AT_FDCWD, dest, RENAME_EXCHANGE) < 0) {
		if (errno != EINVAL && errno != ENOSYS) {
			rc = host->error(err, KILN_E_IO, "export: rename %s to %s: %s", e->tmp,
					 e->dest, strerror(errno));
			host->free(dest);
			return rc;
		}
		/* old away to an empty temp sibling (rename replaces it), the
		 * new one into place */
		old = sibling_template(host, dest, "old-");
		if (!mkdtemp(old) || rename(dest, old) < 0) {
			rc = host->error(err, KILN_E_IO, "export: moving %s aside: %s", e->dest,
					 strerror(errno));
			if (old[0])
				rmdir(old);
			host->free(old);
			host->free(dest);
			return rc;
		}
		if (rename(e->tmp, dest) < 0) {
			rc = host->error(err, KILN_E_IO, "export: rename %s to %s: %s", e->tmp,
					 e->dest, strerror(errno));
			rename(old, dest);
			host->free(old);
			host->free(dest);
			return rc;
		}
	}
	const char *gone = old ? old : e->tmp;
	if (remove_tree(host, gone) < 0)
		host->log(KILN_LOG_WARN, "export: the previous %s was replaced, but removing it "
			  "from %s failed: %s", e->dest, gone, strerror(errno));
	host->free(old);
	host->free(dest);
	return 0;
}

int buildkit_export_commit(struct buildkit_session *s, struct kiln_err *err)
{
	const struct kiln_host *host = s->host;
	struct buildkit_export *e = &s->export_;
	if (e->mode == BUILDKIT_EXPORT_NONE || !e->tmp) {
		export_clear(host, e);
		return 0;
	}
	int rc;
	if (__atomic_load_n(&e->failed, __ATOMIC_SEQ_CST)) {
		rc = host->error(err, KILN_E_BUILD, "%s; %s left as it was", e->why, e->dest);
		buildkit_export_abort(s);
		return rc;
	}
	if (!__atomic_load_n(&e->received, __ATOMIC_SEQ_CST)) {
		rc = host->error(err, KILN_E_PROTOCOL, "export to %s: the daemon sent nothing; "
				 "%s left as it was", e->dest, e->dest);
		buildkit_export_abort(s);
		return rc;
	}
	rc = e->mode == BUILDKIT_EXPORT_RAW ? commit_raw(host, e, err) : commit_dir(host, e, err);
	if (rc < 0) {
		buildkit_export_abort(s);
		return rc;
	}
	export_clear(host, e);
	return 0;
}

void buildkit_export_abort(struct buildkit_session *s)
{
	const struct kiln_host *host = s->host;
	struct buildkit_export *e = &s->export_;
	if (e->tmp && remove_tree(host, e->tmp) < 0)
		host->log(KILN_LOG_WARN, "export: cannot remove %s: %s", e->tmp, strerror(errno));
	export_clear(host, e);
}
