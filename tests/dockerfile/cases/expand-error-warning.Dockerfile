FROM alpine:3.20
ENV REQUIRED="${API_TOKEN:?set API_TOKEN}"
COPY ${SRC:?} /dst/
RUN echo the build fails here only if this stage is built
