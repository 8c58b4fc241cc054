ARG BASE_TAG=3.20
FROM --platform=$TARGETPLATFORM alpine:${BASE_TAG} AS Base
RUN apk add --no-cache git

FROM --platform=linux/amd64 alpine:${BASE_TAG}${VARIANT} AS tools
CMD ["sh"]
CMD ["git", "--version"]

FROM base AS scratch
FROM base AS tools
EXPOSE 0.0.0.0:53:53/udp
