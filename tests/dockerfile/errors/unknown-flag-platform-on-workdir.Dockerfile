FROM alpine:3.20
WORKDIR --platform=linux/amd64 /src
