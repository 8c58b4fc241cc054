#!/usr/bin/env bash
# tests/lua/run.sh: kiln.lua scripts without an engine: `kiln print` (golden
# JSON of a 3x3 matrix with one exclude and one include, two groups and
# inherits), `kiln ls`, --set/--var/kiln.env, the sandbox, and each kind of
# script error with its file:line message and exit code. TAP.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
GOLDEN=$PWD/tests/lua/golden
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-lua.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# run DIR ARGS...: kiln ARGS in DIR; sets out, err, rc
run() {
	local dir=$1; shift
	out=$(cd "$dir" && "$KILN" "$@" 2>"$tmp/stderr"); rc=$?
	err=$(cat "$tmp/stderr")
}
# script TEXT: a fresh project dir $tmp/p with kiln.lua = TEXT
script() {
	rm -rf "$tmp/p"; mkdir -p "$tmp/p"
	printf '%s\n' "$1" > "$tmp/p/kiln.lua"
}
# fails NAME EXIT FIRST-LINE [ARGS...]: kiln print ARGS in $tmp/p must exit
# EXIT with FIRST-LINE as the first line of stderr and nothing on stdout
fails() {
	local name=$1 want_rc=$2 want=$3; shift 3
	run "$tmp/p" print "$@"
	local first=${err%%$'\n'*}
	if [ "$rc" = "$want_rc" ] && [ "$first" = "$want" ] && [ -z "$out" ]; then
		ok "$name"
	else
		not_ok "$name" "want exit $want_rc, first line: $want" "got exit $rc, stderr:" "$err" "stdout: $out"
	fi
}

# ---- golden ----------------------------------------------------------------------------

golden_args=(print --var commit=abc123
	--set 'tools.labels.org.opencontainers.image.revision=abc123'
	--set 'app-*.tags+=reg.test:5000/app:latest-build')
out=$(cd "$GOLDEN" && KILN_TEST_REGISTRY=reg.test:5000 "$KILN" "${golden_args[@]}" 2>"$tmp/stderr")
rc=$?
if [ $rc -eq 0 ] && diff -u "$GOLDEN/print.json" <(printf '%s\n' "$out") > "$tmp/diff"; then
	ok "print: 3x3 matrix, exclude, include, groups, inherits, --set, --var match print.json"
else
	not_ok "print: golden" "exit $rc" "$(cat "$tmp/stderr")" "$(head -40 "$tmp/diff")"
fi
expect_eq "print: nothing on stderr" "" "$(cat "$tmp/stderr")"

# The same plan every time: Lua's string hashes are seeded per run, so
# table order would differ between runs without kiln's sorted keys.
same=1
for i in 1 2 3 4 5; do
	again=$(cd "$GOLDEN" && KILN_TEST_REGISTRY=reg.test:5000 "$KILN" "${golden_args[@]}" 2>/dev/null)
	[ "$again" = "$out" ] || same=0
done
expect_eq "print: five more runs print the same bytes" 1 "$same"

run "$GOLDEN" print
expect_match "kiln.env: the default when the variable is unset" \
	'"BASE_REGISTRY": "localhost:5000"' "$out"
expect_match "kiln.vars: unset --var reads as nil (the script's fallback)" '"COMMIT": "dev"' "$out"

run "$GOLDEN" print tools
expect_eq "print tools: exit 0" 0 "$rc"
expect_eq "print tools: the target and what it depends on, no groups" \
	'app-debian-2.0 tools|' \
	"$(printf '%s' "$out" | jq -r '[.target | keys[]] | join(" ")')|$(printf '%s' "$out" | jq -r '.group | keys[]')"
run "$GOLDEN" print app-ubuntu-1.0 images
expect_eq "print TARGET GROUP: the group and its members" "images 9" \
	"$(printf '%s' "$out" | jq -r '(.group | keys | join(",")) + " " + (.target | length | tostring)')"

run "$GOLDEN" ls
if [ $rc -eq 0 ] && [ "$out" = "$(cat "$GOLDEN/ls.txt")" ]; then
	ok "ls: targets and groups by name, templates hidden (ls.txt)"
else
	not_ok "ls: table" "exit $rc" "$err" "$(diff -u "$GOLDEN/ls.txt" <(printf '%s\n' "$out"))"
fi
run "$GOLDEN" ls --format json
if [ $rc -eq 0 ] && [ "$out" = "$(cat "$GOLDEN/ls.json")" ]; then
	ok "ls --format json (ls.json)"
else
	not_ok "ls --format json" "exit $rc" "$err" "$(diff -u "$GOLDEN/ls.json" <(printf '%s\n' "$out"))"
fi

