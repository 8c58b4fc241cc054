# syntax=docker/dockerfile:1
FROM golang:1.22 AS deps
WORKDIR /src
FROM golang:1.22
ENV GOCACHE=/root/.cache/go-build
RUN --mount=type=cache,target=$GOCACHE,sharing=locked \
    --mount=type=bind,from=deps,source=/src,target=/src \
    --mount=type=secret,id=netrc,target=/root/.netrc,required \
    --mount=type=ssh \
    --mount=type=tmpfs,target=/tmp,size=64m \
    go build ./...
RUN --mount="type=bind,source=with,comma,target=/x" echo quoted
RUN --mount=type=cache,id=apt-$GOCACHE,target=/var/cache/apt "echo" cached
