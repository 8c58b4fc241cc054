#!/usr/bin/env bash
# The README's test command: installs dependencies, builds kiln (and an
# ASan+UBSan build), starts the local engine, runs every test, stops the
# engine. The last line is "N passed, N failed, N skipped".
#   SANITIZE=1 scripts/check.sh   everything against the sanitizer build only
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
if [ "${SANITIZE:-0}" = 1 ]; then
	make -s -j"$jobs" BUILD=build-asan SANITIZE=1 tests
	builds="build-asan"
else
	make -s -j"$jobs" tests
	make -s -j"$jobs" BUILD=build-asan SANITIZE=1 tests
	builds="build build-asan valgrind:build"
fi

# tests/run.sh starts the local engine, runs every suite, stops the engine
# and checks that nothing of it is left running.
KILN_TEST_BUILDS="$builds" exec tests/run.sh --engine
