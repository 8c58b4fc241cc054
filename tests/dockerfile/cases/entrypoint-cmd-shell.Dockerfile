FROM alpine:3.20
ENTRYPOINT exec /usr/bin/app --config "/etc/app/config.yml"
CMD app --verbose  --log-level=debug
