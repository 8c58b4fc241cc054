# syntax=docker/dockerfile:1
FROM alpine:3.20
RUN echo crlf \
    lines
COPY <<EOF /etc/motd
welcome
EOF
