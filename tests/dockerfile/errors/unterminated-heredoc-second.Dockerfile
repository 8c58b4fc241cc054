FROM alpine:3.20
COPY <<one <<two /dst/
first
one
second
