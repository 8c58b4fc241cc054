FROM alpine:3.20
ENV JAVA_OPTS -Xmx512m -Dfile.encoding=UTF-8
ENV MSG "quoted legacy value"
ENV URL http://example.org/?a=1&b=2
