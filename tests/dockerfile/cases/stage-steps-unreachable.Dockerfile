FROM alpine:3.20 AS docs
RUN apk add --no-cache mkdocs
RUN mkdocs build
FROM alpine:3.20 AS lint
RUN echo lint
FROM alpine:3.20 AS app
RUN echo build
COPY . /app
