# kiln: GNU make build. `make` builds build/kiln and build/plugins/*.so;
# `make check` runs the whole test suite (scripts/check.sh); `make install`.
# Options: SANITIZE=1 (ASan+UBSan), DEBUG=1, BUILD=dir, PREFIX, DESTDIR.

PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
PLUGDIR ?= $(LIBDIR)/kiln/plugins
PCDIR   ?= $(LIBDIR)/pkgconfig
DATADIR ?= $(PREFIX)/share
MANDIR  ?= $(DATADIR)/man
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
# zsh's own default; Debian's zsh also reads /usr/share/zsh/vendor-completions.
ZSHCOMPDIR  ?= $(DATADIR)/zsh/site-functions
KITDIR  ?= $(DATADIR)/kiln/plugin-template
BUILD   ?= build

CC       ?= cc
PKG      ?= pkg-config
PROTOC_C ?= protoc-c
PANDOC   ?= pandoc

ifeq ($(SANITIZE),1)
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
SANLD := -fsanitize=address,undefined
else ifeq ($(DEBUG),1)
OPT := -O0 -g
else
OPT := -O2 -g
endif

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral -Wpointer-arith \
	-Wundef -Wcast-align -Wvla
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(OPT) $(WARN) \
	-Iinclude -Icore -I$(BUILD)/gen -include core/banned.h \
	-DKILN_PLUGIN_DIR='"$(PLUGDIR)"'
ALL_CFLAGS = $(BASE_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SANLD) $(LDFLAGS)

# Libraries of the core (Lua for kiln.lua, jansson for JSON replay/plan,
# protobuf-c for the LLB graph builder, nettle's SHA-256 for digests,
# libcrypto's base64); plugins
# list theirs in plugins/<dir>/pkgs. libcurl (engine ping, registry) and
# libarchive (tar contexts) are not linked: core/lazylib.c opens them by
# SONAME on first use, so commands that need neither do not load them
# (core/lazylib.h says why).
CORE_PKGS := lua5.4 jansson libprotobuf-c libcrypto nettle
CORE_LAZY_PKGS := libarchive libcurl
# SONAME of the lib<name>.so that pkg-config's libdir holds, else fallback.
soname = $(or $(shell objdump -p "$$($(PKG) --variable=libdir $(1) 2>/dev/null)/$(2)" 2>/dev/null | \
	awk '$$1 == "SONAME" { print $$2 }'),$(3))
CORE_CFLAGS := $(shell $(PKG) --cflags $(CORE_PKGS) $(CORE_LAZY_PKGS) 2>/dev/null) \
	-DKILN_LIBCURL_SONAME='"$(call soname,libcurl,libcurl.so,libcurl.so.4)"' \
	-DKILN_LIBARCHIVE_SONAME='"$(call soname,libarchive,libarchive.so,libarchive.so.13)"'
CORE_LIBS := $(shell $(PKG) --libs $(CORE_PKGS) 2>/dev/null) -ldl -lpthread

# ---- generated protobuf code (never committed) ----
PROTOS := $(wildcard proto/*.proto)
PROTO_C := $(patsubst proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
PROTO_H := $(PROTO_C:.c=.h)
PROTO_O := $(patsubst $(BUILD)/gen/%.c,$(BUILD)/obj/gen/%.o,$(PROTO_C))
PROTO_LIB := $(BUILD)/libkilnproto.a

# ---- core ----
CORE_SRC := $(wildcard core/*.c)
CORE_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRC))
CORE_LIB := $(BUILD)/libkilncore.a
KILN := $(BUILD)/kiln

# ---- plugins: plugins/<kind>-<name>/*.c -> build/plugins/<kind>-<name>.so
PLUGIN_DIRS := $(patsubst plugins/%/,%,$(sort $(dir $(wildcard plugins/*/*.c))))
# plugins/frontend-melange/apk.c (the .apk writer) came before the frontend
# itself: no plugin there until its pkgs file (libyaml libarchive libcrypto
# zlib) does; tests/unit/test_apk.c links apk.c directly.
PLUGIN_DIRS := $(filter-out $(if $(wildcard plugins/frontend-melange/pkgs),,frontend-melange),$(PLUGIN_DIRS))
PLUGINS := $(patsubst %,$(BUILD)/plugins/%.so,$(PLUGIN_DIRS))
plugin_pkgs = $(strip $(shell cat plugins/$(1)/pkgs 2>/dev/null))

