FROM debian:bookworm
SHELL /bin/bash -c
