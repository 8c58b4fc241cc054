FROM node:20-alpine
ONBUILD COPY --chwon=node:node . /app
ONBUILD RUN --mount=type=cache,target=/root/.npm npm ci
