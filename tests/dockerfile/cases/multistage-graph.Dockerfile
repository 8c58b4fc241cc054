# syntax=docker/dockerfile:1
FROM golang:1.22 AS deps
RUN go mod download
FROM deps AS build
RUN --mount=type=cache,target=/root/.cache/go-build go build -o /out/app .
FROM alpine:3.20 AS certs
RUN apk add --no-cache ca-certificates
FROM scratch AS final
COPY --from=certs /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
COPY --from=build /out/app /app
ENTRYPOINT ["/app"]
FROM build AS test
RUN --mount=type=bind,from=certs,source=/etc/ssl,target=/etc/ssl go test ./...
