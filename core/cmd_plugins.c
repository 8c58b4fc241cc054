/* cmd_plugins.c: `kiln plugins`: what is loaded, from where, what was
 * refused and where kiln looked. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "loader.h"

static int print_json(const struct kiln_registry *reg)
{
	json_t *root = json_object(), *list = json_array(), *dirs = json_array(),
	       *refused = json_array();
	for (size_t i = 0; i < reg->n_entries; i++) {
		const struct kiln_reg_entry *e = &reg->entries[i];
		json_t *o = json_object();
		json_object_set_new(o, "name", json_string(e->name));
		json_object_set_new(o, "kind", json_string(kiln__kind_name(e->kind)));
		json_object_set_new(o, "version", json_string(e->version));
		json_object_set_new(o, "description", json_string(e->description));
		json_object_set_new(o, "path", json_string(kiln__plugin_file(e->owner)));
		json_array_append_new(list, o);
	}
	for (size_t i = 0; i < reg->searched.n; i++)
		json_array_append_new(dirs, json_string(reg->searched.v[i]));
	for (size_t i = 0; i < reg->refused.n; i++)
		json_array_append_new(refused, json_string(reg->refused.v[i]));
	json_object_set_new(root, "plugins", list);
	json_object_set_new(root, "searched", dirs);
	json_object_set_new(root, "refused", refused);
	json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	putchar('\n');
	json_decref(root);
	return 0;
}

static void print_table(const struct kiln_registry *reg)
{
	if (reg->n_entries == 0) {
		printf("No plugins found.\n");
	} else {
		printf("%-14s %-9s %-9s %s\n", "NAME", "KIND", "VERSION", "PATH");
		for (size_t i = 0; i < reg->n_entries; i++) {
			const struct kiln_reg_entry *e = &reg->entries[i];
			printf("%-14s %-9s %-9s %s\n", e->name, kiln__kind_name(e->kind),
			       e->version, kiln__plugin_file(e->owner));
		}
	}
	printf("\nSearched:\n");
	for (size_t i = 0; i < reg->searched.n; i++)
		printf("  %s\n", reg->searched.v[i]);
}

int kiln__cmd_plugins(struct kiln_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 },
	};
	const char *format = "table";
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'F')
			format = optarg;
		else
			return kiln__usage_error("plugins", "unknown or incomplete option '%s'",
						 argv[optind - 1]);
	}
	if (optind < argc)
		return kiln__usage_error("plugins", "unexpected argument '%s'", argv[optind]);
	if (strcmp(format, "json") == 0)
		print_json(&ctx->reg);
	else if (strcmp(format, "table") == 0)
		print_table(&ctx->reg);
	else
		return kiln__usage_error("plugins", "unknown format '%s' (table or json)", format);
	fflush(stdout);
	for (size_t i = 0; i < ctx->reg.refused.n; i++)
		fprintf(stderr, "kiln: %s\n", ctx->reg.refused.v[i]);
	return ctx->reg.refused.n ? KILN_EXIT_USAGE : KILN_EXIT_OK;
}
