FROM alpine:${TAG
