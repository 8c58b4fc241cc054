FROM alpine:3.20
ENV NAME=world
ENV DQ="hello $NAME" SQ='hello $NAME' ESC=\$NAME MIX="a"'b'c
LABEL dollar="cost: \$5" backslash="a\\b" plain=a\b
WORKDIR "/srv/$NAME"
USER '$NAME'