# ---- tests ----
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRC))
ABI_SRC := $(wildcard tests/abi/plugins/*.c)
ABI_SO := $(patsubst tests/abi/plugins/%.c,$(BUILD)/tests/abi/%.so,$(ABI_SRC))
TEST_PKGS := cmocka
# The Dockerfile parser (plugins/frontend-dockerfile) is linked on its own
# into tests/dfparse, the golden-file dumper of tests/dockerfile/run.sh,
# and into the libFuzzer target of `make fuzz`.
DF_PARSER_SRC := $(addprefix plugins/frontend-dockerfile/,parser.c shell.c parser_json.c)
DF_PARSER_DEP := $(DF_PARSER_SRC) $(wildcard plugins/frontend-dockerfile/*.h)
DFPARSE := $(BUILD)/tests/dfparse
# tests/apk/run.sh packages trees with mkapk (apk.c behind a command line).
MKAPK := $(BUILD)/tests/mkapk
# tests/integration/trace_test.sh draws timelines with trace_render
# (core/trace.c fed from a --progress=json stream).
TRACE_RENDER := $(BUILD)/tests/trace_render

.PHONY: all plugins man tests check check-unit install uninstall clean fuzz fuzz-melange fuzz-dockerfile
.SUFFIXES:
.DELETE_ON_ERROR:
.SECONDARY: $(PROTO_C) $(PROTO_H)

all: $(KILN) $(PLUGINS) $(PROTO_LIB)
plugins: $(PLUGINS)
tests: all $(UNIT_BIN) $(ABI_SO) $(DFPARSE) $(MKAPK) $(TRACE_RENDER)

$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(@D)
	$(PROTOC_C) --proto_path=proto --c_out=$(BUILD)/gen $<

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c $(PROTO_H)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -Wno-undef -Wno-cast-align \
		$(shell $(PKG) --cflags libprotobuf-c) -c $< -o $@

$(PROTO_LIB): $(PROTO_O)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/obj/core/%.o: core/%.c $(wildcard core/*.h include/kiln/*.h) | $(PROTO_H)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CORE_CFLAGS) -c $< -o $@

$(CORE_LIB): $(filter-out $(BUILD)/obj/core/main.o,$(CORE_OBJ))
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(KILN): $(BUILD)/obj/core/main.o $(CORE_LIB) $(PROTO_LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CORE_LIBS)

# One rule per plugin directory, so each links only its own libraries.
# -z defs: a plugin may not depend on core symbols (host table only).
define plugin_rule
$(BUILD)/plugins/$(1).so: $(wildcard plugins/$(1)/*.c plugins/$(1)/*.h) \
		$(wildcard include/kiln/*.h) $(if $(findstring proto,$(call plugin_pkgs,$(1))),$(PROTO_LIB))
	@mkdir -p $$(@D)
	$$(CC) $$(ALL_CFLAGS) $(shell $(PKG) --cflags $(filter-out proto,$(call plugin_pkgs,$(1))) 2>/dev/null) \
		-shared -Wl,-z,defs -o $$@ $(wildcard plugins/$(1)/*.c) \
		$(if $(findstring proto,$(call plugin_pkgs,$(1))),$(PROTO_LIB) $(shell $(PKG) --libs libprotobuf-c)) \
		$(shell $(PKG) --libs $(filter-out proto,$(call plugin_pkgs,$(1))) 2>/dev/null) $$(ALL_LDFLAGS)
endef
$(foreach p,$(PLUGIN_DIRS),$(eval $(call plugin_rule,$(p))))

# A unit test may compile plugin sources with it and use their libraries,
# named in its first lines: "// SOURCES: plugins/x/a.c ..." and
# "// PKGS: grpc ...".
unit_line = $(shell sed -n '1,3s|^// $(1): ||p' $(2))
.SECONDEXPANSION:
$(BUILD)/tests/unit/%: tests/unit/%.c $$(call unit_line,SOURCES,tests/unit/$$*.c) \
		$(CORE_LIB) $(PROTO_LIB) $(wildcard tests/unit/*.h plugins/*/*.h)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CORE_CFLAGS) \
		$(shell $(PKG) --cflags $(TEST_PKGS) $(call unit_line,PKGS,$<)) \
		-o $@ $< $(call unit_line,SOURCES,$<) $(CORE_LIB) $(PROTO_LIB) $(ALL_LDFLAGS) \
		$(CORE_LIBS) $(shell $(PKG) --libs $(TEST_PKGS) $(call unit_line,PKGS,$<))

