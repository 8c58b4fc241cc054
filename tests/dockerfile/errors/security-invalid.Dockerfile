FROM alpine:3.20
RUN --security=privileged mount
