FROM alpine:3.20
RUN --chown=1000 touch /x
