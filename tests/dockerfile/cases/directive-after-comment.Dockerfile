# A build of the docs site.
# escape=`
FROM nginx:1.27-alpine
RUN echo first \
    second
