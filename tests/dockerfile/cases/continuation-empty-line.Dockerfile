FROM alpine:3.20
RUN apk add --no-cache \

    git \
    	
    make
RUN echo done
