FROM alpine:3.20
LABEL =value