# print and ls load no plugins: a refused plugin in the path says nothing.
if [ -e "$BUILD/tests/abi/wrong_abi.so" ]; then
	mkdir -p "$tmp/plugins" && cp "$BUILD/tests/abi/wrong_abi.so" "$tmp/plugins/"
	err=$(cd "$GOLDEN" && KILN_PLUGIN_PATH=$tmp/plugins "$KILN" print 2>&1 >/dev/null)
	expect_eq "print loads no plugins (a refused one in KILN_PLUGIN_PATH stays silent)" "" "$err"
else
	skip "print loads no plugins" "no $BUILD/tests/abi/wrong_abi.so (make tests)"
fi

# ---- defaults and selection ---------------------------------------------------------------

script 'target "only" { tags = {"x"} }'
run "$tmp/p" print
expect_eq "no default group: the only target" "only" "$(printf '%s' "$out" | jq -r '.target | keys[]')"
expect_eq "bake's defaults: context . and dockerfile Dockerfile" '.|Dockerfile' \
	"$(printf '%s' "$out" | jq -r '.target.only.context + "|" + .target.only.dockerfile')"

script 'target "app" {}
target "web" {}'
fails "no default group and two targets: exit 2" 2 \
	"kiln: kiln.lua: no group \"default\" and 2 targets: name the targets or groups to use ('kiln ls' lists them)"
fails "unknown target on the command line" 2 \
	"kiln: kiln.lua: no target or group named 'db'" db
fails "a near miss is suggested" 2 \
	"kiln: kiln.lua: no target or group named 'appp' (did you mean 'app'?)" appp

script '-- a target per platform file
target "x" { platforms = { "linux/amd64" } }'
run "$tmp/p" print -f missing.lua
expect_eq "-f names a missing script: exit 2" 2 "$rc"
expect_eq "-f names a missing script: the message" \
	"kiln: missing.lua: no such file (kiln looks for kiln.lua in the current directory; -f names another)" "$err"

mkdir -p "$tmp/p/sub"
printf 'target "s" { context = "." }\n' > "$tmp/p/sub/other.lua"
run "$tmp/p" print -f sub/other.lua
expect_eq "-f sub/other.lua: its targets" "s" "$(printf '%s' "$out" | jq -r '.target | keys[]')"

# ---- --set -----------------------------------------------------------------------------------

script 'target "base" { tags = {"b"}, args = { A = "1" } }
target "app" { inherits = {"base"}, tags = {"a"}, platforms = {"linux/amd64"} }
group "default" { "app" }'
run "$tmp/p" print --set 'app.tags=x' --set 'app.tags=y' --set 'app.platform=linux/arm64,linux/riscv64' \
	--set '*.args.B=2' --set 'app.no-cache=true' --set 'default.description=D'
expect_eq "--set: lists replaced then accumulated, platform alias split on commas, globs, groups, bools" \
	'x,y|linux/arm64,linux/riscv64|1,2|true|D' \
	"$(printf '%s' "$out" | jq -r '.target.app | [(.tags|join(",")), (.platforms|join(",")), ([.args[]]|join(",")), (.no_cache|tostring), .description] | join("|")')"
run "$tmp/p" print --set 'app.tags+=z'
expect_eq "--set FIELD+=: appends" "a,z" "$(printf '%s' "$out" | jq -r '.target.app.tags | join(",")')"
run "$tmp/p" print --set 'base.args.A=9'
expect_eq "--set on a parent reaches what inherits it (as bake)" "9" \
	"$(printf '%s' "$out" | jq -r '.target.app.args.A')"
fails "--set: unknown field" 2 "kiln: --set 'app.tagz=1': unknown field 'tagz'" --set app.tagz=1
fails "--set: no match" 2 "kiln: --set 'nope.tags=1': no target or group matches 'nope'" --set nope.tags=1
fails "--set: bad bool" 2 "kiln: --set 'app.pull=yes': pull takes true or false" --set app.pull=yes
fails "--set: map without key" 2 "kiln: --set 'app.args=1': args needs a key (args.NAME=VALUE)" --set app.args=1
fails "--var: needs KEY=VALUE" 2 "kiln: --var expects KEY=VALUE, got 'x'" --var x

# ---- the sandbox ----------------------------------------------------------------------------

