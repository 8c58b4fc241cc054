# check=skip=all;error=true
FROM alpine as base
MAINTAINER ops@example.com
CMD echo hello
