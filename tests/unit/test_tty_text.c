// SOURCES: plugins/renderer-tty/text.c plugins/renderer-tty/names.c
/* The tty renderer's text: friendly names and symbols of vertices and
 * status items, exit codes, and output lines (build text cleaned of
 * escape sequences and bad UTF-8, measured in columns, cut with an
 * ellipsis, ASCII mode). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../plugins/renderer-tty/tty.h"
#include "loader.h"

static struct tty st;

static int setup(void **s)
{
	(void)s;
	tty_host = &kiln__host;
	st.utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	assert_true(st.utf8 != (locale_t)0);
	return 0;
}

static int teardown(void **s)
{
	(void)s;
	freelocale(st.utf8);
	return 0;
}

static void expect_desc(const char *name, enum tty_sym kind, const char *text,
			const char *tag, bool is_step, int total)
{
	struct tty_desc d;
	tty_describe(name, &d);
	assert_int_equal(d.kind, kind);
	assert_string_equal(d.text, text);
	if (tag)
		assert_string_equal(d.tag, tag);
	else
		assert_null(d.tag);
	assert_int_equal(d.is_step, is_step);
	assert_int_equal(d.named_total, total);
	tty_desc_release(&d);
}

static void friendly_names(void **s)
{
	(void)s;
	expect_desc("[internal] load build definition from Dockerfile", SYM_COPY,
		    "read Dockerfile", NULL, false, 0);
	expect_desc("[internal] load metadata for docker.io/library/alpine:3.20", SYM_PULL,
		    "resolve alpine:3.20", NULL, false, 0);
	expect_desc("[internal] load build context", SYM_COPY, "send build context", NULL,
		    false, 0);
	expect_desc("[build 1/5] FROM docker.io/library/alpine:3.20@sha256:"
		    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
		    SYM_BASE, "FROM alpine:3.20@sha256:bbbbbbbbbbbb", "build 1/5", true, 0);
	expect_desc("[build 2/5] RUN make", SYM_RUN, "RUN make", "build 2/5", true, 0);
	expect_desc("[3/6] COPY a /b", SYM_COPY, "COPY a /b", "3/6", true, 6); /* docker backend */
	expect_desc("[4/6] WORKDIR /app", SYM_WORKDIR, "WORKDIR /app", "4/6", true, 6);
	expect_desc("[5/6] EXPOSE 8080", SYM_PORT, "EXPOSE 8080", "5/6", true, 6);
	expect_desc("[6/6] ENTRYPOINT [\"sh\"]", SYM_ENTRY, "ENTRYPOINT [\"sh\"]", "6/6", true, 6);
	expect_desc("[2/3] ENV A=b", SYM_META, "ENV A=b", "2/3", true, 3);
	expect_desc("[1/2] FROM busybox AS base", SYM_BASE, "FROM busybox AS base", "1/2", true, 2);
	expect_desc("exporting to image", SYM_COMMIT, "exporting to image", NULL, true, 0);
	expect_desc("exporting cache", SYM_EXPORT, "exporting cache", NULL, true, 0);
	expect_desc("docker-image://docker.io/library/busybox:latest", SYM_BASE,
		    "FROM busybox:latest", NULL, true, 0);
	expect_desc("/bin/sh -c echo hi", SYM_RUN, "/bin/sh -c echo hi", NULL, true, 0);
	expect_desc("mkfile /hello", SYM_COPY, "mkfile /hello", NULL, true, 0);
	expect_desc(NULL, SYM_META, "", NULL, true, 0);
	expect_desc("[oops", SYM_META, "[oops", NULL, true, 0);
}

static void items(void **s)
{
	(void)s;
	char *t;
	assert_int_equal(tty_describe_item("sha256:e27f01975285c17858ce5c3995745a07", 40, &t),
			 SYM_DOWNLOAD);
	assert_string_equal(t, "layer e27f01975285");
	tty_free(t);
	assert_int_equal(tty_describe_item("41749da90ba1", 0, &t), SYM_DOWNLOAD);
	assert_string_equal(t, "layer 41749da90ba1");
	tty_free(t);
	assert_int_equal(tty_describe_item("naming to docker.io/library/app:1", 0, &t), SYM_TAG);
	assert_string_equal(t, "app:1");
	tty_free(t);
	assert_int_equal(tty_describe_item("transferring context:", 0, &t), SYM_COPY);
	assert_string_equal(t, "transferring context");
	tty_free(t);
	assert_int_equal(tty_describe_item("pulling 127.0.0.1:5000/x:1", 0, &t), SYM_PULL);
	tty_free(t);
	assert_int_equal(tty_describe_item("something else", 0, &t), SYM_NONE);
	assert_string_equal(t, "something else");
	tty_free(t);
}

