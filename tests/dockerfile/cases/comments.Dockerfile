# Build the API server.
FROM python:3.12-slim   
    # an indented comment
RUN pip install --no-cache-dir uvicorn # this is not a comment for RUN
# ENV IGNORED=1
LABEL org.opencontainers.image.title="api#server"
