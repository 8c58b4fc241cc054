FROM node:20-alpine
ONBUILD COPY --chown=node:node package*.json ./
ONBUILD RUN npm ci --omit=dev
ONBUILD ENV NODE_ENV=production
ONBUILD ARG BUILD_REF
ONBUILD HEALTHCHECK CMD ["node", "healthcheck.js"]
ONBUILD BOGUS not checked until a child build runs it
onbuild   workdir /app
