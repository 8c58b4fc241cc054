FROM nginx:1.27
HEALTHCHECK --interval=30 CMD curl -f http://localhost/
