// SOURCES: plugins/frontend-melange/apk.c
// PKGS: libarchive libcrypto zlib
/* Unit tests of the .apk writer (plugins/frontend-melange/apk.c): a tree
 * with an executable, a 0644 file, a symlink, a hard link, subdirectories
 * and a long name is packaged, and the package is read back member by
 * member with libarchive: entries, order, modes, owners, link targets,
 * the pax checksum records, .PKGINFO, datahash = SHA-256 of the data
 * member, no end-of-archive blocks except in the data tar; two runs give
 * the same bytes; signatures (RSA256 and RSA) verify with the public key;
 * APKINDEX.tar.gz lists both packages with C:/S: matching the files; bad
 * input leaves no file behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "tmpfiles.h"

#include "../../plugins/frontend-melange/apk.h"

#define HELLO "#!/bin/sh\necho hello\n"
#define CONF "greeting = hi\n"
#define LONGDIR "usr/share/a-directory-name-that-is-long-enough/to-push-the-path-past-one-hundred"
#define LONGFILE LONGDIR "/bytes-of-the-ustar-name-field.txt"

static const char *const deps[] = { "busybox", "so:libc.so.6" };
static const char *const provs[] = { "cmd:hello=1.2.3-r4" };
static const char *const lics[] = { "MIT", "Apache-2.0" };

static struct apk_meta meta(const char *name)
{
	return (struct apk_meta){
		.name = name, .version = "1.2.3", .epoch = 4, .arch = "x86_64",
		.description = "says hello", .url = "https://example.org/hello",
		.origin = "hello", .commit = "0123abcd", .builddate = 1700000000,
		.licenses = lics, .n_licenses = 2, .depends = deps, .n_depends = 2,
		.provides = provs, .n_provides = 1,
	};
}

static void mkdir_mode(const char *rel, mode_t mode)
{
	char p[512];
	path_in(p, sizeof(p), rel);
	assert_int_equal(mkdir(p, mode), 0);
	chmod(p, mode);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kiln-apk-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	mkdir_mode("tree", 0755);
	mkdir_mode("tree/usr", 0755);
	mkdir_mode("tree/usr/bin", 0755);
	mkdir_mode("tree/etc", 0755);
	mkdir_mode("tree/var", 0700);
	write_file("tree/usr/bin/hello", HELLO, 0755);
	write_file("tree/etc/hello.conf", CONF, 0644);
	char a[512], b[512];
	path_in(a, sizeof(a), "tree/usr/bin/hello");
	path_in(b, sizeof(b), "tree/usr/bin/hello-again");
	assert_int_equal(link(a, b), 0);
	path_in(b, sizeof(b), "tree/usr/bin/hi");
	assert_int_equal(symlink("hello", b), 0);
	/* a path longer than ustar's 100-byte name field */
	path_in(a, sizeof(a), "tree/" LONGDIR);
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", a);
	assert_int_equal(system(cmd), 0);
	write_file("tree/" LONGFILE, "x", 0600);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* ---- helpers ---- */

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *p = malloc((size_t)n + 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
	p[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return p;
}

static void hexs(char *out, const unsigned char *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void sha1_hex(const void *p, size_t n, char out[41])
{
	unsigned char d[20];
	EVP_Digest(p, n, d, NULL, EVP_sha1(), NULL);
	hexs(out, d, 20);
}

/* One gzip member's plain bytes, decompressed by libarchive (raw format). */
static char *gunzip(const void *p, size_t n, size_t *out_len)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_gzip(a);
	archive_read_support_format_raw(a);
	assert_int_equal(archive_read_open_memory(a, p, n), ARCHIVE_OK);
	struct archive_entry *e;
	assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
	size_t cap = 1 << 16, len = 0;
	char *out = malloc(cap);
	la_ssize_t r;
	while ((r = archive_read_data(a, out + len, cap - len)) > 0) {
		len += (size_t)r;
		if (len == cap)
			out = realloc(out, cap *= 2);
	}
	assert_true(r == 0);
	archive_read_free(a);
	*out_len = len;
	return out;
}

/* An entry as libarchive sees it. */
struct seen {
	char path[256];
	mode_t type, perm;
	int64_t uid, gid, size, mtime;
	char uname[32], gname[32];
	char symlink[256], hardlink[256];
	char data[4096];
};

/* Every entry of one tar member (gzip'ed); *n entries. */
static struct seen *read_member(const void *p, size_t len, size_t *n)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_gzip(a);
	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_memory(a, p, len), ARCHIVE_OK);
	struct seen *v = calloc(64, sizeof(*v));
	size_t k = 0;
	struct archive_entry *e;
	int r;
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		assert_true(k < 64);
		struct seen *s = &v[k++];
		snprintf(s->path, sizeof(s->path), "%s", archive_entry_pathname(e));
		s->type = archive_entry_filetype(e);
		s->perm = archive_entry_perm(e);
		s->uid = archive_entry_uid(e);
		s->gid = archive_entry_gid(e);
		s->size = archive_entry_size(e);
		s->mtime = archive_entry_mtime(e);
		snprintf(s->uname, sizeof(s->uname), "%s", archive_entry_uname(e) ? archive_entry_uname(e) : "");
		snprintf(s->gname, sizeof(s->gname), "%s", archive_entry_gname(e) ? archive_entry_gname(e) : "");
		if (archive_entry_symlink(e))
			snprintf(s->symlink, sizeof(s->symlink), "%s", archive_entry_symlink(e));
		if (archive_entry_hardlink(e))
			snprintf(s->hardlink, sizeof(s->hardlink), "%s", archive_entry_hardlink(e));
		la_ssize_t got = archive_read_data(a, s->data, sizeof(s->data) - 1);
		assert_true(got >= 0);
	}
	assert_int_equal(r, ARCHIVE_EOF);
	archive_read_free(a);
	*n = k;
	return v;
}

