FROM debian:bookworm
SHELL []
