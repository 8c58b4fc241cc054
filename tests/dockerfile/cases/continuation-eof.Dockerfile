FROM alpine:3.20
RUN echo the file ends here \
