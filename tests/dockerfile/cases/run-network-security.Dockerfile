FROM debian:bookworm
RUN --network=none make test
RUN --network=host curl -fsS http://localhost:8080/healthz
RUN --network=default echo default
RUN --security=insecure mount -t tmpfs none /mnt
RUN --security=sandbox --network=none echo both
