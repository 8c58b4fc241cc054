FROM alpine:3.20
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d \
    https://example.org/tool-1.2.tar.gz /opt/
ADD --keep-git-dir=true https://github.com/moby/buildkit.git#v0.13.0 /src/buildkit
ADD --unpack=false --chown=nobody:nogroup --chmod=644 --link archive.tar.gz /data/
ADD --exclude=*.tmp --exclude=cache/ ./assets /assets
