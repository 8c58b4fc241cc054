/* pipelines.c: the built-in `uses:` pipelines, as YAML text in melange's
 * own format (a step with inputs and a nested pipeline), compiled by the
 * same code as the build file. They follow melange's pkg/build/pipelines
 * (MELANGE.md section 3), written for busybox's sh and tools; `make` is
 * kiln's own (autoconf/make without configure's conventions). */
#include <string.h>

#include "melange.h"

struct builtin {
	const char *name, *text;
};

static const struct builtin builtins[] = {
	{ "autoconf/configure",
	  "name: Configure a project with autoconf\n"
	  "needs:\n  packages: [autoconf, automake, libtool]\n"
	  "inputs:\n"
	  "  dir:\n    description: the directory holding configure\n    default: .\n"
	  "  host:\n    description: the GNU triplet of the host\n    default: ${{host.triplet.gnu}}\n"
	  "  build:\n    description: the GNU triplet of the build machine\n    default: ${{host.triplet.gnu}}\n"
	  "  opts:\n    description: more options for configure\n    default: ''\n"
	  "pipeline:\n"
	  "  - runs: |\n"
	  "      cd ${{inputs.dir}}\n"
	  "      if [ ! -f configure ] && [ -f configure.ac ]; then autoreconf -vfi; fi\n"
	  "      ./configure \\\n"
	  "        --host=${{inputs.host}} \\\n"
	  "        --build=${{inputs.build}} \\\n"
	  "        --prefix=/usr \\\n"
	  "        --sysconfdir=/etc \\\n"
	  "        --libdir=/usr/lib \\\n"
	  "        --mandir=/usr/share/man \\\n"
	  "        --infodir=/usr/share/info \\\n"
	  "        --localstatedir=/var \\\n"
	  "        ${{inputs.opts}}\n" },
	{ "autoconf/make",
	  "name: Run make\n"
	  "needs:\n  packages: [make]\n"
	  "inputs:\n"
	  "  dir:\n    description: the directory holding the Makefile\n    default: .\n"
	  "  opts:\n    description: options for make\n    default: ''\n"
	  "  targets:\n    description: the targets to make\n    default: ''\n"
	  "pipeline:\n"
	  "  - runs: make -C ${{inputs.dir}} -j$(nproc) V=1 ${{inputs.opts}} ${{inputs.targets}}\n" },
	{ "autoconf/make-install",
	  "name: Run make install\n"
	  "needs:\n  packages: [make]\n"
	  "inputs:\n"
	  "  dir:\n    description: the directory holding the Makefile\n    default: .\n"
	  "  opts:\n    description: options for make\n    default: ''\n"
	  "  targets:\n    description: the install targets\n    default: install\n"
	  "pipeline:\n"
	  "  - runs: |\n"
	  "      make -C ${{inputs.dir}} ${{inputs.targets}} DESTDIR=${{targets.contextdir}} V=1 ${{inputs.opts}}\n"
	  "      find ${{targets.contextdir}} -name '*.la' -print -exec rm -f {} \\;\n" },
	{ "make",
	  "name: Run make (kiln)\n"
	  "needs:\n  packages: [make]\n"
	  "inputs:\n"
	  "  dir:\n    description: the directory holding the Makefile\n    default: .\n"
	  "  opts:\n    description: options for make\n    default: ''\n"
	  "  targets:\n    description: the targets to make\n    default: ''\n"
	  "pipeline:\n"
	  "  - runs: make -C ${{inputs.dir}} ${{inputs.opts}} ${{inputs.targets}}\n" },
	{ "patch",
	  "name: Apply patches\n"
	  "needs:\n  packages: [patch]\n"
	  "inputs:\n"
	  "  series:\n    description: a quilt-style series file\n    default: ''\n"
	  "  patches:\n    description: patches to apply, space separated\n    default: ''\n"
	  "  strip-components:\n    description: -p of patch\n    default: '1'\n"
	  "  fuzz:\n    description: --fuzz of patch\n    default: '2'\n"
	  "pipeline:\n"
	  "  - runs: |\n"
	  "      if [ -z '${{inputs.series}}' ] && [ -z '${{inputs.patches}}' ]; then\n"
	  "        echo 'patch: set series or patches' >&2; exit 1\n"
	  "      fi\n"
	  "      if [ -n '${{inputs.series}}' ]; then\n"
	  "        grep -v -E '^(#|$)' '${{inputs.series}}' | while read -r p; do\n"
	  "          patch -p${{inputs.strip-components}} --fuzz=${{inputs.fuzz}} --verbose < \"$p\"\n"
	  "        done\n"
	  "      fi\n"
	  "      for p in ${{inputs.patches}}; do\n"
	  "        patch -p${{inputs.strip-components}} --fuzz=${{inputs.fuzz}} --verbose < \"$p\"\n"
	  "      done\n" },
	{ "strip",
	  "name: Strip binaries\n"
	  "needs:\n  packages: [binutils]\n"
	  "inputs:\n"
	  "  opts:\n    description: options for strip\n    default: -g\n"
	  "pipeline:\n"
	  "  - working-directory: ${{targets.contextdir}}\n"
	  "    runs: |\n"
	  "      elf=$(printf '\\177ELF')\n"
	  "      find . -type f | sort | while read -r f; do\n"
	  "        [ \"$(head -c 4 \"$f\")\" = \"$elf\" ] || continue\n"
	  "        echo \"strip: $f\"\n"
	  "        strip ${{inputs.opts}} \"$f\"\n"
	  "      done\n" },
	{ "split/bin",
	  "name: Split binaries\n"
	  "inputs:\n"
	  "  package:\n    description: the package to split from\n    default: ${{package.name}}\n"
	  "pipeline:\n"
	  "  - runs: |\n"
	  "      src=${{targets.outdir}}/${{inputs.package}}\n"
	  "      [ \"$src\" != '${{targets.contextdir}}' ] || { echo 'split/bin: use it in a subpackage' >&2; exit 1; }\n"
	  "      if [ -d \"$src/usr/bin\" ]; then\n"
	  "        mkdir -p '${{targets.contextdir}}/usr'\n"
	  "        mv \"$src/usr/bin\" '${{targets.contextdir}}/usr/'\n"
	  "      fi\n" },
	{ "split/static",
	  "name: Split static libraries\n"
	  "inputs:\n"
	  "  package:\n    description: the package to split from\n    default: ${{package.name}}\n"
	  "pipeline:\n"
	  "  - runs: |\n"
	  "      src=${{targets.outdir}}/${{inputs.package}}\n"
	  "      [ \"$src\" != '${{targets.contextdir}}' ] || { echo 'split/static: use it in a subpackage' >&2; exit 1; }\n"
	  "      cd \"$src\"\n"
	  "      find . -name '*.a' | sort | while read -r f; do\n"
	  "        mkdir -p \"${{targets.contextdir}}/$(dirname \"$f\")\"\n"
	  "        mv \"$f\" \"${{targets.contextdir}}/$f\"\n"
	  "      done\n" },
	{ "split/manpages",
	  "name: Split manpages\n"
	  "inputs:\n"
	  "  package:\n    description: the package to split from\n    default: ${{package.name}}\n"
	  "pipeline:\n"
	  "  - runs: |\n"
	  "      src=${{targets.outdir}}/${{inputs.package}}\n"
	  "      [ \"$src\" != '${{targets.contextdir}}' ] || { echo 'split/manpages: use it in a subpackage' >&2; exit 1; }\n"
	  "      for d in usr/share/man usr/local/share/man usr/man; do\n"
	  "        [ -d \"$src/$d\" ] || continue\n"
	  "        mkdir -p '${{targets.contextdir}}/usr/share/man'\n"
	  "        cp -a \"$src/$d/.\" '${{targets.contextdir}}/usr/share/man/'\n"
	  "        rm -rf \"$src/$d\"\n"
	  "      done\n" },
	{ "split/infodir",
	  "name: Split info pages\n"
	  "inputs:\n"
	  "  package:\n    description: the package to split from\n    default: ${{package.name}}\n"
	  "pipeline:\n"
	  "  - runs: |\n"
	  "      src=${{targets.outdir}}/${{inputs.package}}\n"
	  "      [ \"$src\" != '${{targets.contextdir}}' ] || { echo 'split/infodir: use it in a subpackage' >&2; exit 1; }\n"
	  "      if [ -d \"$src/usr/share/info\" ]; then\n"
	  "        rm -f \"$src/usr/share/info/dir\"\n"
	  "        mkdir -p '${{targets.contextdir}}/usr/share'\n"
	  "        mv \"$src/usr/share/info\" '${{targets.contextdir}}/usr/share/'\n"
	  "      fi\n" },
	{ "split/locales",
	  "name: Split locales\n"
	  "inputs:\n"
	  "  package:\n    description: the package to split from\n    default: ${{package.name}}\n"
	  "pipeline:\n"
	  "  - runs: |\n"
	  "      src=${{targets.outdir}}/${{inputs.package}}\n"
	  "      [ \"$src\" != '${{targets.contextdir}}' ] || { echo 'split/locales: use it in a subpackage' >&2; exit 1; }\n"
	  "      if [ -d \"$src/usr/share/locale\" ]; then\n"
	  "        mkdir -p '${{targets.contextdir}}/usr/share'\n"
	  "        mv \"$src/usr/share/locale\" '${{targets.contextdir}}/usr/share/'\n"
	  "      fi\n" },
	{ NULL, NULL },
};

const char *const mel_pipeline_names[] = {
	"autoconf/configure", "autoconf/make", "autoconf/make-install", "make", "patch",
	"split/bin", "split/infodir", "split/locales", "split/manpages", "split/static",
	"strip", NULL,
};

const char *mel_pipeline_text(const char *name)
{
	for (const struct builtin *b = builtins; b->name; b++)
		if (strcmp(b->name, name) == 0)
			return b->text;
	return NULL;
}
