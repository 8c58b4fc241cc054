FROM alpine:3.20
RUN --mount=type=cache,target=/c\
  --mount=type=bind,from=build,src=/out,target=/in,\"ro make
