FROM alpine:3.20
ADD --from=builder /out /out
