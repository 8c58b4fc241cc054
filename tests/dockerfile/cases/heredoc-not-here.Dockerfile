FROM alpine:3.20
RUN ["sh", "-c", "cat <<EOF"]
RUN echo "<<EOF" '<<END'
LABEL note="<<EOF"
RUN echo shift <<< "here-string"
