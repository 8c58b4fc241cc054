# syntax=docker/dockerfile:1.7
# check=skip=JSONArgsRecommended;error=true
FROM golang:1.22-bookworm
WORKDIR /src
CMD go run .
