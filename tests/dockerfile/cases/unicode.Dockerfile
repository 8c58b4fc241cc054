FROM alpine:3.20
LABEL description="Café ☕ 日本" org.example.emoji=🚀
ENV GRÜSSE=hallo
RUN echo "über"
