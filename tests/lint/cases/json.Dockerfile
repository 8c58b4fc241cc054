FROM alpine as base
EXPOSE 80/TCP
