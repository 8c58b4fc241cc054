FROM debian:bookworm
ARG UID=10001
ENV HOME=/home/app
RUN useradd -u $UID -m app
USER app:app
USER $UID
WORKDIR $HOME
WORKDIR project dir/with spaces
WORKDIR ${HOME}/src
