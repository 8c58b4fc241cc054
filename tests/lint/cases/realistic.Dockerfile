# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22
ARG ALPINE_VERSION

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm as build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-mod=vendor
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETOS TARGETARCH
RUN GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -o /out/app ./cmd/app

FROM alpine:${ALPINE_VERSION} AS runtime
MAINTAINER ops@example.com
LABEL org.opencontainers.image.source https://example.com/app
ENV APP_HOME=/srv/app
ARG DB_PASSWORD
run apk add --no-cache ca-certificates tzdata
WORKDIR app
COPY --from=build /out/app ${APP_HOME}/bin/app
COPY config.yaml $CONFIG_DIR/
EXPOSE 8080/TCP
USER nobody
CMD ["serve"]
ENTRYPOINT /srv/app/bin/app
