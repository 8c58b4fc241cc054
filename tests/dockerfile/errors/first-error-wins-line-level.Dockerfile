FROM alpine:3.20
RUNN this is reported second
RUN <<EOF
unterminated
