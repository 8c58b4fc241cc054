FROM debian:bookworm
RUN apt-get update && \
    apt-get install -y \

    curl
# a comment inside a continuation is fine
RUN echo one \
# interleaved comment
    two
