FROM alpine:3.20
onbuild maintainer someone
