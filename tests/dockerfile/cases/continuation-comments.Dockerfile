FROM debian:bookworm
RUN apt-get update && apt-get install -y \
# the TLS roots
    ca-certificates \
    # and the client
    curl \
    && true
