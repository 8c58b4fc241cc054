FROM alpine:3.20 AS tools
RUN echo first
FROM alpine:3.20 AS tools
RUN echo second
FROM tools AS use
COPY --from=tools /bin/sh /sh
