FROM nginx:1.27
HEALTHCHECK --retries=-1 CMD true