static void exit_codes(void **s)
{
	(void)s;
	assert_int_equal(tty_exit_code("process \"/bin/sh -c x\" did not complete "
				       "successfully: exit code: 3"), 3);
	assert_int_equal(tty_exit_code("The command '/bin/sh -c x' returned a non-zero code: 7"), 7);
	assert_int_equal(tty_exit_code("while running runtime: exit status 12"), 12);
	assert_int_equal(tty_exit_code("context canceled"), -1);
	assert_int_equal(tty_exit_code(NULL), -1);
}

/* The line made from text s with limit cols. */
static char *line(const char *s, size_t n, int limit, int *width)
{
	struct tty_line l;
	tty_line_init(&l, &st, limit);
	tty_line_text(&l, s, n);
	tty_line_finish(&l);
	*width = l.width;
	return l.b.p;
}

static void clean_text(void **s)
{
	(void)s;
	int w;
	char *p;
	st.ascii = false;
	/* colours, cursor moves and OSC titles from a RUN step are dropped */
	const char esc[] = "\x1b[31mred\x1b[0m \x1b[2A\x1b]0;title\x07ok\x07";
	p = line(esc, sizeof(esc) - 1, 0, &w);
	assert_string_equal(p, "red ok");
	assert_int_equal(w, 6);
	tty_free(p);
	/* invalid UTF-8 -> U+FFFD; tabs to the next multiple of 8 */
	p = line("caf\xe9\tx", 6, 0, &w);
	assert_string_equal(p, "caf\xef\xbf\xbd    x");
	assert_int_equal(w, 9);
	tty_free(p);
	/* wide characters count two columns; cut with an ellipsis */
	p = line("\xe6\xbc\xa2\xe5\xad\x97\xe6\xbc\xa2\xe5\xad\x97" "abc", 15, 6, &w);
	assert_int_equal(w, 6);
	assert_string_equal(p, "\xe6\xbc\xa2\xe5\xad\x97 \xe2\x80\xa6"); /* 漢字 … */
	tty_free(p);
	p = line("exactly10!", 10, 10, &w);
	assert_string_equal(p, "exactly10!");
	tty_free(p);
	p = line("exactly11!!", 11, 10, &w);
	assert_string_equal(p, "exactly11\xe2\x80\xa6");
	assert_int_equal(w, 10);
	tty_free(p);
	/* ASCII mode: every byte < 0x80 */
	st.ascii = true;
	p = line("caf\xc3\xa9 \xe6\xbc\xa2 ok", 12, 0, &w);
	assert_string_equal(p, "caf? ? ok");
	tty_free(p);
	p = line("a long line to cut", 18, 10, &w);
	assert_string_equal(p, "a long ...");
	assert_int_equal(w, 10);
	tty_free(p);
	st.ascii = false;
}

static void symbols(void **s)
{
	(void)s;
	struct tty_line l;
	st.ascii = false;
	tty_line_init(&l, &st, 0);
	tty_line_sym(&l, SYM_DONE);  /* ✅ two columns */
	tty_line_sym(&l, SYM_RUN);   /* ⚙️ one column, padded to two */
	assert_int_equal(l.width, 6);
	tty_line_release(&l);
	st.ascii = true;
	tty_line_init(&l, &st, 0);
	tty_line_sym(&l, SYM_CACHED);
	tty_line_sym(&l, SYM_RUN); /* none in ASCII */
	tty_line_str(&l, "RUN");
	tty_line_finish(&l);
	assert_string_equal(l.b.p, "= RUN");
	tty_line_release(&l);
	st.ascii = false;
}

static void numbers(void **s)
{
	(void)s;
	char b[32];
	tty_fmt_bytes(b, sizeof(b), 412);
	assert_string_equal(b, "412B");
	tty_fmt_bytes(b, sizeof(b), 40012403);
	assert_string_equal(b, "40.01MB");
	tty_fmt_duration(b, sizeof(b), 1999 * TTY_MS);
	assert_string_equal(b, "1.9s");
	tty_fmt_duration(b, sizeof(b), 65 * TTY_NS);
	assert_string_equal(b, "1m05s");
	tty_fmt_duration(b, sizeof(b), 7384 * TTY_NS);
	assert_string_equal(b, "2h03m");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(friendly_names), cmocka_unit_test(items),
		cmocka_unit_test(exit_codes),     cmocka_unit_test(clean_text),
		cmocka_unit_test(symbols),        cmocka_unit_test(numbers),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
