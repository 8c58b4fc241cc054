FROM alpine:3.20
ENV A=1 B
