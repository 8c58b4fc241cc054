FROM debian:bookworm AS base
ENV APP=/opt/app PATH=/opt/app/bin:$PATH
ARG LEVEL=info
FROM base AS child
ENV CONF=$APP/etc LOG=$LEVEL PATH=$PATH:/extra
FROM debian:bookworm AS fresh
ENV SEEN=[$APP] PATH=/x:$PATH