# Test plugins for the ABI tests: real .so files for the real loader.
# A file may ask for extra flags in a first line "// CFLAGS: ...".
$(BUILD)/tests/abi/%.so: tests/abi/plugins/%.c $(wildcard include/kiln/*.h)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(shell sed -n '1s|^// CFLAGS: ||p' $<) -shared -o $@ $< $(ALL_LDFLAGS)

$(DFPARSE): tests/tools/dfparse.c $(DF_PARSER_DEP)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(shell $(PKG) --cflags jansson) -o $@ tests/tools/dfparse.c \
		$(DF_PARSER_SRC) $(ALL_LDFLAGS) $(shell $(PKG) --libs jansson)

$(MKAPK): tests/apk/mkapk.c plugins/frontend-melange/apk.c plugins/frontend-melange/apk.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ tests/apk/mkapk.c plugins/frontend-melange/apk.c \
		$(ALL_LDFLAGS) $(shell $(PKG) --libs libarchive libcrypto zlib)

$(TRACE_RENDER): tests/tools/trace_render.c $(CORE_LIB) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CORE_CFLAGS) -o $@ $< $(CORE_LIB) $(PROTO_LIB) $(ALL_LDFLAGS) $(CORE_LIBS)

# ---- fuzzing (docs/reliability.md, "Fuzzing") ----
# libFuzzer targets (clang; ASan + UBSan), one per input kiln takes from a
# file or from a daemon. `make fuzz` runs every target FUZZ_SECONDS
# seconds, one after the other; `make fuzz-NAME` runs one. FUZZ_TIME is the
# older name of FUZZ_SECONDS. Seeds: tests/fuzz/corpus/NAME/ (committed;
# dockerfile and melange are filled from the golden tests); what the fuzzer
# adds goes to $(BUILD)/fuzz/corpus-NAME, findings to
# $(BUILD)/fuzz/NAME-{crash,leak,timeout,oom}-* (tests/fuzz/fuzz.sh).
FUZZ_CC ?= clang
FUZZ_TIME ?= 60
FUZZ_SECONDS ?= $(FUZZ_TIME)
FUZZ_TARGETS := dockerfile melange ignore lua dockercfg challenge dockerstream \
	solvestatus session
FUZZ_BIN := $(BUILD)/fuzz/fuzz_dockerfile
FUZZ_FLAGS ?= -max_len=8192 -timeout=10 -rss_limit_mb=2048
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN) \
	$(WARN) -Wno-unknown-warning-option -Wno-cast-align -include core/banned.h
$(FUZZ_BIN): tests/fuzz/fuzz_dockerfile.c $(DF_PARSER_DEP)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer \
		$(shell $(PKG) --cflags jansson) -o $@ tests/fuzz/fuzz_dockerfile.c \
		$(DF_PARSER_SRC) $(shell $(PKG) --libs jansson)

# The melange frontend's target: YAML -> config -> compiled steps, and the
# if: language; seeds are the fixtures and tests/melange's files.
MEL_SRC := $(addprefix plugins/frontend-melange/,util.c doc.c subst.c cond.c config.c \
	pipelines.c compile.c)
FUZZ_MEL := $(BUILD)/fuzz/fuzz_melange
$(FUZZ_MEL): tests/fuzz/fuzz_melange.c $(MEL_SRC) plugins/frontend-melange/melange.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer \
		-o $@ tests/fuzz/fuzz_melange.c $(MEL_SRC) $(shell $(PKG) --libs yaml-0.1)

# The other targets link an instrumented copy of the core library
# ($(BUILD)/fuzz/libkilncore.a) and name the plugin sources they take in
# their first lines, as unit tests do ("// SOURCES: …", "// PKGS: …",
# "// OBJS: renderer-json renderer-plain": those renderers, compiled with
# their kiln_plugin_init renamed so that two can be linked together).
FUZZ_CORE_OBJ := $(patsubst %.c,$(BUILD)/fuzz/obj/%.o,$(filter-out core/main.c,$(CORE_SRC)))
FUZZ_CORE_LIB := $(BUILD)/fuzz/libkilncore.a
$(BUILD)/fuzz/obj/core/%.o: core/%.c $(wildcard core/*.h include/kiln/*.h) | $(PROTO_H)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Wno-error -fsanitize=fuzzer-no-link -Iinclude -Icore -I$(BUILD)/gen \
		-DKILN_PLUGIN_DIR='"$(PLUGDIR)"' $(CORE_CFLAGS) -c $< -o $@
$(FUZZ_CORE_LIB): $(FUZZ_CORE_OBJ)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/fuzz/obj/renderer-%.o: $$(wildcard plugins/renderer-$$*/*.c plugins/renderer-$$*/*.h) \
		$(wildcard include/kiln/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -Iinclude \
		-Dkiln_plugin_init=kiln_$(subst -,_,$*)_plugin_init \
		$(shell $(PKG) --cflags jansson) -c plugins/renderer-$*/*.c -o $@
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $$(call unit_line,SOURCES,tests/fuzz/fuzz_$$*.c) \
		$$(addprefix $(BUILD)/fuzz/obj/,$$(addsuffix .o,$$(call unit_line,OBJS,tests/fuzz/fuzz_$$*.c))) \
		$(FUZZ_CORE_LIB) $(PROTO_LIB) $(wildcard plugins/*/*.h tests/fuzz/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Iinclude -Icore -I$(BUILD)/gen $(CORE_CFLAGS) \
		$(shell $(PKG) --cflags $(call unit_line,PKGS,$<)) \
		-o $@ $< $(call unit_line,SOURCES,$<) \
		$(addprefix $(BUILD)/fuzz/obj/,$(addsuffix .o,$(call unit_line,OBJS,$<))) \
		$(FUZZ_CORE_LIB) $(PROTO_LIB) $(CORE_LIBS) \
		$(shell $(PKG) --libs $(call unit_line,PKGS,$<))

# make fuzz runs every target, one after the other; tests/fuzz/run.sh runs
# each for a few seconds; bench/fuzz-long.sh for minutes each.
fuzz:
	@rc=0; for t in $(FUZZ_TARGETS); do \
		$(MAKE) --no-print-directory fuzz-$$t FUZZ_SECONDS=$(FUZZ_SECONDS) || rc=1; \
	done; exit $$rc

fuzz-dockerfile: $(FUZZ_BIN)
	@mkdir -p tests/fuzz/corpus/dockerfile
	@cp tests/dockerfile/cases/*.Dockerfile tests/dockerfile/errors/*.Dockerfile \
		tests/fuzz/corpus/dockerfile/
	FUZZ_FLAGS='$(FUZZ_FLAGS)' tests/fuzz/fuzz.sh $(BUILD) dockerfile $(FUZZ_SECONDS)

fuzz-melange: $(FUZZ_MEL)
	@mkdir -p tests/fuzz/corpus/melange
	@cp ../shared/fixtures/melange/*.yaml tests/melange/*.yaml tests/melange/bad/*.yaml \
		tests/fuzz/corpus/melange/ 2>/dev/null || cp tests/melange/*.yaml tests/fuzz/corpus/melange/
	FUZZ_FLAGS='$(FUZZ_FLAGS)' tests/fuzz/fuzz.sh $(BUILD) melange $(FUZZ_SECONDS)

fuzz-%: $(BUILD)/fuzz/fuzz_%
	FUZZ_FLAGS='$(FUZZ_FLAGS)' tests/fuzz/fuzz.sh $(BUILD) $* $(FUZZ_SECONDS)

check:
	SANITIZE=$(SANITIZE) scripts/check.sh

check-unit: tests
	tests/run.sh --unit

# The man page kiln(1) is docs/cli.md through pandoc (Debian's pandoc):
# a NAME section and the .TH line are added here, so docs/cli.md reads
# as before on the web; level-2 headings become the page's sections
# (upper-cased by scripts/man.lua).
MAN := $(BUILD)/kiln.1
KILN_VERSION := $(shell sed -n 's/^\#define KILN_VERSION "\(.*\)"/\1/p' include/kiln/common.h)
man: $(MAN)
$(MAN): docs/cli.md scripts/man.lua
	@mkdir -p $(@D)
	{ printf '%s\n\n' '## NAME' \
	    'kiln - build container images with BuildKit: Dockerfiles, melange and kiln.lua' \
	    '## SYNOPSIS'; sed 1d docs/cli.md; } | \
	$(PANDOC) -f gfm -t man -s --shift-heading-level-by=-1 --lua-filter=scripts/man.lua \
	    -M title=KILN -M section=1 -M header='kiln manual' -M footer='kiln $(KILN_VERSION)' \
	    -M date="$$(date -u -r docs/cli.md +%Y-%m-%d)" -o $@.tmp && mv $@.tmp $@

# Binary, plugins, man page, shell completion and the plugin kit (headers,
# kiln-plugin.pc, the template plugin).
install: all $(MAN)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(PLUGDIR) $(DESTDIR)$(INCDIR)/kiln $(DESTDIR)$(PCDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(KITDIR)
	install -m 0755 $(KILN) $(DESTDIR)$(BINDIR)/kiln
	$(if $(PLUGINS),install -m 0755 $(PLUGINS) $(DESTDIR)$(PLUGDIR)/)
	install -m 0644 include/kiln/*.h $(DESTDIR)$(INCDIR)/kiln/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@INCDIR@|$(INCDIR)|g' \
	    -e 's|@PLUGDIR@|$(PLUGDIR)|g' -e 's|@KITDIR@|$(KITDIR)|g' -e 's|@VERSION@|$(KILN_VERSION)|g' \
	    -e 's|@ABI@|$(shell sed -n 's/^#define KILN_ABI_MAJOR \([0-9]*\)/\1/p' include/kiln/common.h)|g' \
	    kiln-plugin.pc.in > $(DESTDIR)$(PCDIR)/kiln-plugin.pc
	install -m 0644 $(MAN) $(DESTDIR)$(MANDIR)/man1/kiln.1
	install -m 0644 scripts/completion/kiln.bash $(DESTDIR)$(BASHCOMPDIR)/kiln
	install -m 0644 scripts/completion/_kiln $(DESTDIR)$(ZSHCOMPDIR)/_kiln
	install -m 0644 scripts/plugin-template/Makefile scripts/plugin-template/hello.c \
	    $(DESTDIR)$(KITDIR)/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/kiln $(DESTDIR)$(PCDIR)/kiln-plugin.pc $(DESTDIR)$(MANDIR)/man1/kiln.1 \
	    $(DESTDIR)$(BASHCOMPDIR)/kiln $(DESTDIR)$(ZSHCOMPDIR)/_kiln
	rm -rf $(DESTDIR)$(PLUGDIR) $(DESTDIR)$(INCDIR)/kiln $(DESTDIR)$(KITDIR)

clean:
	rm -rf $(BUILD)
