FROM nginx:1.27
HEALTHCHECK --timeout=5sec CMD true
