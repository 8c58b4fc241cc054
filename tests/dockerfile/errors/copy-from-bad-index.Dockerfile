FROM alpine:3.20
RUN echo only one stage
FROM alpine:3.20
COPY --from=2 /x /x
