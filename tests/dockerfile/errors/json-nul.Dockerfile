FROM alpine:3.20
CMD ["a\u0000b"]
