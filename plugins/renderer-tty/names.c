/*
 * names.c: what a vertex or a status item is, from its name, and how to
 * say it briefly. Vertex names follow BuildKit's Dockerfile frontend
 * ("[build 2/5] RUN make", "[internal] load metadata for …", "exporting to
 * image"); the docker backend names its steps the same way ("[2/5] RUN
 * make"), so one table serves every backend. Raw LLB names ("/bin/sh -c
 * …", "docker-image://…", "mkfile /x") are recognised too.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tty.h"

static bool starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static const char *skip_spaces(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

static char *concat(const char *a, const char *b)
{
	struct tty_buf t = { 0 };
	tty_buf_adds(&t, a);
	tty_buf_adds(&t, b);
	return t.p;
}

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return n > 0;
}

char *tty_short_ref(const char *ref, size_t n)
{
	static const char *const prefixes[] = {
		"docker.io/library/", "index.docker.io/library/", "docker.io/",
		"index.docker.io/",
	};
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t k = strlen(prefixes[i]);
		if (n > k && strncmp(ref, prefixes[i], k) == 0) {
			ref += k;
			n -= k;
			break;
		}
	}
	struct tty_buf t = { 0 };
	tty_buf_add(&t, "", 0);
	for (size_t i = 0; i < n; i++) {
		/* "@sha256:" + 64 hex: keep 12 */
		if (n - i >= 8 + 64 && strncmp(ref + i, "@sha256:", 8) == 0 &&
		    is_hex(ref + i + 8, 64)) {
			tty_buf_add(&t, ref + i, 8 + 12);
			i += 8 + 64 - 1;
			continue;
		}
		tty_buf_add(&t, ref + i, 1);
	}
	return t.p;
}

/* "FROM docker.io/library/alpine:3.20 AS build" -> "FROM alpine:3.20 AS build" */
static char *short_first_word(const char *keyword, const char *args)
{
	args = skip_spaces(args);
	size_t n = strcspn(args, " \t");
	char *ref = tty_short_ref(args, n);
	struct tty_buf t = { 0 };
	tty_buf_adds(&t, keyword);
	tty_buf_adds(&t, ref);
	tty_buf_adds(&t, args + n);
	tty_free(ref);
	return t.p;
}

/* The kind of a Dockerfile instruction (the first word of s). */
static enum tty_sym instruction_kind(const char *s)
{
	static const struct {
		const char *word;
		enum tty_sym sym;
	} words[] = {
		{ "FROM", SYM_BASE }, { "RUN", SYM_RUN }, { "COPY", SYM_COPY },
		{ "ADD", SYM_COPY }, { "WORKDIR", SYM_WORKDIR }, { "EXPOSE", SYM_PORT },
		{ "ENTRYPOINT", SYM_ENTRY }, { "CMD", SYM_ENTRY }, { "ENV", SYM_META },
		{ "ARG", SYM_META }, { "LABEL", SYM_META }, { "USER", SYM_META },
		{ "VOLUME", SYM_META }, { "SHELL", SYM_META }, { "STOPSIGNAL", SYM_META },
		{ "HEALTHCHECK", SYM_META }, { "ONBUILD", SYM_META },
		{ "MAINTAINER", SYM_META },
	};
	size_t n = strcspn(s, " \t");
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strlen(words[i].word) == n && strncasecmp(s, words[i].word, n) == 0)
			return words[i].sym;
	return SYM_NONE;
}

/* "N/M" (the whole string): M, else 0. */
static int step_total(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && isdigit((unsigned char)s[i]))
		i++;
	if (i == 0 || i >= n || s[i] != '/')
		return 0;
	size_t j = ++i;
	while (i < n && isdigit((unsigned char)s[i]))
		i++;
	if (i != n || i == j || i - j > 6)
		return 0;
	return atoi(s + j);
}

static void describe_internal(const char *rest, struct tty_desc *d)
{
	d->is_step = false;
	if (starts(rest, "load build definition from ")) {
		d->kind = SYM_COPY;
		d->text = concat("read ", rest + strlen("load build definition from "));
	} else if (starts(rest, "load .dockerignore")) {
		d->kind = SYM_COPY;
		d->text = tty_strdup("read .dockerignore");
	} else if (starts(rest, "load metadata for ")) {
		const char *ref = rest + strlen("load metadata for ");
		char *s = tty_short_ref(ref, strlen(ref));
		d->kind = SYM_PULL;
		d->text = concat("resolve ", s);
		tty_free(s);
	} else if (starts(rest, "load build context")) {
		d->kind = SYM_COPY;
		d->text = tty_strdup("send build context");
	} else if (starts(rest, "load remote build context")) {
		d->kind = SYM_PULL;
		d->text = tty_strdup("fetch remote build context");
	} else {
		d->kind = SYM_META;
		d->text = tty_strdup(rest);
	}
}

