FROM alpine:3.20
LABEL latin1="café"
ENV V=ÿþ
RUN echo Ã( raw
