FROM nginx:1.27
HEALTHCHECK --retries=three CMD true
