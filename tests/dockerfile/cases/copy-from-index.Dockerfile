FROM alpine:3.20
RUN echo one > /one
FROM alpine:3.20
RUN echo two > /two
FROM alpine:3.20
COPY --from=0 /one /
COPY --from=1 /two /
COPY --from=+1 /two /plus
