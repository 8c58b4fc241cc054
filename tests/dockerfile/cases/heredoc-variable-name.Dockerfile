FROM alpine:3.20
RUN <<$END cat
kept as written: the name is $END
$END
RUN <<  SPACED
between << and the word
SPACED
