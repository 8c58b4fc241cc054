FROM nginx:1.27
HEALTHCHECK SHELL curl -f http://localhost/
