FROM scratch
FROM alpine:3.20 AS build-env.v2_x
FROM alpine:3.20 as Final
FROM build-env.v2_x
