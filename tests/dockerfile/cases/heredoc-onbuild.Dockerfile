FROM node:20-alpine
ONBUILD RUN <<EOF
npm ci
npm run build
EOF
ONBUILD COPY <<.npmrc /root/
registry=https://registry.npmjs.org/
.npmrc
