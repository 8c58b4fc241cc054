FROM alpine:3.20
RUN <<-SCRIPT
	#!/bin/sh
	if true; then
		echo nested tab
	fi
	SCRIPT
