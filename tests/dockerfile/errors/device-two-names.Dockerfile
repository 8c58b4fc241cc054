FROM ubuntu:24.04
RUN --device=a.com/x,b.com/y ls
