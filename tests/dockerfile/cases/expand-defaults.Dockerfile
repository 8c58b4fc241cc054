FROM alpine:3.20
ENV SET=value EMPTY=
ENV A=${SET:-d} B=${EMPTY:-d} C=${UNSET:-d}
ENV D=${SET-d} E=${EMPTY-d} F=${UNSET-d}
ENV G=${SET:+alt} H=${EMPTY:+alt} I=${UNSET:+alt}
ENV J=${SET+alt} K=${EMPTY+alt} L=${UNSET+alt}
ENV M=${SET:?must_be_set} N=${UNSET:-${SET:-inner}}
