#!/usr/bin/env bash
# `make install` into a DESTDIR, then: the man page renders with man, the
# bash and zsh completion list a kiln.lua's targets, and the installed
# plugin kit (the template) builds out of tree against the installed
# kiln-plugin.pc and the installed kiln loads the plugin.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
need_tools pandoc man
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=/opt/kiln-test

# SANITIZE must match the build being installed, or make would rebuild it.
san=0; case "$BUILD" in *asan*) san=1 ;; esac
check "make install PREFIX DESTDIR" make -s install BUILD="$BUILD" SANITIZE=$san \
	PREFIX=$prefix DESTDIR="$tmp/root"
root=$tmp/root$prefix
for f in bin/kiln include/kiln/kiln.h include/kiln/plugin.h include/kiln/event.h \
	lib/pkgconfig/kiln-plugin.pc lib/kiln/plugins/renderer-plain.so share/man/man1/kiln.1 \
	share/bash-completion/completions/kiln share/zsh/site-functions/_kiln \
	share/kiln/plugin-template/Makefile share/kiln/plugin-template/hello.c; do
	if [ -e "$root/$f" ]; then ok "installed $f"; else not_ok "installed $f"; fi
done

export PKG_CONFIG_PATH=$root/lib/pkgconfig
expect_eq "kiln-plugin.pc names the plugin dir" "$prefix/lib/kiln/plugins" \
	"$(pkg-config --variable=plugindir kiln-plugin)"
expect_eq "kiln-plugin.pc names the installed template" "$prefix/share/kiln/plugin-template" \
	"$(pkg-config --variable=templatedir kiln-plugin)"
cp -r "$tmp/root$(pkg-config --variable=templatedir kiln-plugin)" "$tmp/tpl"
# The .pc file has the final prefix; point the compiler at the DESTDIR copy.
check "template plugin builds out of tree" make -s -C "$tmp/tpl" \
	CFLAGS="-O2 -Wall -Wextra -Werror -I$root/include"
cp "$tmp/tpl/renderer-hello.so" "$root/lib/kiln/plugins/"

# The installed kiln finds its plugins relative to itself (../lib/kiln/plugins).
out=$(HOME=$tmp KILN_PLUGIN_PATH= "$root/bin/kiln" plugins 2>&1); rc=$?
expect_eq "installed kiln plugins exits 0" 0 "$rc"
expect_match "installed kiln lists the built-in plain renderer" \
	"plain +renderer .* $root/lib/kiln/plugins/renderer-plain.so" "$out"
expect_match "installed kiln lists the out-of-tree plugin" "hello +renderer +0\.1" "$out"
printf '%s\n' \
 '{"schema":1,"type":"job.started","time":"2026-01-01T00:00:00Z","job":{"id":"j","target":"app","platform":"","builder":"b","number":1}}' \
 '{"schema":1,"type":"job.finished","time":"2026-01-01T00:00:01Z","job":{"id":"j","target":"app","platform":"","builder":"b","number":1},"status":0}' \
 > "$tmp/events.jsonl"
out=$(HOME=$tmp "$root/bin/kiln" replay --progress=hello "$tmp/events.jsonl" 2>&1)
expect_eq "out-of-tree renderer renders" "hello: app done (0 steps, 0 cached)" "$out"

# --- man kiln -----------------------------------------------------------------
expect_eq "man finds the installed page" "$root/share/man/man1/kiln.1" \
	"$(MANPATH=$root/share/man man -w kiln 2>&1)"
