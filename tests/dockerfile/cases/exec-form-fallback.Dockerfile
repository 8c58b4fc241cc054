FROM alpine:3.20
RUN ['single', 'quotes']
CMD [ "trailing", "comma", ]
ENTRYPOINT ["unterminated
RUN [ "echo", "a" ] && echo b
CMD ["bad escape \q"]
RUN [1e999]
