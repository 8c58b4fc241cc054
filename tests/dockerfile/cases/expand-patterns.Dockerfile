FROM alpine:3.20
ENV FILE=archive.tar.gz PATHV=/usr/local/bin/tool
ENV A=${FILE#*.} B=${FILE##*.} C=${FILE%.*} D=${FILE%%.*}
ENV E=${PATHV/local/opt} F=${PATHV//o/0} G=${PATHV#/usr} H=${FILE%.tar.gz}
ENV I=${PATHV/#\/usr/} J=${FILE//?/x}
