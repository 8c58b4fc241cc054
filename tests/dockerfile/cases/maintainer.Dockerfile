FROM debian:bookworm
MAINTAINER Jane Doe <jane@example.org>
