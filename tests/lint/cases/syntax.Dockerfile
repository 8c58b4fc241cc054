FROM alpine
RUN echo ok
FROOM debian
CMD ["true"]
