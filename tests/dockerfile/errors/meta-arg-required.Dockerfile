ARG TAG=${VERSION:?VERSION_must_be_set}
FROM alpine:${TAG}
