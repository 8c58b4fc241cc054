FROM alpine:3.20
COPY --chown="1000:1000" --chmod='0644' conf /etc/app/
COPY --chown=app\ user:group two words /dst/
RUN --mount='type=cache,target=/root/.cache' echo quoted flag
COPY -- --not-a-flag /dst/
