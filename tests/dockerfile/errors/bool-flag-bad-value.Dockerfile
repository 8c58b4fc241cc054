FROM alpine:3.20
COPY --link=yes . /src
