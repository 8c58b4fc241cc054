#!/usr/bin/env bash
# Runs a program under valgrind's memcheck; any error or definite leak makes
# it exit 99. tests/run.sh uses it for the "valgrind:BUILD" pass.
exec valgrind -q --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite --show-leak-kinds=definite \
	--suppressions="$(dirname "$0")/valgrind.supp" "$@"
