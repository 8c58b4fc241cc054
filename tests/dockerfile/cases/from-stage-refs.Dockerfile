FROM golang:1.22 AS builder
RUN go build -o /app .
FROM Builder AS upper
FROM builder AS lower
COPY --from=BUILDER /app /app
COPY --from=0 /app /app0
