# check=skip=JSONArgsRecommended,MaintainerDeprecated
FROM alpine
MAINTAINER ops@example.com
ENV LANG C.UTF-8
CMD echo hello
