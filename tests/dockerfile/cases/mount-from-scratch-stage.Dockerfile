FROM alpine:3.20 AS scratch
RUN echo this stage is named scratch
FROM alpine:3.20
RUN --mount=type=cache,target=/cache echo a cache mount has no from=
