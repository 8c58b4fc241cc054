FROM nginx:1.27
HEALTHCHECK --retries=3 CMD
