FROM alpine:3.20 AS a
FROM alpine:3.20 AS b
FROM alpine:3.20
COPY --from=a --from=b /x /x
