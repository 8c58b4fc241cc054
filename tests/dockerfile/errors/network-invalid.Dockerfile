FROM alpine:3.20
RUN --network=bridge apk update
