# no base image
RUN echo hello
FROM alpine:3.20
