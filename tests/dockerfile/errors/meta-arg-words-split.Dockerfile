ARG TAG=${VERSION:?VERSION must be set}
FROM alpine:${TAG}
