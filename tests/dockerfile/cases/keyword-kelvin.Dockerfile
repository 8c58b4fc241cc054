FROM alpine:3.20 AS worKk
WORKDIR /srv
COPY --from=WORKK /bin/sh /sh2
