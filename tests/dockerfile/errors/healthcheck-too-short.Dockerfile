FROM nginx:1.27
HEALTHCHECK --start-interval=500us CMD true
