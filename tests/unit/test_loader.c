/* The real loader against real test plugins (tests/abi/plugins, built
 * next to this binary in ../abi/): registry contents after each case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "loader.h"

static char so_dir[PATH_MAX];

static char *so(const char *name)
{
	static char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/%s.so", so_dir, name);
	return path;
}

static void good_plugin_registers_its_renderer(void **st)
{
	(void)st;
	struct kiln_registry reg = { 0 };
	struct kiln_err err = { 0 };
	assert_int_equal(kiln__registry_load(&reg, so("good"), &err), 0);
	const struct kiln_reg_entry *e = kiln__registry_find(&reg, KILN_KIND_RENDERER, "abi-good");
	assert_non_null(e);
	assert_string_equal(e->version, "1.2.3");
	assert_string_equal(kiln__plugin_file(e->owner), so("good"));
	assert_null(kiln__registry_find(&reg, KILN_KIND_FRONTEND, "abi-good"));
	assert_int_equal(reg.refused.n, 0);
	kiln__registry_release(&reg);
}

static void bad_plugins_are_refused_and_leave_no_entry(void **st)
{
	(void)st;
	static const struct { const char *name; int code; const char *msg_part; } cases[] = {
		{ "wrong_abi", KILN_E_ABI, "built for kiln plugin ABI 2.0, this kiln has ABI 1." },
		{ "no_entry", KILN_E_PLUGIN, "no kiln_plugin_init symbol" },
		{ "failing_init", KILN_E_PLUGIN, "cannot find its configuration file" },
		{ "does_not_exist", KILN_E_PLUGIN, "cannot load" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kiln_registry reg = { 0 };
		struct kiln_err err = { 0 };
		assert_int_equal(kiln__registry_load(&reg, so(cases[i].name), &err), cases[i].code);
		assert_non_null(strstr(err.msg, cases[i].msg_part));
		assert_non_null(strstr(err.msg, so(cases[i].name)));
		assert_null(strchr(err.msg, '\n'));
		assert_int_equal(reg.n_entries, 0);
		assert_int_equal(reg.n_plugins, 0);
		assert_int_equal(reg.refused.n, 1);
		kiln__registry_release(&reg);
	}
}

static void second_plugin_with_same_name_is_refused(void **st)
{
	(void)st;
	struct kiln_registry reg = { 0 };
	struct kiln_err err = { 0 };
	assert_int_equal(kiln__registry_load(&reg, so("good"), &err), 0);
	assert_int_equal(kiln__registry_load(&reg, so("dup_name"), &err), KILN_E_EXISTS);
	assert_non_null(strstr(err.msg, "already provided by"));
	assert_int_equal(reg.n_entries, 1);
	/* The same file twice is a duplicate too. */
	assert_int_equal(kiln__registry_load(&reg, so("good"), &err), KILN_E_EXISTS);
	kiln__registry_release(&reg);
}

static void registration_outside_entry_is_refused(void **st)
{
	(void)st;
	static const struct kiln_renderer vt = { .abi_version = KILN_ABI_VERSION };
	assert_int_equal(kiln__host.register_renderer(NULL, &vt), KILN_E_INVALID);
	assert_int_equal(kiln__host.abi_version, KILN_ABI_VERSION);
	assert_int_equal(kiln__host.struct_size, sizeof(struct kiln_host));
}

static void search_path_never_has_cwd(void **st)
{
	(void)st;
	setenv("KILN_PLUGIN_PATH", ":/a::/b:", 1);
	struct kiln_strv dirs = { 0 };
	kiln__plugin_path(&dirs);
	assert_true(dirs.n >= 3);
	assert_string_equal(dirs.v[0], "/a");
	assert_string_equal(dirs.v[1], "/b");
	for (size_t i = 0; i < dirs.n; i++) {
		assert_true(dirs.v[i][0] != '\0');
		assert_string_not_equal(dirs.v[i], ".");
	}
	kiln__strv_release(&dirs);
	unsetenv("KILN_PLUGIN_PATH");
}

int main(int argc, char **argv)
{
	(void)argc;
	/* argv[0] is BUILD/tests/unit/test_loader; plugins are in BUILD/tests/abi. */
	char self[PATH_MAX];
	if (!realpath(argv[0], self))
		return 2;
	*strrchr(self, '/') = '\0';
	snprintf(so_dir, sizeof(so_dir), "%.*s/abi", (int)(strrchr(self, '/') - self), self);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_plugin_registers_its_renderer),
		cmocka_unit_test(bad_plugins_are_refused_and_leave_no_entry),
		cmocka_unit_test(second_plugin_with_same_name_is_refused),
		cmocka_unit_test(registration_outside_entry_is_refused),
		cmocka_unit_test(search_path_never_has_cwd),
	};
	return cmocka_run_group_tests_name("loader", tests, NULL, NULL);
}
