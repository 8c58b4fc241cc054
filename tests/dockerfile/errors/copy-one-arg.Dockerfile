FROM alpine:3.20
COPY app.tar.gz