static const struct seen *find(const struct seen *v, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].path, path) == 0)
			return &v[i];
	fail_msg("no entry %s", path);
	return NULL;
}

/* tar without its two zero blocks at the end (control, signature) */
static void assert_no_trailer(const char *tar, size_t len)
{
	static const char z[1024];
	assert_true(len % 512 == 0);
	assert_true(len >= 1024);
	assert_memory_not_equal(tar + len - 512, z, 512);
}

static struct apk_result write_pkg(const char *outdir, const struct apk_options *o)
{
	char tree[256], out[256];
	path_in(tree, sizeof(tree), "tree");
	path_in(out, sizeof(out), outdir);
	struct apk_meta m = meta("hello");
	struct apk_result res;
	struct kiln_err err = { 0 };
	int rc = apk_write(tree, out, &m, o, &res, &err);
	if (rc)
		fail_msg("apk_write: %s", err.msg);
	return res;
}

/* ---- tests ---- */

static void test_layout_and_pkginfo(void **state)
{
	(void)state;
	struct apk_options o = { .root_owner = true };
	struct apk_result res = write_pkg("out1", &o);
	char want[256];
	path_in(want, sizeof(want), "out1/x86_64/hello-1.2.3-r4.apk");
	assert_string_equal(res.path, want);

	size_t len;
	char *apk = slurp(res.path, &len);
	assert_int_equal(len, res.size);
	assert_int_equal(res.sig_len, 0);
	assert_int_equal(res.control_len + res.data_len, len);

	/* two gzip members, where the writer says */
	size_t off[4], n;
	struct kiln_err err = { 0 };
	assert_int_equal(apk_split_members(apk, len, off, 4, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(off[1], res.control_len);
	struct stat st;
	assert_int_equal(stat(res.path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);

	/* control: .PKGINFO only, root-owned, no end-of-archive */
	const char *ctl = apk, *data = apk + res.control_len;
	size_t nc;
	struct seen *c = read_member(ctl, res.control_len, &nc);
	assert_int_equal(nc, 1);
	assert_string_equal(c[0].path, ".PKGINFO");
	assert_int_equal(c[0].type, AE_IFREG);
	assert_int_equal(c[0].perm, 0644);
	assert_int_equal(c[0].uid, 0);
	assert_int_equal(c[0].mtime, 1700000000);
	size_t tl;
	char *ctar = gunzip(ctl, res.control_len, &tl);
	assert_no_trailer(ctar, tl);
	free(ctar);

	/* datahash = SHA-256 of the data member's bytes */
	unsigned char d[32];
	char dh[65];
	EVP_Digest(data, res.data_len, d, NULL, EVP_sha256(), NULL);
	hexs(dh, d, 32);
	assert_string_equal(dh, res.datahash);

	/* installed size: hello (once; the hard link shares it) + conf + "x"
	 * + the symlink's target "hello" */
	size_t isz = strlen(HELLO) + strlen(CONF) + 1 + 5;
	char info[2048];
	snprintf(info, sizeof(info),
		 "# Generated by kiln\n"
		 "pkgname = hello\n"
		 "pkgver = 1.2.3-r4\n"
		 "arch = x86_64\n"
		 "size = %zu\n"
		 "origin = hello\n"
		 "pkgdesc = says hello\n"
		 "url = https://example.org/hello\n"
		 "commit = 0123abcd\n"
		 "builddate = 1700000000\n"
		 "license = MIT\n"
		 "license = Apache-2.0\n"
		 "depend = busybox\n"
		 "depend = so:libc.so.6\n"
		 "provides = cmd:hello=1.2.3-r4\n"
		 "datahash = %s\n", isz, dh);
	assert_string_equal(c[0].data, info);
	assert_int_equal(res.installed_size, isz);
	free(c);

	/* data: every entry, in walk order */
	size_t nd;
	struct seen *v = read_member(data, res.data_len, &nd);
	const char *order[] = {
		"etc", "etc/hello.conf", "usr", "usr/bin", "usr/bin/hello",
		"usr/bin/hello-again", "usr/bin/hi", "usr/share",
		"usr/share/a-directory-name-that-is-long-enough",
		"usr/share/a-directory-name-that-is-long-enough/to-push-the-path-past-one-hundred",
		LONGFILE, "var",
	};
	assert_int_equal(nd, sizeof(order) / sizeof(*order));
	for (size_t i = 0; i < nd; i++) {
		assert_string_equal(v[i].path, order[i]);
		assert_int_equal(v[i].uid, 0);
		assert_int_equal(v[i].gid, 0);
		assert_string_equal(v[i].uname, "root");
		assert_string_equal(v[i].gname, "root");
		assert_int_equal(v[i].mtime, 1700000000);
	}
	const struct seen *e = find(v, nd, "usr/bin/hello");
	assert_int_equal(e->type, AE_IFREG);
	assert_int_equal(e->perm, 0755);
	assert_string_equal(e->data, HELLO);
	e = find(v, nd, "etc/hello.conf");
	assert_int_equal(e->perm, 0644);
	assert_string_equal(e->data, CONF);
	e = find(v, nd, "usr/bin/hi");
	assert_int_equal(e->type, AE_IFLNK);
	assert_string_equal(e->symlink, "hello");
	e = find(v, nd, "usr/bin/hello-again");
	assert_string_equal(e->hardlink, "usr/bin/hello");
	assert_int_equal(e->size, 0);
	e = find(v, nd, "var");
	assert_int_equal(e->type, AE_IFDIR);
	assert_int_equal(e->perm, 0700);
	e = find(v, nd, LONGFILE);
	assert_int_equal(e->perm, 0600);
	assert_string_equal(e->data, "x");
	free(v);

	/* pax checksum records, in hex (apk-tools reads them with hexdump) */
	char *dtar = gunzip(data, res.data_len, &tl);
	static const char z[1024];
	assert_memory_equal(dtar + tl - 1024, z, 1024); /* data tar keeps its end */
	char rec[80], sum[41];
	sha1_hex(HELLO, strlen(HELLO), sum);
	snprintf(rec, sizeof(rec), "APK-TOOLS.checksum.SHA1=%s\n", sum);
	assert_non_null(memmem(dtar, tl, rec, strlen(rec)));
	sha1_hex("hello", 5, sum); /* the symlink: SHA-1 of its target */
	snprintf(rec, sizeof(rec), "APK-TOOLS.checksum.SHA1=%s\n", sum);
	assert_non_null(memmem(dtar, tl, rec, strlen(rec)));
	sha1_hex(CONF, strlen(CONF), sum);
	snprintf(rec, sizeof(rec), "68 APK-TOOLS.checksum.SHA1=%s\n", sum); /* length prefix */
	assert_non_null(memmem(dtar, tl, rec, strlen(rec)));
	free(dtar);
	free(apk);
}

static void test_reproducible(void **state)
{
	(void)state;
	struct apk_options o = { .root_owner = true };
	struct apk_result a = write_pkg("rep1", &o);
	/* new mtimes on disk must not matter */
	char p[256];
	path_in(p, sizeof(p), "tree/etc/hello.conf");
	struct timeval tv[2] = { { 12345, 0 }, { 12345, 0 } };
	assert_int_equal(utimes(p, tv), 0);
	struct apk_result b = write_pkg("rep2", &o);
	size_t la, lb;
	char *x = slurp(a.path, &la), *y = slurp(b.path, &lb);
	assert_int_equal(la, lb);
	assert_memory_equal(x, y, la);
	free(x);
	free(y);
	/* and nothing but the package in the output directory */
	char dir[256];
	path_in(dir, sizeof(dir), "rep1/x86_64");
	DIR *d = opendir(dir);
	struct dirent *de;
	int files = 0;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			files++;
	closedir(d);
	assert_int_equal(files, 1);
}

static void test_owners_kept(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	char tree[256], p[256], out[256], pw[256], gr[256];
	path_in(tree, sizeof(tree), "owned");
	assert_int_equal(mkdir(tree, 0755), 0);
	write_file("owned/f", "f", 0640);
	path_in(p, sizeof(p), "owned/f");
	assert_int_equal(chown(p, 1234, 2345), 0);
	write_file("passwd", "root:x:0:0:root:/root:/bin/sh\nbuilder:x:1234:2345::/home/build:/bin/sh\n", 0644);
	write_file("group", "root:x:0:\nbuilders:x:2345:\n", 0644);
	path_in(pw, sizeof(pw), "passwd");
	path_in(gr, sizeof(gr), "group");
	path_in(out, sizeof(out), "owned-out");
	struct apk_meta m = meta("owned");
	struct apk_options o = { .passwd = pw, .group = gr };
	struct apk_result res;
	struct kiln_err err = { 0 };
	assert_int_equal(apk_write(tree, out, &m, &o, &res, &err), 0);
	size_t len, nd;
	char *apk = slurp(res.path, &len);
	struct seen *v = read_member(apk + res.control_len, res.data_len, &nd);
	assert_int_equal(nd, 1);
	assert_int_equal(v[0].uid, 1234);
	assert_int_equal(v[0].gid, 2345);
	assert_string_equal(v[0].uname, "builder");
	assert_string_equal(v[0].gname, "builders");
	assert_int_equal(v[0].perm, 0640);
	free(v);
	free(apk);
}

/* A fresh 2048-bit RSA key as PEM in tmpdir/name; its public key back. */
static EVP_PKEY *make_key(const char *name)
{
	EVP_PKEY *k = EVP_RSA_gen(2048);
	assert_non_null(k);
	char p[256];
	path_in(p, sizeof(p), name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	return k;
}

static void check_signed(EVP_PKEY *k, const char *keyfile, enum apk_sig_hash h,
			 const char *signame)
{
	char kp[256];
	path_in(kp, sizeof(kp), keyfile);
	struct apk_key key = { .path = kp, .hash = h };
	struct apk_options o = { .root_owner = true, .key = &key };
	struct apk_result res = write_pkg(h == APK_SIG_SHA1 ? "sig1" : "sig256", &o);
	size_t len;
	char *apk = slurp(res.path, &len);
	size_t off[4], n;
	struct kiln_err err = { 0 };
	assert_int_equal(apk_split_members(apk, len, off, 4, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_int_equal(off[1], res.sig_len);
	assert_int_equal(off[2], res.sig_len + res.control_len);

	size_t ns;
	struct seen *s = read_member(apk, res.sig_len, &ns);
	assert_int_equal(ns, 1);
	assert_string_equal(s[0].path, signame);
	assert_int_equal(s[0].perm, 0644);
	size_t tl;
	char *star = gunzip(apk, res.sig_len, &tl);
	assert_no_trailer(star, tl);
	/* the signature verifies over the control member's bytes */
	const unsigned char *sig = (const unsigned char *)star + 512;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(c, NULL, h == APK_SIG_SHA1 ? EVP_sha1() : EVP_sha256(),
					      NULL, k), 1);
	assert_int_equal(EVP_DigestVerify(c, sig, (size_t)s[0].size,
					  (const unsigned char *)apk + res.sig_len,
					  res.control_len), 1);
	EVP_MD_CTX_free(c);
	free(star);
	free(s);
	free(apk);
}

static void test_signed(void **state)
{
	(void)state;
	EVP_PKEY *k = make_key("test.rsa");
	check_signed(k, "test.rsa", APK_SIG_SHA256, ".SIGN.RSA256.test.rsa.pub");
	check_signed(k, "test.rsa", APK_SIG_SHA1, ".SIGN.RSA.test.rsa.pub");
	EVP_PKEY_free(k);
}

static void test_index(void **state)
{
	(void)state;
	char tree[256], out[256], dir[256];
	path_in(tree, sizeof(tree), "tree");
	path_in(out, sizeof(out), "repo");
	struct apk_meta m1 = meta("hello"), m2 = meta("hello-doc");
	m2.n_depends = 0;
	m2.n_provides = 0;
	m2.maintainer = "kiln <kiln@example.org>";
	struct apk_result r1, r2;
	struct kiln_err err = { 0 };
	assert_int_equal(apk_write(tree, out, &m2, NULL, &r2, &err), 0);
	assert_int_equal(apk_write(tree, out, &m1, NULL, &r1, &err), 0);
	path_in(dir, sizeof(dir), "repo/x86_64");
	size_t count = 0;
	assert_int_equal(apk_index_write(dir, "test repo", NULL, &count, &err), 0);
	assert_int_equal(count, 2);

	char p[300];
	snprintf(p, sizeof(p), "%s/APKINDEX.tar.gz", dir);
	size_t len, n;
	char *idx = slurp(p, &len);
	struct seen *v = read_member(idx, len, &n);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].path, "DESCRIPTION");
	assert_string_equal(v[0].data, "test repo");
	assert_string_equal(v[1].path, "APKINDEX");
	char want[2048];
	snprintf(want, sizeof(want),
		 "C:%s\nP:hello\nV:1.2.3-r4\nA:x86_64\nS:%llu\nI:%llu\nT:says hello\n"
		 "U:https://example.org/hello\nL:MIT AND Apache-2.0\no:hello\nt:1700000000\n"
		 "c:0123abcd\nD:busybox so:libc.so.6\np:cmd:hello=1.2.3-r4\n\n"
		 "C:%s\nP:hello-doc\nV:1.2.3-r4\nA:x86_64\nS:%llu\nI:%llu\nT:says hello\n"
		 "U:https://example.org/hello\nL:MIT AND Apache-2.0\no:hello\n"
		 "m:kiln <kiln@example.org>\nt:1700000000\nc:0123abcd\n\n",
		 r1.identity, (unsigned long long)r1.size, (unsigned long long)r1.installed_size,
		 r2.identity, (unsigned long long)r2.size, (unsigned long long)r2.installed_size);
	assert_string_equal(v[1].data, want);
	assert_int_equal(strlen(r1.identity), 30);
	assert_memory_equal(r1.identity, "Q1", 2);
	/* identity = SHA-1 of the control member, base64 */
	size_t al;
	char *apk = slurp(r1.path, &al);
	unsigned char d[20], b64[32];
	EVP_Digest(apk, r1.control_len, d, NULL, EVP_sha1(), NULL);
	EVP_EncodeBlock(b64, d, 20);
	assert_string_equal(r1.identity + 2, (char *)b64);
	free(apk);
	free(v);
	free(idx);

	/* signed: a signature member, then the index member */
	EVP_PKEY *k = make_key("index.rsa");
	char kp[256];
	path_in(kp, sizeof(kp), "index.rsa");
	struct apk_key key = { .path = kp, .hash = APK_SIG_SHA1 };
	assert_int_equal(apk_index_write(dir, NULL, &key, &count, &err), 0);
	idx = slurp(p, &len);
	size_t off[4];
	assert_int_equal(apk_split_members(idx, len, off, 4, &n, &err), 0);
	assert_int_equal(n, 2);
	v = read_member(idx, off[1], &n);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].path, ".SIGN.RSA.index.rsa.pub");
	free(v);
	v = read_member(idx + off[1], len - off[1], &n);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].path, "APKINDEX");
	free(v);
	free(idx);
	EVP_PKEY_free(k);
}

