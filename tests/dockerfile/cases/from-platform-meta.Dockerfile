ARG PLATFORM=linux/riscv64
ARG BASE=debian:trixie
FROM --platform=${PLATFORM} ${BASE} AS cross
FROM --platform="linux/amd64" ${BASE}
