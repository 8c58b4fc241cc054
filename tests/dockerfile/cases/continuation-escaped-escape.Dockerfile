FROM alpine:3.20
RUN echo C:\\
RUN echo tail \   
    continues
RUN echo three \\\
RUN echo alone
