FROM node:20-alpine AS build
WORKDIR /app
FROM nginx:1.27-alpine
COPY --from=build --chown=101:101 --chmod=0755 --link /app/dist/ /usr/share/nginx/html/
COPY --parents --exclude=*.md --exclude=**/testdata ./docs/./**/ /srv/
COPY --link=false --parents=true app.conf /etc/nginx/conf.d/