out=$(MANPATH=$root/share/man MANPAGER=cat MANWIDTH=200 man kiln 2>/dev/null); rc=$?
expect_eq "man kiln exits 0" 0 "$rc"
out=$(printf '%s\n' "$out" | tr -s ' ') # justification pads with spaces
man_has() { # man_has NAME REGEX: the rendered page has a line matching REGEX
	if printf '%s\n' "$out" | grep -Eq -- "$2"; then ok "$1"
	else not_ok "$1" "no line matches /$2/; the page's first lines:" "$(head -n 8 <<<"$out")"; fi
}
man_has "man kiln: title line" "^KILN\(1\) kiln manual KILN\(1\)$"
man_has "man kiln: NAME" "^ kiln - build container images with BuildKit"
man_has "man kiln: a section from docs/cli.md" "^EXIT CODES$"
man_has "man kiln: a flag of kiln build" "^ --no-cache-filter STAGE do not use the cache"
man_has "man kiln: kiln ls -q" "^ -q, --quiet kiln ls only: names only"
expect_eq "whatis line (lexgrog)" \
	"$root/share/man/man1/kiln.1: \"kiln - build container images with BuildKit: Dockerfiles, melange and kiln.lua\"" \
	"$(lexgrog "$root/share/man/man1/kiln.1" 2>&1)"

# --- shell completion -----------------------------------------------------------
# A project with a kiln.lua: two targets, a private template, two groups;
# and another script named with -f.
mkdir -p "$tmp/proj/sub"
cat >"$tmp/proj/kiln.lua" <<'LUA'
target "_base" { context = "." }
target "app" { inherits = { "_base" }, description = "The app" }
target "tools" { inherits = { "_base" } }
group "default" { "app", "tools" }
group "release" { "app" }
LUA
printf 'target "other" { context = "." }\n' >"$tmp/proj/sub/other.lua"

# bash: no interactive shell; fill COMP_WORDS and COMP_CWORD as readline
# would, call the function complete -F names, print COMPREPLY sorted.
bash_complete() { # bash_complete WORD...: the last WORD is being completed
	(cd "$tmp/proj" && PATH=$root/bin:$PATH bash --norc --noprofile -c '
		. "$1"; shift
		spec=$(complete -p kiln) || exit 1
		fn=${spec#*-F }; fn=${fn%% *}
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		"$fn"
		[ ${#COMPREPLY[@]} = 0 ] || printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' \
		_ "$root/share/bash-completion/completions/kiln" "$@")
}
expect_eq "bash: kiln build <TAB> lists targets and groups, not _base" \
	"app default release sub tools " "$(bash_complete kiln build '')"
expect_eq "bash: kiln build r<TAB>" "release " "$(bash_complete kiln build r)"
expect_eq "bash: kiln print -f sub/other.lua <TAB>" "other " \
	"$(bash_complete kiln print -f sub/other.lua '')"
expect_eq "bash: kiln l<TAB> (commands)" "lint ls " "$(bash_complete kiln l)"
expect_eq "bash: kiln build --no-c<TAB> (flags)" "--no-cache --no-cache-filter " \
	"$(bash_complete kiln build --no-c)"
expect_eq "bash: kiln build --progress <TAB>" "auto json plain quiet tty " \
	"$(bash_complete kiln build --progress '')"
expect_eq "bash: kiln build -t <TAB> (a value: nothing)" "" "$(bash_complete kiln build -t '')"

# zsh: the completion function with the completion system's builtins
# replaced by stubs that print what they were given.
if command -v zsh >/dev/null; then
	zsh_complete() { # zsh_complete WORD...: as bash_complete
		(cd "$tmp/proj" && PATH=$root/bin:$PATH zsh -f -c '
			compadd() { while [[ $1 == -* && $1 != -- ]]; do shift; done
				    [[ $1 == -- ]] && shift; print -l -- "$@"; }
			_describe() { print -l -- ${(P)4%%:*}; }
			_files() { print -- "<files $*>"; }
			fpath=("$1" $fpath); shift
			autoload -Uz _kiln
			words=("$@"); CURRENT=$#
			_kiln | sort | tr "\n" " "' _ "$root/share/zsh/site-functions" "$@")
	}
	expect_eq "zsh: kiln build <TAB> lists targets and groups" \
		"<files -/> app default release tools " "$(zsh_complete kiln build '')"
	expect_match "zsh: kiln <TAB> lists commands" "^build .*ls .*version " \
		"$(zsh_complete kiln '')"
	expect_match "zsh: kiln build --<TAB> lists flags" "--no-cache .*--platform " \
		"$(zsh_complete kiln build --)"
else
	skip "zsh completion" "zsh is not installed"
fi
tap_done
