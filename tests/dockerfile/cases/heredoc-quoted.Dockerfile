FROM alpine:3.20
ENV NAME=world
RUN <<"EOF"
echo "no expansion of $NAME here"
EOF
RUN <<'EOF'
echo 'nor $NAME here'
EOF
RUN <<E"O"F
echo partly quoted
EOF
