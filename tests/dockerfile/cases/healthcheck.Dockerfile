FROM nginx:1.27-alpine
HEALTHCHECK --interval=30s --timeout=5s --start-period=1m30s --start-interval=2s --retries=3 \
  CMD curl -f http://localhost/ || exit 1
HEALTHCHECK CMD ["wget", "-qO-", "http://localhost/"]
HEALTHCHECK --interval=0 --timeout=1.5h CMD true
HEALTHCHECK NONE
