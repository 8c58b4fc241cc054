FROM alpine:3.20
HEALTHCHECK --interval=5s --bogus NONE
HEALTHCHECK none
