FROM alpine:3.20
ENTRYPOINT [["sh"], "-c"]
