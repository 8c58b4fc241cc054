FROM alpine:3.20
ARG STAGE=build
RUN --mount=type=bind,from=$STAGE,target=/src make
