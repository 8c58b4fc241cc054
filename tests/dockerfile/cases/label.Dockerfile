FROM alpine:3.20
ARG VERSION=1.4.2
LABEL org.opencontainers.image.version=$VERSION \
      org.opencontainers.image.title="Tiny tool" \
      "com.example.quoted key"='single $VERSION' \
      empty=
LABEL maintainer legacy form value