script 'local common = require "lib.common"
local t = { zeta = 1, alpha = 2, mid = 3, [2] = "b", [1] = "a" }
local keys = {}
for k in pairs(t) do keys[#keys + 1] = tostring(k) end
target "s" { args = {
  KEYS = table.concat(keys, ","),
  HELLO = common.hello,
  FILE = kiln.read_file("data/version.txt"),
  EXISTS = tostring(kiln.exists("data/version.txt")) .. "," .. tostring(kiln.exists("nope")),
  BIN = tostring(select(2, load("\27Lua"))),
  OS = type(os) .. "," .. type(os.execute) .. "," .. type(io) .. "," .. type(debug) .. "," .. type(package),
  RANDOM = tostring(math.random(1, 1000000)),
} }'
mkdir -p "$tmp/p/lib" && printf 'return { hello = "from lib" }\n' > "$tmp/p/lib/common.lua"
mkdir -p "$tmp/p/data" && printf '1.2.3' > "$tmp/p/data/version.txt"
run "$tmp/p" print
expect_eq "pairs visits keys sorted (numbers, then strings)" "1,2,alpha,mid,zeta" \
	"$(printf '%s' "$out" | jq -r '.target.s.args.KEYS')"
expect_eq "require loads a module from the project" "from lib" "$(printf '%s' "$out" | jq -r '.target.s.args.HELLO')"
expect_eq "kiln.read_file and kiln.exists in the project" "1.2.3|true,false" \
	"$(printf '%s' "$out" | jq -r '.target.s.args | .FILE + "|" + .EXISTS')"
expect_eq "load refuses binary chunks" "attempt to load a binary chunk (mode is 't')" \
	"$(printf '%s' "$out" | jq -r '.target.s.args.BIN')"
expect_eq "no os.execute, io, debug or package" "table,nil,nil,nil,nil" \
	"$(printf '%s' "$out" | jq -r '.target.s.args.OS')"
r1=$(printf '%s' "$out" | jq -r '.target.s.args.RANDOM')
run "$tmp/p" print
expect_eq "math.random is the same every run" "$r1" "$(printf '%s' "$out" | jq -r '.target.s.args.RANDOM')"

script 'print("to stderr", 1)
target "a" {}'
run "$tmp/p" print
expect_eq "print() writes to stderr, not into the JSON" "to stderr	1" "$err"

outside=$(mktemp "$tmp/outside.XXXXXX")
script "local x = kiln.read_file(\"$outside\")"
fails "read_file outside the project (absolute path)" 2 \
	"kiln: kiln.lua:1: kiln.read_file: '$outside' is outside the project directory $(cd "$tmp/p" && pwd -P)"
ln -s "$outside" "$tmp/p/link"
printf '%s\n' 'local x = kiln.read_file("link")' > "$tmp/p/kiln.lua"
fails "read_file through a symlink out of the project" 2 \
	"kiln: kiln.lua:1: kiln.read_file: 'link' is outside the project directory $(cd "$tmp/p" && pwd -P)"
script 'local f = io.open("out.txt", "w")'
fails "no io: no writes" 2 "kiln: kiln.lua:1: attempt to index a nil value (global 'io')"
script '
os.execute("touch pwned")'
fails "no os.execute" 2 "kiln: kiln.lua:2: attempt to call a nil value (field 'execute')"
[ ! -e "$tmp/p/pwned" ] && ok "os.execute ran nothing" || not_ok "os.execute ran nothing"
script 'local p = io.popen("id")'
fails "no io.popen" 2 "kiln: kiln.lua:1: attempt to index a nil value (global 'io')"
script 'require "../etc"'
fails "require takes module names only" 2 \
	"kiln: kiln.lua:1: require: '../etc' is not a module name (like \"lib.common\")"

# ---- errors: file:line, exit 2 ------------------------------------------------------------

script 'target "app" {
  context = "."
  tags = { "app" },
}'
fails "syntax error" 2 "kiln: kiln.lua:3: '}' expected (to close '{' at line 1) near 'tags'"
expect_eq "syntax error: no traceback" 1 "$(printf '%s\n' "$err" | wc -l)"

script '-- comment
target "app" {
  tagz = { "app" },
}'
fails "unknown field, with a suggestion" 2 \
	"kiln: kiln.lua:2: target \"app\": unknown field 'tagz' (did you mean 'tags'?)"
expect_match "unknown field: traceback through the main chunk" \
	$'stack traceback:\n.*kiln.lua:2: in main chunk' "$err"

script 'target "app" { colour = "red" }'
fails "unknown field far from any" 2 "kiln: kiln.lua:1: target \"app\": unknown field 'colour'"

script '
target "app" {
  no_cache = "yes",
}'
fails "wrong type: bool" 2 "kiln: kiln.lua:2: target \"app\": field 'no_cache' must be true or false, not a string"
script 'target "app" { tags = { "a", { } } }'
fails "wrong type: list item" 2 \
	"kiln: kiln.lua:1: target \"app\": field 'tags' must be a list of strings, but item 2 is a table"
script 'target "app" { args = { A = {} } }'
fails "wrong type: map value" 2 \
	"kiln: kiln.lua:1: target \"app\": field 'args': 'A' must be a string, number or boolean, not a table"
script 'target "app" { context = 5 }'
fails "wrong type: string" 2 "kiln: kiln.lua:1: target \"app\": field 'context' must be a string, not an integer"
script 'target(42) {}'
fails "wrong type: name" 2 "kiln: kiln.lua:1: target: the name must be a string, not an integer"
script 'target "a b" {}'
fails "invalid name" 2 \
	"kiln: kiln.lua:1: target \"a b\": invalid name (use letters, digits, '_', '.' and '-'; start with a letter, digit or '_')"
