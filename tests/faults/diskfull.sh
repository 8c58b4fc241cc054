# tests/faults/diskfull.sh: a local export into a filesystem that fills up.
# Sourced by tests/integration/faults_test.sh. Shared engine (the disk that
# fills is kiln's, a 2 MiB tmpfs mounted under $tmp).
#
# `-o type=local,dest=FULL/out` (and `-o type=tar,dest=FULL/out.tar`) of an
# image holding a 4 MiB file: kiln fails with one line saying no space is
# left, the previous output is intact and no temporary sibling is left.

wd=$tmp/full
mkdir -p "$wd" "$tmp/full-ctx"
if mount -t tmpfs -o size=2m,mode=0755 kiln-fault-full "$wd"; then
	mkdir -p "$wd/out"
	echo "previous output" >"$wd/out/result"
	echo "previous tar" >"$wd/out.tar"
	printf 'FROM busybox\nARG R\nRUN head -c 4194304 /dev/zero > /big && echo "$R" > /result\nFROM scratch\nCOPY --from=0 /big /result /\n' \
		>"$tmp/full-ctx/Dockerfile"
	for kind in local tar; do
		dest=$wd/out
		[ $kind = tar ] && dest=$wd/out.tar
		"$KILN" build --progress=plain --build-arg "R=$$-$RANDOM" -o "type=$kind,dest=$dest" \
			"$tmp/full-ctx" >/dev/null 2>"$tmp/full-$kind.err"
		rc=$?
		err=$(cat "$tmp/full-$kind.err")
		expect_eq "disk full, type=$kind: exit 1" 1 "$rc"
		expect_match "disk full, type=$kind: one line says no space is left, naming the file" \
			"(ERROR|kiln): .*$wd/.*[Nn]o space left on device" "$(printf '%s\n' "$err" | tail -n 3)"
		expect_eq "disk full, type=$kind: the previous output is intact, no temporary sibling" \
			"previous output|previous tar|out out.tar" \
			"$(cat "$wd/out/result" 2>&1)|$(cat "$wd/out.tar" 2>&1)|$(ls -A "$wd" | sort | paste -sd' ')"
	done
	umount "$wd" || umount -l "$wd"
else
	skip "disk full: local export" "cannot mount a tmpfs (needs root)"
fi
