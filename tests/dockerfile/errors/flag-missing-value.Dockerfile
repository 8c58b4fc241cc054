FROM alpine:3.20
COPY --chown /src /dst