script 'target "app" { "x" }'
fails "a list item where fields belong" 2 \
	"kiln: kiln.lua:1: target \"app\": fields are written NAME = value; found an integer key (a list item where a field belongs)"
script 'target "app" {}
target "app" {}'
fails "declared twice" 2 "kiln: kiln.lua:2: target \"app\": the name is already taken by the target declared at kiln.lua:1"
script 'target "app"
target "b" {}'
fails "a target without its table" 2 \
	"kiln: kiln.lua:1: target \"app\" is declared without a table (write target \"app\" { … })"

script 'target "a" {}
group "g1" { "a", "g2" }
group "g2" { "g3" }
group "g3" { "g1" }'
fails "group cycle" 2 "kiln: kiln.lua:2: group \"g1\": groups form a cycle: g1 -> g2 -> g3 -> g1"

script 'target "a" { depends = { "b" } }
target "b" { depends = { "c" } }
target "c" { depends = { "a" } }'
fails "dependency cycle (depends)" 2 "kiln: kiln.lua:1: target \"a\": dependency cycle: a -> b -> c -> a"
script 'target "a" { contexts = { base = "target:b" } }

target "b" { depends = { "a" } }'
fails "dependency cycle (contexts target:)" 2 "kiln: kiln.lua:1: target \"a\": dependency cycle: a -> b -> a"
script 'target "a" { contexts = { self = "target:a" } }'
fails "a target depending on itself" 2 "kiln: kiln.lua:1: target \"a\": dependency cycle: a -> a"
script 'target "a" { inherits = { "b" } }
target "b" { inherits = { "a" } }'
fails "inherits cycle" 2 "kiln: kiln.lua:1: target \"a\": inherits form a cycle: a -> b -> a"

script 'target "app" {}
target "tool" {
  depends = { "apps" },
}'
fails "unknown target in depends" 2 \
	"kiln: kiln.lua:2: target \"tool\": depends on 'apps', which is not a target (did you mean 'app'?)"
script 'target "app" {}

group "default" { "app", "web" }'
fails "unknown target in a group" 2 "kiln: kiln.lua:3: group \"default\": no target or group named 'web'"
script 'target "app" { inherits = { "_base" } }'
fails "unknown target in inherits" 2 "kiln: kiln.lua:1: target \"app\": inherits an unknown target '_base'"
script 'target "app" { contexts = { x = "target:nope" } }'
fails "unknown target in contexts" 2 \
	"kiln: kiln.lua:1: target \"app\": has a context from 'nope', which is not a target"

script 'local t = {}
local function f() return t.x.y end
target "a" { context = f() }'
fails "runtime error" 2 "kiln: kiln.lua:2: attempt to index a nil value (field 'x')"
expect_match "runtime error: the traceback names both lines" \
	$'stack traceback:\n.*kiln.lua:2: in .*\n.*kiln.lua:3: in main chunk' "$err"
script 'error("custom failure")'
fails "error()" 2 "kiln: kiln.lua:1: custom failure"
script 'error({})'
fails "error() with a table" 2 "kiln: kiln.lua:1: (error object is a table)"

# ---- matrix ------------------------------------------------------------------------------------

script 'local out = {}
for _, c in ipairs(matrix { b = { 1, 2 }, a = { "x", "y" }, exclude = { { a = "y", b = 1 } } }) do
  out[#out + 1] = c.a .. c.b
end
for _, c in ipairs(matrix { include = { { a = 1 }, { a = 2 } } }) do out[#out + 1] = "i" .. c.a end
target "m" { tags = out }'
run "$tmp/p" print
expect_eq "matrix: axes by name, the last fastest; exclude; include alone" "x1,x2,y2,i1,i2" \
	"$(printf '%s' "$out" | jq -r '.target.m.tags | join(",")')"
script 'local m = matrix { os = {} }'
fails "matrix: an empty axis" 2 "kiln: kiln.lua:1: matrix: axis 'os' must be a non-empty list, not an empty or keyed table"
script 'local m = matrix { os = { "a" }, exclude = { { arch = "x" } } }'
fails "matrix: exclude names no axis" 2 "kiln: kiln.lua:1: matrix: exclude entry 1 names 'arch', which is not an axis"

# ---- kiln build picks the script --------------------------------------------------------------

script 'target "a" { depends = { "zz" } }'
run "$tmp/p" build a
expect_eq "kiln build NAME with kiln.lua present evaluates the script (exit 2)" 2 "$rc"
expect_eq "kiln build NAME: the script's error" \
	"kiln: kiln.lua:1: target \"a\": depends on 'zz', which is not a target" "${err%%$'\n'*}"

tap_done
