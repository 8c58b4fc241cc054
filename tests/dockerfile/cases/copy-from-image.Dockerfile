FROM alpine:3.20
COPY --from=nginx:1.27-alpine /etc/nginx/nginx.conf /etc/nginx/
COPY --from=busybox:musl /bin/busybox /bin/
RUN --mount=from=golang:1.22,source=/usr/local/go,target=/go go version