static void test_errors(void **state)
{
	(void)state;
	char tree[256], out[256], sock[256], p[300];
	path_in(tree, sizeof(tree), "tree");
	path_in(out, sizeof(out), "bad");
	struct kiln_err err = { 0 };
	struct apk_meta m = meta("-bad");
	assert_int_equal(apk_write(tree, out, &m, NULL, NULL, &err), KILN_E_INVALID);
	assert_non_null(strstr(err.msg, "bad package name"));
	m = meta("ok");
	m.description = "two\nlines";
	assert_int_equal(apk_write(tree, out, &m, NULL, NULL, &err), KILN_E_INVALID);
	m = meta("ok");
	m.version = NULL;
	assert_int_equal(apk_write(tree, out, &m, NULL, NULL, &err), KILN_E_INVALID);
	m = meta("ok");
	path_in(p, sizeof(p), "no-such-tree");
	assert_int_equal(apk_write(p, out, &m, NULL, NULL, &err), KILN_E_NOTFOUND);
	struct apk_key key = { .path = "/nonexistent/key.rsa" };
	struct apk_options o = { .key = &key };
	assert_int_equal(apk_write(tree, out, &m, &o, NULL, &err), KILN_E_NOTFOUND);

	/* a socket cannot be packaged; no temporary file is left */
	path_in(sock, sizeof(sock), "sockdir");
	assert_int_equal(mkdir(sock, 0755), 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	path_in(sa.sun_path, sizeof(sa.sun_path), "sockdir/s");
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(apk_write(sock, out, &m, NULL, NULL, &err), KILN_E_UNSUPPORTED);
	close(fd);
	path_in(p, sizeof(p), "bad/x86_64");
	DIR *d = opendir(p);
	assert_non_null(d);
	struct dirent *de;
	while ((de = readdir(d)))
		assert_true(strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0);
	closedir(d);

	/* an .apk that is not one */
	write_file("bad/x86_64/junk.apk", "not gzip", 0644);
	assert_int_equal(apk_index_write(p, NULL, NULL, NULL, &err), KILN_E_SYNTAX);
	size_t n, off[2];
	assert_int_equal(apk_split_members("nope", 4, off, 2, &n, &err), KILN_E_SYNTAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_and_pkginfo),
		cmocka_unit_test(test_reproducible),
		cmocka_unit_test(test_owners_kept),
		cmocka_unit_test(test_signed),
		cmocka_unit_test(test_index),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
