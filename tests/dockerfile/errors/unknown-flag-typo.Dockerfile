FROM alpine:3.20
COPY --chwon=1000:1000 . /src
