# check=error=true
FROM alpine
CMD echo hello
