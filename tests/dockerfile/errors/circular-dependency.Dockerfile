FROM alpine:3.20 AS a
COPY --from=b /b /b
FROM alpine:3.20 AS b
COPY --from=a /a /a
