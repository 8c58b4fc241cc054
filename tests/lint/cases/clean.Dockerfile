# syntax=docker/dockerfile:1
# check=error=true
ARG DEBIAN_VERSION=bookworm

FROM --platform=$BUILDPLATFORM debian:${DEBIAN_VERSION}-slim AS build
ARG TARGETARCH
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/var/cache/apt \
    apt-get update && apt-get install -y --no-install-recommends build-essential
RUN make ARCH=$TARGETARCH

FROM debian:${DEBIAN_VERSION}-slim
LABEL org.opencontainers.image.authors="ops@example.com"
ENV APP_HOME=/opt/app
COPY --from=build /src/out/ ${APP_HOME}/
WORKDIR ${APP_HOME}
EXPOSE 8080/tcp
HEALTHCHECK CMD ["/opt/app/bin/health"]
USER 65534:65534
ENTRYPOINT ["/opt/app/bin/server"]
CMD ["--port", "8080"]
