FROM postgres:16
ENV PGDATA=/var/lib/postgresql/data
VOLUME $PGDATA
VOLUME ["/var/log/postgresql", "/run/postgresql"]
VOLUME /backup /archive