/* A name without a bracket: exporters, raw LLB ops. */
static void describe_plain(const char *name, struct tty_desc *d)
{
	enum tty_sym k = instruction_kind(name);
	if (k == SYM_BASE) {
		d->kind = k;
		d->text = short_first_word("FROM ", name + 4);
	} else if (k != SYM_NONE) {
		d->kind = k;
		d->text = tty_strdup(name);
	} else if (starts(name, "exporting to image") ||
		   starts(name, "exporting to docker image format") ||
		   starts(name, "exporting to oci image format")) {
		d->kind = SYM_COMMIT;
		d->text = tty_strdup(name);
	} else if (starts(name, "exporting") || starts(name, "pushing") ||
		   starts(name, "sending tarball") || starts(name, "copying files")) {
		d->kind = SYM_EXPORT;
		d->text = tty_strdup(name);
	} else if (starts(name, "resolve image config for ")) {
		const char *ref = name + strlen("resolve image config for ");
		char *s = tty_short_ref(ref, strlen(ref));
		d->kind = SYM_PULL;
		d->text = concat("resolve ", s);
		tty_free(s);
	} else if (starts(name, "docker-image://")) {
		d->kind = SYM_BASE;
		d->text = short_first_word("FROM ", name + strlen("docker-image://"));
	} else if (starts(name, "local://") || starts(name, "mkfile ") ||
		   starts(name, "mkdir ") || starts(name, "copy ") || starts(name, "rm ")) {
		d->kind = SYM_COPY;
		d->text = tty_strdup(name);
	} else if (starts(name, "/bin/sh -c ") || starts(name, "sh -c ")) {
		d->kind = SYM_RUN;
		d->text = tty_strdup(name);
	} else {
		d->kind = SYM_META;
		d->text = tty_strdup(name);
	}
}

void tty_describe(const char *name, struct tty_desc *d)
{
	*d = (struct tty_desc){ .kind = SYM_META, .is_step = true };
	if (!name)
		name = "";
	const char *close = name[0] == '[' ? strchr(name, ']') : NULL;
	if (!close) {
		describe_plain(name, d);
		return;
	}
	const char *in = name + 1;
	size_t in_len = (size_t)(close - in);
	const char *rest = skip_spaces(close + 1);
	if (in_len == 8 && strncmp(in, "internal", 8) == 0) {
		describe_internal(rest, d);
		return;
	}
	d->tag = tty_strndup(in, in_len);
	d->named_total = step_total(in, in_len);
	enum tty_sym k = instruction_kind(rest);
	if (k == SYM_BASE) {
		d->kind = k;
		d->text = short_first_word("FROM ", rest + 4);
	} else if (k != SYM_NONE) {
		d->kind = k;
		d->text = tty_strdup(rest);
	} else {
		struct tty_desc inner = { 0 };
		describe_plain(rest, &inner);
		d->kind = inner.kind;
		d->text = inner.text;
	}
}

void tty_desc_release(struct tty_desc *d)
{
	tty_free(d->text);
	tty_free(d->tag);
	*d = (struct tty_desc){ 0 };
}

enum tty_sym tty_describe_item(const char *id, int64_t total, char **text)
{
	(void)total;
	if (!id) {
		*text = tty_strdup("");
		return SYM_NONE;
	}
	if (starts(id, "sha256:") && is_hex(id + 7, strlen(id + 7))) {
		size_t n = strlen(id + 7);
		char *h = tty_strndup(id + 7, n > 12 ? 12 : n);
		*text = concat("layer ", h);
		tty_free(h);
		return SYM_DOWNLOAD;
	}
	if (strlen(id) == 12 && is_hex(id, 12)) { /* the Docker API's layer IDs */
		*text = concat("layer ", id);
		return SYM_DOWNLOAD;
	}
	if (starts(id, "extracting ")) {
		const char *l = id + strlen("extracting ");
		if (starts(l, "sha256:"))
			l += 7;
		char *h = tty_strndup(l, strlen(l) > 12 ? 12 : strlen(l));
		*text = concat("extracting ", h);
		tty_free(h);
		return SYM_PULL;
	}
	if (starts(id, "naming to ")) {
		const char *ref = id + strlen("naming to ");
		*text = tty_short_ref(ref, strlen(ref));
		return SYM_TAG;
	}
	if (starts(id, "writing image ") || starts(id, "exporting ") ||
	    starts(id, "unpacking to ")) {
		*text = tty_short_ref(id, strlen(id));
		/* a digest after "writing image": 12 digits are enough */
		const char *dg = strstr(*text, "sha256:");
		if (dg && strlen(dg) > 7 + 12 && is_hex(dg + 7, strlen(dg + 7)))
			(*text)[(size_t)(dg - *text) + 7 + 12] = '\0';
		return SYM_COMMIT;
	}
	if (starts(id, "pushing") || starts(id, "sending")) {
		*text = tty_strdup(id);
		return SYM_EXPORT;
	}
	if (starts(id, "transferring")) {
		size_t n = strlen(id);
		if (n && id[n - 1] == ':')
			n--;
		*text = tty_strndup(id, n);
		return SYM_COPY;
	}
	if (starts(id, "resolve ")) {
		const char *ref = id + strlen("resolve ");
		char *s = tty_short_ref(ref, strlen(ref));
		*text = concat("resolve ", s);
		tty_free(s);
		return SYM_PULL;
	}
	if (starts(id, "pulling ") || starts(id, "Trying to pull ")) {
		*text = tty_short_ref(id, strlen(id));
		return SYM_PULL;
	}
	*text = tty_strdup(id);
	return SYM_NONE;
}

int tty_exit_code(const char *error)
{
	static const char *const marks[] = { "exit code: ", "non-zero code: ",
					     "exit status ", "exit code " };
	if (!error)
		return -1;
	for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
		const char *p = strstr(error, marks[i]);
		if (p && isdigit((unsigned char)p[strlen(marks[i])]))
			return atoi(p + strlen(marks[i]));
	}
	return -1;
}
