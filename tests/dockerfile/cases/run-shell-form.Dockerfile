FROM alpine:3.20
RUN set -e; for f in /etc/*.conf; do echo "$f"; done | sort > /list && wc -l /list
RUN echo 'single quotes' "double quotes" \$escaped `backticks`
