FROM nginx:1.27-alpine
ARG SERVER_NAME=example.org
COPY --chmod=0644 <<nginx.conf <<index.html /etc/nginx/conf.d/
server {
    listen 80;
    server_name ${SERVER_NAME};
}
nginx.conf
<h1>It works</h1>
index.html
