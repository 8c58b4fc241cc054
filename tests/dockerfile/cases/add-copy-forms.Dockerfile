FROM alpine:3.20
ADD https://example.org/releases/v1.0/app.tar.gz /tmp/
ADD git@github.com:example/private.git /src/private
COPY ["file with spaces.txt", "second file", "/dest dir/"]
COPY a*.conf b?.conf /etc/app/
