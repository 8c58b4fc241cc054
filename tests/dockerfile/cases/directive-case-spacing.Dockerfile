  #   SYNTAX = docker/dockerfile:1	
#Escape=`
FROM alpine:3.20
RUN echo one `
    two
